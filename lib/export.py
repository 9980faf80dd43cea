"""The one export function every on-screen table uses: CSV and XLSX of exactly that table.

Cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage
return) are neutralised with a leading apostrophe, so a client named "=HYPERLINK(...)" stays
text. Every export is audited by the caller through ``record_export``.
"""

from __future__ import annotations

import io
from datetime import date, datetime

import pandas as pd
from sqlalchemy.orm import Session

from lib import audit
from lib.policy import Actor, require

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Text that starts like a formula gets a leading apostrophe; other values pass through."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _safe(frame: pd.DataFrame) -> pd.DataFrame:
    safe = frame.copy()
    for column in safe.columns:
        if isinstance(safe[column].dtype, pd.DatetimeTZDtype):
            # Spreadsheets have no time zones: write the instant as UTC wall-clock time.
            safe[column] = safe[column].dt.tz_convert("UTC").dt.tz_localize(None)
        elif safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise)
    safe.columns = [neutralise(str(c)) for c in safe.columns]
    return safe


def to_csv(frame: pd.DataFrame) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens accented names correctly.

    Rows end in CRLF (RFC 4180), so a cell holding a carriage return is quoted instead of
    splitting its row in two (the second half then unneutralised).
    """
    return _safe(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def to_xlsx(frame: pd.DataFrame, sheet: str = "Export") -> bytes:
    buffer = io.BytesIO()
    safe = _safe(frame)
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        safe.to_excel(writer, index=False, sheet_name=sheet[:31])
        sheet_obj = writer.sheets[sheet[:31]]
        for row in sheet_obj.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # never a formula, whatever the text
                elif isinstance(cell.value, (date, datetime)):
                    cell.number_format = "mm/dd/yyyy"
    return buffer.getvalue()


def record_export(
    session: Session, *, actor: Actor, what: str, file_format: str, rows: int, action: str
) -> None:
    """Audit an export (who, when, what, how many rows). ``action`` is the policy action."""
    require(actor, action)
    audit.record(
        session,
        actor=actor,
        action="export",
        entity=what,
        detail=f"format={file_format} rows={rows}",
    )
