"""Issue 10 in lib, on both engines: saves store what the user saw and meant.

- A save writes only the fields the user changed, and is refused (naming who and when) when
  the tab changed underneath (items 1, 5).
- A save that did not touch the status never changes it; a status change needs a reason
  (item 2).
- An appointment that has not started cannot be completed (item 7).
- The money parser takes only what an accountant writes (item 12).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from lib import appointments, services
from lib import client_record as cr
from lib.db import transaction
from lib.edits import StaleEdit, user_changes
from lib.models import Client, ClientStatusChange, LedgerEntry
from lib.money import MoneyError, parse_amount
from lib.policy import ADMIN, MANAGER
from lib.timeutil import utcnow
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user


@pytest.fixture
def people(engine):
    with transaction(engine) as session:
        alice = make_user(session, MANAGER, "alice")
        beatriz = make_user(session, ADMIN, "beatriz")
        client_id = make_client(session)
    return alice, beatriz, client_id


def _save(engine, actor, client_id, section, version, reason="", **changes) -> int:
    with transaction(engine) as session:
        return cr.save_section(
            session,
            actor=actor,
            client_id=client_id,
            section=section,
            changes=changes,
            expected_version=version,
            status_reason=reason,
        )


def _client(engine, client_id) -> Client:
    with transaction(engine) as session:
        client = session.get(Client, client_id)
        session.expunge(client)
        return client


def test_user_changes_are_what_differs_from_what_was_shown():
    shown = {"a": "x", "b": None, "c": "", "d": date(2020, 1, 1), "e": 0}
    submitted = {"a": "x ", "b": "", "c": None, "d": date(2020, 1, 2), "e": 0}
    assert user_changes(shown, submitted) == {"d": date(2020, 1, 2)}


def test_a_stale_save_is_refused_and_the_colleagues_value_survives(engine, people):
    alice, beatriz, client_id = people
    assert _save(engine, alice, client_id, "personal", 1, referral_source="Dr. Smith (PCP)") == 2
    with pytest.raises(StaleEdit, match="Changed by Test manager at"):
        _save(engine, beatriz, client_id, "personal", 1, gender_identity="Man")
    # After a reload (version 2) Beatriz's save of her own field keeps Alice's.
    assert _save(engine, beatriz, client_id, "personal", 2, gender_identity="Man") == 3
    stored = _client(engine, client_id)
    assert (stored.referral_source, stored.gender_identity) == ("Dr. Smith (PCP)", "Man")


def test_a_save_that_did_not_touch_the_status_never_changes_it(engine, people):
    alice, _, client_id = people
    _save(engine, alice, client_id, "personal", 1, reason="Moved away", status="inactive")
    _save(engine, alice, client_id, "personal", 2, pronouns="they/them")
    stored = _client(engine, client_id)
    assert (stored.status, stored.pronouns) == ("inactive", "they/them")
    with transaction(engine) as session:
        reasons = session.scalars(
            select(ClientStatusChange.reason).where(ClientStatusChange.client_id == client_id)
        ).all()
    assert reasons == ["Moved away"]  # factories write no history row for the first status


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_status_change_needs_a_reason(engine, people, reason):
    alice, _, client_id = people
    with pytest.raises(ValidationError) as refused:
        _save(engine, alice, client_id, "personal", 1, reason=reason, status="discharged")
    assert refused.value.errors == {"status_reason": "Say why the status changes."}
    with pytest.raises(ValidationError):
        with transaction(engine) as session:
            cr.change_status(
                session,
                actor=alice,
                client_id=client_id,
                new_status="inactive",
                reason=reason,
                expected_version=1,
            )
    assert _client(engine, client_id).status == "active"


def test_an_appointment_that_has_not_started_cannot_be_completed(engine, late_evening):
    with transaction(engine) as session:
        actor = make_user(session, MANAGER)
        clinician_id = make_clinician(session)
        client_id = make_client(session, clinician_id=clinician_id)
        service_id = services.save_service(
            session,
            actor=make_user(session, ADMIN),
            code="90837",
            description="Psychotherapy, 60 min",
            fee_cents=18000,
            default_minutes=60,
        )

        def book(starts_at: datetime) -> int:
            return appointments.schedule(
                session,
                actor=actor,
                client_id=client_id,
                starts_at=starts_at,
                duration_minutes=60,
                clinician_id=clinician_id,
                service_id=service_id,
            )

        later_tonight = book(utcnow() + timedelta(minutes=20))  # 23:50 practice time
        next_week = book(utcnow() + timedelta(days=5))
        for appointment_id in (later_tonight, next_week):
            for status in ("completed", "no_show"):
                with pytest.raises(appointments.AppointmentError, match="once it has started"):
                    appointments.set_status(
                        session,
                        actor=actor,
                        appointment_id=appointment_id,
                        status=status,
                        expected_version=1,
                    )
        assert (
            session.scalar(select(LedgerEntry.id).where(LedgerEntry.client_id == client_id)) is None
        )
        # Cancelling ahead of time is fine; one that started an hour ago can be completed.
        appointments.set_status(
            session, actor=actor, appointment_id=next_week, status="cancelled", expected_version=1
        )
        started = book(utcnow() - timedelta(hours=1))
        appointments.set_status(
            session, actor=actor, appointment_id=started, status="completed", expected_version=1
        )
        charged = session.scalars(
            select(LedgerEntry.service_date).where(LedgerEntry.client_id == client_id)
        ).all()
        assert charged == [late_evening.date()]


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("125", 12500),
        ("125.5", 12550),
        ("$1,250.00", 125000),
        ("$ 1,250", 125000),
        ("1,234,567.89", 123456789),
        (".50", 50),
    ],
)
def test_amounts_an_accountant_writes_are_accepted(typed, cents):
    assert parse_amount(typed) == cents


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1,0,0", "groups of three"),
        ("12,34", "groups of three"),
        ("1,2345", "groups of three"),
        ("１２", "digits 0–9"),
        ("١٢٣", "digits 0–9"),
        ("12 34", "as a number"),
        ("1e3", "as a number"),
        ("1.234", "two decimals"),
        ("(5.00)", "negative"),
        ("$", "as a number"),
    ],
)
def test_amounts_no_accountant_writes_are_refused(typed, message):
    with pytest.raises(MoneyError, match=message):
        parse_amount(typed)
