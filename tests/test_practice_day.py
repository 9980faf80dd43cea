"""Issue 10, item 8: "today" is the practice's day, never the server's (UTC) day.

Every test here runs at 23:30 in New York on Nov 29 (04:30 UTC on Nov 30), so anything that
still took the server's date would say Nov 30.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from lib import aging, appointments, clients, postings, services, statements
from lib.db import transaction
from lib.models import DocumentLogEntry, LedgerEntry
from lib.policy import ADMIN, MANAGER
from lib.timeutil import practice_day, practice_today, utcnow
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user

NOV_29 = date(2026, 11, 29)


def test_the_clock_is_late_in_the_evening(late_evening):
    assert utcnow().date() == date(2026, 11, 30)  # the server's UTC day is already tomorrow
    assert practice_today() == NOV_29
    assert practice_day(datetime(2026, 11, 30, 4, 30, tzinfo=UTC)) == NOV_29


def test_new_client_is_a_client_since_the_practice_day(engine, late_evening):
    with transaction(engine) as session:
        actor = make_user(session, MANAGER)
        new = clients.create_client(
            session, actor=actor, first_name="Ada", last_name="Byron", dob=date(1990, 1, 2)
        )
        client = session.get(clients.Client, new.client_id)
        assert client.client_since == NOV_29


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
        assert session.get(LedgerEntry, result.entry_id).service_date == NOV_29
        with pytest.raises(ValidationError) as refused:
            postings.record_payment(
                session,
                actor=actor,
                client_id=client_id,
                amount_cents=5000,
                method="cash",
                idempotency_key="late-2",
                received_on=date(2026, 11, 30),
            )
        assert "future" in refused.value.errors["received_on"]


def test_statement_is_dated_and_named_by_the_practice_day(engine, late_evening, tmp_path):
    with transaction(engine) as session:
        actor = make_user(session, MANAGER)
        client_id = make_client(session)
        built = statements.build_statement(session, actor=actor, client_id=client_id)
        assert built.statement_date == NOV_29
        _, name = statements.create_statements(
            session, actor=actor, client_ids=[client_id], data_dir=tmp_path
        )
        assert name.startswith("statement-20261129-23")
        logged = session.query(DocumentLogEntry).filter_by(client_id=client_id).one()
        assert logged.client_id == client_id


def test_aging_as_of_defaults_to_the_practice_day(engine, late_evening):
    with transaction(engine) as session:
        actor = make_user(session, MANAGER)
        report = aging.report(session, actor=actor)
        assert report.as_of == NOV_29


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
            starts_at=datetime(2026, 11, 29, 1, 0, tzinfo=UTC),
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
        assert days == {date(2026, 11, 28)}
