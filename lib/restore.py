"""Restore (spec A4, A8): put a ``lib.backup`` archive back, and check it before saying so.

The archive's checksums are checked first; a target that already holds data is refused unless
``force`` is given. SQLite: the extracted copy is checked in full (integrity, schema, append-only
triggers, reconciliation) before it replaces the database, and it never meets a stale WAL: the
old file's ``-wal`` is folded in and removed first, and a database someone still has open is
refused. PostgreSQL: the target is emptied and ``pg_restore`` runs as the owner role, then the
app's role gets its grants and the result is checked. Stop the app and its worker first.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from lib.backup import (
    FILES,
    FORMAT,
    MANIFEST,
    BackupError,
    data_folders,
    engine_kind,
    libpq,
    pg_tool,
    private_dir,
    run_tool,
    sha256_of,
    sqlite_path,
)
from lib.config import Settings
from lib.db import (
    APPEND_ONLY_TABLES,
    DatabaseNotReady,
    check_ready,
    current_revision,
    head_revision,
    make_engine,
    read_session,
    upgrade,
)
from lib.migrate import migrate, migration_url, missing_append_only_triggers
from lib.models import Client, LedgerEntry
from lib.reconcile import reconcile


class RestoreRefused(BackupError):
    """The target already holds data and ``force`` was not given; nothing was changed."""


@dataclass(frozen=True)
class RestoreResult:
    engine: str
    revision: str
    clients: int
    ledger_entries: int
    files: int
    seconds: float
    checks: list[str] = field(default_factory=list)


def _unpack(archive: Path, into: Path) -> dict:
    """Extract and check every member against the manifest; raise ``BackupError`` if the
    archive is not a ClientDesk backup or is damaged."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BackupError(f"{archive.name} is not a readable backup archive ({exc}).") from None
    try:
        manifest = json.loads((into / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError(f"{archive.name} has no ClientDesk manifest.") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive.name} is a backup format this ClientDesk cannot read.")
    expected = {manifest["database"]["name"]: manifest["database"]["sha256"]}
    expected.update(manifest["files"])
    for name, digest in expected.items():
        path = into / name
        if not path.is_file() or sha256_of(path) != digest:
            raise BackupError(f"{archive.name} is damaged: {name} does not match its checksum.")
    return manifest


def _tables_with_rows(conn, tables: list[str]) -> bool:
    quote = conn.dialect.identifier_preparer.quote
    return any(
        conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {quote(t)})")).scalar()
        for t in tables
        if t != "alembic_version"
    )


def _target_holds_data(settings: Settings, owner: Engine | None) -> list[str]:
    """What in the target would be lost: a database with rows in any table, a data folder
    with files. A database that is only migrated (no rows) counts as empty."""
    found = []
    if owner is None:
        path = sqlite_path(settings.database_url)
        if path.exists() and path.stat().st_size > 0:
            probe = make_engine(f"sqlite:///{path}")
            try:
                with probe.connect() as conn:
                    tables = conn.scalars(
                        text(
                            "SELECT name FROM sqlite_master WHERE type = 'table'"
                            " AND name NOT LIKE 'sqlite_%'"
                        )
                    ).all()
                    holds = _tables_with_rows(conn, list(tables))
            except Exception:
                holds = True  # unreadable, or not a database at all: never silently replaced
            finally:
                probe.dispose()
            if holds:
                found.append(f"the database {path.name}")
    else:
        with owner.connect() as conn:
            tables = conn.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).all()
            if _tables_with_rows(conn, list(tables)):
                found.append("the database")
    for folder in data_folders(settings.data_dir):
        if any(p.is_file() for p in folder.rglob("*")):
            found.append(f"data/{folder.name}/")
    return found


def _empty_postgresql(owner: Engine) -> None:
    """Drop what the schema holds (with --force), as the owner; a connected app makes this
    wait, so the wait is short and the message says to stop it."""
    with owner.begin() as conn:
        conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        for table in list(tables):
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS public."{table}" CASCADE')
        for kind, catalog in (("SEQUENCE", "S"), ("VIEW", "v"), ("MATERIALIZED VIEW", "m")):
            names = conn.scalars(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind = :k"
                ),
                {"k": catalog},
            )
            for name in list(names):
                conn.exec_driver_sql(f'DROP {kind} IF EXISTS public."{name}" CASCADE')
        functions = conn.scalars(
            text(
                "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n"
                " ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
            )
        )
        for signature in list(functions):
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature} CASCADE")


def _release_sqlite_file(path: Path) -> None:
    """Fold the old database's WAL into it and remove the -wal/-shm files, so the restored
    file never meets a stale WAL. Needs the database to be closed by everyone else."""
    if path.exists():
        try:
            conn = sqlite3.connect(path, timeout=2)
            try:
                mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            # Locked: someone has it open. Anything else: not a database (force): replaced.
            mode = "wal" if "locked" in str(exc) or "busy" in str(exc) else "delete"
        if mode != "delete":
            raise BackupError(
                "The database is still open (is ClientDesk or its worker running?). "
                "Stop them, then restore again."
            )
    for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        leftover.unlink(missing_ok=True)


def _verify(engine: Engine, checks: list[str], *, reconciled: bool = True) -> tuple[int, int]:
    """Integrity, schema at head, append-only triggers, reconciliation; or ``BackupError``.
    ``reconciled`` False skips the ledger replay (it was already done on the same bytes)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            integrity = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
            broken_links = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if integrity != "ok" or broken_links:
            raise BackupError("The restored database failed SQLite's integrity check.")
        checks.append("SQLite integrity check: ok; foreign keys: ok")
    try:
        check_ready(engine)
    except DatabaseNotReady as exc:
        raise BackupError(f"The restored database is not usable: {exc}") from None
    checks.append(f"schema at the current revision {current_revision(engine)}")
    missing = missing_append_only_triggers(engine)
    if missing:
        raise BackupError(
            "The restored database lost its append-only protection: " + ", ".join(missing)
        )
    checks.append("append-only triggers on " + " and ".join(APPEND_ONLY_TABLES))
    with read_session(engine) as session:
        if reconciled:
            result = reconcile(session, actor=None)
            if not result.ok:
                raise BackupError(
                    "The backup's ledger does not reconcile "
                    f"({len(result.mismatches)} clients disagree): do not use this backup."
                )
            checks.append(
                f"reconciled: ledger = balances = aging over {result.clients_checked:,} clients"
            )
        clients = session.scalar(select(func.count()).select_from(Client))
        entries = session.scalar(select(func.count()).select_from(LedgerEntry))
    return clients, entries


def _restore_files(extracted: Path, data_dir: Path, scratch: Path) -> int:
    """Replace every data folder with the archive's (folders the archive lacks are emptied)."""
    incoming = extracted / FILES
    names = {p.name for p in incoming.iterdir()} if incoming.is_dir() else set()
    names |= {p.name for p in data_folders(data_dir)}
    count = 0
    for name in sorted(names):
        target = data_dir / name
        if target.exists():
            target.rename(scratch / f"old-{name}")
        source = incoming / name
        if source.is_dir():
            for path in source.rglob("*"):
                path.chmod(0o600 if path.is_file() else 0o700)
                count += path.is_file()
            source.chmod(0o700)
            source.rename(target)
    return count


def restore_backup(settings: Settings, archive: Path, *, force: bool = False) -> RestoreResult:
    """Restore ``archive`` into DATABASE_URL and the data directory, then check it."""
    started = time.monotonic()
    engine_name = engine_kind(settings.database_url)
    if not archive.is_file():
        raise BackupError(f"There is no file {archive}.")
    private_dir(settings.data_dir)
    with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix=".restore-") as tmp:
        scratch = Path(tmp)
        extracted = private_dir(scratch / "archive")
        manifest = _unpack(archive, extracted)
        if manifest["engine"] != engine_name:
            raise BackupError(
                f"This is a {manifest['engine']} backup; DATABASE_URL is {engine_name}. "
                "Restore it into the same kind of database."
            )
        owner = None if engine_name == "sqlite" else make_engine(migration_url(settings))
        try:
            found = _target_holds_data(settings, owner)
            if found and not force:
                raise RestoreRefused(
                    "Nothing was restored: the target already holds data ("
                    + ", ".join(found)
                    + "). Back it up first if you need it, then restore with --force."
                )
            checks: list[str] = []
            database = extracted / manifest["database"]["name"]
            if engine_name == "sqlite":
                _restore_sqlite(settings, database, checks)  # checked in full before the swap
            else:
                _restore_postgresql(settings, owner, database)
            files = _restore_files(extracted, settings.data_dir, scratch)
            app = make_engine(settings.database_url)
            try:
                if engine_name == "sqlite":  # the same bytes were checked in full above
                    clients, entries = _verify(app, [], reconciled=False)
                else:
                    clients, entries = _verify(app, checks)
                revision = current_revision(app) or ""
            finally:
                app.dispose()
        finally:
            if owner is not None:
                owner.dispose()
    checks.append(f"{files} files restored to {settings.data_dir}")
    return RestoreResult(
        engine=engine_name,
        revision=revision,
        clients=clients,
        ledger_entries=entries,
        files=files,
        seconds=time.monotonic() - started,
        checks=checks,
    )


def _restore_sqlite(settings: Settings, database: Path, checks: list[str]) -> None:
    """Check and, when older, migrate the extracted copy first; only then swap it in."""
    copy_url = f"sqlite:///{database}"
    copy = make_engine(copy_url)
    try:
        if current_revision(copy) != head_revision(copy_url):
            upgrade(copy)
            checks.append("migrated the backup to the current schema")
        _verify(copy, checks)
    finally:
        copy.dispose()
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to move
    finally:
        conn.close()
    target = sqlite_path(settings.database_url)
    private_dir(target.parent)
    database.chmod(0o600)
    if database.stat().st_dev != target.parent.stat().st_dev:  # another disk: copy next to it
        near = target.with_name(f".{target.name}.restoring")
        shutil.copyfile(database, near)
        near.chmod(0o600)
        database = near
    _release_sqlite_file(target)
    os.replace(database, target)  # one atomic rename: the database is old or new, never half


def _restore_postgresql(settings: Settings, owner: Engine, dump: Path) -> None:
    try:
        _empty_postgresql(owner)
    except Exception as exc:
        raise BackupError(
            f"Could not empty the target database ({type(exc).__name__}); stop ClientDesk "
            "and its worker, and make sure CLIENTDESK_MIGRATION_DATABASE_URL (or DATABASE_URL) "
            "is the tables' owner."
        ) from None
    uri, env = libpq(owner.url.render_as_string(hide_password=False))
    run_tool(
        [
            pg_tool("pg_restore"),
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={uri}",
            str(dump),
        ],
        env,
        "pg_restore",
    )
    migrate(settings)  # to head when the backup is older; grants the app's role its rights
