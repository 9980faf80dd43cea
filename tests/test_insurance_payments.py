"""Insurance payments by payer (issue 10 item 6, spec B1, B2): a payment names its payer, pays
only that payer's open charges and keeps the rest as that payer's credit; a payer that is not
on the client's coverages needs an explicit confirmation; a payer typed by name on a coverage
matches payments by that name. Also the migration that brings older ledgers to these rules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from lib import appointments, insurance, postings
from lib.db import alembic_config, make_engine, transaction, upgrade
from lib.ledger import PayerRef
from lib.models import (
    AuditEntry,
    Client,
    Coverage,
    InsuranceCredit,
    LedgerEntry,
    OpenCharge,
    Payer,
    Service,
)
from lib.policy import Actor
from lib.reconcile import reconcile
from lib.validation import ValidationError
from tests.conftest import PG_OWNER_ROLE, _pg_admin, _pg_url, ensure_pg_roles
from tests.factories import make_client, make_clinician, make_user

TODAY = date.today()
TRUST = "Regional Employees Benefit Trust"  # typed on a coverage, not in the payer list


def key() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Office:
    biller: Actor
    aetna: int
    bcbs: int
    client_id: int  # primary BCBS, secondary the typed TRUST


@pytest.fixture
def office(engine) -> Office:
    with transaction(engine) as session:
        aetna = Payer(name="Aetna", payer_code="60054", kind="electronic", active=True, version=1)
        bcbs = Payer(
            name="Blue Cross Blue Shield", payer_code="BCBS1", kind="electronic", active=True
        )
        session.add_all([aetna, bcbs])
        session.flush()
        client_id = make_client(session, first_name="Bo", last_name="Covered")
        session.get(Client, client_id).billing_type = "insurance"
        session.add_all(
            [
                Coverage(client_id=client_id, rank=1, payer_id=bcbs.id, copay_cents=2000),
                Coverage(client_id=client_id, rank=2, payer_name=TRUST),
            ]
        )
        return Office(make_user(session, "biller"), aetna.id, bcbs.id, client_id)


def charge(engine, client_id, cents, *, days_ago=30, payer_id=None, payer_name="") -> int:
    with transaction(engine) as session:
        return postings.post_charge(
            session,
            actor=None,
            client_id=client_id,
            amount_cents=cents,
            responsibility="insurance",
            service_date=TODAY - timedelta(days=days_ago),
            idempotency_key=key(),
            payer_id=payer_id,
            payer_name=payer_name,
        ).entry_id


def insurance_payment(engine, office, cents, **payer) -> postings.PostingResult:
    with transaction(engine) as session:
        return postings.record_payment(
            session,
            actor=office.biller,
            client_id=office.client_id,
            amount_cents=cents,
            method="check",
            paid_by="insurance",
            idempotency_key=key(),
            **payer,
        )


def open_cents(engine, client_id) -> dict[int, int]:
    with transaction(engine) as session:
        rows = session.execute(
            select(OpenCharge.charge_entry_id, OpenCharge.open_cents).where(
                OpenCharge.client_id == client_id
            )
        ).all()
    return dict(rows)


def credits(engine, client_id) -> dict[PayerRef, int]:
    with transaction(engine) as session:
        rows = session.scalars(
            select(InsuranceCredit).where(InsuranceCredit.client_id == client_id)
        )
        return {PayerRef.of(c.payer_id, c.payer_name): c.credit_cents for c in rows}


def client_row(engine, client_id) -> Client:
    with transaction(engine) as session:
        client = session.get(Client, client_id)
        session.expunge(client)
        return client


def ledger_count(engine) -> int:
    with transaction(engine) as session:
        return len(session.scalars(select(LedgerEntry.id)).all())


def assert_ties(engine) -> None:
    with transaction(engine) as session:
        check = reconcile(session, actor=None)
    assert check.ok, (check.mismatches, check.totals_problems)


def test_a_payers_payment_pays_only_its_own_charges_and_the_rest_is_its_credit(engine, office):
    """The reported bug: a BCBS client's insurance payment reduced another payer's charges."""
    aetna_claim = charge(engine, office.client_id, 9000, days_ago=60, payer_id=office.aetna)
    bcbs_claim = charge(engine, office.client_id, 5000, days_ago=20, payer_id=office.bcbs)

    result = insurance_payment(engine, office, 6500, payer_id=office.bcbs)

    # BCBS's 6500 pays BCBS's 5000 claim, not Aetna's older one; 1500 is BCBS's credit.
    assert open_cents(engine, office.client_id) == {aetna_claim: 9000}
    assert bcbs_claim not in open_cents(engine, office.client_id)
    assert credits(engine, office.client_id) == {PayerRef.of(office.bcbs): 1500}
    client = client_row(engine, office.client_id)
    assert (client.insurance_pending_cents, client.unapplied_credit_cents) == (9000, 0)
    assert client.insurance_credit_cents == 1500
    assert client.total_cents == 9000 - 1500 == result.total_cents
    assert result.unapplied_credit_cents == 0  # the client has no credit of their own
    assert_ties(engine)


def test_a_payers_credit_pays_that_payers_later_charges_only(engine, office):
    insurance_payment(engine, office, 4000, payer_id=office.bcbs)  # nothing owed yet: credit
    aetna_claim = charge(engine, office.client_id, 3000, days_ago=5, payer_id=office.aetna)
    assert credits(engine, office.client_id) == {PayerRef.of(office.bcbs): 4000}
    assert open_cents(engine, office.client_id) == {aetna_claim: 3000}

    bcbs_claim = charge(engine, office.client_id, 2500, days_ago=5, payer_id=office.bcbs)
    assert bcbs_claim not in open_cents(engine, office.client_id)
    assert credits(engine, office.client_id) == {PayerRef.of(office.bcbs): 1500}
    with transaction(engine) as session:  # the client's own charge is not paid by BCBS money
        postings.post_charge(
            session,
            actor=None,
            client_id=office.client_id,
            amount_cents=2000,
            responsibility="client",
            service_date=TODAY,
            idempotency_key=key(),
        )
    assert client_row(engine, office.client_id).client_due_cents == 2000
    assert_ties(engine)


def test_a_payer_not_on_the_clients_coverages_needs_an_explicit_confirmation(engine, office):
    charge(engine, office.client_id, 5000, payer_id=office.bcbs)
    before, audits = ledger_count(engine), None
    with transaction(engine) as session:
        audits = len(session.scalars(select(AuditEntry.id)).all())
    with pytest.raises(ValidationError) as refused:
        insurance_payment(engine, office, 5000, payer_id=office.aetna)
    assert "Aetna is not on this client's coverages" in refused.value.errors["payer_id"]
    assert ledger_count(engine) == before
    assert client_row(engine, office.client_id).insurance_pending_cents == 5000
    with transaction(engine) as session:
        assert len(session.scalars(select(AuditEntry.id)).all()) == audits

    result = insurance_payment(
        engine, office, 5000, payer_id=office.aetna, confirmed_other_payer=True
    )
    # Confirmed: recorded as Aetna's money, which pays nothing of BCBS's claim.
    assert client_row(engine, office.client_id).insurance_pending_cents == 5000
    assert credits(engine, office.client_id) == {PayerRef.of(office.aetna): 5000}
    with transaction(engine) as session:
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == str(result.entry_id))
        ).one()
    assert "confirmed by the user" in audit.detail
    assert_ties(engine)


def test_an_insurance_payment_must_name_its_payer(engine, office):
    for payer in ({}, {"payer_name": "   "}, {"payer_id": 999_999}):
        with pytest.raises(ValidationError) as refused:
            insurance_payment(engine, office, 1000, **payer)
        assert "payer_id" in refused.value.errors
    assert ledger_count(engine) == 0


def test_a_payer_typed_by_name_matches_payments_by_that_name(engine, office):
    """Completing an appointment for a client whose primary payer is typed by name posts the
    insurance part under that name; a payment naming it (any case or spacing) pays it."""
    with transaction(engine) as session:
        desk = make_user(session, "front_desk")
        client_id = make_client(session, first_name="Ty", clinician_id=make_clinician(session))
        client = session.get(Client, client_id)
        client.billing_type = "insurance"
        session.add(Coverage(client_id=client_id, rank=1, payer_name=TRUST, copay_cents=1000))
        service = Service(code="90834", description="Psychotherapy", fee_cents=13500, version=1)
        session.add(service)
        session.flush()
        appointment_id = appointments.schedule(
            session,
            actor=desk,
            client_id=client_id,
            starts_at=datetime.combine(TODAY - timedelta(days=3), datetime.min.time(), UTC)
            + timedelta(hours=15),
            duration_minutes=45,
            clinician_id=client.clinician_id,
            service_id=service.id,
        )
        appointments.set_status(
            session,
            actor=desk,
            appointment_id=appointment_id,
            status="completed",
            expected_version=1,
        )
        claim = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.client_id == client_id, LedgerEntry.responsibility == "insurance"
            )
        ).one()
        assert (claim.payer_id, claim.payer_name, claim.amount_cents) == (None, TRUST, 12500)
        choices = insurance.payment_payers(session, client_id=client_id)
        assert (choices[0].payer_name, choices[0].on_file) == (TRUST, True)
    with transaction(engine) as session:
        postings.record_payment(
            session,
            actor=office.biller,
            client_id=client_id,
            amount_cents=13000,
            method="ach",
            paid_by="insurance",
            payer_name="  regional employees   BENEFIT trust ",
            idempotency_key=key(),
        )
    client = client_row(engine, client_id)
    assert (client.insurance_pending_cents, client.insurance_credit_cents) == (0, 500)
    assert credits(engine, client_id) == {PayerRef.of(None, TRUST): 500}
    assert client.client_due_cents == 1000  # the copay is still the client's
    assert_ties(engine)


def test_the_dialogs_payers_start_with_the_primary_coverage(engine, office):
    charge(engine, office.client_id, 1000, payer_id=office.aetna)  # Aetna billed before
    with transaction(engine) as session:
        session.add(Payer(name="Cigna", payer_code="62308", kind="electronic", active=True))
        session.add(Payer(name="Retired Plan", payer_code="X1", kind="paper", active=False))
        session.flush()
        choices = insurance.payment_payers(session, client_id=office.client_id, actor=office.biller)
    assert [(c.payer_id, c.payer_name, c.on_file) for c in choices] == [
        (office.bcbs, "", True),  # primary
        (None, TRUST, True),  # secondary, typed by name
        (office.aetna, "", True),  # billed before, not on a coverage any more
        (choices[3].payer_id, "", False),  # Cigna: in the list, not this client's
    ]
    assert choices[0].label == "Blue Cross Blue Shield (primary coverage)"
    assert choices[3].label == "Cigna (not on this client's coverages)"


# --- the migration ------------------------------------------------------------------------------


@pytest.fixture
def fresh_url(db_kind, tmp_path) -> Iterator[str]:
    """An empty database of the test's engine, migrated by the test itself."""
    if db_kind == "sqlite":
        yield f"sqlite:///{Path(tmp_path) / 'fresh.db'}"
        return
    name = f"cdmig_{uuid.uuid4().hex[:10]}"
    ensure_pg_roles()
    with _pg_admin().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{PG_OWNER_ROLE}"'))
    try:
        yield _pg_url(name, PG_OWNER_ROLE)  # migrations run as the tables' owner
    finally:
        with _pg_admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_upgrading_an_older_ledger_names_typed_payers_and_rebuilds_balances(fresh_url):
    """A ledger from before 0005: typed-payer charges without a name and projections from the
    old rules (an insurance overpayment counted as the client's credit). The upgrade fills in
    the name from the client's coverage and recomputes every projection by the new rules."""
    engine = make_engine(fresh_url)
    try:
        upgrade(engine)
        with transaction(engine) as session:
            biller = make_user(session, "biller")
            client_id = make_client(session, first_name="Old")
            session.add(Coverage(client_id=client_id, rank=1, payer_name=TRUST))
            other_id = make_client(session, first_name="Two")  # two typed payers: ambiguous
            session.add(Coverage(client_id=other_id, rank=1, payer_name=TRUST))
            session.add(Coverage(client_id=other_id, rank=2, payer_name="Other Plan"))
            session.flush()
            for owner in (client_id, other_id):
                postings.post_charge(
                    session,
                    actor=None,
                    client_id=owner,
                    amount_cents=8000,
                    responsibility="insurance",
                    service_date=TODAY - timedelta(days=40),
                    idempotency_key=key(),
                    payer_name=TRUST,
                )
            postings.record_payment(
                session,
                actor=biller,
                client_id=client_id,
                amount_cents=9000,
                method="check",
                paid_by="insurance",
                payer_name=TRUST,
                idempotency_key=key(),
            )
        with engine.begin() as conn:
            cfg = _config(conn, fresh_url)
            before_0005 = ScriptDirectory.from_config(cfg).get_revision("0005").down_revision
            command.downgrade(cfg, before_0005)  # (later migrations step back with it)
        with engine.begin() as conn:  # what the old rules stored: the 1000 as client credit
            conn.execute(
                text(
                    "UPDATE clients SET unapplied_credit_cents = 1000, total_cents = -1000 "
                    "WHERE id = :id"
                ),
                {"id": client_id},
            )
            conn.execute(text("DELETE FROM open_charges"))
        upgrade(engine)

        with transaction(engine) as session:
            names = dict(
                session.execute(
                    select(LedgerEntry.client_id, LedgerEntry.payer_name).where(
                        LedgerEntry.kind == "charge"
                    )
                ).all()
            )
            assert names == {client_id: TRUST, other_id: ""}
            old = session.get(Client, client_id)
            assert (old.unapplied_credit_cents, old.insurance_credit_cents) == (0, 1000)
            assert (old.insurance_pending_cents, old.total_cents) == (0, -1000)
            assert session.get(Client, other_id).insurance_pending_cents == 8000
            check = reconcile(session, actor=None)
            assert check.ok, (check.mismatches, check.totals_problems)
        with engine.begin() as conn, pytest.raises(Exception, match="append-only"):
            conn.execute(text("UPDATE ledger_entries SET memo = 'changed'"))
    finally:
        engine.dispose()


def _config(conn, url):
    cfg = alembic_config(url)
    cfg.attributes["connection"] = conn
    return cfg
