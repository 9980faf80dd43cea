"""Backups (spec A4, A8): one archive of the database and the data folders, on both engines.

A backup is one ``.tar.gz`` readable by its owner only: the database, taken online and
consistent while colleagues keep saving (SQLite's backup API; ``pg_dump``'s snapshot), then
every folder of the data directory (form uploads, the email outbox, statements), and a
manifest with each member's SHA-256. ``lib.restore`` puts one back and checks it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from lib.config import Settings, process_environment
from lib.db import current_revision, make_engine
from lib.migrate import migration_url

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE_MEMBER = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
FILES = "files"
NOT_BACKED_UP = {"backups", "bench"}  # folders of the data directory that are not practice data
CHUNK = 1 << 20


class BackupError(RuntimeError):
    """Nothing was backed up or restored; the message says why (safe to show)."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    engine: str
    revision: str | None
    files: int
    size_bytes: int
    seconds: float


def engine_kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password (which goes in the environment, never on
    a command line that ``ps`` shows)."""
    parsed = make_url(url)
    env = process_environment()
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    bare = parsed.set(drivername="postgresql", password=None)
    return bare.render_as_string(hide_password=False), env


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"`{name}` is not installed. Install the PostgreSQL client programs "
            "(version 15 or newer, e.g. `apt-get install postgresql-client-15`)."
        )
    return path


def run_tool(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # pg_dump/pg_restore messages name objects, not client data.
        detail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise BackupError(f"{what} failed: {detail}")


def data_folders(data_dir: Path) -> list[Path]:
    if not data_dir.is_dir():
        return []
    return sorted(
        p
        for p in data_dir.iterdir()
        if p.is_dir() and p.name not in NOT_BACKED_UP and not p.name.startswith(".")
    )


def _snapshot_sqlite(url: str, into: Path) -> None:
    """An online, consistent copy through SQLite's backup API (one step, under a read lock that
    never blocks writers in WAL mode)."""
    source = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(into)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")
        if target.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError("The copy of the database failed SQLite's quick check.")
    finally:
        target.close()
        source.close()


def create_backup(settings: Settings, *, to: Path | None = None) -> BackupResult:
    """Write one archive of the database and the data folders; returns where and what."""
    started = time.monotonic()
    engine_name = engine_kind(settings.database_url)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%SZ")
    if to is None:
        to = private_dir(settings.data_dir / "backups") / f"clientdesk-{engine_name}-{stamp}.tar.gz"
    elif not to.parent.exists():
        to.parent.mkdir(parents=True, mode=0o700)
    db_url = migration_url(settings)
    with tempfile.TemporaryDirectory(dir=to.parent, prefix=".backup-") as tmp:
        staged = Path(tmp) / DATABASE_MEMBER[engine_name]
        if engine_name == "sqlite":
            if not sqlite_path(db_url).exists():
                raise BackupError("There is no database to back up yet.")
            _snapshot_sqlite(db_url, staged)
            revision = _sqlite_revision(staged)
        else:
            engine = make_engine(db_url)
            try:
                revision = current_revision(engine)
            finally:
                engine.dispose()
            uri, env = libpq(db_url)
            run_tool(
                [pg_tool("pg_dump"), "--format=custom", f"--file={staged}", uri], env, "pg_dump"
            )
        manifest = {
            "format": FORMAT,
            "engine": engine_name,
            "created_at": datetime.now(UTC).isoformat(),
            "revision": revision,
            "database": {"name": staged.name, "sha256": sha256_of(staged)},
            "files": {},
        }
        partial = Path(tmp) / "archive.tar.gz"  # moved into place only once complete
        fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(staged, arcname=staged.name, filter=_owner_only)
            # Files after the database: every file the snapshot refers to is already written.
            for folder in data_folders(settings.data_dir):
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    name = f"{FILES}/{path.relative_to(settings.data_dir).as_posix()}"
                    content = path.read_bytes()
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = len(content), 0o600, int(time.time())
                    tar.addfile(info, io.BytesIO(content))
                    manifest["files"][name] = hashlib.sha256(content).hexdigest()
            blob = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(blob), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(blob))
        os.replace(partial, to)
    return BackupResult(
        path=to,
        engine=engine_name,
        revision=revision,
        files=len(manifest["files"]),
        size_bytes=to.stat().st_size,
        seconds=time.monotonic() - started,
    )


def _owner_only(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mode = 0o600
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _sqlite_revision(path: Path) -> str | None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return row[0] if row else None
