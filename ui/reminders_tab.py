"""The Reminders & Portal tab of the client record (spec R1, R2)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import portal, reminders
from lib.db import read_session
from lib.timeutil import local_text
from ui import context


def _tz() -> str:
    return context.settings().practice_time_zone


def _fmt_setting(value) -> str:
    if value is None:
        return "Use default"
    if isinstance(value, bool):
        return "On" if value else "Off"
    return str(value)


def render(client_id: int) -> None:
    actor = context.actor()
    with read_session(context.engine()) as session:
        settings = reminders.effective_settings(session, actor=actor, client_id=client_id)
        invitations = portal.invitations_for_client(session, actor=actor, client_id=client_id)
    st.markdown("**Reminders and portal settings**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Setting": s.label,
                    "Default": _fmt_setting(s.default_value),
                    "Default from": s.default_source,
                    "This client": _fmt_setting(s.override),
                    "Effective": _fmt_setting(s.effective),
                }
                for s in settings
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.markdown("**Portal invitations**")
    if not invitations:
        st.caption("Not invited to the portal.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Email": i.email,
                    "Invited": local_text(i.created_at, _tz()),
                    "Sent": local_text(i.sent_at, _tz()),
                    "Expires": local_text(i.expires_at, _tz()),
                    "Status": i.status,
                }
                for i in invitations
            ]
        ),
        hide_index=True,
        width="stretch",
    )
