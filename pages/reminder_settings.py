"""Settings › Reminders & portal (admins): the practice defaults and each clinician's overrides,
and whether the worker that sends email and reminders is running.

A client's settings come from here unless the client has an override (Reminders & Portal tab).
"""

import pandas as pd
import streamlit as st

from lib import clients, reminders, worker
from lib.db import read_session
from lib.timeutil import local_text
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
    health = worker.worker_health(session, actor=actor)

tz = context.settings().practice_time_zone
START_IT = (
    "Emails and reminders are not going out. `make run` starts the worker next to the app; "
    "a practice runs `python -m lib.cli worker` as a service (see the README)."
)
if health.last_run_at is None:
    st.error(f"The email and reminder worker has never run. {START_IT}", icon=":material/error:")
elif health.silent:
    st.error(
        f"The email and reminder worker has not run for {health.minutes_since} minutes "
        f"(last on {local_text(health.last_run_at, tz)}). {START_IT}",
        icon=":material/error:",
    )
else:
    st.success(
        f"The email and reminder worker last ran {local_text(health.last_run_at, tz)} "
        f"({health.minutes_since} min ago, on {health.name}).",
        icon=":material/check_circle:",
    )
waiting = health.counts
oldest = (
    f", oldest queued {local_text(waiting.oldest_waiting_at, tz)}" if waiting.emails_waiting else ""
)
st.caption(
    f"Emails waiting to be sent: {waiting.emails_waiting}{oldest}. Texts and voice calls waiting "
    f"for a provider: {waiting.texts_and_calls_waiting}. Emails that failed in the last day: "
    f"{waiting.failed_last_day} (Document log, status Failed)."
)

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
