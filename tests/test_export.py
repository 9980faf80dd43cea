"""Exports (spec C4, B4): CSV and XLSX of exactly the table on screen, with formula-like cells
neutralised, and every export audited."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import select

from lib import export
from lib.db import transaction
from lib.models import AuditEntry
from lib.policy import ALL_ROLES, PermissionDenied, allowed
from tests.factories import make_clinician, make_user

# Deliberately not in alphabetical or numeric order: the export must not sort anything.
COLUMNS = ["Name", "Client #", "DOB", "Total", "Status", "Email"]
ROWS = [
    ["Zoë Brennan", 5003, date(1979, 5, 2), 12000, "Active", "zb@example.net"],
    ["Álvarez, María (Nena)", 5001, date(1985, 3, 7), -5000, "Inactive", ""],
    ["**Bold** $x^2$ [link](http://x)", 5002, None, 0, "Active", "<img src=x onerror=1>"],
    ["O'Brien, Seán", 4999, date(2000, 1, 1), 250, "Discharged", "a=b@example.org"],
]
DANGEROUS = [
    "=1+2",
    "+1+2",
    "-1+2",
    "@SUM(A1:A9)",
    "\t=1+2",
    "\r=1+2",
    '=HYPERLINK("http://evil.example","Click")',
    "-",
]
HARMLESS = ["a=b", "1+2", "O'Brien", "", "x@y", "Zoë"]


def frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=COLUMNS)


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # BOM, so Excel reads accents right
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes, sheet: str = "Export"):
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == [sheet]
    return list(book[sheet].iter_rows())


def as_csv_text(value) -> str:
    return "" if value is None else str(value)


# --- shape ---------------------------------------------------------------------------------


def test_csv_keeps_rows_columns_and_order():
    rows = read_csv(export.to_csv(frame()))
    assert rows[0] == COLUMNS
    assert rows[1:] == [[as_csv_text(v) for v in row] for row in ROWS]


def test_xlsx_keeps_rows_columns_and_order():
    rows = read_xlsx(export.to_xlsx(frame(), sheet="clients"), sheet="clients")
    assert [c.value for c in rows[0]] == COLUMNS
    assert len(rows) == len(ROWS) + 1
    for got, want in zip(rows[1:], ROWS, strict=True):
        values = [c.value for c in got]
        expected = [
            datetime.combine(v, datetime.min.time()) if isinstance(v, date) else v for v in want
        ]
        assert values == [None if v == "" else v for v in expected]


def test_xlsx_numbers_stay_numbers_and_dates_are_dates():
    rows = read_xlsx(export.to_xlsx(frame()))
    total = COLUMNS.index("Total")
    dob = COLUMNS.index("DOB")
    assert [r[total].value for r in rows[1:]] == [12000, -5000, 0, 250]
    assert all(r[total].data_type == "n" for r in rows[1:])
    first_dob = rows[1][dob]
    assert first_dob.is_date
    assert first_dob.number_format == "mm/dd/yyyy"


def test_an_empty_table_exports_its_header():
    empty = pd.DataFrame(columns=COLUMNS)
    assert read_csv(export.to_csv(empty)) == [COLUMNS]
    assert [c.value for c in read_xlsx(export.to_xlsx(empty))[0]] == COLUMNS


def test_a_long_sheet_name_is_cut_to_what_excel_allows():
    name = "outstanding-balances-by-clinician-and-payer"
    read_xlsx(export.to_xlsx(frame(), sheet=name), sheet=name[:31])


def test_the_frame_given_is_not_changed():
    given = pd.DataFrame({"Name": ["=1+2"], "Total": [5]})
    export.to_csv(given)
    export.to_xlsx(given)
    assert given["Name"].tolist() == ["=1+2"]


# --- formula injection -------------------------------------------------------------------------


def dangerous_frame() -> pd.DataFrame:
    values = DANGEROUS + HARMLESS
    return pd.DataFrame(
        {
            "Name": values,
            "Object column": pd.Series(values, dtype=object),
            "Number": range(len(values)),
        }
    )


def test_csv_neutralises_cells_that_start_like_a_formula():
    rows = read_csv(export.to_csv(dangerous_frame()))
    assert len(rows) == 1 + len(DANGEROUS) + len(HARMLESS)  # no cell broke a row
    body = rows[1:]
    for column in (0, 1):
        got = [r[column] for r in body]
        assert got == ["'" + v for v in DANGEROUS] + HARMLESS
    assert [r[2] for r in body] == [str(n) for n in range(len(body))]


def test_xlsx_neutralises_cells_that_start_like_a_formula_and_stores_text():
    rows = read_xlsx(export.to_xlsx(dangerous_frame()))
    body = rows[1:]
    assert len(body) == len(DANGEROUS) + len(HARMLESS)
    for column in (0, 1):
        cells = [r[column] for r in body]
        for cell, value in zip(cells, DANGEROUS, strict=False):
            assert cell.data_type == "s", value  # text, never a formula
            assert cell.value.startswith("'"), value
            # XLSX stores a lone carriage return as a line feed; everything else is kept
            assert cell.value == "'" + value.replace("\r", "\n"), value
        for cell, value in zip(cells[len(DANGEROUS) :], HARMLESS, strict=True):
            assert cell.value == (value or None)
            assert cell.data_type != "f"
    assert not any(c.data_type == "f" for row in rows for c in row)


def test_csv_line_breaks_inside_a_cell_do_not_split_its_row():
    notes = pd.DataFrame(
        {"Note": ["first\rsecond", "x\r=HYPERLINK(1)", "one\ntwo", "a\r\nb"], "N": [1, 2, 3, 4]}
    )
    rows = read_csv(export.to_csv(notes))
    assert rows == [
        ["Note", "N"],
        ["first\rsecond", "1"],
        ["x\r=HYPERLINK(1)", "2"],
        ["one\ntwo", "3"],
        ["a\r\nb", "4"],
    ]


def test_header_cells_are_neutralised_too():
    evil = pd.DataFrame({"=cmd|' /C calc'!A0": ["x"], "Name": ["y"]})
    assert read_csv(export.to_csv(evil))[0] == ["'=cmd|' /C calc'!A0", "Name"]
    header = read_xlsx(export.to_xlsx(evil))[0]
    assert header[0].value == "'=cmd|' /C calc'!A0"
    assert header[0].data_type == "s"


def test_neutralise_leaves_non_text_alone():
    assert export.neutralise(-5) == -5
    assert export.neutralise(None) is None
    assert export.neutralise(date(2025, 1, 1)) == date(2025, 1, 1)
    assert export.neutralise("+1 617 555 0142") == "'+1 617 555 0142"


# --- every export is audited -------------------------------------------------------------------


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("action", ["client.export", "report.balances"])
def test_record_export_audits_or_refuses_by_policy(engine, role, action):
    with transaction(engine) as session:
        clinician_id = make_clinician(session) if role == "clinician" else None
        actor = make_user(session, role, clinician_id=clinician_id)
    if allowed(actor, action):
        with transaction(engine) as session:
            export.record_export(
                session, actor=actor, what="client_list", file_format="xlsx", rows=3, action=action
            )
    else:
        with pytest.raises(PermissionDenied):
            with transaction(engine) as session:
                export.record_export(
                    session,
                    actor=actor,
                    what="client_list",
                    file_format="xlsx",
                    rows=3,
                    action=action,
                )
    with transaction(engine) as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "export")))
    if allowed(actor, action):
        (entry,) = entries
        assert entry.actor_user_id == actor.user_id
        assert entry.actor_username == actor.username
        assert entry.entity == "client_list"
        assert entry.detail == "format=xlsx rows=3"
    else:
        assert entries == []


# --- report exports: as-of date, bucket edges, money (issue 11 item 4) ------------------------

REPORT = pd.DataFrame(
    [
        ["Blue Cross Blue Shield", 1234.5, 0.1, 1234.6],
        ["Client responsibility", 0.0, 13520.0, 13520.0],
    ],
    columns=["Payer", "0–30", "31–60", "Total"],
)
ABOUT = export.About(
    title="Aging by payer",
    as_of=date(2026, 3, 31),
    edges=(30, 60),
    details=(("Clinician", "All clinicians"), ("Payer", "All payers")),
    money_columns=("0–30", "31–60", "Total"),
)


def test_a_report_file_is_named_for_its_as_of_date_and_bucket_edges():
    assert ABOUT.file_stem("aging-by-payer") == "aging-by-payer_as-of-2026-03-31_edges-30-60"


def test_report_csv_keeps_the_screens_rows_with_two_decimal_money():
    rows = read_csv(export.to_csv(REPORT, money_columns=ABOUT.money_columns))
    assert rows == [
        ["Payer", "0–30", "31–60", "Total"],
        ["Blue Cross Blue Shield", "1234.50", "0.10", "1234.60"],
        ["Client responsibility", "0.00", "13520.00", "13520.00"],
    ]


def test_report_xlsx_has_numeric_money_readable_widths_and_an_about_sheet():
    about = ABOUT.rows(generated="Mar 31, 2026 05:00 PM EDT", row_count=len(REPORT))
    data = export.to_xlsx(
        REPORT, sheet="aging-by-payer", money_columns=ABOUT.money_columns, about=about
    )
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["aging-by-payer", "About"]
    sheet = book["aging-by-payer"]
    for row in sheet.iter_rows(min_row=2):
        assert isinstance(row[0].value, str)
        for cell in row[1:]:
            assert isinstance(cell.value, (int, float))
            assert cell.number_format == export.MONEY_FORMAT
    assert [c.value for c in sheet["D"]][1:] == [1234.6, 13520.0]
    assert sheet.column_dimensions["A"].width >= len("Blue Cross Blue Shield")
    assert sheet.column_dimensions["D"].width >= len("$13,520.00")
    info = {r[0].value: r[1].value for r in book["About"].iter_rows(min_row=2)}
    assert info["Report"] == "Aging by payer"
    assert info["As of"].startswith("03/31/2026")
    assert info["Bucket edges (days)"] == "30, 60"
    assert info["Aging buckets (days)"] == "0–30, 31–60, 60+"
    assert (info["Clinician"], info["Payer"], info["Rows"]) == ("All clinicians", "All payers", "2")
    assert book["About"].column_dimensions["B"].width > 40


def test_about_values_that_look_like_formulas_stay_text():
    about = export.About(
        title="=cmd", as_of=date(2026, 3, 31), edges=(30,), details=(("Payer", "+evil"),)
    )
    data = export.to_xlsx(REPORT, about=about.rows(generated="now", row_count=2))
    info = {
        r[0].value: r[1]
        for r in openpyxl.load_workbook(io.BytesIO(data))["About"].iter_rows(min_row=2)
    }
    assert info["Report"].value == "'=cmd" and info["Report"].data_type == "s"
    assert info["Payer"].value == "'+evil"
