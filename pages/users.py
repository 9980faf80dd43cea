"""Staff accounts (admins): create, disable, unlock, reset passwords, change roles."""

import pandas as pd
import streamlit as st

from lib import auth, clients, passwords
from lib.db import read_session, transaction
from lib.policy import ALL_ROLES, ROLE_LABELS
from lib.timeutil import local_text
from ui import context

actor = context.actor()
engine = context.engine()
tz = context.settings().practice_time_zone
st.title("Staff accounts")

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

left, right = st.columns(2)
with left, st.form("new_user", clear_on_submit=True):
    st.subheader("Add a staff member")
    username = st.text_input("Username")
    name = st.text_input("Name")
    email = st.text_input("Email")
    role = st.selectbox("Role", ALL_ROLES, format_func=ROLE_LABELS.get)
    clinician_id = st.selectbox(
        "Clinician record (for clinician accounts)",
        [None, *clinicians],
        format_func=lambda c: "—" if c is None else clinicians[c],
    )
    password = st.text_input("Temporary password", type="password", help=passwords.RULE)
    field_error = st.empty()
    if st.form_submit_button("Add account"):
        try:
            with transaction(engine) as session:
                auth.create_user(
                    session,
                    actor=actor,
                    username=username,
                    display_name=name,
                    role=role,
                    password=password,
                    email=email,
                    clinician_id=clinician_id,
                )
        except auth.AuthError as exc:
            field_error.error(str(exc))
        else:
            st.success("Account created.")
            st.rerun()

with right:
    st.subheader("Change an account")
    names = [a.username for a in accounts]
    target = st.selectbox("Account", names, key="users_target")
    chosen = next((a for a in accounts if a.username == target), None)
    action_error = st.empty()

    def _apply(fn, **kwargs) -> None:
        try:
            with transaction(engine) as session:
                fn(session, actor=actor, username=target, **kwargs)
        except auth.AuthError as exc:
            action_error.error(str(exc))
        else:
            st.success("Saved.")
            st.rerun()

    if chosen is not None:
        b1, b2 = st.columns(2)
        if chosen.active and b1.button("Disable account"):
            _apply(auth.set_active, active=False)
        if not chosen.active and b1.button("Enable account"):
            _apply(auth.set_active, active=True)
        if chosen.locked_until and b2.button("Unlock"):
            _apply(auth.unlock)
        new_role = st.selectbox(
            "Role",
            ALL_ROLES,
            index=ALL_ROLES.index(chosen.role),
            format_func=ROLE_LABELS.get,
            key="users_new_role",
        )
        if new_role != chosen.role and st.button("Change role"):
            _apply(auth.set_role, role=new_role)
        new_password = st.text_input(
            "New password", type="password", key="users_reset_pw", help=passwords.RULE
        )
        if st.button("Reset password"):
            _apply(auth.set_password, new_password=new_password)
