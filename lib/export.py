"""The one export function every on-screen table uses: CSV and XLSX of exactly that table.

Cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage
return) are neutralised with a leading apostrophe, so a client named "=HYPERLINK(...)" stays
text. Every export is audited by the caller through ``record_export``.

A report's export says what it is (``About``): its as-of date and bucket edges are in the file
name and, for XLSX, on an "About" sheet. The rows stay exactly what the screen shows. Money
columns are numbers with a currency format in XLSX and have two decimals in CSV.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy.orm import Session

from lib import audit
from lib.policy import Actor, require

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MONEY_FORMAT = '"$"#,##0.00'
DATE_FORMAT = "mm/dd/yyyy"
MAX_WIDTH = 60


@dataclass(frozen=True)
class About:
    """What a report export is. ``details`` are (label, value) pairs such as the filters and
    the selection; ``money_columns`` name the columns that hold dollars."""

    title: str
    as_of: date
    edges: tuple[int, ...]
    details: tuple[tuple[str, str], ...] = ()
    money_columns: tuple[str, ...] = ()

    def file_stem(self, name: str) -> str:
        """``name``, the as-of date and the bucket edges, e.g.
        ``aging-buckets_as-of-2026-03-31_edges-30-60-90-120``."""
        edges = "-".join(str(e) for e in self.edges)
        return f"{name}_as-of-{self.as_of.isoformat()}_edges-{edges}"

    def rows(self, *, generated: str, row_count: int) -> list[tuple[str, str]]:
        from lib.aging import buckets  # lib.aging does not import this module

        labels = ", ".join(b.label for b in buckets(self.edges))
        return [
            ("Report", self.title),
            (
                "As of",
                f"{self.as_of:%m/%d/%Y}: every ledger entry posted through the end of that day "
                "(practice time), charges aged by date of service on that day",
            ),
            ("Bucket edges (days)", ", ".join(str(e) for e in self.edges)),
            ("Aging buckets (days)", labels),
            *self.details,
            ("Rows", str(row_count)),
            ("Generated", generated),
        ]


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


def _cents_text(value) -> str:
    """A money cell as CSV text: two decimals, no thousands separator; empty stays empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{round(float(value) * 100) / 100:.2f}"


def to_csv(frame: pd.DataFrame, *, money_columns: Sequence[str] = ()) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens accented names correctly.

    Rows end in CRLF (RFC 4180), so a cell holding a carriage return is quoted instead of
    splitting its row in two (the second half then unneutralised). Money columns (dollars)
    are written with two decimals.
    """
    safe = _safe(frame)
    for column in money_columns:
        if column in frame.columns:
            safe[neutralise(str(column))] = frame[column].map(_cents_text).to_numpy()
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def to_xlsx(
    frame: pd.DataFrame,
    sheet: str = "Export",
    *,
    money_columns: Sequence[str] = (),
    about: list[tuple[str, str]] | None = None,
) -> bytes:
    """The table on its own sheet (money as numbers in a currency format, dates as dates,
    columns wide enough to read) and, when ``about`` is given, an "About" sheet after it."""
    buffer = io.BytesIO()
    safe = _safe(frame)
    money = {neutralise(str(c)) for c in money_columns}
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        safe.to_excel(writer, index=False, sheet_name=sheet[:31])
        sheet_obj = writer.sheets[sheet[:31]]
        for row in sheet_obj.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # never a formula, whatever the text
                elif isinstance(cell.value, (date, datetime)):
                    cell.number_format = DATE_FORMAT
                elif safe.columns[cell.column - 1] in money and cell.value is not None:
                    cell.number_format = MONEY_FORMAT
        _fit_widths(sheet_obj, safe, money)
        if about is not None:
            pd.DataFrame(
                [(neutralise(k), neutralise(v)) for k, v in about], columns=["About", ""]
            ).to_excel(writer, index=False, sheet_name="About")
            info = writer.sheets["About"]
            for row in info.iter_rows(min_row=2):
                for cell in row:
                    cell.data_type = "s"
            info.column_dimensions["A"].width = 24
            info.column_dimensions["B"].width = min(
                MAX_WIDTH * 2, max((len(str(v)) for _, v in about), default=10) + 2
            )
    return buffer.getvalue()


def _fit_widths(sheet_obj, frame: pd.DataFrame, money: set[str]) -> None:
    """Each column as wide as its header or its longest value as shown (capped)."""
    from openpyxl.utils import get_column_letter

    for index, column in enumerate(frame.columns, start=1):
        values = frame[column].tolist()
        if column in money:
            shown = [f"${v:,.2f}" for v in values if v is not None and not pd.isna(v)]
        elif pd.api.types.is_datetime64_any_dtype(frame[column]) or any(
            isinstance(v, date) for v in values
        ):
            shown = ["00/00/0000"]
        else:
            shown = [str(v) for v in values if v is not None]
        longest = max([len(str(column)), *(len(v) for v in shown)])
        sheet_obj.column_dimensions[get_column_letter(index)].width = min(MAX_WIDTH, longest + 2)


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
