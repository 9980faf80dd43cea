"""The Reminders & Portal tab (spec R1, R2), the header's "Invite to portal" action, and the
settings grid the admin page shares with the tab.

The grid shows, per setting, the default that applies and where it comes from, this level's
override and the effective value, side by side. Every change saves at once (there is nothing
half-saved to lose), against the value the user saw: a setting someone else changed
meanwhile is not overwritten (``StaleEdit``) and the screen then shows their value.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import mail, portal, reminders
from lib.db import read_session, transaction
from lib.edits import StaleEdit
from lib.policy import PermissionDenied, allowed
from lib.timeutil import local_text
from lib.validation import ValidationError
from ui import context
from ui.flash import flash

# A selectbox shows None as "nothing chosen", so the choices are words, mapped to values.
BOOL_CHOICES = {"Use default": None, "On": True, "Off": False}
BOOL_LABELS = {v: k for k, v in BOOL_CHOICES.items()}
OVERRIDE_HEADINGS = {"client": "This client", "clinician": "This clinician", "practice": "Practice"}


def _tz() -> str:
    return context.settings().practice_time_zone


def _prefix(scope: str, scope_id: int) -> str:
    return f"rem_{scope}_{scope_id}_"


def _state(scope: str, scope_id: int) -> dict:
    """What the grid of one level remembers between runs: the stored value each widget
    started from ("shown", the value a change is checked against) and a generation number.

    Widgets get their starting value through ``value=``/``index=`` and carry the generation
    in their key; a new generation (after a reset, a refusal, or a change by someone else)
    starts fresh widgets. Presetting widget values through ``st.session_state`` instead is
    lost when a run stops before the page (the sign-in's cookie rerun).
    """
    return st.session_state.setdefault(_prefix(scope, scope_id) + "state", {"gen": 0, "shown": {}})


def widget_key(scope: str, scope_id: int, key: str) -> str:
    return f"{_prefix(scope, scope_id)}g{_state(scope, scope_id)['gen']}_{key}"


def _effective_text(s: reminders.EffectiveSetting) -> str:
    text = reminders.format_value(s.key, s.effective)
    return f"{text} — {s.note}" if s.note else text


# --- saving (widget callbacks: they run before the script, so the rerun shows the result) ---


def _save(scope: str, scope_id: int, changes: dict) -> bool:
    """Save ``changes`` against the values the widgets started from; False: nothing saved."""
    prefix = _prefix(scope, scope_id)
    state = _state(scope, scope_id)
    errors = st.session_state.setdefault(prefix + "errors", {})
    try:
        with transaction(context.engine()) as session:
            reminders.save_overrides(
                session,
                actor=context.actor(),
                scope=scope,
                scope_id=scope_id,
                changes=changes,
                expected={k: state["shown"].get(k) for k in changes},
                tz_name=_tz(),
            )
    except ValidationError as exc:
        errors.update(exc.errors)
    except StaleEdit as exc:
        when = local_text(exc.changed_at, _tz()) if exc.changed_at else "just now"
        st.session_state[prefix + "stale"] = f"Changed by {exc.changed_by} at {when}."
    except PermissionDenied as exc:
        st.session_state[prefix + "refused"] = str(exc)
    else:
        state["shown"].update(changes)
        for key in changes:
            errors.pop(key, None)
        return True
    state["gen"] += 1  # nothing was written: the widgets go back to the stored values
    return False


def _changed(scope: str, scope_id: int, key: str, widget: str) -> None:
    raw = st.session_state[widget]
    _save(scope, scope_id, {key: raw if key in reminders.HOURS else BOOL_CHOICES[raw]})


def _reset(scope: str, scope_id: int, keys: tuple[str, ...]) -> None:
    if _save(scope, scope_id, dict.fromkeys(keys)):
        _state(scope, scope_id)["gen"] += 1
        flash(
            "success",
            "Reset to the default." if len(keys) == 1 else "Every setting reset to its default.",
        )


# --- the grid ------------------------------------------------------------------------------


def settings_grid(view: reminders.SettingsView, *, can_edit: bool) -> None:
    """Default (and where it comes from) | override | effective, with reset per row and all."""
    prefix = _prefix(view.scope, view.scope_id)
    state = _state(view.scope, view.scope_id)
    stored = {s.key: s.override for s in view.settings}
    if state["shown"] != stored:  # first showing, or someone else changed a setting
        state["shown"] = stored
        state["gen"] += 1
    refused = st.session_state.pop(prefix + "refused", None)
    if refused:
        st.error(refused)
    stale = st.session_state.pop(prefix + "stale", None)
    if stale:
        st.error("Someone else changed this setting after it was shown: nothing was saved.")
        st.text(f"{stale} The screen now shows their value.")  # a staff name: literal
    errors: dict = st.session_state.get(prefix + "errors", {})
    widths = [3, 3, 2.5, 4, 1.5]
    for col, heading in zip(
        st.columns(widths),
        ("Setting", "Default", OVERRIDE_HEADINGS[view.scope], "Effective"),
        strict=False,
    ):
        col.markdown(f"**{heading}**")
    for s in view.settings:
        label, default, override, effective, reset = st.columns(widths, vertical_alignment="center")
        label.text(s.label)
        # The source can carry a clinician's name as typed by an admin: shown literally.
        default.text(f"{reminders.format_value(s.key, s.default_value)} · {s.default_source_label}")
        key = widget_key(view.scope, view.scope_id, s.key)
        callback = {
            "on_change": _changed,
            "args": (view.scope, view.scope_id, s.key, key),
            "disabled": not can_edit,
            "label_visibility": "collapsed",
            "key": key,
        }
        if s.is_hours:
            low, high = reminders.HOURS[s.key]
            override.number_input(
                s.label,
                min_value=low,
                max_value=high,
                step=1,
                value=s.override,
                placeholder="Use default",
                **callback,
            )
        else:
            choices = list(BOOL_CHOICES)
            override.selectbox(
                s.label, choices, index=choices.index(BOOL_LABELS[s.override]), **callback
            )
        if s.key in errors:
            override.error(errors.pop(s.key))
        effective.text(_effective_text(s))
        reset.button(
            "Reset",
            key=f"{prefix}reset_{s.key}",
            icon=":material/undo:",
            help="Reset to default",
            disabled=not can_edit or s.override is None,
            on_click=_reset,
            args=(view.scope, view.scope_id, (s.key,)),
        )
    overridden = tuple(s.key for s in view.settings if s.override is not None)
    st.button(
        "Reset all to defaults",
        key=f"{prefix}reset_all",
        icon=":material/restart_alt:",
        disabled=not can_edit or not overridden,
        on_click=_reset,
        args=(view.scope, view.scope_id, overridden),
    )


# --- portal invitations --------------------------------------------------------------------


def _send_invitation(client_id: int) -> None:
    try:
        with transaction(context.engine()) as session:
            sent = portal.send_invitation(
                session,
                actor=context.actor(),
                client_id=client_id,
                mail_settings=mail.mail_settings(context.settings().data_dir),
                settings=portal.portal_settings(),
                tz_name=_tz(),
            )
    except (portal.InvitationNotPossible, PermissionDenied) as exc:
        flash("error", str(exc))
        return
    if sent.status == "queued":
        flash(
            "success",
            "Portal invitation queued: it is emailed within a minute. Its link works once "
            "it is sent, and an earlier link stops working then.",
        )
    else:
        flash(
            "error",
            f"The invitation could not be emailed ({sent.error}). It is logged under "
            "Documents; any earlier link still works.",
        )


def _revoke(client_id: int) -> None:
    try:
        with transaction(context.engine()) as session:
            count = portal.revoke_invitation(session, actor=context.actor(), client_id=client_id)
    except PermissionDenied as exc:
        flash("error", str(exc))
    else:
        if count:
            flash("success", "Invitation revoked: its link no longer works (or never will).")
        else:
            flash("error", "There was no open invitation to revoke.")


def invite_action(container, client_id: int) -> None:
    """The client header's "Invite to portal" button: disabled, saying what is missing, when
    the client cannot be invited."""
    with read_session(context.engine()) as session:
        status = portal.portal_status(session, actor=context.actor(), client_id=client_id)
    container.button(
        "Invite to portal",
        icon=":material/key:",
        key="head_invite",
        disabled=not status.can_invite,
        help="Emails the client a single-use link to the client portal.",
        on_click=_send_invitation,
        args=(client_id,),
    )
    if not status.can_invite:
        container.caption(status.blocker_text())


def _portal_section(client_id: int) -> None:
    actor = context.actor()
    with read_session(context.engine()) as session:
        status = portal.portal_status(session, actor=actor, client_id=client_id)
    st.markdown("**Client portal invitation**")
    st.text(status.status_text(_tz()))
    if not status.can_invite:
        st.info(status.blocker_text())
    if allowed(actor, "portal.invite"):
        live = status.current is not None and status.current.is_live
        revocable = live or status.queued is not None
        b1, b2, _ = st.columns([2, 2, 4])
        b1.button(
            "Resend invitation" if live else "Invite to portal",
            key="tab_invite",
            icon=":material/forward_to_inbox:",
            disabled=not status.can_invite,
            help="Sends a new link; the earlier link stops working." if live else None,
            on_click=_send_invitation,
            args=(client_id,),
        )
        b2.button(
            "Revoke invitation",
            key="tab_revoke",
            icon=":material/block:",
            disabled=not revocable,
            on_click=_revoke,
            args=(client_id,),
        )
    if status.invitations:
        tz = _tz()
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Email": i.email,
                        "Invited": local_text(i.created_at, tz),
                        "Status": i.status,
                        "Link valid until": local_text(i.expires_at, tz),
                        "Accepted": local_text(i.accepted_at, tz),
                        "Revoked": local_text(i.revoked_at, tz),
                    }
                    for i in status.invitations
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def render(client_id: int) -> None:
    actor = context.actor()
    with read_session(context.engine()) as session:
        view = reminders.client_settings(session, actor=actor, client_id=client_id)
    st.markdown("**Reminders and portal settings**")
    st.caption(
        "Each setting uses the default (from the practice, or from the client's clinician) "
        "unless this client has an override. Reminders go only by channels the client "
        "consented to on the Contact tab."
    )
    st.text(view.summary)
    for note in view.consent_notes:
        st.warning(note, icon=":material/warning:")
    settings_grid(view, can_edit=allowed(actor, "reminders.edit"))
    st.divider()
    _portal_section(client_id)
