"""Staff accounts (admins): create, edit name and email, disable, unlock, reset passwords,
change roles. What the last action did stays on screen until the next one."""

import pandas as pd
import streamlit as st

from lib import auth, clients
from lib.db import read_session
from lib.policy import ALL_ROLES, ROLE_LABELS
from lib.timeutil import local_text
from lib.validation import ValidationError
from ui import context
from ui.record_form import RecordForm

actor = context.actor()
engine = context.engine()
tz = context.settings().practice_time_zone
st.title("Staff accounts")
DONE = "users.last_action"  # the confirmation of the last action, shown until the next one


def _done(message: str):
    def remember() -> None:
        st.session_state[DONE] = message

    return remember


def _start_action() -> None:
    """A new action replaces the last one's confirmation (it says what it did itself)."""
    st.session_state.pop(DONE, None)


if st.session_state.get(DONE):
    st.success(st.session_state[DONE], icon=":material/check:")

with read_session(engine) as session:
    accounts = auth.list_users(session, actor=actor)
    clinicians = dict(clients.clinician_choices(session))

st.dataframe(
    pd.DataFrame(
        [
            {
                "Username": a.username,
                "Name": a.display_name,
                "Role": ROLE_LABELS[a.role],
                "Active": a.active,
                "Locked until": local_text(a.locked_until, tz) if a.locked_until else "",
                "Failed sign-ins": a.failed_login_count,
                "Last seen": local_text(a.last_seen_at, tz),
            }
            for a in accounts
        ]
    ),
    hide_index=True,
    width="stretch",
)

NEW_LABELS = {
    "username": "Username",
    "display_name": "Name",
    "email": "Email",
    "role": "Role",
    "clinician_id": "Clinician record (for clinician accounts)",
    "password": "Temporary password",
}


def _create(session, values: dict, _version) -> None:
    try:
        auth.create_user(session, actor=actor, **values)
    except auth.AuthError as exc:
        raise ValidationError({exc.field or "username": str(exc)}) from None


left, right = st.columns(2)
with left:
    st.subheader("Add a staff member")
    # A new account is a form too: a refusal keeps what was typed; a success starts afresh.
    new = RecordForm(
        "new_staff",
        record_id=0,
        version=0,
        values={"role": ALL_ROLES[0], "clinician_id": None},
        labels=NEW_LABELS,
    )
    new.banner()
    with st.form(new.prefix + "form"):
        new.text(st, "username", NEW_LABELS["username"])
        new.text(st, "display_name", NEW_LABELS["display_name"])
        new.text(st, "email", NEW_LABELS["email"])
        new.select(st, "role", NEW_LABELS["role"], list(ALL_ROLES), format_func=ROLE_LABELS.get)
        new.select(
            st,
            "clinician_id",
            NEW_LABELS["clinician_id"],
            [None, *clinicians],
            format_func=lambda c: "—" if c is None else clinicians[c],
        )
        new.text(st, "password", NEW_LABELS["password"], type="password")
        add = st.form_submit_button("Add account")
    if add:
        _start_action()
        username = (new.value("username") or "").strip().lower()
        new.save(
            {f: new.value(f) for f in NEW_LABELS},
            _create,
            saved_notice="",
            on_saved=_done(f"Account {username!r} created."),
        )


def _account_change(fn, field: str, **kwargs):
    """A lib account call as a form write: its refusal shows next to ``field``."""

    def write(session, _changes, version) -> None:
        try:
            fn(session, actor=actor, username=chosen.username, expected_version=version, **kwargs)
        except auth.AuthError as exc:
            raise ValidationError({exc.field or field: str(exc)}) from None

    return write


with right:
    st.subheader("Change an account")
    by_name = {a.username: a for a in accounts}
    target = st.selectbox("Account", list(by_name), key="users_target")
    chosen = by_name.get(target)
    if chosen is not None:
        # Every widget below is keyed by this account and the version shown, so nothing
        # chosen or typed for one account can carry over to another.
        form = RecordForm(
            "staff_account",
            record_id=chosen.user_id,
            version=chosen.version,
            values={
                "display_name": chosen.display_name,
                "email": chosen.email,
                "role": chosen.role,
                "new_password": "",
                "active": chosen.active,
            },
            labels={
                "display_name": "Name",
                "email": "Email",
                "role": "Role",
                "new_password": "New password",
                "active": "Active",
            },
        )
        form.banner()
        b1, b2 = st.columns(2)
        if chosen.active and b1.button("Disable account", key=form.prefix + "disable"):
            _start_action()
            form.save(
                {"active": False},
                _account_change(auth.set_active, "active", active=False),
                saved_notice="",
                on_saved=_done(f"Account {chosen.username!r} disabled."),
            )
        if not chosen.active and b1.button("Enable account", key=form.prefix + "enable"):
            _start_action()
            form.save(
                {"active": True},
                _account_change(auth.set_active, "active", active=True),
                saved_notice="",
                on_saved=_done(f"Account {chosen.username!r} enabled."),
            )
        if chosen.locked_until and b2.button("Unlock", key=form.prefix + "unlock"):
            _start_action()
            form.save(
                {"locked": False},
                lambda session, _c, _v: auth.unlock(session, actor=actor, username=chosen.username),
                saved_notice="",
                on_saved=_done(f"Account {chosen.username!r} unlocked."),
            )
        form.error_slot("active")
        with st.form(form.prefix + "details_form", border=False):
            form.text(st, "display_name", "Name")
            form.text(st, "email", "Email")
            save_details = st.form_submit_button("Save name and email")
        if save_details:
            _start_action()
            changes = form.changes(["display_name", "email"])

            form.save(
                changes,
                _account_change(auth.set_name_email, "display_name", changes=changes),
                saved_notice="",
                on_saved=_done(
                    f"Changed for {chosen.username!r}: "
                    + " and ".join(form.labels[f].lower() for f in changes)
                    + "."
                ),
            )
        with st.form(form.prefix + "role_form", border=False):
            form.select(st, "role", "Role", list(ALL_ROLES), format_func=ROLE_LABELS.get)
            change_role = st.form_submit_button("Change role")
        if change_role:
            _start_action()
            changes = form.changes(["role"])
            form.save(
                changes,
                _account_change(auth.set_role, "role", role=changes.get("role")),
                saved_notice="",
                on_saved=_done(
                    f"Role of {chosen.username!r} changed to "
                    f"{ROLE_LABELS.get(changes.get('role'), '')}."
                ),
            )
        with st.form(form.prefix + "password_form", border=False):
            form.text(st, "new_password", "New password", type="password")
            reset = st.form_submit_button("Reset password")
        if reset:
            _start_action()
            new_password = form.value("new_password") or ""
            form.save(
                {"new_password": "•" * 8},  # described without the password itself
                _account_change(auth.set_password, "new_password", new_password=new_password),
                saved_notice="",
                on_saved=_done(
                    f"Password of {chosen.username!r} reset. Their other sessions have ended."
                ),
            )
