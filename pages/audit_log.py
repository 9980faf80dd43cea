"""Audit log (admins): who did what, when, to which record, newest first."""

import json

import pandas as pd
import streamlit as st

from lib import audit
from lib.db import read_session
from lib.timeutil import local_text
from ui import context

actor = context.actor()
tz = context.settings().practice_time_zone
st.title("Audit log")

with read_session(context.engine()) as session:
    actions = audit.distinct_actions(session)
c1, c2, c3 = st.columns(3)
action = c1.selectbox("Action", [None, *actions], format_func=lambda a: a or "All actions")
username = c2.text_input("Staff username")
client_number = c3.text_input("Client id")
client_id = int(client_number) if client_number.strip().isdigit() else None
if client_number.strip() and client_id is None:
    c3.error("Enter the client's id as a number.")

with read_session(context.engine()) as session:
    rows = audit.list_entries(
        session, actor=actor, action=action, username=username.strip() or None, client_id=client_id
    )

st.caption(f"Newest {len(rows)} entries")
st.dataframe(
    pd.DataFrame(
        [
            {
                "When": local_text(r.at, tz),
                "Who": r.actor_username,
                "Action": r.action,
                "Record": f"{r.entity} {r.entity_id}".strip(),
                "Client id": r.client_id,
                "Before": json.dumps(r.before) if r.before else "",
                "After": json.dumps(r.after) if r.after else "",
                "Detail": r.detail,
            }
            for r in rows
        ],
        columns=["When", "Who", "Action", "Record", "Client id", "Before", "After", "Detail"],
    ),
    hide_index=True,
    width="stretch",
)
