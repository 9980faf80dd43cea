"""The worker as a process (spec A7; issue 12 item 9), on SQLite and PostgreSQL.

`python -m lib.cli worker` is started as a subprocess against a test database with a real SMTP
server (aiosmtpd). A portal invitation is sent the way the button sends it; the worker delivers
it, and SIGTERM stops it cleanly (exit code 0) within a bounded time. A mail server that takes
its time must not hold the database: while the worker is in the middle of an SMTP conversation,
another connection can write (SQLite) and no connection sits idle inside a transaction
(PostgreSQL).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from lib import mail, portal
from lib.db import transaction
from lib.models import DocumentLogEntry
from tests.test_mail_smtp import Inbox, _free_port
from tests.test_reminders import PRACTICE_NAME, Practice, add_client, build_practice

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STOP_WITHIN = 30  # seconds a worker may take to stop after SIGTERM
WAIT = 60  # seconds to wait for something the worker does every fraction of a second


@dataclass
class SlowInbox(Inbox):
    """Holds every message in the DATA step until ``release`` is set, as a slow server does."""

    in_data: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope):
        self.in_data.set()
        deadline = time.monotonic() + WAIT
        while not self.release.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@contextmanager
def smtp_server(handler: Inbox) -> Iterator[int]:
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        handler_release = getattr(handler, "release", None)
        if handler_release is not None:
            handler_release.set()
        controller.stop()


def worker_env(db_url: str, data_dir: Path, smtp_port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("CLIENTDESK_") or k == "DATABASE_URL")
    }
    env.update(
        DATABASE_URL=db_url,
        CLIENTDESK_DATA_DIR=str(data_dir),
        CLIENTDESK_SMTP_HOST="127.0.0.1",
        CLIENTDESK_SMTP_PORT=str(smtp_port),
        CLIENTDESK_SMTP_SECURITY="none",
        CLIENTDESK_MAIL_FROM="office@riverside.example",
        CLIENTDESK_MAIL_FROM_NAME=PRACTICE_NAME,
    )
    return env


@contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`python -m lib.cli worker`, looking at the outbox five times a second."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lib.cli", "worker", "--poll", "0.2"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_WITHIN)


def wait_for(what: str, done: Callable[[], bool], proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if done():
            return
        if proc.poll() is not None:
            pytest.fail(
                f"the worker exited with {proc.returncode} before {what}:\n{log.read_text()}"
            )
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()}")


def heartbeat(engine) -> tuple | None:
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT last_run_at, stopped_at, last_summary FROM worker_status")
            ).first()
    except SQLAlchemyError:  # the table is not there (yet)
        return None


def invitation_log(engine) -> list[tuple[str, str]]:
    with transaction(engine) as session:
        return [
            (e.status, e.error)
            for e in session.scalars(
                select(DocumentLogEntry).where(DocumentLogEntry.kind == "invitation")
            )
        ]


def press_invite(engine, practice: Practice, client_id: int, env: dict[str, str]) -> None:
    """What the "Invite to portal" button does, in its own transaction, with the app's mail
    settings (the same environment as the worker's)."""
    with transaction(engine) as session:
        portal.send_invitation(
            session,
            actor=practice.front_desk,
            client_id=client_id,
            mail_settings=mail.mail_settings(Path(env["CLIENTDESK_DATA_DIR"]), env=env),
            settings=portal.portal_settings(env={}),
        )


def stop(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not stop within {STOP_WITHIN} s of SIGTERM")
    assert code == 0, log.read_text()
    assert "Worker stopped." in log.read_text()
    assert "Traceback" not in log.read_text()


def test_the_worker_starts_sends_and_stops_cleanly_on_sigterm(db_url, engine, tmp_path):
    practice = build_practice(engine)
    client_id = add_client(engine, practice, dob=date(1985, 3, 7))
    inbox, log = Inbox(), tmp_path / "worker.log"
    with smtp_server(inbox) as port:
        env = worker_env(db_url, tmp_path / "data", port)
        with worker_process(env, log) as proc:
            wait_for("its first heartbeat", lambda: heartbeat(engine) is not None, proc, log)

            press_invite(engine, practice, client_id, env)
            wait_for("the invitation to arrive", lambda: len(inbox.messages) == 1, proc, log)

            ((recipients, message),) = inbox.messages
            assert recipients == ["jane.doe@example.com"]
            assert message["Subject"] == f"Your client portal invitation from {PRACTICE_NAME}"
            wait_for(
                "the log to say sent", lambda: invitation_log(engine) == [("sent", "")], proc, log
            )
            with transaction(engine) as session:
                shown = portal.portal_status(
                    session, actor=practice.front_desk, client_id=client_id
                )
            assert shown.current is not None and shown.current.status == "Invited"

            stop(proc, log)

    _, stopped_at, summary = heartbeat(engine)
    assert stopped_at is not None and summary == "stopped"
    assert "jane" not in log.read_text().lower()  # the log holds counts, never names


def test_a_slow_mail_server_does_not_hold_the_database(db_url, db_kind, engine, tmp_path):
    practice = build_practice(engine)
    client_id = add_client(engine, practice, dob=date(1985, 3, 7))
    inbox, log = SlowInbox(), tmp_path / "worker.log"
    with smtp_server(inbox) as port:
        env = worker_env(db_url, tmp_path / "data", port)
        with worker_process(env, log) as proc:
            slow_send(db_kind, engine, practice, client_id, env, inbox, proc, log)


def slow_send(
    db_kind: str,
    engine,
    practice: Practice,
    client_id: int,
    env: dict[str, str],
    inbox: SlowInbox,
    proc: subprocess.Popen,
    log: Path,
) -> None:
    """Invite while the mail server is slow, write meanwhile, then let it finish and stop."""
    # The button runs in a thread of its own, as a Streamlit session does.
    button = threading.Thread(
        target=press_invite, args=(engine, practice, client_id, env), daemon=True
    )
    button.start()
    assert inbox.in_data.wait(WAIT), f"no message reached the server:\n{log.read_text()}"

    # The mail server now holds the message in the middle of the SMTP conversation.
    if db_kind == "sqlite":
        other = sqlite3.connect(engine.url.database, timeout=2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute(
                "INSERT INTO practice_settings (key, value, updated_at) "
                "VALUES ('written_meanwhile', 'yes', CURRENT_TIMESTAMP)"
            )
            other.execute("COMMIT")
        finally:
            other.close()
    else:
        with engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND state LIKE 'idle in transaction%'"
                )
            ).scalar()
        assert waiting == 0, "a connection kept a transaction open during the SMTP send"
    button.join(timeout=WAIT)
    assert not button.is_alive()

    inbox.release.set()
    wait_for("the invitation to arrive", lambda: len(inbox.messages) == 1, proc, log)
    wait_for("the log to say sent", lambda: invitation_log(engine) == [("sent", "")], proc, log)
    stop(proc, log)
