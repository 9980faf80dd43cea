"""The collections worklist, payment plans, contacts and batch reminders (issue 15), on SQLite
and PostgreSQL. Reminders go to a real SMTP server (aiosmtpd) through the outbox and worker."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from lib import (
    collection_contacts,
    collection_reminders,
    collections_worklist,
    payment_plans,
    postings,
    worker,
)
from lib.db import read_session, transaction
from lib.models import AuditEntry, Client, CollectionContact, DocumentLogEntry, MessageOutbox
from lib.policy import PermissionDenied
from lib.timeutil import practice_today
from lib.validation import ValidationError
from tests.factories import make_client, make_user
from tests.test_mail_smtp import smtp  # noqa: F401  (fixture: a real SMTP server)

_keys = itertools.count(1)


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


@dataclass(frozen=True)
class Office:
    biller: object
    manager: object
    clinician: object


@pytest.fixture
def office(engine) -> Office:
    with transaction(engine) as session:
        return Office(
            make_user(session, "biller"),
            make_user(session, "manager"),
            make_user(session, "clinician"),
        )


def client(
    engine, last: str, *, email: str = "", email_ok: bool = False, dob=date(1980, 1, 2)
) -> int:
    with transaction(engine) as session:
        cid = make_client(session, first_name="Pat", last_name=last, email=email, dob=dob)
        session.get(Client, cid).email_ok = email_ok
    return cid


def charge(engine, client_id: int, cents: int, days_ago: int, responsibility="client") -> None:
    with transaction(engine) as session:
        postings.post_charge(
            session,
            actor=None,
            client_id=client_id,
            amount_cents=cents,
            responsibility=responsibility,
            service_date=practice_today() - timedelta(days=days_ago),
            idempotency_key=key("charge"),
        )


def pay(engine, actor, client_id: int, cents: int) -> int:
    with transaction(engine) as session:
        return postings.record_payment(
            session,
            actor=actor,
            client_id=client_id,
            amount_cents=cents,
            method="cash",
            idempotency_key=key("pay"),
        ).entry_id


def worklist(engine, actor, **filters) -> collections_worklist.Worklist:
    with read_session(engine) as session:
        return collections_worklist.worklist(session, actor=actor, **filters)


def log(engine, actor, client_id: int, **fields) -> tuple[int, bool]:
    fields.setdefault("kind", "call")
    fields.setdefault("outcome", "no_answer")
    fields.setdefault("idempotency_key", key("contact"))
    with transaction(engine) as session:
        return collection_contacts.log_contact(session, actor=actor, client_id=client_id, **fields)


# --- selection and order ---------------------------------------------------------------------


def test_the_worklist_holds_old_balances_over_the_threshold_most_pressing_first(engine, office):
    older = client(engine, "Older")  # $500 for 100 days: 50,000
    bigger = client(engine, "Bigger")  # $1,000 for 40 days: 40,000
    small = client(engine, "Small")  # $40: under the $50 threshold
    recent = client(engine, "Recent")  # $300, only 10 days old
    insured = client(engine, "Insured")  # the old charge is insurance's; their own is recent
    charge(engine, older, 50_000, 100)
    charge(engine, bigger, 100_000, 40)
    charge(engine, small, 4_000, 200)
    charge(engine, recent, 30_000, 10)
    charge(engine, insured, 90_000, 120, responsibility="insurance")
    charge(engine, insured, 20_000, 5)

    found = worklist(engine, office.biller, threshold_cents=5_000, days=30)

    assert [r.client_id for r in found.rows] == [older, bigger]
    assert found.total_count == 2 and found.total_owed_cents == 150_000
    top = found.rows[0]
    assert top.priority == 500 * 100 and top.age_days == 100
    assert top.reasons == "Owes $500.00, unpaid for 100 days"
    assert top.name == "Older, Pat"
    # The filters move the list: "older than 4 days" takes in the recent ones, $30 the small.
    wider = worklist(engine, office.biller, threshold_cents=3_000, days=4)
    assert {r.client_id for r in wider.rows} == {older, bigger, small, recent, insured}


def test_credit_counts_against_what_is_owed(engine, office):
    cid = client(engine, "Credit")
    charge(engine, cid, 10_000, 90)
    pay(engine, office.biller, cid, 6_000)
    assert worklist(engine, office.biller, threshold_cents=5_000).rows == []
    assert [r.owed_cents for r in worklist(engine, office.biller, threshold_cents=3_000).rows] == [
        4_000
    ]


def test_only_billing_roles_see_the_worklist(engine, office):
    with read_session(engine) as session, pytest.raises(PermissionDenied):
        collections_worklist.worklist(session, actor=office.clinician)


# --- payment plans ----------------------------------------------------------------------------


def plan(engine, actor, client_id: int, cents: int, schedule: str, start: date) -> None:
    with transaction(engine) as session:
        payment_plans.start_plan(
            session,
            actor=actor,
            client_id=client_id,
            instalment_cents=cents,
            schedule=schedule,
            start_on=start,
        )


def status(engine, client_id: int) -> payment_plans.PlanStatus:
    with read_session(engine) as session:
        return payment_plans.statuses(session)[client_id]


def test_plan_status_follows_the_payments_posted_since_it_started(late_evening, engine, office):
    """At 23:30 in New York (04:30 UTC tomorrow): today's instalment is not missed yet, and a
    payment posted now counts for today."""
    today = practice_today()
    cid = client(engine, "Planned")
    charge(engine, cid, 20_000, 60)
    plan(engine, office.biller, cid, 2_500, "weekly", today - timedelta(days=14))
    # Instalments on today-14 and today-7 were asked for; today's is due, not missed.
    assert status(engine, cid).asked_cents == 5_000
    assert status(engine, cid).paid_cents == 0

    first = pay(engine, office.biller, cid, 2_500)
    s = status(engine, cid)
    assert (s.on_track, s.behind_cents, s.summary) == (
        False,
        2_500,
        "$25.00 weekly · behind by $25.00",
    )
    row = next(r for r in worklist(engine, office.biller, threshold_cents=50_000).rows)
    assert row.client_id == cid and "Payment plan behind by $25.00" in row.reasons

    pay(engine, office.biller, cid, 2_500)
    assert status(engine, cid).on_track
    assert status(engine, cid).next_due_on == today
    assert worklist(engine, office.biller, threshold_cents=50_000).rows == []

    # A reversed payment no longer counts: behind again.
    with transaction(engine) as session:
        postings.reverse_entry(
            session, actor=office.biller, entry_id=first, reason="bounced", idempotency_key="rev"
        )
    assert status(engine, cid).behind_cents == 2_500


def test_a_plan_starting_today_asks_for_nothing_yet(late_evening, engine, office):
    cid = client(engine, "Fresh")
    plan(engine, office.biller, cid, 5_000, "monthly", practice_today())
    assert status(engine, cid).on_track and status(engine, cid).asked_cents == 0


def test_monthly_instalments_fall_on_the_same_day_or_the_months_last(engine):
    assert payment_plans.due_dates("monthly", date(2026, 1, 31), date(2026, 4, 1)) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
    ]
    assert payment_plans.due_dates("biweekly", date(2026, 1, 1), date(2026, 1, 16)) == [
        date(2026, 1, 1),
        date(2026, 1, 15),
    ]


def test_a_new_plan_ends_the_old_one_and_both_are_audited(engine, office):
    cid = client(engine, "Twice")
    plan(engine, office.biller, cid, 1_000, "weekly", practice_today())
    plan(engine, office.biller, cid, 2_000, "monthly", practice_today())
    plan(engine, office.biller, cid, 2_000, "monthly", practice_today())  # a double click
    with read_session(engine) as session:
        assert payment_plans.statuses(session)[cid].instalment_cents == 2_000
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.client_id == cid).order_by(AuditEntry.id)
        ).all()
    assert actions == ["payment_plan.start", "payment_plan.end", "payment_plan.start"]
    with transaction(engine) as session, pytest.raises(ValidationError) as refused:
        payment_plans.start_plan(
            session,
            actor=office.biller,
            client_id=cid,
            instalment_cents=0,
            schedule="yearly",
            start_on=practice_today(),
        )
    assert set(refused.value.errors) == {"instalment_cents", "schedule"}


# --- contacts ---------------------------------------------------------------------------------


def test_a_contact_is_audited_and_its_follow_up_puts_the_client_on_todays_list(
    late_evening, engine, office
):
    cid = client(engine, "Follow")
    charge(engine, cid, 2_000, 5)  # too little and too recent for the list on its own
    assert worklist(engine, office.biller).rows == []

    today = practice_today()
    contact_id, duplicate = log(
        engine,
        office.biller,
        cid,
        outcome="promised",
        note="Will pay Friday",
        promise_cents=2_000,
        promise_on=today + timedelta(days=3),
        follow_up_on=today + timedelta(days=1),
        idempotency_key="once",
    )
    assert not duplicate
    assert log(engine, office.biller, cid, idempotency_key="once") == (contact_id, True)
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(CollectionContact)) == 1
        audit_client, after = session.execute(
            select(AuditEntry.client_id, AuditEntry.after_json).where(
                AuditEntry.action == "collections.contact"
            )
        ).one()
    assert audit_client == cid and '"outcome": "promised"' in after
    assert worklist(engine, office.biller).rows == []  # the follow-up is tomorrow

    log(engine, office.biller, cid, outcome="left_message", follow_up_on=today)
    row = worklist(engine, office.biller).rows[0]
    assert (row.client_id, row.reasons) == (cid, "Follow-up due today")
    assert row.last_contact == "Call · Left a message"
    assert row.promise == f"$20.00 by {today + timedelta(days=3):%m/%d/%Y}"

    log(engine, office.biller, cid, outcome="reached")  # the newest contact has no follow-up
    assert worklist(engine, office.biller).rows == []


def test_a_contact_with_bad_fields_writes_nothing(engine, office):
    cid = client(engine, "Bad")
    with pytest.raises(ValidationError) as refused:
        log(
            engine,
            office.biller,
            cid,
            outcome="promised",
            follow_up_on=practice_today() - timedelta(days=1),
        )
    assert set(refused.value.errors) == {"follow_up_on", "promise_cents", "promise_on"}
    with pytest.raises(PermissionDenied):
        log(engine, office.clinician, cid)
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(CollectionContact)) == 0


def test_the_worklist_shows_the_last_statement(engine, office, tmp_path):
    from lib import statements

    cid = client(engine, "Stated")
    charge(engine, cid, 50_000, 60)
    assert worklist(engine, office.biller).rows[0].last_statement_at is None
    with transaction(engine) as session:
        statements.create_statements(
            session, actor=office.biller, client_ids=[cid], data_dir=tmp_path
        )
    assert worklist(engine, office.biller).rows[0].last_statement_at is not None


# --- batch reminder emails --------------------------------------------------------------------


def test_a_batch_reminder_goes_once_only_to_clients_who_agreed_and_names_no_balance(
    engine,
    office,
    smtp,  # noqa: F811
):
    agreed = client(engine, "Quintanilla", email="agreed@example.org", email_ok=True)
    refused = client(engine, "Refused", email="refused@example.org", email_ok=False)
    no_address = client(engine, "Nowhere", email_ok=True)
    for cid in (agreed, refused, no_address):
        charge(engine, cid, 123_456, 90)

    def click():
        with transaction(engine) as session:
            return collection_reminders.send_reminders(
                session,
                actor=office.biller,
                client_ids=[agreed, refused, no_address],
                idempotency_key="batch-1",
                mail_settings=smtp.settings,
            )

    first, second = click(), click()
    assert (first.queued, first.duplicate) == (1, False)
    assert {c for c, _ in first.skipped} == {refused, no_address}
    assert (second.queued, second.duplicate) == (0, True)

    delivered = worker.deliver_due(engine, mail_settings=smtp.settings)
    assert delivered.sent == 1
    assert [to for to, _ in smtp.inbox.messages] == [["agreed@example.org"]]
    message = smtp.inbox.messages[0][1]
    body = message.get_content()
    for never in ("$", "1,234.56", "1234", "Quintanilla", "Pat", "1980"):
        assert never not in body and never not in message["Subject"]
    assert "reminder" in message["Subject"].lower()
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(MessageOutbox)) == 1
        log_row = session.execute(
            select(DocumentLogEntry.client_id, DocumentLogEntry.kind, DocumentLogEntry.status)
        ).one()
        contact = session.execute(
            select(CollectionContact.client_id, CollectionContact.kind, CollectionContact.outcome)
        ).one()
    assert tuple(log_row) == (agreed, "account_reminder", "sent")
    assert tuple(contact) == (agreed, "email", "sent")
