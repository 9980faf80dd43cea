"""The Other Information tab of the client record: intake answers (spec I2)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import intake
from lib.db import read_session
from lib.timeutil import local_text
from ui import context


def _tz() -> str:
    return context.settings().practice_time_zone


def render(client_id: int) -> None:
    with read_session(context.engine()) as session:
        rows = intake.answers_for_client(session, actor=context.actor(), client_id=client_id)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Question": r.label + ("" if r.active else " (retired)"),
                    "Answer": r.answer_text,
                    "Source": r.source,
                    "Answered": local_text(r.answered_at, _tz()),
                }
                for r in rows
            ],
            columns=["Question", "Answer", "Source", "Answered"],
        ),
        hide_index=True,
        width="stretch",
    )
