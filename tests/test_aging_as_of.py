"""Month-end A/R an accountant can tie to the ledger (issue 11 item 1, spec B4).

"As of D" counts every ledger entry posted on or before D (the practice's day) and nothing
after; charges are aged by date of service relative to D; credit is the credit held at the end
of D. A history of four months is posted day by day (the clock travels), with reversals,
refunds, late entries for old dates of service, client and insurance credit, a payer typed by
name and an entry at 23:30 on a month's last evening. For several past days and for today the
report must equal a replay of the ledger to that day, figure by figure: every bucket, every
clinician, every payer, the credit and the clients behind each bar.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from lib import aging, postings
from lib.db import transaction
from lib.ledger import Posting, replay
from lib.models import LedgerEntry, Payer
from lib.policy import Actor
from lib.timeutil import practice_today
from tests.factories import make_client, make_clinician, make_user

TZ = ZoneInfo("America/New_York")
EDGES = (30, 60, 90, 120)
TRUST = "Trust Plan"
CHECK_DAYS = [
    date(2026, 1, 31),
    date(2026, 2, 14),
    date(2026, 2, 28),
    date(2026, 3, 31),
    date(2026, 4, 30),
]


def key() -> str:
    return uuid.uuid4().hex


def at(day: date, hour: int = 12, minute: int = 0) -> time_machine.travel:
    """The clock at that wall-clock time in the practice's time zone (standing still)."""
    return time_machine.travel(
        datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(UTC),
        tick=False,
    )


@dataclass
class History:
    manager: Actor
    okafor: int
    reyes: int
    aetna: int
    cigna: int
    ann: int  # Okafor, Aetna
    ben: int  # Reyes, Trust Plan (typed by name)
    cat: int  # no clinician, self-pay: prepayment, refund
    dan: int  # Okafor, Cigna: a late claim
    january_report: aging.AgingReport | None = None


def post(engine, day, fn, hour=12, minute=0, **kwargs) -> int:
    with at(day, hour, minute), transaction(engine) as session:
        return fn(session, idempotency_key=key(), **kwargs).entry_id


@pytest.fixture
def history(engine, monkeypatch) -> History:
    monkeypatch.setenv("CLIENTDESK_TIME_ZONE", "America/New_York")
    with at(date(2026, 1, 2)), transaction(engine) as session:
        manager = make_user(session, "manager")
        okafor = make_clinician(session, "Maya", "Okafor")
        reyes = make_clinician(session, "Daniel", "Reyes")
        aetna = Payer(name="Aetna", payer_code="60054", kind="electronic", active=True, version=1)
        cigna = Payer(name="Cigna", payer_code="62308", kind="electronic", active=True, version=1)
        session.add_all([aetna, cigna])
        session.flush()
        h = History(
            manager,
            okafor,
            reyes,
            aetna.id,
            cigna.id,
            make_client(session, first_name="Ann", clinician_id=okafor),
            make_client(session, first_name="Ben", clinician_id=reyes),
            make_client(session, first_name="Cat"),
            make_client(session, first_name="Dan", clinician_id=okafor),
        )
    m = h.manager

    def charge(day, client, cents, dos, responsibility="client", clinician=None, **payer):
        return post(
            engine,
            day,
            postings.post_charge,
            actor=None,
            client_id=client,
            amount_cents=cents,
            responsibility=responsibility,
            service_date=dos,
            clinician_id=clinician,
            **payer,
        )

    def pay(day, client, cents, hour=12, minute=0, **kwargs):
        kwargs.setdefault("method", "check")
        return post(
            engine,
            day,
            postings.record_payment,
            hour,
            minute,
            actor=m,
            client_id=client,
            amount_cents=cents,
            received_on=day,
            **kwargs,
        )

    def reverse(day, entry_id):
        return post(
            engine, day, postings.reverse_entry, actor=m, entry_id=entry_id, reason="bounced"
        )

    d = date
    charge(d(2026, 1, 10), h.ann, 2500, d(2026, 1, 10), clinician=okafor)
    charge(d(2026, 1, 10), h.ann, 11000, d(2026, 1, 10), "insurance", okafor, payer_id=h.aetna)
    charge(d(2026, 1, 10), h.ben, 4000, d(2026, 1, 8), clinician=reyes)
    charge(d(2026, 1, 12), h.ben, 3500, d(2025, 10, 1), clinician=reyes)  # 120+ by month-end
    pay(d(2026, 1, 20), h.ann, 2500, method="cash")
    pay(d(2026, 1, 20), h.cat, 5000, method="card", reference="4242")  # prepayment: credit
    # 23:30 in New York on Jan 31 is Feb 1 in UTC: it is January's.
    bounced = pay(d(2026, 1, 31), h.ben, 1000, hour=23, minute=30)
    with at(d(2026, 2, 2)), transaction(engine) as session:
        h.january_report = aging.report(session, actor=m, as_of=d(2026, 1, 31), edges=EDGES)

    aetna_check = pay(d(2026, 2, 3), h.ann, 13000, paid_by="insurance", payer_id=h.aetna)
    charge(d(2026, 2, 3), h.dan, 9000, d(2026, 1, 25), "insurance", okafor, payer_id=h.cigna)
    reverse(d(2026, 2, 10), bounced)
    post(
        engine,
        d(2026, 2, 15),
        postings.post_refund,
        actor=m,
        client_id=h.cat,
        amount_cents=2000,
        method="card",
        reference="4242",
    )
    charge(d(2026, 2, 15), h.ann, 1500, d(2026, 2, 15), "insurance", okafor, payer_id=h.aetna)
    charge(d(2026, 3, 5), h.ben, 3000, d(2025, 12, 20), clinician=reyes)  # late, old service
    charge(d(2026, 3, 12), h.ben, 8000, d(2026, 3, 12), "insurance", reyes, payer_name=TRUST)
    post(
        engine,
        d(2026, 3, 12),
        postings.post_adjustment,
        actor=m,
        client_id=h.dan,
        amount_cents=500,
        responsibility="insurance",
        memo="contractual adjustment",
    )
    pay(d(2026, 3, 20), h.ben, 8600, paid_by="insurance", payer_name="trust plan")
    charge(d(2026, 3, 20), h.ann, 3000, d(2026, 3, 20), clinician=okafor)
    charge(d(2026, 3, 31), h.cat, 1200, d(2026, 4, 2))  # billed ahead of the date of service
    reverse(d(2026, 4, 2), aetna_check)
    charge(d(2026, 4, 20), h.ben, 900, d(2026, 4, 20), "insurance", reyes, payer_name=TRUST)
    return h


# --- the accountant's side: the ledger replayed to a day, by hand ------------------------------


def entries(engine) -> list[tuple[int, date, Posting]]:
    with transaction(engine) as session:
        rows = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()
        return [
            (
                e.client_id,
                e.posted_at.replace(tzinfo=e.posted_at.tzinfo or UTC).astimezone(TZ).date(),
                Posting(
                    e.id,
                    e.kind,
                    e.responsibility,
                    e.amount_cents,
                    e.service_date,
                    e.reverses_entry_id,
                    e.clinician_id,
                    e.payer_id,
                    e.payer_name,
                ),
            )
            for e in rows
        ]


def bucket_key(age_days: int) -> str:
    keys = [b.key for b in aging.buckets(EDGES)]
    for i, edge in enumerate(EDGES):
        if age_days <= edge:
            return keys[i]
    return keys[-1]


@dataclass
class Expected:
    by_responsibility: dict[str, dict[str, int]]
    by_clinician: dict[int | None, dict[str, int]]
    by_payer: dict[object, dict[str, int]]
    client_credit: int
    payer_credit: dict[object, int]
    per_client: dict[int, list]  # client id -> [(responsibility, clinician, payer, bucket, cents)]
    ledger_sum: int


def expected_as_of(all_entries, day: date) -> Expected:
    posted = [(c, p) for c, posted_on, p in all_entries if posted_on <= day]
    cancelled = {p.reverses_entry_id for _, p in posted if p.kind == "reversal"}
    ledger_sum = sum(
        p.amount_cents if p.kind in ("charge", "refund") else -p.amount_cents
        for _, p in posted
        if p.kind != "reversal" and p.id not in cancelled
    )
    exp = Expected({}, {}, {}, 0, {}, {}, ledger_sum)
    for client_id in sorted({c for c, _ in posted}):
        state = replay(p for c, p in posted if c == client_id)
        exp.client_credit += state.unapplied_credit_cents
        for ref, cents in state.payer_credits.items():
            exp.payer_credit[ref] = exp.payer_credit.get(ref, 0) + cents
        for item in state.open_items:
            bkey = bucket_key((day - item.service_date).days)
            line = (item.responsibility, item.clinician_id, item.payer, bkey, item.open_cents)
            exp.per_client.setdefault(client_id, []).append(line)
            for table, k in (
                (exp.by_responsibility, item.responsibility),
                (exp.by_clinician, item.clinician_id or aging.NO_CLINICIAN),
                (exp.by_payer, item.payer),
            ):
                amounts = table.setdefault(k, dict.fromkeys(bkey_list(), 0))
                amounts[bkey] += item.open_cents
    return exp


def bkey_list() -> list[str]:
    return [b.key for b in aging.buckets(EDGES)]


def shown(rows: list[aging.AgingRow]) -> dict[object, dict[str, int]]:
    return {r.key: r.amounts for r in rows if r.total_cents}


def assert_report_ties(engine, history, day: date) -> aging.AgingReport:
    exp = expected_as_of(entries(engine), day)
    with transaction(engine) as session:
        report = aging.report(session, actor=history.manager, as_of=day, edges=EDGES)
    assert shown(report.by_bucket) == exp.by_responsibility, day
    assert shown(report.by_clinician) == exp.by_clinician, day
    assert shown(report.by_payer) == exp.by_payer, day
    for row in report.by_bucket + report.by_clinician + report.by_payer:
        assert row.total_cents == sum(row.amounts.values())
    assert report.client_due_cents == sum(exp.by_responsibility.get("client", {}).values())
    assert report.insurance_pending_cents == sum(
        exp.by_responsibility.get("insurance", {}).values()
    )
    assert report.unapplied_credit_cents == exp.client_credit, day
    assert report.insurance_credit_cents == sum(exp.payer_credit.values()), day
    credit_by_payer = {r.key: r.credit_cents for r in report.by_payer if r.credit_cents}
    assert credit_by_payer == {
        **({None: exp.client_credit} if exp.client_credit else {}),
        **exp.payer_credit,
    }
    # What an accountant ties: the report's net equals the ledger summed to the day.
    assert report.net_cents == exp.ledger_sum, day

    def listed(**selection) -> dict[int, int]:
        with transaction(engine) as session:
            found = aging.clients_behind(
                session, actor=history.manager, as_of=day, edges=EDGES, **selection
            )
        return {c.client_id: c.amount_cents for c in found}

    def per_client(test) -> dict[int, int]:
        sums = {
            c: sum(line[4] for line in lines if test(line)) for c, lines in exp.per_client.items()
        }
        return {c: cents for c, cents in sums.items() if cents}

    for b in report.buckets:
        assert listed(bucket_key=b.key) == per_client(lambda line, k=b.key: line[3] == k), day
    for row in report.by_clinician:
        want = per_client(lambda line, k=row.key: (line[1] or aging.NO_CLINICIAN) == k)
        assert listed(clinician_id=row.key) == want, day
    for row in report.by_payer:
        if row.key is None:
            want = per_client(lambda line: line[0] == "client")
            assert listed(responsibility="client") == want, day
        else:
            want = per_client(lambda line, k=row.key: line[2] == k)
            assert listed(payer=row.key, responsibility="insurance") == want, day
    return report


def test_past_days_tie_to_the_ledger_replayed_to_that_day(engine, history):
    reports = {day: assert_report_ties(engine, history, day) for day in CHECK_DAYS}
    today = assert_report_ties(engine, history, practice_today())
    assert today.replayed is False  # today reads the projections
    assert all(r.replayed for r in reports.values())

    jan, feb, mar, apr = (reports[d] for d in (CHECK_DAYS[0], *CHECK_DAYS[2:]))
    # January: Ben's 23:30 payment on the 31st counts; the Feb 3 claim for a January visit
    # does not; Cat's prepayment is credit; the 2025 visit is over 120 days old.
    assert (jan.client_due_cents, jan.insurance_pending_cents) == (4000 + 3500 - 1000, 11000)
    assert (jan.unapplied_credit_cents, jan.insurance_credit_cents) == (5000, 0)
    assert jan.bucket_totals()["120_plus"] == 3500 - 1000 + 0  # Ben's payment paid the oldest
    # February: Aetna overpaid (2000 credit, 1500 of it used by Aetna's next claim), the
    # bounced payment is reversed, 2000 of Cat's credit refunded, Dan's late claim counts.
    assert (feb.client_due_cents, feb.insurance_pending_cents) == (7500, 9000)
    assert (feb.unapplied_credit_cents, feb.insurance_credit_cents) == (3000, 500)
    # March: Ben's late charge for a December visit counts from March 5, in 91–120 days.
    assert mar.bucket_totals()["90_120"] >= 3000
    assert mar.insurance_credit_cents == 500 + 600  # Aetna's rest, Trust Plan's overpayment
    # April: Aetna's check is reversed: its claims are open again and its credit is gone.
    assert apr.insurance_credit_cents == 0  # Trust Plan's 600 paid its April claim (900)
    assert apr.insurance_pending_cents == 11000 + 1500 + 9000 - 500 + 300


def test_a_past_month_never_changes(engine, history):
    """January as reported on Feb 2 is January as reported after everything since."""
    with transaction(engine) as session:
        again = aging.report(session, actor=history.manager, as_of=date(2026, 1, 31), edges=EDGES)
    assert again == history.january_report


def test_payments_and_credit_posted_after_the_day_do_not_count(engine, monkeypatch):
    """The reported bug: payments after D were netted and the credit shown was today's."""
    monkeypatch.setenv("CLIENTDESK_TIME_ZONE", "America/New_York")
    with at(date(2026, 1, 5)), transaction(engine) as session:
        manager = make_user(session, "manager")
        owes = make_client(session, first_name="Owes")
        ahead = make_client(session, first_name="Ahead")
    march = date(2026, 3, 31)
    post(
        engine,
        date(2026, 3, 10),
        postings.post_charge,
        actor=None,
        client_id=owes,
        amount_cents=9000,
        responsibility="client",
        service_date=date(2026, 3, 10),
    )
    for day, client_id, cents in ((date(2026, 4, 3), owes, 9000), (date(2026, 4, 3), ahead, 700)):
        post(
            engine,
            day,
            postings.record_payment,
            actor=manager,
            client_id=client_id,
            amount_cents=cents,
            method="cash",
            received_on=day,
        )
    with transaction(engine) as session:
        report = aging.report(session, actor=manager, as_of=march, edges=EDGES)
        behind = aging.clients_behind(session, actor=manager, as_of=march, edges=EDGES)
    assert (report.client_due_cents, report.unapplied_credit_cents) == (9000, 0)
    assert report.bucket_totals()[bkey_list()[0]] == 9000
    assert [(c.client_id, c.amount_cents) for c in behind] == [(owes, 9000)]
