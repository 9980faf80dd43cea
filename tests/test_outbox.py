"""The outbox and the worker's sending (spec A7, D2) on SQLite and PostgreSQL, in process.

An email is queued with its document log row and sent by the worker: it shows queued, then
sent, or — after bounded retries with growing waits — failed with the reason. Two workers
never send the same message; a claim left by a worker that died is taken over; texts and
voice calls say they wait for a provider. (The worker as a process: tests/test_worker.py.)
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select

from lib import documents, mail, outbox, worker
from lib.db import read_session, transaction
from lib.models import AuditEntry, DocumentLogEntry, MessageOutbox
from lib.policy import PermissionDenied
from lib.timeutil import utcnow
from tests.test_reminders import Practice, add_client, build_practice, unreachable_smtp


@pytest.fixture
def practice(engine) -> Practice:
    return build_practice(engine)


def eml_settings(tmp_path: Path) -> mail.MailSettings:
    return mail.mail_settings(tmp_path, env={})


def queue(engine, practice: Practice, client_id: int, settings: mail.MailSettings, n: int = 1):
    """Queue ``n`` emails to the client, as a sender does: one transaction, committed."""
    with transaction(engine) as session:
        return [
            outbox.queue_email(
                session,
                actor=practice.biller,
                client_id=client_id,
                kind="receipt",
                what=f"Receipt #{i + 1}",
                message=mail.build_message(
                    settings, to="jane.doe@example.com", subject="Receipt", body=f"Number {i}"
                ),
            )
            for i in range(n)
        ]


def log_row(engine, document_id: int) -> DocumentLogEntry:
    with transaction(engine) as session:
        return session.get(DocumentLogEntry, document_id)


def outbox_row(engine, outbox_id: int) -> MessageOutbox:
    with transaction(engine) as session:
        return session.get(MessageOutbox, outbox_id)


def emls(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "outbox").glob("*.eml"))


def test_a_queued_email_waits_for_the_worker_then_shows_sent(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    (queued,) = queue(engine, practice, client_id, eml_settings(tmp_path))

    assert (queued.status, queued.recipient) == ("queued", "jane.doe@example.com")
    assert emls(tmp_path) == []  # queuing talks to no mail server and writes no file
    with read_session(engine) as session:
        (row,) = documents.log_for_client(session, actor=practice.manager, client_id=client_id)
    assert (row.status, row.kind, row.forms) == ("Queued", "Receipt", "Receipt #1")

    delivered = worker.deliver_due(engine, mail_settings=eml_settings(tmp_path))

    assert delivered == worker.Delivery(sent=1)
    assert len(emls(tmp_path)) == 1
    assert (
        log_row(engine, queued.document_id).status,
        log_row(engine, queued.document_id).error,
    ) == (
        "sent",
        "",
    )
    stored = outbox_row(engine, queued.outbox_id)
    assert (stored.status, stored.attempts, stored.message) == ("sent", 1, None)
    assert worker.deliver_due(engine, mail_settings=eml_settings(tmp_path)) == worker.Delivery()
    assert len(emls(tmp_path)) == 1


def test_failed_attempts_are_retried_later_then_failed_with_the_reason(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    (queued,) = queue(engine, practice, client_id, eml_settings(tmp_path))
    down = unreachable_smtp(tmp_path)

    first = worker.deliver_due(engine, mail_settings=down)

    assert first == worker.Delivery(retrying=1)
    entry = log_row(engine, queued.document_id)
    assert entry.status == "queued"
    assert entry.error == (
        f"Attempt 1 of {outbox.MAX_ATTEMPTS} failed (mail server unreachable "
        "(ConnectionRefusedError)); trying again in 1 minute."
    )
    # Not due again until the wait is over.
    assert worker.deliver_due(engine, mail_settings=down) == worker.Delivery()

    elapsed = timedelta()
    for attempt, delay in enumerate(outbox.RETRY_DELAYS, start=2):
        elapsed += delay
        with time_machine.travel(utcnow() + elapsed + timedelta(seconds=1), tick=False):
            done = worker.deliver_due(engine, mail_settings=down)
        if attempt < outbox.MAX_ATTEMPTS:
            assert done == worker.Delivery(retrying=1), attempt
            assert log_row(engine, queued.document_id).error.startswith(f"Attempt {attempt} of")

    assert done == worker.Delivery(failed=1)
    entry = log_row(engine, queued.document_id)
    assert (entry.status, entry.error) == (
        "failed",
        f"mail server unreachable (ConnectionRefusedError) ({outbox.MAX_ATTEMPTS} attempts)",
    )
    assert outbox_row(engine, queued.outbox_id).attempts == outbox.MAX_ATTEMPTS
    # Failed for good: a working server later sends nothing.
    with time_machine.travel(utcnow() + elapsed + timedelta(days=1), tick=False):
        assert worker.deliver_due(engine, mail_settings=eml_settings(tmp_path)) == worker.Delivery()
    assert emls(tmp_path) == []
    with read_session(engine) as session:
        results = session.scalar(
            select(func.count()).where(
                AuditEntry.action == "email.send_result",
                AuditEntry.entity_id == str(queued.document_id),
            )
        )
    assert results == outbox.MAX_ATTEMPTS


@pytest.mark.committed  # two threads, two connections
def test_two_workers_at_once_send_each_message_once(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    queued = queue(engine, practice, client_id, eml_settings(tmp_path), n=8)
    barrier = threading.Barrier(2)
    results: list[worker.Delivery] = []

    def run() -> None:
        barrier.wait()
        results.append(worker.deliver_due(engine, mail_settings=eml_settings(tmp_path)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert len(results) == 2
    assert sum(r.sent for r in results) == 8
    assert len(emls(tmp_path)) == 8
    assert {log_row(engine, q.document_id).status for q in queued} == {"sent"}
    with read_session(engine) as session:
        attempts = session.scalars(select(MessageOutbox.attempts)).all()
    assert attempts == [1] * 8


def test_a_claim_left_by_a_stopped_worker_is_taken_over_after_ten_minutes(
    engine, practice, tmp_path
):
    client_id = add_client(engine, practice)
    (queued,) = queue(engine, practice, client_id, eml_settings(tmp_path))
    with transaction(engine) as session:  # a worker claims it, then dies before sending
        assert outbox.claim(session, outbox_id=queued.outbox_id) is not None

    assert worker.deliver_due(engine, mail_settings=eml_settings(tmp_path)) == worker.Delivery()
    with time_machine.travel(utcnow() + outbox.CLAIM_EXPIRES + timedelta(seconds=5), tick=False):
        taken_over = worker.deliver_due(engine, mail_settings=eml_settings(tmp_path))

    assert taken_over == worker.Delivery(sent=1)
    assert len(emls(tmp_path)) == 1
    assert outbox_row(engine, queued.outbox_id).attempts == 2


def test_a_late_outcome_from_a_claim_taken_over_is_not_recorded(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    (queued,) = queue(engine, practice, client_id, eml_settings(tmp_path))
    with transaction(engine) as session:
        stale = outbox.claim(session, outbox_id=queued.outbox_id)
    with (
        time_machine.travel(utcnow() + outbox.CLAIM_EXPIRES * 2, tick=False),
        transaction(engine) as session,
    ):
        fresh = outbox.claim(session, outbox_id=queued.outbox_id)
        assert fresh is not None
    failed = mail.SendResult("failed", "smtp", "SMTP 451")
    with transaction(engine) as session:
        assert outbox.finish(session, claimed=stale, result=failed) is None
        assert outbox.finish(session, claimed=fresh, result=mail.SendResult("sent", "smtp")) == (
            "sent"
        )
    assert log_row(engine, queued.document_id).status == "sent"


def test_texts_and_voice_calls_say_they_wait_for_a_provider(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    with transaction(engine) as session:
        for channel in ("sms", "voice"):
            outbox.queue_waiting(
                session,
                client_id=client_id,
                channel=channel,
                recipient="(617) 555-0142",
                body="Reminder",
                kind="reminder",
                what="Appointment reminder",
            )

    assert worker.deliver_due(engine, mail_settings=eml_settings(tmp_path)) == worker.Delivery()
    with read_session(engine) as session:
        rows = documents.log_for_client(session, actor=practice.manager, client_id=client_id)
    assert sorted((r.channel, r.status, r.error) for r in rows) == [
        ("Text", "Queued (no provider)", outbox.WAITING_FOR_PROVIDER["sms"]),
        ("Voice", "Queued (no provider)", outbox.WAITING_FOR_PROVIDER["voice"]),
    ]
    assert "no text-message provider is set up" in outbox.WAITING_FOR_PROVIDER["sms"]
    with read_session(engine) as session:
        assert set(session.scalars(select(MessageOutbox.status))) == {"queued"}


def test_admins_see_what_waits_and_when_the_worker_last_ran(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    with read_session(engine) as session:
        never = worker.worker_health(session, actor=practice.admin)
    assert (never.last_run_at, never.silent) == (None, True)

    queue(engine, practice, client_id, eml_settings(tmp_path), n=2)
    started = utcnow()
    worker.beat(engine, name="desk-1", started_at=started, summary="started")
    with read_session(engine) as session:
        health = worker.worker_health(session, actor=practice.admin)
    assert (health.name, health.silent, health.minutes_since) == ("desk-1", False, 0)
    assert health.counts.emails_waiting == 2

    later = utcnow() + worker.SILENT_AFTER + timedelta(minutes=1)
    with read_session(engine) as session:
        quiet = worker.worker_health(session, actor=practice.admin, now=later)
    assert (quiet.silent, quiet.minutes_since) == (True, 11)

    with read_session(engine) as session, pytest.raises(PermissionDenied):
        worker.worker_health(session, actor=practice.manager)


def test_a_message_that_is_no_longer_wanted_is_failed_without_sending(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    settings = eml_settings(tmp_path)
    with transaction(engine) as session:
        late = outbox.queue_email(
            session,
            actor=None,
            client_id=client_id,
            kind="reminder",
            what="Appointment reminder",
            message=mail.build_message(
                settings, to="jane.doe@example.com", subject="Reminder", body="Soon"
            ),
            send_before=utcnow() - timedelta(minutes=1),
        )
    assert worker.deliver_due(engine, mail_settings=settings) == worker.Delivery()
    assert emls(tmp_path) == []
    entry = log_row(engine, late.document_id)
    assert (entry.status, entry.error) == (
        "failed",
        "Not sent: the appointment had started before the reminder could go out.",
    )
    assert outbox_row(engine, late.outbox_id).status == "failed"
