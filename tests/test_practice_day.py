"""Issue 10, item 8: "today" is the practice's day, never the server's (UTC) day.

Every test here runs at 23:30 in New York (04:30 UTC the next day), so anything that still
took the server's date would say tomorrow.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

import pytest

from lib import aging, appointments, clients, postings, services, statements
from lib.db import transaction
from lib.models import DocumentLogEntry, LedgerEntry
from lib.policy import ADMIN, MANAGER
from lib.timeutil import practice_day, practice_today, utcnow
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user


def test_the_clock_is_late_in_the_evening(late_evening):
    today = late_evening.date()
    assert utcnow().date() == today + timedelta(days=1)  # the server's UTC day is tomorrow
    assert practice_today() == today
    assert practice_day(late_evening.astimezone(UTC)) == today


def test_new_client_is_a_client_since_the_practice_day(engine, late_evening):
    with transaction(engine) as session:
        actor = make_user(session, MANAGER)
        new = clients.create_client(
            session, actor=actor, first_name="Ada", last_name="Byron", dob=date(1990, 1, 2)
        )
        client = session.get(clients.Client, new.client_id)
        assert client.client_since == late_evening.date()


def test_payment_is_received_today_and_tomorrow_is_the_future(engine, late_evening):
    with transaction(engine) as session:
        actor = make_user(session, MANAGER)
        client_id = make_client(session)
        result = postings.record_payment(
            session,
            actor=actor,
            client_id=client_id,
            amount_cents=5000,
            method="cash",
            idempotency_key="late-1",
        )
        assert session.get(LedgerEntry, result.entry_id).service_date == late_evening.date()
        with pytest.raises(ValidationError) as refused:
            postings.record_payment(
                session,
                actor=actor,
                client_id=client_id,
                amount_cents=5000,
                method="cash",
                idempotency_key="late-2",
                received_on=late_evening.date() + timedelta(days=1),
            )
        assert "future" in refused.value.errors["received_on"]


def test_statement_is_dated_and_named_by_the_practice_day(engine, late_evening, tmp_path):
    with transaction(engine) as session:
        actor = make_user(session, MANAGER)
        client_id = make_client(session)
        built = statements.build_statement(session, actor=actor, client_id=client_id)
        assert built.statement_date == late_evening.date()
        _, name = statements.create_statements(
            session, actor=actor, client_ids=[client_id], data_dir=tmp_path
        )
        assert name.startswith(f"statement-{late_evening:%Y%m%d}-23")
        logged = session.query(DocumentLogEntry).filter_by(client_id=client_id).one()
        assert logged.client_id == client_id


def test_aging_as_of_defaults_to_the_practice_day(engine, late_evening):
    with transaction(engine) as session:
        actor = make_user(session, MANAGER)
        report = aging.report(session, actor=actor)
        assert report.as_of == late_evening.date()


def test_completed_appointment_is_billed_on_its_practice_day(engine, late_evening):
    """An 8 pm New York appointment (01:00 UTC the next day) is a service on its New York day."""
    with transaction(engine) as session:
        actor = make_user(session, MANAGER)
        clinician_id = make_clinician(session)
        client_id = make_client(session, clinician_id=clinician_id)
        service_id = services.save_service(
            session,
            actor=make_user(session, ADMIN),
            code="90834",
            description="Psychotherapy, 45 min",
            fee_cents=15000,
            default_minutes=45,
        )
        appointment_id = appointments.schedule(
            session,
            actor=actor,
            client_id=client_id,
            starts_at=late_evening.replace(hour=20, minute=0).astimezone(UTC),
            duration_minutes=45,
            clinician_id=clinician_id,
            service_id=service_id,
        )
        appointments.set_status(
            session,
            actor=actor,
            appointment_id=appointment_id,
            status="completed",
            expected_version=1,
        )
        days = {e.service_date for e in session.query(LedgerEntry).filter_by(client_id=client_id)}
        assert days == {late_evening.date()}
