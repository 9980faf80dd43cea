"""The one door to the database: engine, sessions, the write transaction, migrations.

SQLite is the embedded default and PostgreSQL is used when ``DATABASE_URL`` is set. Both are
first-class. Pages never open connections: they call lib functions that take a ``Session``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from lib.config import PROJECT_ROOT

SQLITE_BUSY_TIMEOUT_MS = 10_000


class DatabaseNotReady(RuntimeError):
    """The database cannot be used: unreachable, or its schema is not at the current revision.

    The message is safe to show to a user: it never contains data, only what to do.
    """


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    # Python's sqlite3 opens transactions lazily; let SQLAlchemy issue BEGIN itself so
    # that "BEGIN IMMEDIATE" below really takes the write lock at the start of a write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=FULL")
    # Assert, do not assume: a read-only file system or an old SQLite can silently refuse.
    checks = {
        "foreign_keys": 1,
        "journal_mode": "wal",
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "synchronous": 2,
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


def _sqlite_on_begin(conn) -> None:
    # Writes take the write lock up front: two writers then queue on busy_timeout instead of
    # one failing half-way with "database is locked" after it has read stale data. Pure reads
    # (``read_session``) begin deferred so they never wait for a writer under WAL.
    if conn.get_execution_options().get("clientdesk_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine with the per-engine settings ClientDesk relies on."""
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[1] if "///" in url else ""
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    # hide_parameters: SQL errors must never carry client data into logs or messages.
    return create_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=5, max_overflow=10
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception.

    Every write in ClientDesk (and the audit row that goes with it) happens inside one of these,
    so a write and its audit record land together or not at all.
    """
    with session_factory(engine)() as session:
        with session.begin():
            yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for pure reads (lists, reports). Anything that audits uses ``transaction``."""
    with Session(engine.execution_options(clientdesk_read_only=True)) as session:
        with session.begin():
            yield session


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


def ensure_ready(engine: Engine, *, auto_upgrade: bool) -> None:
    """Upgrade when allowed, then verify. Used by the app at start-up."""
    if auto_upgrade:
        try:
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
