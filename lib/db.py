"""The one door to the database: engine, sessions, the write transaction, migrations.

SQLite is the embedded default and PostgreSQL is used when ``DATABASE_URL`` is set. Both are
first-class. Pages never open connections: they call lib functions that take a ``Session``.

Writes go through ``write(engine, work)``: ``work(session)`` runs in one transaction and, when
a colleague's save holds a lock it needs, the whole unit is run again (bounded in time, with
jittered backoff). ``transaction(engine)`` is the same door as a context manager for callers
whose work cannot simply be re-run; it waits for locks but does not retry. Reads use
``read_session``: a read-only transaction (PostgreSQL ``SET TRANSACTION READ ONLY``, SQLite
``PRAGMA query_only``) that never takes a write lock, never waits for a writer's connection,
and refuses a write that slips into it.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from lib.config import PROJECT_ROOT, Settings, load_settings
from lib.write_gate import FairGate

log = logging.getLogger("clientdesk.db")
T = TypeVar("T")

APPEND_ONLY_TABLES = ("audit_log", "ledger_entries")
# PostgreSQL: serialization failure, deadlock detected, lock_timeout reached.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
SQLITE_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class DatabaseNotReady(RuntimeError):
    """The database cannot be used: unreachable, or its schema is not at the current revision.

    The message is safe to show to a user: it never contains data, only what to do.
    """


class DatabaseBusy(DatabaseNotReady):
    """Colleagues' work kept the database busy longer than the configured bound.

    Nothing was written; the message (safe to show) says to try again.
    """


class ReadOnlyWrite(RuntimeError):
    """Something tried to write inside ``read_session``; the database refused and nothing was
    written. A programming error: the work belongs in ``write``."""


def is_read_only_refusal(exc: BaseException) -> bool:
    """True when the database refused a write because the transaction is read-only."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "25006":  # read_only_sql_transaction
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    return (
        isinstance(orig, sqlite3.OperationalError) and (code or 0) & 0xFF == sqlite3.SQLITE_READONLY
    )


@dataclass(frozen=True)
class Limits:
    """How many connections a process opens and how long anyone waits (lib.config settings)."""

    pool_size: int
    max_overflow: int
    pool_timeout_seconds: float
    write_timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout_seconds=settings.db_pool_timeout_seconds,
            write_timeout_seconds=settings.db_write_timeout_seconds,
        )

    @property
    def connections(self) -> int:
        return self.pool_size + self.max_overflow


# SQLite runs every query inside this process. A few reads at a time finish sooner than many
# contending for the interpreter, and the one writer every save queues behind keeps its share
# of it (bench/load.py: 3-4x the writes and fewer slow reads at 16 readers).
SQLITE_READS_AT_ONCE = 2 * (os.cpu_count() or 1)


class _Door:
    """Per database and process: the limits, the write gate and (SQLite) the read gate.

    The write gate is taken before a writer checks out a connection, so writers waiting for
    each other never hold connections that readers need. SQLite has one writer at a time
    anyway: its gate has one slot and writers queue here, in order, instead of polling the file
    lock. PostgreSQL writers may use half of the connections; the other half stay for reads.
    Reads never queue behind writes: SQLite reads queue only behind other reads.
    """

    def __init__(self, limits: Limits, sqlite: bool):
        self.limits = limits
        self.gate = FairGate(1 if sqlite else max(1, limits.connections // 2))
        self.read_gate = FairGate(SQLITE_READS_AT_ONCE) if sqlite else None


_doors: dict[str, _Door] = {}
_doors_lock = threading.Lock()


def _door_key(engine: Engine) -> str:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return "sqlite:" + str(Path(url.database or ":memory:").resolve())
    return url.render_as_string(hide_password=False)


def _door(engine: Engine, limits: Limits | None = None) -> _Door:
    door = engine.__dict__.get("_clientdesk_door")
    if door is not None and limits is None:
        return door
    key = _door_key(engine)
    with _doors_lock:
        door = _doors.get(key)
        if door is None or (limits is not None and door.limits != limits):
            limits = limits or (door.limits if door else Limits.from_settings(load_settings()))
            door = _Door(limits, sqlite=engine.url.get_backend_name() == "sqlite")
            _doors[key] = door
    engine.__dict__["_clientdesk_door"] = door
    return door


def _sqlite_on_connect(busy_ms: int):
    def on_connect(dbapi_connection, _record) -> None:
        # Python's sqlite3 opens transactions lazily; let SQLAlchemy issue BEGIN itself so
        # that "BEGIN IMMEDIATE" below really takes the write lock at the start of a write.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA synchronous=FULL")
        # REPLACE deletes the row it conflicts with; with recursive triggers that delete fires
        # the append-only tables' DELETE triggers too (migration 0008 also refuses it).
        cursor.execute("PRAGMA recursive_triggers=ON")
        # Assert, do not assume: a read-only file system or an old SQLite can silently refuse.
        checks = {
            "foreign_keys": 1,
            "journal_mode": "wal",
            "busy_timeout": busy_ms,
            "synchronous": 2,
            "recursive_triggers": 1,
        }
        for pragma, expected in checks.items():
            value = cursor.execute(f"PRAGMA {pragma}").fetchone()[0]
            if str(value).lower() != str(expected):
                cursor.close()
                raise DatabaseNotReady(
                    f"SQLite refused PRAGMA {pragma}={expected} (got {value}); "
                    "check that the data folder is writable."
                )
        cursor.close()

    return on_connect


def _sqlite_query_only(conn, on: bool) -> None:
    """SQLite's read-only switch is per connection: set it for a read, clear it for anything
    else that later gets the same pooled connection (tracked so it costs nothing usually)."""
    info = conn.connection.info
    if bool(info.get("clientdesk_query_only")) != on:
        conn.exec_driver_sql(f"PRAGMA query_only={int(on)}")
        info["clientdesk_query_only"] = on


def _sqlite_on_begin(conn) -> None:
    # Writes take the write lock up front: two writers then queue instead of one failing
    # half-way with "database is locked" after it has read stale data. Pure reads
    # (``read_session``) begin deferred so they never wait for a writer under WAL, with the
    # connection switched to query_only so that a write inside one is refused.
    options = conn.get_execution_options()
    read_only = bool(options.get("clientdesk_read_only"))
    _sqlite_query_only(conn, read_only)
    if read_only:
        conn.exec_driver_sql("BEGIN")
        return
    busy_ms = options.get("clientdesk_wait_ms")
    info = conn.connection.info
    if busy_ms is not None and info.get("clientdesk_busy_ms") != busy_ms:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_ms)}")
        info["clientdesk_busy_ms"] = busy_ms
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _postgresql_on_begin(full_ms: int):
    def on_begin(conn) -> None:
        options = conn.get_execution_options()
        if options.get("clientdesk_read_only"):
            # Reads run read-only: a write inside one is refused, and takes no row locks.
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            return
        # Each connection waits for row locks at most the whole write budget (lock_timeout
        # at connect); a write that already waited at the gate gets only what is left.
        wait_ms = options.get("clientdesk_wait_ms")
        if wait_ms is not None and wait_ms < full_ms - 1000:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(wait_ms)}")

    return on_begin


def _wait_ms(deadline: float) -> int:
    """Milliseconds left until ``deadline``, rounded down to whole seconds while more than one
    is left, so a pooled connection's lock timeout rarely needs to be set again."""
    left = deadline - time.monotonic()
    if left >= 1:
        return int(left) * 1000
    return max(1, int(left * 1000))


def _private_sqlite_file(db_path: str) -> None:
    """The database file (and its -wal/-shm, which SQLite creates with the same mode) is
    readable by its owner only; a missing folder is created 0700."""
    path = Path(db_path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


def make_engine(url: str, *, echo: bool = False, limits: Limits | None = None) -> Engine:
    """Create an engine with the per-engine settings ClientDesk relies on.

    ``limits`` defaults to the CLIENTDESK_DB_* settings. Both engines get a queue pool sized by
    them, with a pool timeout that ends in ``DatabaseBusy`` instead of a traceback.
    """
    limits = limits or Limits.from_settings(load_settings())
    pool = {
        "pool_size": limits.pool_size,
        "max_overflow": limits.max_overflow,
        "pool_timeout": limits.pool_timeout_seconds,
    }
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[1] if "///" in url else ""
        if db_path and db_path != ":memory:":
            _private_sqlite_file(db_path)
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": limits.write_timeout_seconds},
            **(pool if db_path and db_path != ":memory:" else {}),
        )
        busy_ms = int(limits.write_timeout_seconds * 1000)
        event.listen(engine, "connect", _sqlite_on_connect(busy_ms))
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        # hide_parameters: SQL errors must never carry client data into logs or messages.
        # lock_timeout: nobody waits for a row lock longer than a write may take in all.
        lock_ms = int(limits.write_timeout_seconds * 1000)
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            pool_pre_ping=True,
            connect_args={"options": f"-c lock_timeout={lock_ms}"},
            **pool,
        )
        event.listen(engine, "begin", _postgresql_on_begin(lock_ms))
    _door(engine, limits)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_lock_conflict(exc: BaseException) -> bool:
    """True when ``exc`` only means another transaction held a lock we needed: the unit of
    work did nothing lasting and may be run again. Any other error is never retried."""
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(orig, sqlite3.OperationalError) and (code or 0) & 0xFF in SQLITE_BUSY_CODES


def _busy(doing: str) -> DatabaseBusy:
    return DatabaseBusy(
        f"Colleagues are saving a lot at this moment and the database stayed busy; {doing}. "
        "Please try again in a moment."
    )


@contextmanager
def _write_transaction(engine: Engine, deadline: float) -> Iterator[Session]:
    door = _door(engine)
    if not door.gate.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise _busy("nothing was saved")
    try:
        # The transaction begins with the first statement: SQLite then takes its write lock
        # (waiting until the deadline at most), PostgreSQL waits for row locks until then only.
        options = {"clientdesk_wait_ms": _wait_ms(deadline)}
        with Session(engine, expire_on_commit=False, execution_options=options) as session:
            with session.begin():
                yield session
    finally:
        door.gate.release()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception.

    Every write in ClientDesk (and the audit row that goes with it) happens inside one of these,
    so a write and its audit record land together or not at all. It waits (bounded by
    CLIENTDESK_DB_WRITE_TIMEOUT) for colleagues' locks, then raises ``DatabaseBusy``; it cannot
    re-run the body, so busy write paths use ``write`` instead.
    """
    deadline = time.monotonic() + _door(engine).limits.write_timeout_seconds
    try:
        with _write_transaction(engine, deadline) as session:
            yield session
    except PoolTimeout:
        log.warning("database pool exhausted; consider raising CLIENTDESK_DB_MAX_OVERFLOW")
        raise _busy("nothing was saved") from None
    except DBAPIError as exc:
        if is_lock_conflict(exc):
            raise _busy("nothing was saved") from None
        raise


def write(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run ``work(session)`` in one write transaction and return its result.

    When a colleague's transaction holds a lock the work needs (SQLite busy, PostgreSQL
    deadlock, serialization failure or lock timeout), everything is rolled back and ``work``
    runs again from the start, with jittered backoff, until CLIENTDESK_DB_WRITE_TIMEOUT has
    passed; then ``DatabaseBusy``. ``work`` must therefore do nothing outside the database
    (no email, no files): those happen after ``write`` returns. Other errors are raised at once.
    """
    deadline = time.monotonic() + _door(engine).limits.write_timeout_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            with _write_transaction(engine, deadline) as session:
                return work(session)
        except PoolTimeout:
            log.warning("database pool exhausted; consider raising CLIENTDESK_DB_MAX_OVERFLOW")
            raise _busy("nothing was saved") from None
        except DBAPIError as exc:
            if not is_lock_conflict(exc):
                raise
            pause = random.uniform(0, min(0.5, 0.02 * 2**attempt))
            if time.monotonic() + pause >= deadline:
                log.warning("write gave up after %d attempts on lock conflicts", attempt)
                raise _busy("nothing was saved") from None
            time.sleep(pause)


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A read-only transaction for pure reads (lists, search, reports, a client's record).
    Anything that audits or saves uses ``write``.

    PostgreSQL: ``SET TRANSACTION READ ONLY``. SQLite: a plain deferred BEGIN (under WAL it
    never waits for a writer) on a connection switched to ``PRAGMA query_only``. Either way a
    write inside it is refused by the database (``ReadOnlyWrite`` here), so a read path can
    never start writing unnoticed. It never passes the write gate; on SQLite it waits only for
    a read slot (``SQLITE_READS_AT_ONCE``).
    """
    door = _door(engine)
    # A read inside a save is part of the save: it never waits for a read slot.
    gate = door.read_gate if door.read_gate and not door.gate.held_here() else None
    if gate and not gate.acquire(timeout=door.limits.pool_timeout_seconds):
        raise _busy("this page could not be read")
    try:
        with Session(engine.execution_options(clientdesk_read_only=True)) as session:
            with session.begin():
                yield session
    except PoolTimeout:
        log.warning("database pool exhausted; consider raising CLIENTDESK_DB_MAX_OVERFLOW")
        raise _busy("this page could not be read") from None
    except DBAPIError as exc:
        if is_read_only_refusal(exc):
            log.error("a write was attempted inside read_session and refused")
            raise ReadOnlyWrite(
                "A read-only transaction refused a write; nothing was written."
            ) from None
        raise
    finally:
        if gate:
            gate.release()


def exclusive(session: Session, name: str) -> None:
    """Hold a named lock until the write transaction ends (numbering, rate counts).

    PostgreSQL: a transaction-level advisory lock. SQLite: ``write``/``transaction`` already
    hold the database's only write lock from the start, so nothing more is needed.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"clientdesk:{name}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def alembic_config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Apply every pending Alembic migration (the only way tables are created)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def check_ready(engine: Engine) -> None:
    """Raise ``DatabaseNotReady`` with a plain explanation unless the schema is current."""
    url = engine.url.render_as_string(hide_password=False)
    try:
        current = current_revision(engine)
    except (OperationalError, SQLAlchemyError) as exc:
        raise DatabaseNotReady(
            f"The database at {engine.url.render_as_string(hide_password=True)} cannot be "
            f"reached ({type(exc).__name__}). Check DATABASE_URL and that the server is running."
        ) from None
    head = head_revision(url)
    if current is None:
        raise DatabaseNotReady(
            "The database has no ClientDesk tables yet. Run `make migrate` "
            "(or `python -m lib.cli migrate`) and reload this page."
        )
    if current != head:
        raise DatabaseNotReady(
            f"The database schema is at revision {current} but this version of ClientDesk "
            f"needs {head}. Run `make migrate` (or `python -m lib.cli migrate`) and reload."
        )


def ensure_ready(engine: Engine, *, auto_upgrade: bool, settings: Settings | None = None) -> None:
    """Upgrade when allowed (as the migration role when one is set), then verify.
    Used by the app at start-up."""
    if auto_upgrade:
        try:
            if settings is not None and settings.migration_database_url:
                from lib.migrate import migrate  # lib.migrate builds on this module

                migrate(settings)
            else:
                upgrade(engine)
        except (OperationalError, SQLAlchemyError) as exc:
            raise DatabaseNotReady(
                "The database could not be upgraded "
                f"({type(exc).__name__}). Check DATABASE_URL and the server."
            ) from None
    check_ready(engine)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
