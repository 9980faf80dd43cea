"""The outstanding-balances report (spec B4): aging buckets by date of service on an as-of date,
by clinician and by payer, the clients behind each bar, and agreement with the balances."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from lib import aging, postings
from lib.aging import CLIENT_PART
from lib.db import transaction
from lib.ledger import PayerRef
from lib.models import Client, Payer
from lib.policy import Actor, PermissionDenied
from lib.reconcile import reconcile
from tests.factories import make_client, make_clinician, make_user

AS_OF = date(2026, 6, 30)
# The book is posted at noon (New York) on the as-of day: as of AS_OF, all of it counts.
POSTED = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)


def ago(days: int) -> date:
    return AS_OF - timedelta(days=days)


@dataclass(frozen=True)
class Book:
    manager: Actor
    okafor: int
    reyes: int
    aetna: int
    cigna: int
    ada: int  # self-pay, Okafor: one charge at every bucket edge, one after the as-of date
    bea: int  # insured (Aetna 10 days, Cigna 45 days) with a copay, Reyes
    cy: int  # Aetna claim 100 days old, partly paid, Reyes
    di: int  # only a prepayment: credit, no clinician
    ed: int  # insurance typed by name (not in the payer list), Okafor


def charge(session, client_id, cents, day, responsibility="client", clinician_id=None, payer=None):
    postings.post_charge(
        session,
        actor=None,
        client_id=client_id,
        amount_cents=cents,
        responsibility=responsibility,
        service_date=day,
        idempotency_key=uuid.uuid4().hex,
        clinician_id=clinician_id,
        payer_id=payer,
    )


@pytest.fixture
def book(engine) -> Book:
    with time_machine.travel(POSTED, tick=False), transaction(engine) as session:
        manager = make_user(session, "manager")
        okafor = make_clinician(session, "Maya", "Okafor")
        reyes = make_clinician(session, "Daniel", "Reyes")
        aetna = Payer(name="Aetna", payer_code="60054", kind="electronic", active=True, version=1)
        cigna = Payer(name="Cigna", payer_code="62308", kind="electronic", active=True, version=1)
        session.add_all([aetna, cigna])
        session.flush()
        ada = make_client(session, first_name="Ada", last_name="Alpha", clinician_id=okafor)
        bea = make_client(session, first_name="Bea", last_name="Beta", clinician_id=reyes)
        cy = make_client(session, first_name="Cy", last_name="Gamma", clinician_id=reyes)
        di = make_client(session, first_name="Di", last_name="Delta")
        ed = make_client(session, first_name="Ed", last_name="Epsilon", clinician_id=okafor)

        for days, cents in [
            (0, 1000),
            (30, 2000),
            (31, 3000),
            (60, 4000),
            (61, 5000),
            (90, 6000),
            (91, 7000),
            (120, 8000),
            (121, 9000),
        ]:
            charge(session, ada, cents, ago(days), clinician_id=okafor)

        charge(session, bea, 2500, ago(10), clinician_id=reyes)
        charge(session, bea, 11000, ago(10), "insurance", reyes, aetna.id)
        charge(session, bea, 9000, ago(45), "insurance", reyes, cigna.id)

        charge(session, cy, 20000, ago(100), "insurance", reyes, aetna.id)
        postings.record_payment(
            session,
            actor=manager,
            client_id=cy,
            amount_cents=5000,
            method="check",
            paid_by="insurance",
            payer_id=aetna.id,
            reference="EFT 88812",
            idempotency_key=uuid.uuid4().hex,
        )

        postings.record_payment(
            session,
            actor=manager,
            client_id=di,
            amount_cents=3000,
            method="cash",
            idempotency_key=uuid.uuid4().hex,
        )

        charge(session, ed, 7000, ago(20), "insurance", okafor, None)
        return Book(manager, okafor, reyes, aetna.id, cigna.id, ada, bea, cy, di, ed)


def run(engine, actor, **kwargs) -> aging.AgingReport:
    with transaction(engine) as session:
        return aging.report(session, actor=actor, as_of=kwargs.pop("as_of", AS_OF), **kwargs)


def behind(engine, actor, **kwargs) -> list[tuple[int, int]]:
    with transaction(engine) as session:
        rows = aging.clients_behind(
            session, actor=actor, as_of=kwargs.pop("as_of", AS_OF), **kwargs
        )
    return [(r.client_id, r.amount_cents) for r in rows]


def rows_by_label(rows: list[aging.AgingRow]) -> dict[str, tuple[object, int]]:
    return {r.label: (r.key, r.total_cents) for r in rows}


# --- buckets -----------------------------------------------------------------------------------


def test_default_buckets_and_their_labels():
    assert [(b.key, b.label, b.min_days, b.max_days) for b in aging.buckets()] == [
        ("0_30", "0–30", 0, 30),
        ("30_60", "31–60", 31, 60),
        ("60_90", "61–90", 61, 90),
        ("90_120", "91–120", 91, 120),
        ("120_plus", "120+", 121, None),
    ]


def test_a_charge_is_in_the_bucket_of_its_age_on_the_as_of_date(engine, book):
    report = run(engine, book.manager)
    by_responsibility = {r.key: r.amounts for r in report.by_bucket}
    # Ada: 0 and 30 days old in 0-30, 31 and 60 in 31-60, 61 and 90 in 61-90, 91 and 120 in
    # 91-120, 121 in 120+; Bea's copay (10 days) in 0-30.
    assert by_responsibility["client"] == {
        "0_30": 1000 + 2000 + 2500,
        "30_60": 3000 + 4000,
        "60_90": 5000 + 6000,
        "90_120": 7000 + 8000,
        "120_plus": 9000,
    }
    assert by_responsibility["insurance"] == {
        "0_30": 11000 + 7000,
        "30_60": 9000,
        "60_90": 0,
        "90_120": 15000,
        "120_plus": 0,
    }


def test_entries_posted_after_the_as_of_day_are_left_out(engine, book):
    """Point in time: a charge posted the next day counts from that day on, even for an old
    date of service; one posted on the day for a later date of service (billed ahead) counts,
    in the first bucket."""
    with time_machine.travel(POSTED + timedelta(days=1), tick=False):
        with transaction(engine) as session:
            charge(session, book.ada, 50000, ago(40), clinician_id=book.okafor)
    with time_machine.travel(POSTED, tick=False):
        with transaction(engine) as session:
            charge(session, book.ada, 600, AS_OF + timedelta(days=3), clinician_id=book.okafor)
    report = run(engine, book.manager)
    assert report.client_due_cents == 45000 + 2500 + 600
    assert report.by_bucket[0].amounts["0_30"] == 1000 + 2000 + 2500 + 600
    assert (book.ada, 45600) in behind(engine, book.manager, responsibility="client")
    later = AS_OF + timedelta(days=1)
    assert run(engine, book.manager, as_of=later).client_due_cents == 45000 + 2500 + 600 + 50000
    assert (book.ada, 95600) in behind(engine, book.manager, responsibility="client", as_of=later)


def test_totals_add_up_and_credit_is_shown_unfiltered(engine, book):
    report = run(engine, book.manager)
    assert report.as_of == AS_OF
    assert report.client_due_cents == 47500
    assert report.insurance_pending_cents == 11000 + 9000 + 15000 + 7000
    assert sum(report.bucket_totals().values()) == report.total_ar_cents == 47500 + 42000
    assert report.unapplied_credit_cents == 3000
    assert report.net_cents == 89500 - 3000
    assert sum(r.total_cents for r in report.by_clinician) == report.total_ar_cents
    assert sum(r.total_cents for r in report.by_payer) == report.total_ar_cents


def test_by_clinician(engine, book):
    report = run(engine, book.manager)
    assert [(r.key, r.label, r.total_cents) for r in report.by_clinician] == [
        (book.okafor, "Maya Okafor", 45000 + 7000),
        (book.reyes, "Daniel Reyes", 2500 + 11000 + 9000 + 15000),
    ]
    reyes = next(r for r in report.by_clinician if r.key == book.reyes)
    assert reyes.amounts == {
        "0_30": 13500,
        "30_60": 9000,
        "60_90": 0,
        "90_120": 15000,
        "120_plus": 0,
    }


def test_by_payer_puts_what_clients_owe_under_client_responsibility(engine, book):
    report = run(engine, book.manager)
    rows = rows_by_label(report.by_payer)
    assert rows[CLIENT_PART] == (None, report.client_due_cents)
    assert rows["Aetna"] == (PayerRef.of(book.aetna), 11000 + 15000)
    assert rows["Cigna"] == (PayerRef.of(book.cigna), 9000)
    assert [r.total_cents for r in report.by_payer] == sorted(
        (r.total_cents for r in report.by_payer), reverse=True
    )


def test_insurance_whose_payer_is_not_in_the_list_is_not_counted_as_the_clients(engine, book):
    """A coverage may name a payer that is not in the payer list: what that insurance owes
    must not be reported as client responsibility."""
    report = run(engine, book.manager)
    client_part = next(r for r in report.by_payer if r.key is None)
    assert client_part.label == CLIENT_PART
    assert client_part.total_cents == report.client_due_cents == 47500
    unlisted = [r for r in report.by_payer if r.label not in (CLIENT_PART, "Aetna", "Cigna")]
    assert [(r.key, r.total_cents) for r in unlisted] == [(aging.NO_PAYER, 7000)]
    # The bar's client list and the report filtered to it show the same money.
    assert behind(engine, book.manager, payer=aging.NO_PAYER, responsibility="insurance") == [
        (book.ed, 7000)
    ]
    only = run(engine, book.manager, payer=aging.NO_PAYER)
    assert (only.client_due_cents, only.insurance_pending_cents) == (0, 7000)


def test_filters_narrow_the_report_and_hide_practice_credit(engine, book):
    reyes = run(engine, book.manager, clinician_id=book.reyes)
    assert (reyes.client_due_cents, reyes.insurance_pending_cents) == (2500, 35000)
    assert reyes.unapplied_credit_cents == 0
    aetna = run(engine, book.manager, payer=PayerRef.of(book.aetna))
    assert (aetna.client_due_cents, aetna.insurance_pending_cents) == (0, 26000)
    assert aetna.unapplied_credit_cents == 0
    assert rows_by_label(aetna.by_payer) == {"Aetna": (PayerRef.of(book.aetna), 26000)}


def test_custom_edges(engine, book):
    edges = aging.parse_edges("15, 45")
    assert edges == (15, 45)
    assert [(b.key, b.label) for b in aging.buckets(edges)] == [
        ("0_15", "0–15"),
        ("15_45", "16–45"),
        ("45_plus", "45+"),
    ]
    report = run(engine, book.manager, edges=edges)
    client = next(r for r in report.by_bucket if r.key == "client")
    insurance = next(r for r in report.by_bucket if r.key == "insurance")
    assert client.amounts == {"0_15": 1000 + 2500, "15_45": 2000 + 3000, "45_plus": 39000}
    # Bea's Cigna claim is exactly 45 days old: in 16-45.
    assert insurance.amounts == {"0_15": 11000, "15_45": 7000 + 9000, "45_plus": 15000}
    assert sum(report.bucket_totals().values()) == report.total_ar_cents
    assert behind(engine, book.manager, bucket_key="15_45", edges=edges) == [
        (book.bea, 9000),
        (book.ed, 7000),
        (book.ada, 5000),
    ]


def test_edges_at_15_and_16_days(engine, book):
    with time_machine.travel(POSTED, tick=False), transaction(engine) as session:
        client_id = make_client(session, first_name="Flo")
        charge(session, client_id, 100, ago(15))
        charge(session, client_id, 200, ago(16))
        charge(session, client_id, 400, ago(45))
        charge(session, client_id, 800, ago(46))
    edges = (15, 45)
    assert behind(engine, book.manager, bucket_key="0_15", edges=edges)[-1] == (client_id, 100)
    found = dict(behind(engine, book.manager, bucket_key="15_45", edges=edges))
    assert found[client_id] == 200 + 400
    found = dict(behind(engine, book.manager, bucket_key="45_plus", edges=edges))
    assert found[client_id] == 800


@pytest.mark.parametrize(
    ("text", "edges"),
    [("30, 60, 90, 120", (30, 60, 90, 120)), ("15;45", (15, 45)), (" 7 ", (7,))],
)
def test_parse_edges_accepts(text, edges):
    assert aging.parse_edges(text) == edges


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "whole days separated by commas"),
        ("30, sixty", "whole days separated by commas"),
        ("30.5, 60", "whole days separated by commas"),
        ("-5, 30", "whole days separated by commas"),
        ("60, 30", "larger than the one before"),
        ("30, 30", "larger than the one before"),
        ("0, 30", "at least 1"),
        ("1, 2, 3, 4, 5, 6, 7, 8, 9", "at most 8"),
    ],
)
def test_parse_edges_explains_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        aging.parse_edges(text)


# --- the clients behind a bar ------------------------------------------------------------------


def test_clients_in_a_bucket_largest_first(engine, book):
    assert behind(engine, book.manager, bucket_key="0_30") == [
        (book.bea, 13500),
        (book.ed, 7000),
        (book.ada, 3000),
    ]
    assert behind(engine, book.manager, bucket_key="120_plus") == [(book.ada, 9000)]
    # Equal amounts: the lower client number first.
    assert behind(engine, book.manager, bucket_key="90_120") == [
        (book.ada, 15000),
        (book.cy, 15000),
    ]
    assert behind(engine, book.manager, bucket_key="60_90") == [(book.ada, 11000)]


def test_clients_by_payer_responsibility_and_clinician(engine, book):
    assert behind(engine, book.manager, payer=PayerRef.of(book.aetna)) == [
        (book.cy, 15000),
        (book.bea, 11000),
    ]
    assert behind(engine, book.manager, responsibility="client") == [
        (book.ada, 45000),
        (book.bea, 2500),
    ]
    assert behind(engine, book.manager, clinician_id=book.reyes, bucket_key="30_60") == [
        (book.bea, 9000)
    ]
    assert behind(engine, book.manager, clinician_id=book.okafor, responsibility="insurance") == [
        (book.ed, 7000)
    ]


def test_the_client_list_shows_who_and_since_when(engine, book):
    with transaction(engine) as session:
        rows = aging.clients_behind(session, actor=book.manager, as_of=AS_OF, bucket_key="0_30")
    bea = rows[0]
    assert (bea.name, bea.clinician, bea.oldest_dos) == ("Beta, Bea", "Daniel Reyes", ago(10))
    ada = rows[-1]
    assert (ada.name, ada.clinician, ada.oldest_dos) == ("Alpha, Ada", "Maya Okafor", ago(30))


def test_every_bar_adds_up_to_its_client_list(engine, book):
    report = run(engine, book.manager)
    for bucket in report.buckets:
        listed = sum(c for _, c in behind(engine, book.manager, bucket_key=bucket.key))
        assert listed == report.bucket_totals()[bucket.key]
    for row in report.by_clinician:
        listed = sum(c for _, c in behind(engine, book.manager, clinician_id=row.key))
        assert listed == row.total_cents
    for row in report.by_payer:
        if row.key is None:
            selection = {"responsibility": "client"}
        else:
            selection = {"payer": row.key, "responsibility": "insurance"}
        assert sum(c for _, c in behind(engine, book.manager, **selection)) == row.total_cents


# --- who may see it ----------------------------------------------------------------------------


def test_front_desk_and_clinicians_cannot_see_the_report(engine, book):
    with transaction(engine) as session:
        desk = make_user(session, "front_desk")
        doctor = make_user(session, "clinician", clinician_id=book.okafor)
    for actor in (desk, doctor):
        with pytest.raises(PermissionDenied):
            run(engine, actor)
        with pytest.raises(PermissionDenied):
            behind(engine, actor, bucket_key="0_30")


def test_billing_roles_can_see_the_report(engine, book):
    with transaction(engine) as session:
        actors = [make_user(session, role) for role in ("admin", "manager", "biller")]
    for actor in actors:
        assert run(engine, actor).total_ar_cents == 89500


# --- the demo practice -------------------------------------------------------------------------


def test_on_the_demo_practice_the_report_equals_the_stored_balances(demo_engine):
    with transaction(demo_engine) as session:
        manager = make_user(session, "manager")
    with transaction(demo_engine) as session:
        report = aging.report(session, actor=manager)
        due, pending, credit = session.execute(
            select(
                func.sum(Client.client_due_cents),
                func.sum(Client.insurance_pending_cents),
                func.sum(Client.unapplied_credit_cents),
            )
        ).one()
        check = reconcile(session, actor=None)
    assert report.client_due_cents == due > 0
    assert report.insurance_pending_cents == pending > 0
    assert report.unapplied_credit_cents == credit > 0
    assert sum(report.bucket_totals().values()) == report.total_ar_cents == due + pending
    assert sum(r.total_cents for r in report.by_clinician) == report.total_ar_cents
    assert sum(r.total_cents for r in report.by_payer) == report.total_ar_cents
    assert rows_by_label(report.by_payer)[CLIENT_PART] == (None, due)
    assert check.ok, (check.mismatches, check.totals_problems)
    assert check.aging_total_cents == report.net_cents == check.ledger_total_cents
