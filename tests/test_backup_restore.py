"""Backups that restore (issue 12 item 7): `python -m lib.cli backup` / `restore`, both engines.

The round trip runs while colleagues keep posting payments: the backup is one consistent
snapshot (it reconciles, and holds every payment saved before it began), the uploads and the
outbox come back byte for byte, everything is readable by its owner only, and a restore refuses
a target that holds data unless --force is given.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lib import auth, postings
from lib.backup import BackupError, create_backup
from lib.config import load_settings
from lib.db import make_engine, read_session, write
from lib.models import Client, LedgerEntry, User
from lib.reconcile import reconcile
from lib.restore import RestoreRefused, restore_backup
from tests.conftest import as_owner

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
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


def settings_env(url: str, data_dir: Path) -> dict[str, str]:
    env = {"CLIENTDESK_DATA_DIR": str(data_dir)}
    if url.startswith("postgresql"):
        env.update(DATABASE_URL=url, CLIENTDESK_MIGRATION_DATABASE_URL=as_owner(url))
    else:
        env["DATABASE_URL"] = url
    return env


def practice_files(data_dir: Path) -> dict[str, bytes]:
    """An uploaded form attachment and an email in the outbox, as the app leaves them."""
    files = {
        "forms/3f1c0b9e6a2d4c5e8f7a1b2c3d4e5f60.pdf": b"%PDF-1.4 consent form\n",
        "outbox/20261129T233000-1a2b3c4d.eml": b"Subject: Riverbend: your receipt\n\nThanks\n",
    }
    for name, content in files.items():
        (data_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / name).write_bytes(content)
    return files


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def payment_keys(engine) -> set[str]:
    with read_session(engine) as session:
        return set(
            session.scalars(
                select(LedgerEntry.idempotency_key).where(
                    LedgerEntry.idempotency_key.like("colleague-%")
                )
            )
        )


class Colleagues:
    """Billers posting payments through the app's write door until told to stop."""

    def __init__(self, engine, writers: int = 4):
        with read_session(engine) as session:
            self.actor = auth.actor_for(
                session.scalar(select(User).where(User.username == "biller"))
            )
            self.client_ids = list(session.scalars(select(Client.id).limit(40)))
        self.engine, self.stop = engine, threading.Event()
        self.acked: list[tuple[float, str]] = []
        self.tried: set[str] = set()
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._work, args=(i,)) for i in range(writers)]

    def _work(self, i: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            key = f"colleague-{i}-{n}"
            self.tried.add(key)
            client_id = self.client_ids[(i * 7 + n) % len(self.client_ids)]
            try:
                write(
                    self.engine,
                    lambda s, c=client_id, k=key: postings.record_payment(
                        s,
                        actor=self.actor,
                        client_id=c,
                        amount_cents=500,
                        method="cash",
                        idempotency_key=k,
                    ),
                )
            except Exception as exc:
                self.errors.append(type(exc).__name__)
                continue
            self.acked.append((time.monotonic(), key))

    def __enter__(self):
        for t in self.threads:
            t.start()
        while len(self.acked) < 5:  # they are saving before the backup starts
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


@pytest.mark.slow  # a round trip: backup under load, restore, check
def test_a_backup_taken_while_colleagues_save_restores_everything_saved_before_it(
    demo_url, demo_engine, db_kind, templates, tmp_path
):
    source_dir, target_dir = tmp_path / "source", tmp_path / "target"
    source_dir.mkdir(mode=0o700)
    files = practice_files(source_dir)
    archive = tmp_path / "backups" / "practice.tar.gz"
    with Colleagues(demo_engine) as colleagues:
        began = time.monotonic()
        backed_up = cli("backup", "--to", str(archive), env=settings_env(demo_url, source_dir))
        ended = time.monotonic()
    assert backed_up.returncode == 0, backed_up.stderr
    assert colleagues.errors == []
    saved_before = {k for at, k in colleagues.acked if at < began}
    assert mode(archive) == 0o600 and mode(archive.parent) == 0o700

    target_url = templates.empty_pg() if db_kind == "postgresql" else None
    target_url = target_url or f"sqlite:///{target_dir / 'clientdesk.db'}"
    env = settings_env(target_url, target_dir)
    restored = cli("restore", str(archive), env=env)
    assert restored.returncode == 0, restored.stderr
    assert "reconciled" in restored.stdout and "append-only" in restored.stdout
    print(f"\n{db_kind}: backup {ended - began:.2f} s while 4 colleagues saved")
    print(restored.stdout)

    target = make_engine(target_url)
    try:
        in_backup = payment_keys(target)
        assert saved_before <= in_backup  # nothing saved before the backup began is missing
        assert in_backup <= colleagues.tried  # and nothing invented
        with read_session(target) as session:
            assert reconcile(session, actor=None).ok  # one consistent moment
            entries = session.scalar(select(func.count()).select_from(LedgerEntry))
    finally:
        target.dispose()
    for name, content in files.items():
        assert (target_dir / name).read_bytes() == content
        assert mode(target_dir / name) == 0o600
        assert mode((target_dir / name).parent) == 0o700
    if db_kind == "sqlite":
        assert mode(target_dir / "clientdesk.db") == 0o600

    again = cli("restore", str(archive), env=env)
    assert again.returncode == 1
    assert "--force" in again.stderr and "Traceback" not in again.stderr
    forced = cli("restore", "--force", str(archive), env=env)
    assert forced.returncode == 0, forced.stderr
    target = make_engine(target_url)
    try:
        with read_session(target) as session:
            assert session.scalar(select(func.count()).select_from(LedgerEntry)) == entries
    finally:
        target.dispose()


@pytest.mark.slow  # a round trip
@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_restoring_over_a_database_with_a_leftover_wal_gives_the_backup_intact(
    demo_url, demo_engine, tmp_path
):
    """The old database's process crashed and left a -wal full of frames: copying a backup
    over it would read as "database disk image is malformed"; restore folds and removes it."""
    backup = create_backup(
        load_settings({"DATABASE_URL": demo_url, "CLIENTDESK_DATA_DIR": str(tmp_path / "source")})
    )
    with read_session(demo_engine) as session:
        clients_in_backup = session.scalar(select(func.count()).select_from(Client))

    target = tmp_path / "target" / "clientdesk.db"
    target.parent.mkdir()
    crash = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1])\n"
        "c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')\n"
        "c.execute('CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT)')\n"
        "c.executemany('INSERT INTO clients (name) VALUES (?)', [('x' * 500,)] * 2000)\n"
        "c.commit()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(target)], check=True)
    assert Path(f"{target}-wal").stat().st_size > 0

    settings = load_settings(
        {"DATABASE_URL": f"sqlite:///{target}", "CLIENTDESK_DATA_DIR": str(target.parent)}
    )
    with pytest.raises(RestoreRefused, match="--force"):
        restore_backup(settings, backup.path)
    restore_backup(settings, backup.path, force=True)

    raw = sqlite3.connect(target)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("SELECT COUNT(*) FROM clients").fetchone()[0] == clients_in_backup
    finally:
        raw.close()


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_a_restore_refuses_while_the_database_is_open_and_changes_nothing(
    demo_url, demo_engine, tmp_path
):
    settings = load_settings({"DATABASE_URL": demo_url, "CLIENTDESK_DATA_DIR": str(tmp_path)})
    backup = create_backup(settings, to=tmp_path / "b.tar.gz")
    with read_session(demo_engine) as session:
        before = session.scalar(select(func.count()).select_from(LedgerEntry))
        # ClientDesk is running: its connection is open while someone restores.
        with pytest.raises(BackupError, match="still open"):
            restore_backup(settings, backup.path, force=True)
    with read_session(demo_engine) as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == before


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_a_damaged_archive_is_refused_before_anything_is_touched(demo_url, tmp_path):
    source = load_settings({"DATABASE_URL": demo_url, "CLIENTDESK_DATA_DIR": str(tmp_path)})
    archive = create_backup(source, to=tmp_path / "b.tar.gz").path
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    target_dir = tmp_path / "target"
    env = settings_env(f"sqlite:///{target_dir / 'clientdesk.db'}", target_dir)
    done = cli("restore", "--force", str(damaged), env=env)
    assert done.returncode == 1
    assert "not a readable backup" in done.stderr or "damaged" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (target_dir / "clientdesk.db").exists()
