"""The weekly A/R digest (issue 15): managers opt in, the worker sends aggregates only, once a
week per manager even with several workers; delivered to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from lib import digest, postings, worker
from lib.db import read_session, transaction
from lib.models import AuditEntry, DigestSend, MessageOutbox, User
from lib.policy import PermissionDenied
from lib.timeutil import practice_today
from tests.factories import make_client, make_user
from tests.test_mail_smtp import smtp  # noqa: F401  (fixture: a real SMTP server)

TZ = "America/New_York"
BASE_URL = "https://clientdesk.example.org"
CLIENT_LAST = "Quintanilla"
CLIENT_FIRST = "Marisol"
DOB = date(1984, 3, 7)


def practice(engine):
    with transaction(engine) as session:
        manager = make_user(session, "manager")
        session.get(User, manager.user_id).email = "manager@example.org"
        biller = make_user(session, "biller")
        cid = make_client(session, first_name=CLIENT_FIRST, last_name=CLIENT_LAST, dob=DOB)
        postings.post_charge(
            session,
            actor=None,
            client_id=cid,
            amount_cents=123_456,
            responsibility="client",
            service_date=practice_today() - timedelta(days=90),
            idempotency_key="old-charge",
        )
    return manager, biller


def subscribe(engine, actor, on=True) -> None:
    with transaction(engine) as session:
        digest.set_subscribed(session, actor=actor, on=on)


def run(engine, settings, now=None) -> int:
    return digest.queue_due_digests(
        engine, mail_settings=settings, base_url=BASE_URL, practice_tz=TZ, now=now
    )


def test_a_manager_opts_in_and_gets_aggregates_only_once_a_week(
    engine,
    smtp,  # noqa: F811
):
    manager, biller = practice(engine)
    assert run(engine, smtp.settings) == 0  # nobody asked for it
    with pytest.raises(PermissionDenied):
        subscribe(engine, biller)
    subscribe(engine, manager)

    assert run(engine, smtp.settings) == 1
    assert run(engine, smtp.settings) == 0  # the same week: nothing more
    assert worker.deliver_due(engine, mail_settings=smtp.settings).sent == 1
    [(to, message)] = smtp.inbox.messages
    assert to == ["manager@example.org"]
    body, subject = message.get_content(), message["Subject"]
    assert "digest" in subject.lower()
    for never in (CLIENT_LAST, CLIENT_FIRST, "1984", "03/07", "3/7", str(DOB)):
        assert never not in body and never not in subject
    assert "Net A/R: $1,234.56" in body
    assert "Clients on the collections worklist: 1" in body
    assert "Days in A/R:" in body
    assert f"{BASE_URL}/" in body

    next_week = datetime.now(UTC) + timedelta(days=7)
    assert run(engine, smtp.settings, now=next_week) == 1
    subscribe(engine, manager, on=False)
    assert run(engine, smtp.settings, now=next_week + timedelta(days=7)) == 0
    with read_session(engine) as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("digest.%"))
        ).all()
    assert actions.count("digest.subscribe") == 1 and actions.count("digest.unsubscribe") == 1


def test_several_workers_at_once_queue_one_digest(engine, smtp):  # noqa: F811
    manager, _ = practice(engine)
    subscribe(engine, manager)
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def one_worker():
        start.wait()
        try:
            results.append(run(engine, smtp.settings))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one_worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(results) == 1
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(DigestSend)) == 1
        assert session.scalar(select(func.count()).select_from(MessageOutbox)) == 1


def test_the_change_over_the_week_is_signed(engine):
    figures = digest.Figures(date(2026, 12, 6), 90_000, 100_000, 41.25, 3)
    _, body = digest.digest_text("Riverbend", figures, BASE_URL)
    assert "Change over the week: −$100.00 (from $1,000.00)" in body
    assert "Days in A/R: 41.2" in body


def test_a_subscriber_without_an_email_address_is_told_and_skipped(
    engine,
    smtp,  # noqa: F811
):
    with transaction(engine) as session:
        manager = make_user(session, "manager")  # no email on the account
    subscribe(engine, manager)
    with read_session(engine) as session:
        assert "no email address" in digest.address_problem(session, actor=manager)
    assert run(engine, smtp.settings) == 0


def test_the_workers_round_queues_and_sends_the_digest(
    engine,
    smtp,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setenv("CLIENTDESK_BASE_URL", "https://desk.example.org/")
    manager, _ = practice(engine)
    subscribe(engine, manager)
    first = worker.run_round(engine, mail_settings=smtp.settings, practice_tz=TZ)
    again = worker.run_round(engine, mail_settings=smtp.settings, practice_tz=TZ)
    assert (first.digests, first.delivery.sent, again.digests) == (1, 1, 0)
    assert "digests queued 1" in first.summary()
    [(_, message)] = smtp.inbox.messages
    assert "https://desk.example.org/" in message.get_content()
