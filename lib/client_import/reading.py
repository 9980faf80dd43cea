"""Reading the file a practice exports from its old system: CSV in whatever encoding and
separator it came in, or an Excel workbook's first sheet, as header + rows of text."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time

MAX_BYTES = 50_000_000
MAX_ROWS = 200_000


class FileProblem(ValueError):
    """The file cannot be read as a table; the message says why, in plain words."""


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (row number as a spreadsheet shows it, cells)
    description: str  # "CSV, Windows-1252, separated by semicolons", for the report


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "UTF-8 with BOM"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "UTF-16"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        # Windows-1252 maps every byte but five; those five are not text in any file here.
        try:
            return data.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "Latin-1"


SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}


def _dialect(text: str) -> csv.Dialect | type[csv.Dialect]:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS))
    except csv.Error:
        first = text.splitlines()[0] if text else ""
        counts = {sep: first.count(sep) for sep in SEPARATORS}
        best = max(counts, key=counts.get)

        class Guessed(csv.excel):
            delimiter = best if counts[best] else ","

        return Guessed


FORMULA_GUARD = ("'=", "'+", "'-", "'@")


def _cell(text: str) -> str:
    """A cell's text, without the apostrophe an export puts before '=', '+', '-' or '@' so a
    spreadsheet does not run it (ClientDesk's own export does this too)."""
    text = text.strip()
    return text[1:] if text.startswith(FORMULA_GUARD) else text


def _blank(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells)


def read_csv(data: bytes) -> Table:
    text, encoding = _decode(data)
    if not text.strip():
        raise FileProblem("The file is empty.")
    dialect = _dialect(text)
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    rows: list[tuple[int, list[str]]] = []
    headers: list[str] | None = None
    for number, cells in enumerate(reader, start=1):
        if headers is None:
            if _blank(cells):
                continue
            headers = [_cell(c) for c in cells]
            continue
        if _blank(cells):
            continue
        rows.append((number, [_cell(c) for c in cells]))
        if len(rows) > MAX_ROWS:
            raise FileProblem(f"The file has more than {MAX_ROWS:,} rows; split it.")
    if headers is None:
        raise FileProblem("The file is empty.")
    sep = SEPARATORS.get(dialect.delimiter, repr(dialect.delimiter))
    return Table(headers, rows, f"CSV, {encoding}, separated by {sep}")


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_xlsx(data: bytes) -> Table:
    import openpyxl  # only an import needs it

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # a corrupt or password-protected workbook: say so, no traceback
        raise FileProblem("This is not an Excel workbook ClientDesk can read (.xlsx).") from None
    try:
        sheet = book.worksheets[0]
        headers: list[str] | None = None
        rows: list[tuple[int, list[str]]] = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            if headers is None:
                if _blank(cells):
                    continue
                headers = cells
                continue
            if _blank(cells):
                continue
            rows.append((number, cells))
            if len(rows) > MAX_ROWS:
                raise FileProblem(f"The sheet has more than {MAX_ROWS:,} rows; split it.")
        if headers is None:
            raise FileProblem("The first sheet of the workbook is empty.")
        while headers and not headers[-1]:
            headers.pop()
        return Table(headers, rows, f"Excel workbook, sheet {sheet.title!r}")
    finally:
        book.close()


def read_table(data: bytes, filename: str) -> Table:
    """The file's first table: CSV (UTF-8 with or without BOM, or Windows-1252; commas,
    semicolons or tabs) or XLSX. Blank rows (an export's empty trailing rows) are skipped;
    row numbers stay those of the file, so a manager can find a row the report names."""
    if len(data) > MAX_BYTES:
        raise FileProblem(f"The file is larger than {MAX_BYTES // 1_000_000} MB; split it.")
    if data.startswith(b"PK\x03\x04") or filename.lower().endswith((".xlsx", ".xlsm")):
        return read_xlsx(data)
    if filename.lower().endswith(".xls"):
        raise FileProblem("Old .xls workbooks cannot be read: save it as .xlsx or CSV.")
    return read_csv(data)
