"""Importing clients from another system (spec A5, issue 14), on SQLite and PostgreSQL.

The files are built the way real exports come: a BOM, semicolons or tabs, Windows-1252,
accents, apostrophes and hyphens, dates in three formats, phones in any format, addresses
outside the US, empty trailing rows — and an Excel workbook with real date and number cells.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import openpyxl
import pytest
from sqlalchemy import func, select

from lib import ar_history, ar_trend, client_import, reconcile
from lib.client_import import headers
from lib.client_import.rows import parse_date
from lib.db import read_session, transaction
from lib.models import AuditEntry, Client, LedgerEntry, OpenCharge, Payer
from lib.policy import ADMIN, BILLER, PermissionDenied
from tests.factories import make_client, make_clinician, make_user
from tests.test_cli import cli

HEADER = [
    "Client ID", "Client First Name", "LAST", "Middle", "Preferred", "DOB", "Sex", "E-mail",
    "Mobile Phone", "Home Phone", "Address", "Address 2", "City", "State/Province",
    "Postal Code", "Country", "Therapist", "Status", "Client Since", "Client Balance",
    "Insurance Balance", "Payer", "Date of Service", "Notes",
]  # fmt: skip


def row(**kw) -> list[str]:
    base = dict.fromkeys(HEADER, "")
    base.update({k.replace("_", " "): v for k, v in kw.items()})
    return [base[h] for h in HEADER]


MESSY = [
    row(**{"Client ID": "A-1", "Client First Name": "Zoë", "LAST": "O'Brien-Núñez",
           "DOB": "3/7/1985", "Sex": "female", "E-mail": "Zoe@Example.com",
           "Mobile Phone": "617.555.0142", "Address": "12 Elm St", "City": "Boston",
           "State/Province": "Massachusetts", "Postal Code": "2139", "Therapist": "Ana Reyes",
           "Client Balance": "$120.50", "Insurance Balance": "300", "Payer": "aetna",
           "Date of Service": "10/02/2026", "Notes": "call after 5"}),
    row(**{"Client ID": "A-2", "Client First Name": "Jean-Luc", "LAST": "D'Arcy",
           "DOB": "1990-12-25", "Mobile Phone": "+44 20 7946 0958", "Address": "221B Baker St",
           "City": "London", "State/Province": "Greater London", "Postal Code": "nw1 6xe",
           "Country": "United Kingdom", "Status": "Inactive", "Client Since": "01.02.2019",
           "Client Balance": "45", "Date of Service": "2026-09-30"}),
    row(**{"Client First Name": "Søren", "LAST": "Ågård", "DOB": "07.03.1985",
           "Home Phone": "(312) 555 0100 ", "Therapist": "Reyes, Ana",
           "Insurance Balance": "87.25", "Payer": "Blue Harbor Health",
           "Date of Service": "8/15/2026"}),
]  # fmt: skip


def csv_bytes(rows: list[list[str]], *, delimiter=",", encoding="utf-8", trailing=2) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(HEADER)
    writer.writerows(rows)
    for _ in range(trailing):
        writer.writerow([""] * len(HEADER))
    return out.getvalue().encode(encoding)


@pytest.fixture
def practice(engine):
    with transaction(engine) as session:
        admin = make_user(session, ADMIN, "boss")
        clinician = make_clinician(session, "Ana", "Reyes")
        session.add(Payer(name="Aetna", kind="electronic", payer_code="60054"))
        session.flush()
    return engine, admin, clinician


def counts(engine) -> tuple[int, int, int]:
    with read_session(engine) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(m))
            for m in (Client, LedgerEntry, AuditEntry)
        )


def run(engine, actor, data, filename="clients.csv", **kw):
    return client_import.run_import(engine, actor=actor, data=data, filename=filename, **kw)


def by_old_or_name(engine) -> dict[str, Client]:
    with transaction(engine) as session:  # (its objects stay readable after the commit)
        return {c.old_system_id or c.first_name: c for c in session.scalars(select(Client)).all()}


@pytest.mark.parametrize(
    ("delimiter", "encoding", "bom"),
    [(";", "utf-8", True), ("\t", "cp1252", False), (",", "utf-8", False)],
    ids=["utf8-bom-semicolons", "windows1252-tabs", "utf8-commas"],
)
def test_a_messy_csv_is_understood(practice, delimiter, encoding, bom):
    engine, admin, clinician = practice
    data = csv_bytes(MESSY, delimiter=delimiter, encoding=encoding)
    data = b"\xef\xbb\xbf" + data if bom else data

    report = run(engine, admin, data)

    assert report.summary() == "3 imported, 0 duplicates skipped, 0 invalid", report.lines()
    assert report.exit_code == 0 and report.lines()[-1] == report.summary()
    assert "'Client First Name' → first name" in report.mapping
    assert "'Therapist' → clinician" in report.mapping
    assert report.unmatched == ["Notes"]
    assert len(report.outcomes) == 3  # the empty trailing rows are not rows
    got = by_old_or_name(engine)
    zoe, jean, soren = got["A-1"], got["A-2"], got["Søren"]
    assert (zoe.first_name, zoe.last_name) == ("Zoë", "O'Brien-Núñez")
    assert (jean.last_name, soren.last_name) == ("D'Arcy", "Ågård")
    # 3/7/1985 (month first) and 07.03.1985 (dots: day first) are one date.
    assert zoe.dob == soren.dob == date(1985, 3, 7)
    assert jean.dob == date(1990, 12, 25)
    assert (zoe.state, zoe.zip_code, zoe.country, zoe.sex) == ("MA", "02139", "", "F")
    assert zoe.email == "Zoe@example.com" and zoe.phone_mobile == "(617) 555-0142"
    assert (jean.state, jean.zip_code, jean.country) == (
        "Greater London",
        "NW1 6XE",
        "United Kingdom",
    )
    assert jean.phone_mobile == "+44 20 7946 0958"
    assert soren.phone_home == "(312) 555-0100"
    assert (jean.status, jean.client_since) == ("inactive", date(2019, 2, 1))
    assert zoe.clinician_id == soren.clinician_id == clinician
    assert "zoe" in zoe.search_name and "o'brien-nunez" in zoe.search_name


def test_opening_balances_are_ledger_entries_that_reconcile(practice):
    engine, admin, _ = practice
    report = run(engine, admin, csv_bytes(MESSY))
    assert report.opening_entries == 4
    got = by_old_or_name(engine)
    zoe, jean, soren = got["A-1"], got["A-2"], got["Søren"]
    assert (zoe.client_due_cents, zoe.insurance_pending_cents, zoe.total_cents) == (
        12050,
        30000,
        42050,
    )
    assert zoe.oldest_unpaid_dos == date(2026, 10, 2)
    assert (jean.client_due_cents, jean.oldest_unpaid_dos) == (4500, date(2026, 9, 30))
    assert soren.insurance_pending_cents == 8725
    with read_session(engine) as session:
        entries = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()
        assert {e.memo for e in entries} == {"Opening balance"}
        assert {(e.responsibility, e.amount_cents, e.service_date) for e in entries} == {
            ("client", 12050, date(2026, 10, 2)),
            ("insurance", 30000, date(2026, 10, 2)),
            ("client", 4500, date(2026, 9, 30)),
            ("insurance", 8725, date(2026, 8, 15)),
        }
        aetna = session.scalar(select(Payer.id).where(Payer.name == "Aetna"))
        insured = {(e.payer_id, e.payer_name) for e in entries if e.responsibility == "insurance"}
        assert insured == {(aetna, ""), (None, "Blue Harbor Health")}  # listed, or as typed
        assert session.scalar(select(func.count()).select_from(OpenCharge)) == 4
        result = reconcile.reconcile(session, actor=None)
    assert result.ok, (result.mismatches, result.totals_problems)
    assert result.ledger_total_cents == 12050 + 30000 + 4500 + 8725


def test_opening_balances_count_in_the_ar_trend_as_a_rebuild_would(practice):
    engine, admin, _ = practice
    run(engine, admin, csv_bytes(MESSY))
    with transaction(engine) as session:
        kept = ar_history.stored(session)
        ar_history.rebuild(session)
        rebuilt = ar_history.stored(session)
        session.rollback()
    with read_session(engine) as session:
        latest = ar_trend.month_end_figures(session, months=1)[-1]
    assert kept == rebuilt
    assert latest["net_ar_cents"] == 12050 + 30000 + 4500 + 8725


def test_importing_the_same_file_again_creates_nothing(practice):
    engine, admin, _ = practice
    data = csv_bytes(MESSY)
    run(engine, admin, data)
    before = counts(engine)
    again = run(engine, admin, data)
    assert again.summary() == "0 imported, 3 duplicates skipped, 0 invalid"
    assert [o.of for o in again.outcomes] == ["#1000", "#1001", "#1002"]
    assert "same old system id" in again.outcomes[0].reasons
    assert "same name and date of birth" in again.outcomes[2].reasons
    assert counts(engine)[:2] == before[:2]  # only the audit of the second run


def test_a_dry_run_writes_nothing_and_says_what_would_happen(practice):
    engine, admin, _ = practice
    bad = row(**{"Client First Name": "Al", "LAST": "Bad", "DOB": "13/45/1985", "E-mail": "x@",
                 "Therapist": "Nobody"})  # fmt: skip
    before = counts(engine)
    report = run(engine, admin, csv_bytes([*MESSY, bad]), dry_run=True)
    assert counts(engine) == before
    assert report.exit_code == 1
    lines = report.lines()
    assert "Date order: month first" in lines[1]
    assert "Row 2: new" in lines and "Row 4: new" in lines
    invalid = next(line for line in lines if line.startswith("Row 5:"))
    assert "Date of birth is not a real date" in invalid
    assert (
        "Email" in invalid
        and "Clinician 'Nobody' is not one of the practice's: Ana Reyes" in invalid
    )
    assert "x@" not in invalid  # reasons never echo the row's personal data
    assert lines[-2].startswith("Dry run, nothing was written: 3 would be imported")
    assert run(engine, admin, csv_bytes(MESSY), dry_run=True).exit_code == 0


def test_all_or_nothing_unless_skip_invalid(practice):
    engine, admin, _ = practice
    bad = row(**{"Client First Name": "", "LAST": "Nameless", "DOB": "1/1/1990"})
    data = csv_bytes([*MESSY, bad])
    before = counts(engine)
    stopped = run(engine, admin, data)
    assert stopped.stopped and stopped.exit_code == 1 and not stopped.written
    assert stopped.lines()[-1] == "0 imported, 0 duplicates skipped, 1 invalid"
    assert any("First name: Enter the first name." in line for line in stopped.lines())
    assert counts(engine) == before
    done = run(engine, admin, data, skip_invalid=True)
    assert done.exit_code == 0
    assert done.lines()[-1] == "3 imported, 0 duplicates skipped, 1 invalid"
    assert counts(engine)[0] == before[0] + 3


def test_duplicates_within_the_file_and_possible_duplicates(practice):
    engine, admin, _ = practice
    with transaction(engine) as session:
        make_client(session, first_name="Robert", last_name="Tables", dob=date(1970, 1, 1),
                    email="bobby@example.com")  # fmt: skip
    rows = [
        row(**{"Client First Name": "Maya", "LAST": "Lind", "DOB": "2/2/2000"}),
        row(**{"Client First Name": "maya", "LAST": "LIND", "DOB": "2000-02-02"}),
        # Same email and last name as Robert, another first name, no shared DOB: possible.
        row(**{"Client First Name": "Bobby", "LAST": "Tables", "DOB": "5/5/1975",
               "E-mail": "bobby@example.com"}),
    ]  # fmt: skip
    report = run(engine, admin, csv_bytes(rows))
    assert [o.kind for o in report.outcomes] == ["new", "duplicate", "possible"]
    assert report.outcomes[1].of == "row 2"
    assert report.outcomes[2].of.startswith("#")
    assert "same email" in report.outcomes[2].reasons
    assert "not imported" in report.lines()[-2]
    assert report.summary() == "1 imported, 2 duplicates skipped, 0 invalid"
    allowed = run(engine, admin, csv_bytes(rows), allow_possible_duplicates=True)
    # Maya is now a client (a duplicate twice over); Bobby is imported this time.
    assert allowed.summary() == "1 imported, 2 duplicates skipped, 0 invalid"
    assert allowed.outcomes[2].kind == "possible" and allowed.outcomes[2].client_number
    again = run(engine, admin, csv_bytes(rows), allow_possible_duplicates=True)
    assert again.imported == 0  # the imported possible duplicate is now an exact one


def test_map_overrides_the_guess_and_unmatched_columns_are_listed(practice):
    engine, admin, _ = practice
    data = "Given;Family;Birth;Cell;Favourite colour\nAda;Lovelace;12/10/1985;6175550142;red\n"
    with pytest.raises(client_import.MappingProblem) as missing:
        run(engine, admin, data.encode())
    assert "first name" in str(missing.value) and "'Given'" in str(missing.value)
    report = run(
        engine,
        admin,
        data.encode(),
        overrides=headers.parse_overrides(["first_name=Given", "last name=family", "dob=Birth"]),
        date_order="DMY",
    )
    assert report.summary() == "1 imported, 0 duplicates skipped, 0 invalid"
    assert report.unmatched == ["Favourite colour"]
    assert "day first" in report.lines()[1]
    ada = by_old_or_name(engine)["Ada"]
    assert ada.dob == date(1985, 10, 12)  # DMY
    with pytest.raises(client_import.MappingProblem):
        headers.build(["A"], {"shoe_size": "A"})
    with pytest.raises(client_import.MappingProblem):
        headers.build(["A"], {"dob": "B"})


def test_an_xlsx_workbook_with_date_and_number_cells(practice):
    engine, admin, clinician = practice
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["FIRST", "Last Name", "BIRTHDATE", "Cell", "Zip Code", "Provider", "Balance",
                  "Service Date", "Old ID"])  # fmt: skip
    sheet.append(["Renée", "Faÿ-Lopez", datetime(1979, 11, 30), 6175550199, 2139, "Ana Reyes",
                  99.5, datetime(2026, 7, 1), 1001])  # fmt: skip
    sheet.append(["Tom", "O'Neil", "3/7/85", "617-555-0123", "02140", None, None, None, 1002])
    sheet.append([None] * 9)
    out = io.BytesIO()
    book.save(out)
    report = run(engine, admin, out.getvalue(), filename="export.xlsx")
    assert report.summary() == "2 imported, 0 duplicates skipped, 0 invalid", report.lines()
    assert report.description.startswith("Excel workbook")
    got = by_old_or_name(engine)
    renee, tom = got["1001"], got["1002"]
    assert (renee.dob, renee.zip_code, renee.phone_mobile) == (
        date(1979, 11, 30),
        "02139",
        "(617) 555-0199",
    )
    assert (renee.client_due_cents, renee.oldest_unpaid_dos) == (9950, date(2026, 7, 1))
    assert renee.clinician_id == clinician and tom.dob == date(1985, 3, 7)


def test_who_imported_what_is_audited_and_roles_are_enforced(practice):
    engine, admin, _ = practice
    run(engine, admin, csv_bytes(MESSY), filename="from-old-system.csv")
    with read_session(engine) as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "clients.import")
        ).one()
        assert entry.actor_username == "boss"
        assert "from-old-system.csv: 3 imported, 0 duplicates skipped, 0 invalid" in entry.detail
        per_client = session.scalar(
            select(func.count()).where(AuditEntry.action == "client.import")
        )
        assert per_client == 3
    with transaction(engine) as session:
        biller = make_user(session, BILLER, "billy")
    with pytest.raises(PermissionDenied):
        run(engine, biller, csv_bytes(MESSY))


def test_dates_people_type():
    today = date(2026, 12, 7)
    assert parse_date("3/7/1985", today=today) == date(1985, 3, 7)
    assert parse_date("3/7/1985", order="DMY", today=today) == date(1985, 7, 3)
    assert parse_date("07.03.1985", today=today) == date(1985, 3, 7)
    assert parse_date("1985-03-07", today=today) == date(1985, 3, 7)
    assert parse_date("1985-03-07 00:00:00", today=today) == date(1985, 3, 7)
    assert parse_date("3/7/85", today=today) == date(1985, 3, 7)
    assert parse_date("3/7/07", today=today) == date(2007, 3, 7)
    with pytest.raises(ValueError, match="import with date order DMY"):
        parse_date("25/12/1985", today=today)


def test_the_command_line(tmp_path):
    assert cli(tmp_path, "migrate").returncode == 0
    assert cli(tmp_path, "create-clinician", "--first", "Ana", "--last", "Reyes").returncode == 0
    good = tmp_path / "clients.csv"
    good.write_bytes(b"\xef\xbb\xbf" + csv_bytes(MESSY, delimiter=";"))
    dry = cli(tmp_path, "import-clients", str(good), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-1] == "0 imported, 0 duplicates skipped, 0 invalid"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([*MESSY, row(**{"LAST": "X", "DOB": "1/1/2001"})]))
    stopped = cli(tmp_path, "import-clients", str(bad))
    assert stopped.returncode == 1
    assert stopped.stdout.splitlines()[-1] == "0 imported, 0 duplicates skipped, 1 invalid"
    done = cli(tmp_path, "import-clients", str(bad), "--skip-invalid")
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == "3 imported, 0 duplicates skipped, 1 invalid"
    again = cli(tmp_path, "import-clients", str(good), "--map", "notes=Notes")
    assert again.returncode == 2 and "no field 'notes'" in again.stderr
    again = cli(tmp_path, "import-clients", str(good))
    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] == "0 imported, 3 duplicates skipped, 0 invalid"
    rec = cli(tmp_path, "reconcile")
    assert rec.returncode == 0, rec.stdout
