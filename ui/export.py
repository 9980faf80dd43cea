"""Download buttons for any on-screen table: CSV and XLSX of exactly that frame, audited."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import export
from lib.db import transaction
from lib.timeutil import practice_today
from ui import context


def _audit(what: str, file_format: str, rows: int, action: str) -> None:
    with transaction(context.engine()) as session:
        export.record_export(
            session,
            actor=context.actor(),
            what=what,
            file_format=file_format,
            rows=rows,
            action=action,
        )


def export_buttons(frame: pd.DataFrame, *, name: str, what: str, action: str) -> None:
    """Two buttons; each click writes an audit row before the file is handed over."""
    stamp = practice_today().isoformat()
    c1, c2 = st.columns(2)
    c1.download_button(
        "Export CSV",
        data=export.to_csv(frame),
        file_name=f"{name}-{stamp}.csv",
        mime="text/csv",
        on_click=_audit,
        args=(what, "csv", len(frame), action),
        key=f"export_csv_{name}",
        icon=":material/download:",
    )
    c2.download_button(
        "Export XLSX",
        data=export.to_xlsx(frame, sheet=name),
        file_name=f"{name}-{stamp}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        on_click=_audit,
        args=(what, "xlsx", len(frame), action),
        key=f"export_xlsx_{name}",
        icon=":material/download:",
    )
