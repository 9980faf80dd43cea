"""Taking the data out (issue 14): export-all, one client's record, and the round trip of an
export into an empty practice, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from sqlalchemy import select

from lib import aging, client_import, data_export, reconcile
from lib.client_record import open_record
from lib.db import read_session, transaction
from lib.models import AuditEntry, Base, Client, LedgerEntry, User
from lib.policy import ADMIN, PermissionDenied
from lib.timeutil import practice_today
from tests import test_pages_login as login_tests
from tests.factories import make_user
from tests.test_cli import cli
from tests.test_pages_clients import actor_of, db
from tests.test_pages_login import sign_in

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app


def rows_of(data: bytes, name: str) -> list[dict]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return list(csv.DictReader(io.StringIO(zf.read(name).decode("utf-8-sig"))))


def header_of(data: bytes, name: str) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return next(csv.reader(io.StringIO(zf.read(name).decode("utf-8-sig"))))


def admin_of(session):
    return make_user(session, ADMIN, "exporter")


def test_export_all_holds_every_practice_table_and_no_secret(demo_engine):
    with transaction(demo_engine) as session:
        result = data_export.export_all(session, actor=admin_of(session))
    with zipfile.ZipFile(io.BytesIO(result.data)) as zf:
        names = set(zf.namelist())
        everything = b"".join(zf.read(n) for n in names)
        readme = zf.read("README.txt").decode()
    expected = {f"{t.name}.csv" for t in Base.metadata.sorted_tables} - {
        f"{t}.csv" for t in data_export.SKIPPED_TABLES
    }
    assert names == expected | {"README.txt"}
    for table in ("clients", "ledger_entries", "intake_answers", "document_log", "audit_log"):
        assert f"{table}.csv" in readme
    assert "client_due_cents (integer cents)" in readme
    assert "password_hash" not in header_of(result.data, "users.csv")
    assert "token_hash" not in header_of(result.data, "portal_invitations.csv")
    assert "claim_token" not in header_of(result.data, "message_outbox.csv")
    assert b"$2b$" not in everything  # no bcrypt hash anywhere
    with read_session(demo_engine) as session:
        clients = session.scalars(select(Client).order_by(Client.id)).all()
        entries = session.scalar(select(LedgerEntry.id).order_by(LedgerEntry.id.desc()).limit(1))
        exported = rows_of(result.data, "clients.csv")
        assert [int(r["id"]) for r in exported] == [c.id for c in clients]
        assert int(rows_of(result.data, "ledger_entries.csv")[-1]["id"]) == entries
        audit = session.scalars(select(AuditEntry).where(AuditEntry.entity == "all_data")).one()
        assert audit.action == "export" and audit.actor_username == "exporter"


def test_the_export_round_trip_into_an_empty_practice(demo_engine, engine):
    """Export, import the clients and their opening balances into an empty database, and
    compare every client's balances and aging bucket with the source."""
    with transaction(demo_engine) as session:
        result = data_export.export_all(session, actor=admin_of(session))
    with zipfile.ZipFile(io.BytesIO(result.data)) as zf:
        clients_csv = zf.read("clients.csv")
    report = client_import.run_import(
        engine,
        actor=None,
        data=clients_csv,
        filename="clients.csv",
        overrides={"clinician": None},  # clinicians are ids in the export, not names
        allow_possible_duplicates=True,
    )
    assert report.invalid == 0, [o for o in report.outcomes if o.kind == "invalid"][:3]
    with read_session(demo_engine) as session:
        source = {str(c.id): c for c in session.scalars(select(Client))}
        for c in source.values():
            session.expunge(c)
    assert report.imported == len(source), report.lines()[-3:]
    today = practice_today()
    buckets = aging.buckets()

    def bucket(dos):
        return None if dos is None else aging.bucket_for(today - dos, buckets)

    with read_session(engine) as session:
        imported = {c.old_system_id: c for c in session.scalars(select(Client))}
        assert set(imported) == set(source)
        for key, s in source.items():
            t = imported[key]
            assert (
                t.first_name, t.last_name, t.dob, t.email, t.status,
                t.client_due_cents, t.insurance_pending_cents, t.unapplied_credit_cents,
                t.total_cents, t.oldest_unpaid_dos, bucket(t.oldest_unpaid_dos),
            ) == (
                s.first_name, s.last_name, s.dob, s.email, s.status,
                s.client_due_cents, s.insurance_pending_cents, s.unapplied_credit_cents,
                s.total_cents, s.oldest_unpaid_dos, bucket(s.oldest_unpaid_dos),
            ), key  # fmt: skip
        checked = reconcile.reconcile(session, actor=None)
    assert checked.ok, (checked.mismatches[:3], checked.totals_problems)
    assert checked.ledger_total_cents == sum(s.total_cents for s in source.values())
    again = client_import.run_import(
        engine, actor=None, data=clients_csv, filename="clients.csv",
        overrides={"clinician": None}, allow_possible_duplicates=True,
    )  # fmt: skip
    assert again.imported == 0


def test_one_clients_record_for_a_right_of_access_request(demo_engine):
    with transaction(demo_engine) as session:
        client = session.scalars(
            select(Client).where(Client.id.in_(select(LedgerEntry.client_id))).limit(1)
        ).one()
        manager = actor_of_session(session, "manager")
        open_record(session, actor=manager, client_number=client.client_number, audit_open=True)
        result = data_export.export_client_record(session, actor=manager, client_id=client.id)
        ledger_ids = session.scalars(
            select(LedgerEntry.id)
            .where(LedgerEntry.client_id == client.id)
            .order_by(LedgerEntry.id)
        ).all()
        other = session.scalar(select(Client.id).where(Client.id != client.id).limit(1))
    names = set(zipfile.ZipFile(io.BytesIO(result.data)).namelist())
    assert names == {
        "client.csv", "status_history.csv", "insurance.csv", "intake_answers.csv",
        "documents_log.csv", "ledger.csv", "audit.csv", "README.txt",
    }  # fmt: skip
    [record] = rows_of(result.data, "client.csv")
    assert int(record["id"]) == client.id and record["last_name"] == client.last_name
    assert [int(r["id"]) for r in rows_of(result.data, "ledger.csv")] == ledger_ids
    assert {int(r["client_id"]) for r in rows_of(result.data, "audit.csv")} == {client.id}
    answers = rows_of(result.data, "intake_answers.csv")
    assert all(r["question"] and int(r["client_id"]) == client.id for r in answers)
    with read_session(demo_engine) as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "client_record")
        ).one()
        assert (entry.client_id, entry.actor_username) == (client.id, "manager")
    with transaction(demo_engine) as session:
        for username in ("frontdesk", "biller"):
            with pytest.raises(PermissionDenied):
                data_export.export_client_record(
                    session, actor=actor_of_session(session, username), client_id=other
                )


def actor_of_session(session, username: str):
    from lib import auth

    return auth.actor_for(session.scalars(select(User).where(User.username == username)).one())


def test_export_all_on_the_command_line(tmp_path):
    assert cli(tmp_path, "migrate").returncode == 0
    done = cli(tmp_path, "export-all", "--to", str(tmp_path / "out" / "practice.zip"))
    assert done.returncode == 0, done.stderr
    assert "Exported" in done.stdout
    assert "README.txt" in zipfile.ZipFile(tmp_path / "out" / "practice.zip").namelist()
    refused = cli(tmp_path, "export-all", "--to", str(tmp_path / "practice.csv"))
    assert refused.returncode == 2


def test_the_export_page_and_the_client_record_button(demo_app, downloads):
    at = sign_in("admin")
    at.switch_page("pages/export_data.py").run()
    assert not at.exception, at.exception
    with db(demo_app) as engine, read_session(engine) as session:
        before = len(
            session.scalars(select(AuditEntry).where(AuditEntry.entity == "all_data")).all()
        )
    assert before == 0  # nothing was built by showing the page
    file = downloads.file(at, "export_all_data")
    assert file.name.endswith(".zip") and file.mime == "application/zip"
    assert "clients.csv" in zipfile.ZipFile(io.BytesIO(file.content)).namelist()
    with db(demo_app) as engine, read_session(engine) as session:
        client = session.execute(
            select(Client.id, Client.client_number).order_by(Client.id).limit(1)
        ).one()
        audited = session.scalars(select(AuditEntry).where(AuditEntry.entity == "all_data")).all()
    assert len(audited) == 1

    at.switch_page("pages/client.py")
    at.query_params["client"] = str(client.client_number)
    at.run()
    assert not at.exception, at.exception
    record = downloads.file(at, f"export_record_{client.id}")
    assert record.name.startswith(f"client-{client.client_number}-record-")
    [row] = rows_of(record.content, "client.csv")
    assert int(row["id"]) == client.id

    desk = sign_in("frontdesk")
    desk.switch_page("pages/client.py")
    desk.query_params["client"] = str(client.client_number)
    desk.run()
    assert not [b for b in desk.download_button if b.key == f"export_record_{client.id}"]
    assert actor_of(demo_app, "frontdesk").role == "front_desk"
