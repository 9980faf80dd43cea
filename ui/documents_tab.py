"""The Documents tab of the client record: everything sent to the client (spec D2, D3)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import documents
from lib.db import read_session
from lib.timeutil import local_text
from ui import context


def _tz() -> str:
    return context.settings().practice_time_zone


def render(client_id: int) -> None:
    with read_session(context.engine()) as session:
        rows = documents.log_for_client(session, actor=context.actor(), client_id=client_id)
    if not rows:
        st.caption("Nothing has been sent to this client yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Sent": local_text(r.sent_at, _tz()),
                    "What": r.kind,
                    "Forms": r.forms,
                    "To": r.recipient,
                    "Channel": r.channel,
                    "Status": r.status,
                    "Error": r.error,
                    "Sender": r.sender,
                }
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch",
    )
