"""Clients › Import clients (admins, managers): bring the client list and opening balances
over from another system (spec A5). Upload, check the column matches, preview (a dry run
that writes nothing), then import: all rows or none, unless invalid rows are to be skipped.
Importing again creates nothing: every row is then a duplicate."""

import hashlib

import pandas as pd
import streamlit as st

from lib import client_import
from lib.client_import import headers, reading
from lib.client_import.rows import DATE_ORDERS
from lib.db import DatabaseBusy
from ui import context

actor = context.actor()
engine = context.engine()
NONE = "— not in the file —"
st.title("Import clients")
st.caption(
    "From a CSV file (UTF-8 or Windows-1252; commas, semicolons or tabs) or an Excel "
    "workbook (.xlsx, first sheet), one client a row, with a header row. Each client needs a "
    "first and last name and a date of birth (or the old system's id). Opening balances "
    "become ledger entries named “Opening balance” on their date of service."
)

upload = st.file_uploader("File to import", type=["csv", "txt", "tsv", "xlsx"], key="import_file")
if upload is None:
    st.stop()
data = upload.getvalue()
file_key = hashlib.sha256(data).hexdigest()[:16]  # widgets of one file never carry to another
prefix = f"imp.{file_key}."
try:
    table = reading.read_table(data, upload.name)
except reading.FileProblem as exc:
    st.error(f"This file cannot be imported: {exc}")
    st.stop()
st.caption(f"{table.description}; {len(table.rows):,} rows.")

st.subheader("Columns")
st.caption("Each field's column, as guessed from the headers. Change any that are wrong.")
guessed = headers.guess(table.headers)
options = [NONE, *dict.fromkeys(h for h in table.headers if h)]
chosen: dict[str, str | None] = {}
grid = st.columns(3)
for i, field in enumerate(headers.FIELDS):
    default = table.headers[guessed[field.key]] if field.key in guessed else NONE
    picked = grid[i % 3].selectbox(
        field.label.capitalize(),
        options,
        index=options.index(default) if default in options else 0,
        key=prefix + "map." + field.key,
    )
    chosen[field.key] = None if picked == NONE else picked
used = {c for c in chosen.values() if c}
unused = [h for h in table.headers if h and h not in used]
if unused:
    st.caption("Not imported (no field chosen): " + ", ".join(unused))

c1, c2, c3 = st.columns(3)
date_order = c1.radio(
    "Dates like 3/7/1985 are",
    list(DATE_ORDERS),
    format_func=lambda o: "month first (US)" if o == "MDY" else "day first",
    key=prefix + "date_order",
    horizontal=True,
)
skip_invalid = c2.checkbox(
    "Import the valid rows when some are invalid", key=prefix + "skip_invalid"
)
allow_possible = c3.checkbox("Also import possible duplicates", key=prefix + "allow_possible")
settings = (
    tuple(sorted(chosen.items(), key=lambda kv: kv[0])),
    date_order,
    skip_invalid,
    allow_possible,
)
PREVIEW, DONE = prefix + "preview", prefix + "done"


def _run(dry_run: bool) -> client_import.ImportReport | None:
    try:
        return client_import.run_import(
            engine,
            actor=actor,
            data=data,
            filename=upload.name,
            overrides=chosen,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            allow_possible_duplicates=allow_possible,
            date_order=date_order,
        )
    except (client_import.FileProblem, client_import.MappingProblem) as exc:
        st.error(str(exc))
    except DatabaseBusy as exc:
        st.error(str(exc))
    return None


def _show(report: client_import.ImportReport) -> None:
    st.text("\n".join(report.header_lines()))
    lines = report.lines()
    outcomes = [
        {"Row": o.row, "Result": line.split(": ", 1)[1]}
        for o, line in zip(report.outcomes, lines[len(report.header_lines()) :], strict=False)
    ]
    st.dataframe(
        pd.DataFrame(outcomes, columns=["Row", "Result"]), hide_index=True, width="stretch"
    )


b1, b2 = st.columns(2)
if b1.button("Check the file (nothing is written)", key=prefix + "check"):
    st.session_state.pop(DONE, None)
    report = _run(dry_run=True)
    if report is not None:
        st.session_state[PREVIEW] = (settings, report)

preview = st.session_state.get(PREVIEW)
done = st.session_state.get(DONE)
if done is not None and done[0] == settings:
    report = done[1]
    if report.written:
        st.success(f"Imported: {report.summary()}.", icon=":material/check:")
    else:
        st.error(report.lines()[-2])
    _show(report)
elif preview is not None and preview[0] == settings:
    report = preview[1]
    st.info(report.lines()[-2])
    st.caption(report.summary().replace("0 imported", f"{report.would_import} to import", 1))
    _show(report)
    blocked = report.invalid and not skip_invalid
    if blocked:
        st.warning(
            "Nothing can be imported while rows are invalid: correct the file, or tick "
            "“Import the valid rows when some are invalid”."
        )
    elif b2.button(
        f"Import {report.would_import:,} clients", type="primary", key=prefix + "commit"
    ):
        # A second click imports nothing twice: once this run has stored its result the
        # button is gone, and a click that gets here first finds every row it wrote a
        # duplicate already (lib's check runs in the import's own transaction).
        result = _run(dry_run=False)
        if result is not None:
            st.session_state[DONE] = (settings, result)
            st.rerun()
elif preview is not None:
    st.caption("The columns or options changed: check the file again before importing.")
