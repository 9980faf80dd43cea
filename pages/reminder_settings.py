"""Settings › Reminders & portal (admins): the practice defaults and each clinician's overrides.

A client's settings come from here unless the client has an override (Reminders & Portal tab).
"""

import pandas as pd
import streamlit as st

from lib import clients, reminders
from lib.db import read_session
from ui import context
from ui.reminders_tab import settings_grid

PRACTICE = 0
actor = context.actor()
engine = context.engine()
st.title("Reminders & portal")
st.caption(
    "Practice defaults apply to every client. A clinician's overrides apply to that "
    "clinician's clients, and a client's own overrides (on the client's Reminders & Portal "
    "tab) win over both. Changes are saved as you make them."
)

with read_session(engine) as session:
    clinician_names = dict(clients.clinician_choices(session))
    overview = reminders.overview(session, actor=actor)

choice = st.selectbox(
    "Settings for",
    [PRACTICE, *clinician_names],
    format_func=lambda c: clinician_names.get(c, "Practice defaults"),
    key="reminder_level",
)
scope = "practice" if choice == PRACTICE else "clinician"
with read_session(engine) as session:
    view = reminders.level_settings(session, actor=actor, scope=scope, scope_id=choice)
settings_grid(view, can_edit=True)

st.subheader("All levels at a glance")
st.caption("“—” means the clinician follows the practice default.")
st.dataframe(
    pd.DataFrame([{"Setting": r.label, "Practice": r.practice, **r.clinicians} for r in overview]),
    hide_index=True,
    width="stretch",
)
