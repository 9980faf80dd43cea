"""The database layer: pragmas, migrations, append-only tables, refusing an un-migrated schema."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lib.db import (
    DatabaseNotReady,
    Limits,
    ReadOnlyWrite,
    check_ready,
    make_engine,
    read_session,
    transaction,
)
from lib.models import AuditEntry, PracticeSetting
from lib.timeutil import utcnow


def test_sqlite_connections_have_the_required_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    engine.dispose()


def test_unmigrated_database_is_refused_with_a_clear_message(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseNotReady, match="make migrate"):
        check_ready(engine)
    engine.dispose()


def test_unreachable_database_is_reported_without_a_traceback():
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/nothing")
    with pytest.raises(DatabaseNotReady, match="cannot be reached"):
        check_ready(engine)


def test_migrated_database_is_ready(engine):
    check_ready(engine)


@pytest.mark.parametrize("table", ["audit_log", "ledger_entries"])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET id = id", "DELETE FROM {t}"])
def test_append_only_tables_refuse_update_and_delete(engine, table, statement):
    with transaction(engine) as session:
        session.add(
            AuditEntry(at=utcnow(), actor_username="t", action="x", entity="y", entity_id="1")
        )
    if table == "ledger_entries":
        from tests.factories import make_client

        with transaction(engine) as session:
            cid = make_client(session)
            session.execute(
                text(
                    "INSERT INTO ledger_entries (client_id, kind, responsibility, amount_cents,"
                    " service_date, posted_at, method, reference, authorization_code, memo,"
                    " idempotency_key) VALUES (:c, 'charge', 'client', 100, CURRENT_DATE,"
                    " CURRENT_TIMESTAMP, '', '', '', '', 'k1')"
                ),
                {"c": cid},
            )
    # The app's role on PostgreSQL lacks the right altogether; the trigger refuses the rest.
    with pytest.raises(DBAPIError, match=r"append-only|permission denied"):
        with transaction(engine) as session:
            session.execute(text(statement.format(t=table)))


def test_the_database_file_and_its_folder_are_readable_by_their_owner_only(tmp_path):
    data = tmp_path / "data"
    engine = make_engine(f"sqlite:///{data / 'clientdesk.db'}")
    try:
        with transaction(engine) as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
        assert (data.stat().st_mode & 0o777) == 0o700
        for name in ("clientdesk.db", "clientdesk.db-wal", "clientdesk.db-shm"):
            assert ((data / name).stat().st_mode & 0o777) == 0o600, name
    finally:
        engine.dispose()


def test_an_existing_database_file_readable_by_others_is_made_private(tmp_path):
    path = tmp_path / "old.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    make_engine(f"sqlite:///{path}").dispose()
    assert (path.stat().st_mode & 0o777) == 0o600


# --- read-only transactions (issue 13) -----------------------------------------------------


def _setting(key: str) -> PracticeSetting:
    return PracticeSetting(key=key, value="v", updated_at=utcnow())


def _stored(engine, key: str) -> bool:
    with read_session(engine) as session:
        return session.get(PracticeSetting, key) is not None


@pytest.mark.parametrize("how", ["orm", "sql"])
def test_a_write_inside_a_read_session_is_refused_and_nothing_is_written(engine, how):
    with pytest.raises(ReadOnlyWrite), read_session(engine) as session:
        if how == "orm":
            session.add(_setting("written_by_a_read"))
            session.flush()
        else:
            session.execute(
                text(
                    "INSERT INTO practice_settings (key, value, updated_at) VALUES (:k, 'v', :at)"
                ),
                {"k": "written_by_a_read", "at": utcnow()},
            )
    assert not _stored(engine, "written_by_a_read")


def test_the_connection_a_read_used_can_write_again_afterwards(db_url):
    # One pooled connection, so the save below gets the very connection the read used.
    engine = make_engine(db_url, limits=Limits(1, 0, 5.0, 5.0))
    try:
        for n in range(3):
            with read_session(engine) as session:
                session.execute(text("SELECT 1"))
            with transaction(engine) as session:
                session.add(_setting(f"after_read_{n}"))
            assert _stored(engine, f"after_read_{n}")
    finally:
        engine.dispose()
