"""The demo practice: realistic, reconciled by construction, deterministic, loaded only once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from lib.db import make_engine, transaction
from lib.demo import DEMO_LOGINS, DemoAlreadyLoaded, DemoRefused, is_demo_database, seed_demo
from lib.ledger import Posting, replay
from lib.models import (
    Appointment,
    Client,
    ClientStatusChange,
    Clinician,
    Coverage,
    DocumentLogEntry,
    Form,
    IntakeAnswer,
    LedgerEntry,
    OpenCharge,
    Payer,
    Service,
    User,
)
from lib.timeutil import as_utc
from tests.conftest import ENGINES
from tests.factories import make_client, make_user

# One worker builds the shared demo practices under `make test` (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("demo_practice")

TODAY = date(2026, 11, 1)
CLIENTS = 40


@pytest.fixture(scope="module", params=ENGINES)
def demo(request, templates) -> Iterator[Engine]:
    """A 40-client demo practice per engine, shared by the read-only tests below."""
    url = templates.copy(request.param, demo=False)
    engine = make_engine(url)
    seed_demo(engine, clients=CLIENTS, seed=1, today=TODAY)
    yield engine
    engine.dispose()
    templates.drop(url)


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_the_demo_practice_has_three_clinicians_with_logins(demo):
    with transaction(demo) as session:
        clinicians = session.scalars(select(Clinician)).all()
        users = {u.username: u for u in session.scalars(select(User))}
    assert len(clinicians) == 3
    assert set(users) == {username for _, username, _, _ in DEMO_LOGINS}
    linked = {u.clinician_id for u in users.values() if u.role == "clinician"}
    assert linked == {c.id for c in clinicians}


def test_the_demo_practice_has_electronic_and_paper_payers_and_priced_services(demo):
    with transaction(demo) as session:
        kinds = set(session.scalars(select(Payer.kind)))
        electronic_codes = list(
            session.scalars(select(Payer.payer_code).where(Payer.kind == "electronic"))
        )
        fees = list(session.scalars(select(Service.fee_cents)))
    assert kinds == {"electronic", "paper"}
    assert all(electronic_codes), "electronic payers carry a payer ID"
    assert len(fees) >= 3
    assert all(fee > 0 for fee in fees)


def test_the_demo_has_clients_in_every_status(demo):
    with transaction(demo) as session:
        statuses = dict(
            session.execute(select(Client.status, func.count()).group_by(Client.status)).all()
        )
        assert count(session, Client) == CLIENTS
        assert count(session, Coverage) > 0
    assert set(statuses) == {"active", "inactive", "prospective", "discharged"}


def test_the_demo_has_paid_up_owing_credit_and_insurance_pending_clients(demo):
    with transaction(demo) as session:
        balances = session.scalars(select(Client)).all()
    assert any(b.total_cents == 0 for b in balances)
    assert any(b.client_due_cents > 0 for b in balances)
    assert any(b.unapplied_credit_cents > 0 for b in balances)
    assert any(b.insurance_pending_cents > 0 for b in balances)


def test_the_demo_appointments_span_about_eighteen_months(demo):
    with transaction(demo) as session:
        first, last = session.execute(
            select(func.min(Appointment.starts_at), func.max(Appointment.starts_at))
        ).one()
        last_past = session.scalar(
            select(func.max(Appointment.starts_at)).where(Appointment.status != "scheduled")
        )
        first_scheduled = session.scalar(
            select(func.min(Appointment.starts_at)).where(Appointment.status == "scheduled")
        )
    first, last = as_utc(first).date(), as_utc(last).date()
    assert TODAY - timedelta(days=560) <= first <= TODAY - timedelta(days=450)
    assert as_utc(last_past).date() <= TODAY
    assert as_utc(first_scheduled).date() > TODAY
    assert last <= TODAY + timedelta(days=35)


def test_the_demo_has_intake_answers_forms_and_a_document_log(demo):
    with transaction(demo) as session:
        assert count(session, IntakeAnswer) > 0
        assert count(session, Form) >= 1
        assert count(session, DocumentLogEntry) > 0
        assert count(session, DocumentLogEntry, DocumentLogEntry.status == "sent") > 0


def test_demo_status_changes_happen_no_later_than_the_demo_day(demo):
    with transaction(demo) as session:
        changed = [
            as_utc(at).date() for at in session.scalars(select(ClientStatusChange.changed_at))
        ]
        inactive = count(session, ClientStatusChange, ClientStatusChange.new_status != "active")
    assert inactive > 0
    assert max(changed) <= TODAY


def test_every_demo_balance_equals_the_replay_of_its_ledger(demo):
    with transaction(demo) as session:
        client_ids = list(session.scalars(select(Client.id)))
        balances = {c.id: c for c in session.scalars(select(Client))}
        postings: dict[int, list[Posting]] = {cid: [] for cid in client_ids}
        for e in session.scalars(select(LedgerEntry)):
            postings[e.client_id].append(
                Posting(
                    e.id,
                    e.kind,
                    e.responsibility,
                    e.amount_cents,
                    e.service_date,
                    e.reverses_entry_id,
                    e.clinician_id,
                    e.payer_id,
                )
            )
        opens: dict[int, set] = {cid: set() for cid in client_ids}
        for o in session.scalars(select(OpenCharge)):
            opens[o.client_id].add(
                (o.charge_entry_id, o.responsibility, o.service_date, o.open_cents)
            )
    assert set(balances) == set(client_ids)
    assert sum(len(p) for p in postings.values()) > CLIENTS
    for cid in client_ids:
        expected = replay(postings[cid])
        stored = balances[cid]
        assert (
            stored.client_due_cents,
            stored.insurance_pending_cents,
            stored.unapplied_credit_cents,
            stored.total_cents,
            stored.oldest_unpaid_dos,
        ) == (
            expected.client_due_cents,
            expected.insurance_pending_cents,
            expected.unapplied_credit_cents,
            expected.total_cents,
            expected.oldest_unpaid_dos,
        ), f"client {cid}"
        assert opens[cid] == {
            (i.charge_entry_id, i.responsibility, i.service_date, i.open_cents)
            for i in expected.open_items
        }, f"client {cid}"


# --- deterministic ------------------------------------------------------------------------------


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every column of clients, appointments, ledger and balances (minus the seeding instant)."""
    out = {}
    with transaction(engine) as session:
        for model, skip in (
            (Client, ()),
            (ClientStatusChange, ()),
            (Appointment, ()),
            (LedgerEntry, ()),
        ):
            columns = [c for c in model.__table__.columns if c.name not in skip]
            pk = list(model.__table__.primary_key.columns)
            out[model.__tablename__] = [
                tuple(r) for r in session.execute(select(*columns).order_by(*pk))
            ]
    return out


def seeded_sqlite(templates, seed: int) -> tuple[Engine, str]:
    url = templates.copy("sqlite", demo=False)
    engine = make_engine(url)
    seed_demo(engine, clients=15, seed=seed, today=TODAY, with_logins=False)
    return engine, url


def test_the_same_seed_and_day_give_the_same_practice(templates):
    first, first_url = seeded_sqlite(templates, seed=1)
    second, second_url = seeded_sqlite(templates, seed=1)
    other, other_url = seeded_sqlite(templates, seed=2)
    try:
        a, b, c = snapshot(first), snapshot(second), snapshot(other)
    finally:
        for engine, url in ((first, first_url), (second, second_url), (other, other_url)):
            engine.dispose()
            templates.drop(url)
    assert a["clients"] and a["ledger_entries"]
    assert a == b
    assert a["clients"] != c["clients"]
    assert a["ledger_entries"] != c["ledger_entries"]


# --- loaded once --------------------------------------------------------------------------------


def test_seeding_a_practice_that_has_clients_is_refused(engine):
    seed_demo(engine, clients=3, seed=1, today=TODAY, with_logins=False)
    with pytest.raises(DemoAlreadyLoaded):
        seed_demo(engine, clients=3, seed=2, today=TODAY, with_logins=False)
    with transaction(engine) as session:
        assert count(session, Client) == 3
        assert count(session, Clinician) == 3


def test_the_demo_practice_says_it_is_a_demo(demo):
    with transaction(demo) as session:
        assert is_demo_database(session)


@pytest.mark.parametrize("existing", ["staff", "client"])
def test_the_demo_is_never_loaded_into_a_real_practice(engine, existing):
    """Issue 12 item 2: a practice with real staff and no clients yet got 300 fake clients and
    the 7 accounts whose passwords the README publishes."""
    with transaction(engine) as session:
        if existing == "staff":
            make_user(session, "admin", "jsmith")
        else:
            make_client(session)
    with pytest.raises(DemoRefused, match="not a demo"):
        seed_demo(engine, clients=3, seed=1, today=TODAY)
    with transaction(engine) as session:
        assert count(session, Client) == (1 if existing == "client" else 0)
        assert count(session, User) == (1 if existing == "staff" else 0)
        assert count(session, Payer) == 0
        assert not is_demo_database(session)
