"""Download buttons for any on-screen table: CSV and XLSX of exactly that frame, audited."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import export
from lib.db import transaction
from lib.timeutil import local_text, practice_today, utcnow
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


def export_buttons(
    frame: pd.DataFrame,
    *,
    name: str,
    what: str,
    action: str,
    about: export.About | None = None,
) -> None:
    """Two buttons; each click writes an audit row before the file is handed over. A report
    passes ``about`` (as-of date, bucket edges, filters): the file names and the XLSX's About
    sheet carry it, and its money columns are formatted as money."""
    stem = about.file_stem(name) if about else f"{name}-{practice_today().isoformat()}"
    money = about.money_columns if about else ()
    info = None
    if about is not None:
        generated = local_text(utcnow(), context.settings().practice_time_zone)
        info = about.rows(generated=generated, row_count=len(frame))
    c1, c2 = st.columns(2)
    c1.download_button(
        "Export CSV",
        data=export.to_csv(frame, money_columns=money),
        file_name=f"{stem}.csv",
        mime="text/csv",
        on_click=_audit,
        args=(what, "csv", len(frame), action),
        key=f"export_csv_{name}",
        icon=":material/download:",
    )
    c2.download_button(
        "Export XLSX",
        data=export.to_xlsx(frame, sheet=name, money_columns=money, about=info),
        file_name=f"{stem}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        on_click=_audit,
        args=(what, "xlsx", len(frame), action),
        key=f"export_xlsx_{name}",
        icon=":material/download:",
    )
