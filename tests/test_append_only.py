"""The audit log and the ledger stay append-only, whatever SQL reaches the database.

SQLite: REPLACE would delete the old row and insert a new one. PostgreSQL: the app runs as a
role that can only INSERT and SELECT these tables and owns nothing, so it cannot switch the
triggers off either; migrations run as the owner through CLIENTDESK_MIGRATION_DATABASE_URL.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lib.config import load_settings
from lib.db import (
    DatabaseNotReady,
    check_ready,
    ensure_ready,
    make_engine,
    transaction,
)
from lib.migrate import migration_url, missing_append_only_triggers
from tests.conftest import PG_APP_ROLE, PG_OWNER_ROLE, as_owner
from tests.factories import make_client

PROJECT_ROOT = Path(__file__).resolve().parent.parent

LEDGER_COLUMNS = (
    "client_id, kind, responsibility, amount_cents, service_date, posted_at, method, "
    "reference, authorization_code, memo, idempotency_key"
)


def _one_audit_row_and_one_charge(engine) -> tuple[int, int, int]:
    with transaction(engine) as session:
        client_id = make_client(session)
        session.execute(
            text(
                "INSERT INTO audit_log (at, actor_username, action, entity, entity_id, detail)"
                " VALUES (CURRENT_TIMESTAMP, 'biller', 'ledger.payment', 'ledger_entry', '1',"
                " 'the real row')"
            )
        )
        session.execute(
            text(
                f"INSERT INTO ledger_entries ({LEDGER_COLUMNS}) VALUES (:c, 'charge', 'client',"
                " 12500, CURRENT_DATE, CURRENT_TIMESTAMP, '', '', '', 'the real charge', 'k-1')"
            ),
            {"c": client_id},
        )
        audit_id = session.scalar(text("SELECT MAX(id) FROM audit_log"))
        entry_id = session.scalar(text("SELECT id FROM ledger_entries WHERE idempotency_key='k-1'"))
    return client_id, audit_id, entry_id


def _rows(engine, audit_id: int, entry_id: int):
    with transaction(engine) as session:
        audit = session.execute(
            text("SELECT id, action, detail FROM audit_log WHERE id = :i"), {"i": audit_id}
        ).one()
        entry = session.execute(
            text("SELECT id, amount_cents, memo FROM ledger_entries WHERE id = :i"),
            {"i": entry_id},
        ).one()
    return tuple(audit), tuple(entry)


def test_every_append_only_trigger_is_in_place_after_all_migrations(engine):
    """SQLite's batch migrations rebuild a table without its triggers; none may go missing."""
    assert missing_append_only_triggers(engine) == []


@pytest.mark.parametrize("db_kind", ["sqlite"])
@pytest.mark.parametrize(
    "statement",
    [
        "INSERT OR REPLACE INTO audit_log (id, at, actor_username, action, entity, entity_id,"
        " detail) VALUES (:audit_id, CURRENT_TIMESTAMP, 'x', 'nothing', 'x', '1', 'rewritten')",
        "REPLACE INTO ledger_entries (id, " + LEDGER_COLUMNS + ") VALUES (:entry_id, :client_id,"
        " 'charge', 'client', 1, CURRENT_DATE, CURRENT_TIMESTAMP, '', '', '', 'rewritten', 'k-2')",
        "INSERT OR REPLACE INTO ledger_entries (" + LEDGER_COLUMNS + ") VALUES (:client_id,"
        " 'charge', 'client', 1, CURRENT_DATE, CURRENT_TIMESTAMP, '', '', '', 'rewritten', 'k-1')",
    ],
    ids=["audit-by-id", "ledger-by-id", "ledger-by-idempotency-key"],
)
def test_insert_or_replace_cannot_rewrite_an_audit_or_ledger_row(engine, statement):
    client_id, audit_id, entry_id = _one_audit_row_and_one_charge(engine)
    before = _rows(engine, audit_id, entry_id)
    with pytest.raises(DBAPIError, match="append-only"):
        with transaction(engine) as session:
            session.execute(
                text(statement),
                {"audit_id": audit_id, "entry_id": entry_id, "client_id": client_id},
            )
    assert _rows(engine, audit_id, entry_id) == before


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_replace_is_refused_on_a_connection_without_the_apps_pragmas(engine, db_url):
    """The sqlite3 shell or a script does not set recursive_triggers: the schema still refuses."""
    _, audit_id, entry_id = _one_audit_row_and_one_charge(engine)
    before = _rows(engine, audit_id, entry_id)
    raw = sqlite3.connect(db_url.split("///", 1)[1])
    try:
        assert raw.execute("PRAGMA recursive_triggers").fetchone()[0] == 0
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(
                "REPLACE INTO audit_log (id, at, actor_username, action, entity, entity_id, "
                "detail) VALUES (?, CURRENT_TIMESTAMP, 'x', 'x', 'x', '1', 'rewritten')",
                (audit_id,),
            )
        raw.rollback()
    finally:
        raw.close()
    assert _rows(engine, audit_id, entry_id) == before


def test_an_upsert_cannot_rewrite_a_ledger_row(engine):
    client_id, audit_id, entry_id = _one_audit_row_and_one_charge(engine)
    before = _rows(engine, audit_id, entry_id)
    with pytest.raises(DBAPIError, match=r"append-only|permission denied"):
        with transaction(engine) as session:
            session.execute(
                text(
                    f"INSERT INTO ledger_entries ({LEDGER_COLUMNS}) VALUES (:c, 'charge',"
                    " 'client', 1, CURRENT_DATE, CURRENT_TIMESTAMP, '', '', '', 'x', 'k-1')"
                    " ON CONFLICT (idempotency_key) DO UPDATE SET memo = 'rewritten'"
                ),
                {"c": client_id},
            )
    assert _rows(engine, audit_id, entry_id) == before


UNPROTECT = (
    "ALTER TABLE {t} DISABLE TRIGGER ALL",
    "ALTER TABLE {t} DISABLE TRIGGER {t}_append_only",
    "DROP TRIGGER {t}_append_only ON {t}",
    "DROP FUNCTION clientdesk_append_only() CASCADE",
    "TRUNCATE {t}",
    "UPDATE {t} SET id = id",
    "DELETE FROM {t}",
    "SET session_replication_role = replica",
    "ALTER TABLE {t} OWNER TO " + PG_APP_ROLE,
)


@pytest.mark.parametrize("db_kind", ["postgresql"])
@pytest.mark.parametrize("table", ["audit_log", "ledger_entries"])
def test_the_apps_postgresql_role_cannot_rewrite_or_unprotect_the_append_only_tables(engine, table):
    _one_audit_row_and_one_charge(engine)
    assert engine.url.username == PG_APP_ROLE
    for statement in UNPROTECT:
        with pytest.raises(DBAPIError, match=r"permission denied|must be owner|append-only"):
            with transaction(engine) as session:
                session.execute(text(statement.format(t=table)))
    with transaction(engine) as session:
        assert session.scalar(text(f"SELECT COUNT(*) FROM {table}")) >= 1
        triggers = session.scalar(
            text(
                "SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass)"
                " AND NOT tgisinternal AND tgenabled = 'O'"
            ),
            {"t": table},
        )
    assert triggers == 2  # the row trigger and the TRUNCATE trigger, both still enabled


@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_the_tables_belong_to_the_owner_role_not_to_the_app(engine):
    with transaction(engine) as session:
        owners = set(
            session.scalars(
                text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
            )
        )
        superuser = session.scalar(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        )
    assert owners == {PG_OWNER_ROLE}
    assert superuser is False


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("CLIENTDESK_") or k == "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "lib.cli", *args],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_migrate_runs_as_the_owner_from_its_own_setting_and_the_app_gets_insert_only(
    templates, tmp_path
):
    app_url = templates.empty_pg()
    env = {
        "CLIENTDESK_DATA_DIR": str(tmp_path),
        "DATABASE_URL": app_url,
        "CLIENTDESK_MIGRATION_DATABASE_URL": as_owner(app_url),
    }
    done = _cli("migrate", env=env)
    assert done.returncode == 0, done.stderr
    check = _cli("check", env=env)
    assert check.returncode == 0, check.stderr

    app = make_engine(app_url)
    try:
        check_ready(app)
        _one_audit_row_and_one_charge(app)  # the app can do its work
        with pytest.raises(DBAPIError, match="permission denied"):
            with transaction(app) as session:
                session.execute(text("UPDATE ledger_entries SET memo = 'rewritten'"))
        with transaction(app) as session:
            owners = set(
                session.scalars(
                    text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname='public'")
                )
            )
        assert owners == {PG_OWNER_ROLE}
    finally:
        app.dispose()


def test_the_apps_start_up_migrates_as_the_owner_when_the_setting_is_there(templates):
    app_url = templates.empty_pg()
    settings = load_settings(
        {"DATABASE_URL": app_url, "CLIENTDESK_MIGRATION_DATABASE_URL": as_owner(app_url)}
    )
    app = make_engine(settings.database_url)
    try:
        ensure_ready(app, auto_upgrade=True, settings=settings)
        _one_audit_row_and_one_charge(app)
        with pytest.raises(DBAPIError, match="permission denied"):
            with transaction(app) as session:
                session.execute(text("DELETE FROM audit_log"))
    finally:
        app.dispose()


def test_a_migration_url_for_another_database_is_refused():
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://app@db.example:5432/clientdesk",
            "CLIENTDESK_MIGRATION_DATABASE_URL": "postgresql://owner@db.example:5432/other",
        }
    )
    with pytest.raises(DatabaseNotReady, match="same database"):
        migration_url(settings)
