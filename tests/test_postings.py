"""Posting to the ledger (spec B1, B2, B3): random sequences of postings checked against an
independent model, idempotency, validation, permissions, many writers at once, and the charge
an appointment posts when it is completed."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from lib import appointments, client_totals, postings
from lib.appointments import AppointmentError
from lib.db import transaction
from lib.models import (
    Appointment,
    AuditEntry,
    Client,
    Coverage,
    InsuranceCredit,
    LedgerEntry,
    OpenCharge,
    Payer,
)
from lib.models import Service as ServiceRow
from lib.policy import Actor, PermissionDenied
from lib.postings import MAX_POSTING_CENTS, PostingError
from lib.reconcile import reconcile
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user
from tests.hypothesis_runs import scaled

TODAY = date.today()


def key() -> str:
    return uuid.uuid4().hex


# --- an independent model of the balance rules -------------------------------------------------

# A payer as the model sees it: "id:<n>" for a list payer, "name:<lower-case name>" for one
# typed on a coverage, None for insurance that names no payer (adjustments, old payments).
PayerKey = str | None


def payer_key(payer_id: int | None, payer_name: str) -> PayerKey:
    if payer_id is not None:
        return f"id:{payer_id}"
    name = " ".join(payer_name.split()).lower()
    return f"name:{name}" if name else None


@dataclass(frozen=True)
class Entry:
    id: int
    kind: str
    responsibility: str
    amount: int
    day: date
    reverses: int | None = None
    payer: PayerKey = None


@dataclass(frozen=True)
class Expected:
    owed: dict[int, tuple[str, date, int]]  # entry id -> (responsibility, date, still owed)
    credit: int  # the client's own
    payer_credit: dict[PayerKey, int]  # insurance credit per payer

    def due(self, responsibility: str) -> int:
        return sum(cents for r, _, cents in self.owed.values() if r == responsibility)

    @property
    def columns(self) -> dict[str, object]:
        due, pending = self.due("client"), self.due("insurance")
        insurance_credit = sum(self.payer_credit.values())
        return {
            "client_due_cents": due,
            "insurance_pending_cents": pending,
            "unapplied_credit_cents": self.credit,
            "insurance_credit_cents": insurance_credit,
            "total_cents": due + pending - self.credit - insurance_credit,
            "oldest_unpaid_dos": min((d for _, d, _ in self.owed.values()), default=None),
        }


def expected_balances(entries: list[Entry]) -> Expected:
    """FIFO by hand: a reversed entry and its reversal count as if neither existed; charges
    open items; client payments and adjustments pay the oldest client items (date of service,
    then id) and the rest is the client's credit; an insurance payment or adjustment pays the
    oldest items of its own payer (one that names no payer: of any payer) and the rest is that
    payer's credit; credit pays its owner's charges as they are posted (a payer's own credit
    first, then credit that names no payer); refunds use up the client's credit (past the
    credit — possible only after a reversal — the rest is owed back, dated on the refund)."""
    cancelled = {e.reverses for e in entries if e.kind == "reversal"}
    owed: dict[int, list] = {}  # id -> [responsibility, day, cents, payer]
    credit = 0
    payer_credit: dict[PayerKey, int] = {}

    def pay(responsibility: str, payer: PayerKey, cents: int) -> int:
        def mine(v) -> bool:
            if v[0] != responsibility or v[2] <= 0:
                return False
            return responsibility == "client" or payer is None or v[3] == payer

        for k in sorted((k for k, v in owed.items() if mine(v)), key=lambda k: (owed[k][1], k)):
            part = min(cents, owed[k][2])
            owed[k][2] -= part
            cents -= part
        return cents

    for e in sorted(entries, key=lambda e: e.id):
        if e.kind == "reversal" or e.id in cancelled:
            continue
        if e.kind == "charge":
            owed[e.id] = [e.responsibility, e.day, e.amount, e.payer]
            if e.responsibility == "client":
                credit = pay("client", None, credit)
            else:
                for holder in (e.payer, None) if e.payer is not None else (None,):
                    if payer_credit.get(holder):
                        payer_credit[holder] = pay("insurance", holder, payer_credit[holder])
        elif e.kind in ("payment", "adjustment"):
            left = pay(e.responsibility, e.payer, e.amount)
            if e.responsibility == "client":
                credit += left
            else:
                payer_credit[e.payer] = payer_credit.get(e.payer, 0) + left
        elif e.kind == "refund":
            if e.amount <= credit:
                credit -= e.amount
            else:
                owed[e.id] = ["client", e.day, e.amount - credit, None]
                credit = 0
    return Expected(
        {k: tuple(v[:3]) for k, v in owed.items() if v[2] > 0},
        credit,
        {k: v for k, v in payer_credit.items() if v},
    )


def test_the_model_itself_on_a_worked_example():
    d1, d2 = date(2026, 1, 5), date(2026, 2, 9)
    entries = [
        Entry(1, "charge", "client", 10000, d2),
        Entry(2, "charge", "client", 10000, d1),
        Entry(3, "payment", "client", 15000, d2),  # pays #2 (older service) then half of #1
        Entry(4, "payment", "insurance", 3000, d2, payer="id:7"),  # nothing owed: 7's credit
        Entry(5, "charge", "client", 1000, d2),
        Entry(6, "reversal", "client", 10000, d2, reverses=2),  # #2 never happened
    ]
    got = expected_balances(entries)
    # Without #2: #1 is paid in full by #3, 5000 credit, #5 paid by credit; 7 keeps its 3000.
    assert got.owed == {}
    assert (got.credit, got.payer_credit) == (4000, {"id:7": 3000})
    before = expected_balances(entries[:5])  # the insurance money never pays the client's part
    assert before.owed == {1: ("client", d2, 5000), 5: ("client", d2, 1000)}
    assert (before.credit, before.payer_credit) == (0, {"id:7": 3000})


def test_the_model_keeps_each_payers_money_to_its_own_charges():
    d1, d2 = date(2026, 1, 5), date(2026, 2, 9)
    entries = [
        Entry(1, "charge", "insurance", 9000, d1, payer="id:1"),  # Aetna, older
        Entry(2, "charge", "insurance", 8000, d2, payer="name:trust plan"),
        Entry(3, "payment", "insurance", 10000, d2, payer="name:trust plan"),  # 2000 left over
        Entry(4, "charge", "insurance", 5000, d2, payer="name:trust plan"),  # credit pays 2000
        Entry(5, "adjustment", "insurance", 4000, d2),  # names no payer: oldest of any
        Entry(6, "charge", "client", 700, d2),  # no insurance credit pays the client's part
    ]
    got = expected_balances(entries)
    assert got.owed == {
        1: ("insurance", d1, 5000),
        4: ("insurance", d2, 3000),
        6: ("client", d2, 700),
    }
    assert (got.credit, got.payer_credit) == (0, {})
    over = [*entries, Entry(7, "adjustment", "insurance", 9000, d2)]
    got = expected_balances(over)  # pays 5000 of #1, 3000 of #4: 1000 credit of no payer
    assert got.payer_credit == {None: 1000}
    got = expected_balances([*over, Entry(8, "charge", "insurance", 600, d2, payer="id:2")])
    assert (got.owed.get(8), got.payer_credit) == (None, {None: 400})


# --- the stateful test -------------------------------------------------------------------------

BALANCE_FIELDS = (
    "client_due_cents",
    "insurance_pending_cents",
    "unapplied_credit_cents",
    "insurance_credit_cents",
    "total_cents",
    "oldest_unpaid_dos",
)
TYPED_PAYER = "Regional  Employees Trust"  # typed on a coverage: not in the payer list


def snapshot(session, client_id: int) -> tuple:
    """Everything a refused posting must leave alone."""
    client = session.get(Client, client_id, populate_existing=True)
    return (
        tuple(getattr(client, f) for f in BALANCE_FIELDS),
        session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.client_id == client_id)
        ),
        session.scalar(select(func.count()).select_from(AuditEntry)),
        sorted(
            session.execute(
                select(OpenCharge.charge_entry_id, OpenCharge.open_cents).where(
                    OpenCharge.client_id == client_id
                )
            ).all()
        ),
    )


class LedgerMachine(RuleBasedStateMachine):
    """Random postings for 2-3 fresh clients, each covered by one list payer (the first also
    by a payer typed by name); after every step the stored balances must be what the model
    says. ``engine`` and ``actor`` are set by the test."""

    engine = None
    actor = None

    def __init__(self):
        super().__init__()
        self.clients: list[int] = []
        self.entries: dict[int, list[Entry]] = {}
        self.payers: list[int] = []
        self.on_file: dict[int, set[PayerKey]] = {}

    @initialize(count=st.integers(min_value=2, max_value=3))
    def open_accounts(self, count):
        with transaction(self.engine) as session:
            payers = [
                Payer(name=name, payer_code=code, kind="electronic", active=True, version=1)
                for name, code in (("Aetna", "60054"), ("Blue Cross", "BCBS1"))
            ]
            session.add_all(payers)
            session.flush()
            self.payers = [p.id for p in payers]
            self.clients = [make_client(session, first_name=f"Model{i}") for i in range(count)]
            for i, client_id in enumerate(self.clients):
                covered = self.payers[i % 2]
                session.add(Coverage(client_id=client_id, rank=1, payer_id=covered, active=True))
                self.on_file[client_id] = {payer_key(covered, "")}
                if i == 0:
                    session.add(
                        Coverage(client_id=client_id, rank=2, payer_name=TYPED_PAYER, active=True)
                    )
                    self.on_file[client_id].add(payer_key(None, TYPED_PAYER))
        self.entries = {c: [] for c in self.clients}

    # -- helpers

    def client(self, pick: int) -> int:
        return self.clients[pick % len(self.clients)]

    def payer(self, pick: int) -> tuple[int | None, str]:
        """(payer_id, payer_name) of one of: Aetna, Blue Cross, the typed payer."""
        choice = pick % 3
        return (None, TYPED_PAYER.lower()) if choice == 2 else (self.payers[choice], "")

    def expected(self, client_id: int) -> Expected:
        return expected_balances(self.entries[client_id])

    def post(self, owner: int, fn, /, **kwargs) -> Entry:
        with transaction(self.engine) as session:
            result = fn(session, actor=self.actor, idempotency_key=key(), **kwargs)
            row = session.get(LedgerEntry, result.entry_id)
            entry = Entry(
                row.id,
                row.kind,
                row.responsibility,
                row.amount_cents,
                row.service_date,
                row.reverses_entry_id,
                payer_key(row.payer_id, row.payer_name) if row.kind != "reversal" else None,
            )
        assert not result.duplicate
        assert result.client_id == owner
        self.entries[owner].append(entry)
        if entry.kind == "charge" and entry.payer is not None:
            self.on_file[owner].add(entry.payer)  # billed before: a payer of this client
        want = self.expected(owner).columns
        assert (
            result.client_due_cents,
            result.insurance_pending_cents,
            result.unapplied_credit_cents,
            result.total_cents,
        ) == tuple(want[f] for f in ("client_due_cents", *BALANCE_FIELDS[1:3], "total_cents"))
        return entry

    def refused(self, owner: int, fn, /, error=PostingError, **kwargs) -> None:
        with transaction(self.engine) as session:
            before = snapshot(session, owner)
        with pytest.raises(error):
            with transaction(self.engine) as session:
                fn(session, actor=self.actor, idempotency_key=key(), **kwargs)
        with transaction(self.engine) as session:
            assert snapshot(session, owner) == before

    def all_entries(self) -> list[tuple[int, Entry]]:
        return [(c, e) for c in self.clients for e in self.entries[c]]

    def reversible(self) -> list[tuple[int, Entry]]:
        done = {e.reverses for _, e in self.all_entries() if e.kind == "reversal"}
        return [(c, e) for c, e in self.all_entries() if e.kind != "reversal" and e.id not in done]

    # -- rules

    @rule(
        pick=st.integers(0, 2),
        responsibility=st.sampled_from(("client", "insurance")),
        cents=st.integers(1, 20_000),
        days_ago=st.integers(0, 200),
        payer=st.integers(0, 2),
    )
    def charge(self, pick, responsibility, cents, days_ago, payer):
        client_id = self.client(pick)
        payer_id, payer_name = self.payer(payer)
        self.post(
            client_id,
            postings.post_charge,
            client_id=client_id,
            amount_cents=cents,
            responsibility=responsibility,
            service_date=TODAY - timedelta(days=days_ago),
            payer_id=payer_id,
            payer_name=payer_name,
        )

    @rule(
        pick=st.integers(0, 2),
        fee=st.integers(1, 25_000),
        copay=st.integers(0, 5_000),
        days_ago=st.integers(0, 200),
    )
    def visit(self, pick, fee, copay, days_ago):
        """A session billed the way completing an appointment bills it: copay and the rest,
        the rest with the client's primary payer."""
        client_id = self.client(pick)
        split = {"client": min(copay, fee), "insurance": fee - min(copay, fee)}
        primary = self.payers[self.clients.index(client_id) % 2]
        for responsibility, cents in split.items():
            if cents:
                self.post(
                    client_id,
                    postings.post_charge,
                    client_id=client_id,
                    amount_cents=cents,
                    responsibility=responsibility,
                    service_date=TODAY - timedelta(days=days_ago),
                    payer_id=primary,
                )

    @rule(
        pick=st.integers(0, 2),
        paid_by=st.sampled_from(("client", "insurance")),
        cents=st.integers(1, 20_000),
        days_ago=st.integers(0, 60),
        method=st.sampled_from(sorted(postings.METHOD_LABELS)),
        payer=st.integers(0, 2),
        confirmed=st.booleans(),
    )
    def payment(self, pick, paid_by, cents, days_ago, method, payer, confirmed):
        client_id = self.client(pick)
        payer_id, payer_name = self.payer(payer)
        kwargs = {
            "client_id": client_id,
            "amount_cents": cents,
            "method": method,
            "paid_by": paid_by,
            "reference": "4321" if method == "card" else "",
            "received_on": TODAY - timedelta(days=days_ago),
            "payer_id": payer_id,
            "payer_name": payer_name,
            "confirmed_other_payer": confirmed,
        }
        off_file = payer_key(payer_id, payer_name) not in self.on_file[client_id]
        if paid_by == "insurance" and off_file and not confirmed:
            self.refused(client_id, postings.record_payment, error=ValidationError, **kwargs)
        else:
            self.post(client_id, postings.record_payment, **kwargs)

    @rule(
        pick=st.integers(0, 2),
        responsibility=st.sampled_from(("client", "insurance")),
        cents=st.integers(1, 10_000),
        days_ago=st.integers(0, 60),
    )
    def adjustment(self, pick, responsibility, cents, days_ago):
        client_id = self.client(pick)
        self.post(
            client_id,
            postings.post_adjustment,
            client_id=client_id,
            amount_cents=cents,
            responsibility=responsibility,
            memo="contractual adjustment",
            on_date=TODAY - timedelta(days=days_ago),
        )

    @rule(
        pick=st.integers(0, 2),
        size=st.sampled_from(("part", "all", "more")),
        cents=st.integers(1, 20_000),
    )
    def refund(self, pick, size, cents):
        client_id = self.client(pick)
        credit = self.expected(client_id).credit
        amount = {
            "part": 1 + cents % credit if credit else cents,
            "all": credit or cents,
            "more": credit + cents,
        }[size]
        kwargs = {"client_id": client_id, "amount_cents": amount, "method": "check"}
        if amount <= credit:
            self.post(client_id, postings.post_refund, **kwargs)
        else:
            self.refused(client_id, postings.post_refund, **kwargs)

    @precondition(lambda self: self.reversible())
    @rule(pick=st.integers(0, 10_000))
    def reverse(self, pick):
        candidates = self.reversible()
        client_id, target = candidates[pick % len(candidates)]
        self.post(
            client_id,
            postings.reverse_entry,
            entry_id=target.id,
            reason="posted in error",
            client_id=client_id,
        )

    @precondition(lambda self: any(e.kind == "reversal" for _, e in self.all_entries()))
    @rule(pick=st.integers(0, 10_000), again=st.booleans())
    def reverse_a_reversal_or_a_reversed_entry(self, pick, again):
        reversals = [(c, e) for c, e in self.all_entries() if e.kind == "reversal"]
        client_id, reversal = reversals[pick % len(reversals)]
        target = reversal.reverses if again else reversal.id
        self.refused(client_id, postings.reverse_entry, entry_id=target, reason="try again")

    # -- what must hold after every step

    @invariant()
    def stored_balances_are_what_the_model_says(self):
        if not self.clients:
            return
        mine = self.clients
        with transaction(self.engine) as session:
            stored = {c.id: c for c in session.scalars(select(Client).where(Client.id.in_(mine)))}
            opens: dict[int, dict] = {c: {} for c in mine}
            for o in session.scalars(select(OpenCharge).where(OpenCharge.client_id.in_(mine))):
                opens[o.client_id][o.charge_entry_id] = (
                    o.responsibility,
                    o.service_date,
                    o.open_cents,
                )
            credits: dict[int, dict] = {c: {} for c in mine}
            for c in session.scalars(
                select(InsuranceCredit).where(InsuranceCredit.client_id.in_(mine))
            ):
                credits[c.client_id][payer_key(c.payer_id, c.payer_name)] = c.credit_cents
            rows: dict[int, list[LedgerEntry]] = {c: [] for c in mine}
            for e in session.scalars(select(LedgerEntry).where(LedgerEntry.client_id.in_(mine))):
                rows[e.client_id].append(e)
            check = reconcile(session, actor=None)
        for client_id in mine:
            want = self.expected(client_id)
            client = stored[client_id]
            assert {f: getattr(client, f) for f in BALANCE_FIELDS} == want.columns, client_id
            assert opens[client_id] == want.owed, client_id
            assert credits[client_id] == want.payer_credit, client_id
            credit_is_never_lost(
                client.unapplied_credit_cents + client.insurance_credit_cents,
                opens[client_id],
                rows[client_id],
            )
        assert check.ok, (check.mismatches, check.totals_problems)


def credit_is_never_lost(credit: int, opens: dict, rows: list[LedgerEntry]) -> None:
    """Every cent paid in is applied to a charge, still credit (the client's or insurance's),
    or refunded (from the database alone: the ledger, the open charges and the stored credit)."""
    cancelled = {e.reverses_entry_id for e in rows if e.kind == "reversal"}
    live = [e for e in rows if e.kind != "reversal" and e.id not in cancelled]
    still_open = {entry_id: cents for entry_id, (_, _, cents) in opens.items()}
    paid_in = sum(e.amount_cents for e in live if e.kind in ("payment", "adjustment"))
    applied = sum(e.amount_cents - still_open.get(e.id, 0) for e in live if e.kind == "charge")
    refunded = sum(e.amount_cents for e in live if e.kind == "refund")
    refunded_unpaid = sum(still_open.get(e.id, 0) for e in live if e.kind == "refund")
    assert credit >= 0
    assert all(cents > 0 for cents in still_open.values())
    assert credit + applied + refunded - refunded_unpaid == paid_in


# Not `slow`: `make test` runs it with the small Hypothesis profile (3 sequences), `make
# test-all` with the full one (30).
@pytest.mark.timeout(600)
def test_random_postings_keep_stored_balances_equal_to_an_independent_model(engine):
    with transaction(engine) as session:
        biller = make_user(session, "biller")
    machine = type("Ledger", (LedgerMachine,), {"engine": engine, "actor": biller})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=scaled(30),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            # Every step is a real transaction: shrinking a failure would take many minutes,
            # so a failing sequence is reported as found (at most 25 steps).
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )


# --- shared setup ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Practice:
    biller: Actor
    manager: Actor
    front_desk: Actor
    clinician: Actor  # sees only clinician_id's clients
    clinician_id: int
    other_clinician_id: int
    client_id: int  # clinician_id's client
    other_client_id: int  # other_clinician_id's client


@pytest.fixture
def practice(engine) -> Practice:
    with transaction(engine) as session:
        mine = make_clinician(session, "Maya", "Okafor")
        theirs = make_clinician(session, "Daniel", "Reyes")
        return Practice(
            biller=make_user(session, "biller"),
            manager=make_user(session, "manager"),
            front_desk=make_user(session, "front_desk"),
            clinician=make_user(session, "clinician", clinician_id=mine),
            clinician_id=mine,
            other_clinician_id=theirs,
            client_id=make_client(session, clinician_id=mine),
            other_client_id=make_client(session, first_name="Other", clinician_id=theirs),
        )


def ledger_rows(engine, client_id: int | None = None) -> list[LedgerEntry]:
    with transaction(engine) as session:
        query = select(LedgerEntry).order_by(LedgerEntry.id)
        if client_id is not None:
            query = query.where(LedgerEntry.client_id == client_id)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def audit_count(engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(AuditEntry))


def balance(engine, client_id: int) -> dict:
    with transaction(engine) as session:
        client = session.get(Client, client_id)
        return {f: getattr(client, f) for f in BALANCE_FIELDS}


def pay(engine, actor, client_id, amount_cents=5000, idempotency_key=None, **kwargs):
    with transaction(engine) as session:
        return postings.record_payment(
            session,
            actor=actor,
            client_id=client_id,
            amount_cents=amount_cents,
            method=kwargs.pop("method", "cash"),
            idempotency_key=idempotency_key or key(),
            **kwargs,
        )


def charge(engine, client_id, amount_cents=10000, responsibility="client", day=None, **kwargs):
    with transaction(engine) as session:
        return postings.post_charge(
            session,
            actor=None,
            client_id=client_id,
            amount_cents=amount_cents,
            responsibility=responsibility,
            service_date=day or TODAY - timedelta(days=10),
            idempotency_key=key(),
            **kwargs,
        )


# --- idempotency -------------------------------------------------------------------------------


def test_the_same_key_twice_posts_once(engine, practice):
    first = pay(engine, practice.biller, practice.client_id, 5000, idempotency_key="click-1")
    audits = audit_count(engine)
    again = pay(engine, practice.biller, practice.client_id, 5000, idempotency_key="click-1")
    assert not first.duplicate
    assert again.duplicate
    assert again.entry_id == first.entry_id
    assert len(ledger_rows(engine, practice.client_id)) == 1
    assert audit_count(engine) == audits
    assert balance(engine, practice.client_id)["unapplied_credit_cents"] == 5000


def test_a_retry_with_a_different_amount_returns_the_first_posting_unchanged(engine, practice):
    first = pay(engine, practice.biller, practice.client_id, 5000, idempotency_key="click-2")
    again = pay(engine, practice.biller, practice.client_id, 7000, idempotency_key="click-2")
    assert again.duplicate
    assert again.amount_cents == 5000 == first.amount_cents
    assert [r.amount_cents for r in ledger_rows(engine, practice.client_id)] == [5000]


def test_the_same_reversal_key_twice_reverses_once(engine, practice):
    payment = pay(engine, practice.biller, practice.client_id, 5000)
    results = []
    for _ in range(2):
        with transaction(engine) as session:
            results.append(
                postings.reverse_entry(
                    session,
                    actor=practice.biller,
                    entry_id=payment.entry_id,
                    reason="wrong client",
                    idempotency_key="undo-1",
                )
            )
    assert [r.duplicate for r in results] == [False, True]
    assert results[0].entry_id == results[1].entry_id
    rows = ledger_rows(engine, practice.client_id)
    assert [(r.kind, r.reverses_entry_id) for r in rows] == [
        ("payment", None),
        ("reversal", payment.entry_id),
    ]
    assert balance(engine, practice.client_id)["unapplied_credit_cents"] == 0


def test_a_key_used_for_one_client_is_refused_for_another(engine, practice):
    pay(engine, practice.biller, practice.client_id, 5000, idempotency_key="shared-key")
    audits = audit_count(engine)
    with pytest.raises(PostingError, match="another client"):
        pay(engine, practice.biller, practice.other_client_id, 5000, idempotency_key="shared-key")
    assert ledger_rows(engine, practice.other_client_id) == []
    assert balance(engine, practice.other_client_id)["total_cents"] == 0
    assert audit_count(engine) == audits


@pytest.mark.timeout(120)
def test_a_key_taken_by_a_concurrent_posting_for_another_client_is_refused(engine, practice):
    """The second writer checks the key before the first commits, then collides on insert."""
    holding, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        with transaction(engine) as session:
            postings.record_payment(
                session,
                actor=practice.biller,
                client_id=practice.client_id,
                amount_cents=5000,
                method="cash",
                idempotency_key="race-key",
            )
            holding.set()
            release.wait(60)

    def second() -> None:
        try:
            outcome["result"] = pay(
                engine,
                practice.biller,
                practice.other_client_id,
                5000,
                idempotency_key="race-key",
            )
        except Exception as exc:
            outcome["error"] = exc

    one = threading.Thread(target=first)
    one.start()
    assert holding.wait(60)
    two = threading.Thread(target=second)
    two.start()
    time.sleep(0.5)  # the second writer now waits: on the key (PostgreSQL) or the lock (SQLite)
    release.set()
    one.join(60)
    two.join(60)
    assert not one.is_alive() and not two.is_alive()
    assert isinstance(outcome.get("error"), PostingError), outcome
    assert ledger_rows(engine, practice.other_client_id) == []
    assert balance(engine, practice.other_client_id)["unapplied_credit_cents"] == 0
    assert len(ledger_rows(engine, practice.client_id)) == 1
    with transaction(engine) as session:
        assert reconcile(session, actor=None).ok


# --- validation --------------------------------------------------------------------------------


def refuses(engine, client_id: int, exc_type, call, field: str | None = None):
    """``call`` is refused with ``exc_type`` (naming ``field``) and writes nothing."""
    rows, audits, before = len(ledger_rows(engine)), audit_count(engine), balance(engine, client_id)
    with pytest.raises(exc_type) as info:
        with transaction(engine) as session:
            call(session)
    if field is not None:
        assert field in info.value.errors
    assert len(ledger_rows(engine)) == rows
    assert audit_count(engine) == audits
    assert balance(engine, client_id) == before
    return info.value


def payment_call(practice, **overrides):
    def call(session):
        fields = {
            "actor": practice.biller,
            "client_id": practice.client_id,
            "amount_cents": 5000,
            "method": "card",
            "reference": "4242",
            "idempotency_key": key(),
        }
        fields.update(overrides)
        return postings.record_payment(session, **fields)

    return call


@pytest.mark.parametrize(
    "reference",
    ["4242 4242 4242 4242", "4242424242424242", "4242-4242-4242-4242", "378282246310005"],
)
def test_a_card_number_is_never_accepted_as_a_reference(engine, practice, reference):
    error = refuses(
        engine,
        practice.client_id,
        ValidationError,
        payment_call(practice, reference=reference),
        "reference",
    )
    assert "card number" in error.errors["reference"]
    with transaction(engine) as session:
        stored = session.scalars(select(AuditEntry.after_json)).all()
    assert not any("4242" in (text or "") for text in stored)


@pytest.mark.parametrize("reference", ["123", "12345", "abcd", "42 42"])
def test_a_card_reference_is_the_last_four_digits_only(engine, practice, reference):
    refuses(
        engine,
        practice.client_id,
        ValidationError,
        payment_call(practice, reference=reference),
        "reference",
    )


def test_a_check_number_and_a_card_last_four_are_accepted(engine, practice):
    pay(engine, practice.biller, practice.client_id, 1000, method="card", reference=" 4242 ")
    pay(engine, practice.biller, practice.client_id, 1000, method="check", reference="Check 1042")
    assert [(r.method, r.reference) for r in ledger_rows(engine, practice.client_id)] == [
        ("card", "4242"),
        ("check", "Check 1042"),
    ]


def test_a_payment_received_in_the_future_is_refused(engine, practice):
    call = payment_call(practice, received_on=TODAY + timedelta(days=1))
    refuses(engine, practice.client_id, ValidationError, call, "received_on")


def test_an_unknown_payment_method_is_refused(engine, practice):
    call = payment_call(practice, method="bitcoin", reference="")
    refuses(engine, practice.client_id, ValidationError, call, "method")


@pytest.mark.parametrize("amount", [0, -500, MAX_POSTING_CENTS + 1])
def test_amounts_must_be_positive_and_at_most_100000_dollars(engine, practice, amount):
    refuses(engine, practice.client_id, PostingError, payment_call(practice, amount_cents=amount))

    def a_charge(session):
        postings.post_charge(
            session,
            actor=None,
            client_id=practice.client_id,
            amount_cents=amount,
            responsibility="client",
            service_date=TODAY,
            idempotency_key=key(),
        )

    def an_adjustment(session):
        postings.post_adjustment(
            session,
            actor=practice.biller,
            client_id=practice.client_id,
            amount_cents=amount,
            responsibility="client",
            memo="write-off",
            idempotency_key=key(),
        )

    def a_refund(session):
        postings.post_refund(
            session,
            actor=practice.biller,
            client_id=practice.client_id,
            amount_cents=amount,
            method="check",
            idempotency_key=key(),
        )

    for call in (a_charge, an_adjustment, a_refund):
        refuses(engine, practice.client_id, PostingError, call)


def test_exactly_100000_dollars_is_accepted(engine, practice):
    pay(engine, practice.biller, practice.client_id, MAX_POSTING_CENTS)
    assert balance(engine, practice.client_id)["unapplied_credit_cents"] == MAX_POSTING_CENTS


@pytest.mark.parametrize("memo", ["", "   "])
def test_an_adjustment_needs_a_memo(engine, practice, memo):
    charge(engine, practice.client_id)

    def call(session):
        postings.post_adjustment(
            session,
            actor=practice.biller,
            client_id=practice.client_id,
            amount_cents=1000,
            responsibility="client",
            memo=memo,
            idempotency_key=key(),
        )

    refuses(engine, practice.client_id, ValidationError, call, "memo")


def test_a_reversal_needs_a_reason(engine, practice):
    payment = pay(engine, practice.biller, practice.client_id)

    def call(session):
        postings.reverse_entry(
            session,
            actor=practice.biller,
            entry_id=payment.entry_id,
            reason="  ",
            idempotency_key=key(),
        )

    refuses(engine, practice.client_id, ValidationError, call, "reason")


def test_an_entry_cannot_be_reversed_through_another_clients_ledger(engine, practice):
    payment = pay(engine, practice.biller, practice.client_id)

    def call(session):
        postings.reverse_entry(
            session,
            actor=practice.biller,
            entry_id=payment.entry_id,
            reason="wrong client",
            idempotency_key=key(),
            client_id=practice.other_client_id,
        )

    refuses(engine, practice.client_id, PostingError, call)
    assert balance(engine, practice.client_id)["unapplied_credit_cents"] == 5000


def test_a_reversal_cannot_be_reversed_and_an_entry_is_reversed_only_once(engine, practice):
    payment = pay(engine, practice.biller, practice.client_id)
    with transaction(engine) as session:
        reversal = postings.reverse_entry(
            session,
            actor=practice.biller,
            entry_id=payment.entry_id,
            reason="bounced",
            idempotency_key=key(),
        )

    def reverse(entry_id):
        def call(session):
            postings.reverse_entry(
                session,
                actor=practice.biller,
                entry_id=entry_id,
                reason="again",
                idempotency_key=key(),
            )

        return call

    error = refuses(engine, practice.client_id, PostingError, reverse(reversal.entry_id))
    assert "cannot be reversed" in str(error)
    error = refuses(engine, practice.client_id, PostingError, reverse(payment.entry_id))
    assert "already been reversed" in str(error)
    refuses(engine, practice.client_id, PostingError, reverse(987654))


def test_a_refund_needs_a_known_method_and_no_card_number(engine, practice):
    pay(engine, practice.biller, practice.client_id, 5000)

    def refund(**fields):
        def call(session):
            postings.post_refund(
                session,
                actor=practice.biller,
                client_id=practice.client_id,
                amount_cents=1000,
                idempotency_key=key(),
                **fields,
            )

        return call

    refuses(engine, practice.client_id, ValidationError, refund(method="gold"), "method")
    call = refund(method="card", reference="4242424242424242")
    refuses(engine, practice.client_id, ValidationError, call, "reference")


# --- permissions -------------------------------------------------------------------------------


def test_front_desk_cannot_record_payments_or_post_to_the_ledger(engine, practice):
    charge(engine, practice.client_id)
    desk = practice.front_desk
    refuses(
        engine,
        practice.client_id,
        PermissionDenied,
        payment_call(practice, actor=desk),
    )

    def adjust(session):
        postings.post_adjustment(
            session,
            actor=desk,
            client_id=practice.client_id,
            amount_cents=100,
            responsibility="client",
            memo="courtesy",
            idempotency_key=key(),
        )

    refuses(engine, practice.client_id, PermissionDenied, adjust)


def test_a_clinician_cannot_post_for_another_clinicians_client(engine, practice):
    doctor = practice.clinician
    service_id = add_service(engine)
    # Clinicians never record payments, not even for their own clients.
    refuses(engine, practice.client_id, PermissionDenied, payment_call(practice, actor=doctor))
    refuses(
        engine,
        practice.other_client_id,
        PermissionDenied,
        payment_call(practice, actor=doctor, client_id=practice.other_client_id),
    )
    # They complete (and so bill) their own clients' appointments, never another's.
    theirs = book(engine, practice.manager, practice.other_client_id, practice, service_id)

    def complete_theirs(session):
        appointments.set_status(
            session,
            actor=doctor,
            appointment_id=theirs,
            status="completed",
            expected_version=1,
        )

    refuses(engine, practice.other_client_id, PermissionDenied, complete_theirs)
    with pytest.raises(PermissionDenied):
        book(engine, doctor, practice.other_client_id, practice, service_id)
    mine = book(engine, doctor, practice.client_id, practice, service_id)
    with transaction(engine) as session:
        appointments.set_status(
            session, actor=doctor, appointment_id=mine, status="completed", expected_version=1
        )
    assert balance(engine, practice.client_id)["client_due_cents"] == 13500
    assert ledger_rows(engine, practice.other_client_id) == []


# --- many writers at once ----------------------------------------------------------------------

THREADS, PER_THREAD, SHARED_EVERY = 8, 100, 10


def payment_plan(clients: list[int]) -> list[list[tuple[str, int, int]]]:
    """(key, client, cents) per thread. Every tenth payment of each thread uses a key that all
    threads share (the same client and amount: a retried request arriving eight times)."""
    plan = []
    for t in range(THREADS):
        mine = []
        for i in range(PER_THREAD):
            if i % SHARED_EVERY == 0:
                mine.append((f"shared-{i}", clients[i // SHARED_EVERY % 3], 7))
            else:
                mine.append((f"t{t}-{i}", clients[(t + i) % 3], 1 + (t * PER_THREAD + i) % 9))
        plan.append(mine)
    return plan


@pytest.mark.slow
@pytest.mark.committed  # eight threads, eight connections
@pytest.mark.timeout(300)
def test_eight_writers_at_once_lose_nothing_and_post_nothing_twice(engine):
    with transaction(engine) as session:
        biller = make_user(session, "biller")
        clients = [make_client(session, first_name=f"Busy{i}") for i in range(3)]
    opening = 500
    for client_id in clients:
        charge(engine, client_id, opening)
    plan = payment_plan(clients)
    results: list[tuple[str, int, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    lock_timeouts: list[str] = []

    def pay_once(idempotency_key: str, client_id: int, cents: int):
        """Post, and on SQLite press "Record" again (same key) when the writer waited past
        busy_timeout: SQLite does not queue waiting writers fairly, so under heavy machine
        load one writer can be starved of the lock for more than 10 s."""
        for attempt in range(5):
            try:
                return pay(engine, biller, client_id, cents, idempotency_key=idempotency_key)
            except OperationalError as exc:
                if engine.dialect.name != "sqlite" or "locked" not in str(exc) or attempt == 4:
                    raise
                with lock:
                    lock_timeouts.append(idempotency_key)

    def writer(work: list[tuple[str, int, int]]) -> None:
        try:
            start.wait(30)
            for idempotency_key, client_id, cents in work:
                result = pay_once(idempotency_key, client_id, cents)
                with lock:
                    results.append((idempotency_key, result.entry_id, result.duplicate))
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(work,), daemon=True) for work in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert not any(thread.is_alive() for thread in threads), "writers hung"
    assert errors == []
    assert len(lock_timeouts) < THREADS * PER_THREAD // 20, "writers mostly time out"

    unique = {k: (c, cents) for work in plan for k, c, cents in work}
    assert len(unique) == THREADS * (PER_THREAD - PER_THREAD // SHARED_EVERY) + 10
    assert len(results) == THREADS * PER_THREAD
    assert sum(not duplicate for _, _, duplicate in results) == len(unique)
    entry_of: dict[str, set[int]] = {}
    for k, entry_id, _ in results:
        entry_of.setdefault(k, set()).add(entry_id)
    assert all(len(ids) == 1 for ids in entry_of.values())

    payments = [r for r in ledger_rows(engine) if r.kind == "payment"]
    assert len(payments) == len(unique)
    assert sorted(r.idempotency_key for r in payments) == sorted(unique)
    for client_id in clients:
        paid = sum(cents for c, cents in unique.values() if c == client_id)
        assert sum(r.amount_cents for r in payments if r.client_id == client_id) == paid
        assert paid > opening  # so both the charge and the credit are exercised
        assert balance(engine, client_id) == {
            "client_due_cents": 0,
            "insurance_pending_cents": 0,
            "unapplied_credit_cents": paid - opening,
            "insurance_credit_cents": 0,
            "total_cents": opening - paid,
            "oldest_unpaid_dos": None,
        }
    with transaction(engine) as session:
        assert client_totals.differences(session) == []
        check = reconcile(session, actor=None)
    assert check.ok, (check.mismatches, check.totals_problems)


# --- appointments ------------------------------------------------------------------------------

FEE, COPAY = 13500, 2500


def add_service(engine, code="90834", fee=FEE) -> int:
    with transaction(engine) as session:
        service = ServiceRow(
            code=code,
            description="Psychotherapy, 45 minutes",
            fee_cents=fee,
            default_minutes=45,
            active=True,
            version=1,
        )
        session.add(service)
        session.flush()
        return service.id


def book(engine, actor, client_id, practice, service_id, starts_at=None) -> int:
    clinician_id = (
        practice.clinician_id if client_id == practice.client_id else practice.other_clinician_id
    )
    with transaction(engine) as session:
        return appointments.schedule(
            session,
            actor=actor,
            client_id=client_id,
            starts_at=starts_at
            or datetime.combine(TODAY - timedelta(days=3), datetime.min.time(), UTC)
            + timedelta(hours=15),
            duration_minutes=45,
            clinician_id=clinician_id,
            service_id=service_id,
        )


def insure(engine, client_id: int, copay_cents: int = COPAY) -> int:
    with transaction(engine) as session:
        payer = Payer(name="Aetna", payer_code="60054", kind="electronic", active=True, version=1)
        session.add(payer)
        session.flush()
        session.get(Client, client_id).billing_type = "insurance"
        session.add(
            Coverage(
                client_id=client_id,
                rank=1,
                payer_id=payer.id,
                member_id="W123456789",
                copay_cents=copay_cents,
                active=True,
            )
        )
        return payer.id


def set_status(engine, actor, appointment_id, status, expected_version, **kwargs) -> int:
    with transaction(engine) as session:
        return appointments.set_status(
            session,
            actor=actor,
            appointment_id=appointment_id,
            status=status,
            expected_version=expected_version,
            **kwargs,
        )


def test_completing_an_insured_clients_appointment_splits_the_fee_once(engine, practice):
    service_id = add_service(engine)
    payer_id = insure(engine, practice.client_id)
    appointment_id = book(engine, practice.front_desk, practice.client_id, practice, service_id)
    version = set_status(engine, practice.front_desk, appointment_id, "completed", 1)
    assert version == 2

    rows = ledger_rows(engine, practice.client_id)
    day = TODAY - timedelta(days=3)
    assert sorted(
        (r.kind, r.responsibility, r.amount_cents, r.payer_id, r.service_date) for r in rows
    ) == [
        ("charge", "client", COPAY, None, day),
        ("charge", "insurance", FEE - COPAY, payer_id, day),
    ]
    assert {(r.appointment_id, r.service_id, r.clinician_id) for r in rows} == {
        (appointment_id, service_id, practice.clinician_id)
    }
    assert balance(engine, practice.client_id) == {
        "client_due_cents": COPAY,
        "insurance_pending_cents": FEE - COPAY,
        "unapplied_credit_cents": 0,
        "insurance_credit_cents": 0,
        "total_cents": FEE,
        "oldest_unpaid_dos": day,
    }

    for status in ("completed", "cancelled", "scheduled"):
        with pytest.raises(AppointmentError, match="completed and billed"):
            set_status(engine, practice.front_desk, appointment_id, status, version)
    assert len(ledger_rows(engine, practice.client_id)) == 2
    with transaction(engine) as session:
        assert session.get(Appointment, appointment_id).version == 2
        assert reconcile(session, actor=None).ok


def test_a_self_pay_client_owes_the_whole_fee(engine, practice):
    service_id = add_service(engine)
    appointment_id = book(engine, practice.manager, practice.client_id, practice, service_id)
    set_status(engine, practice.manager, appointment_id, "completed", 1)
    rows = ledger_rows(engine, practice.client_id)
    assert [(r.responsibility, r.amount_cents, r.payer_id) for r in rows] == [("client", FEE, None)]
    assert balance(engine, practice.client_id)["client_due_cents"] == FEE


def test_a_copay_above_the_fee_is_capped_at_the_fee(engine, practice):
    service_id = add_service(engine)
    insure(engine, practice.client_id, copay_cents=FEE + 5000)
    appointment_id = book(engine, practice.manager, practice.client_id, practice, service_id)
    set_status(engine, practice.manager, appointment_id, "completed", 1)
    rows = ledger_rows(engine, practice.client_id)
    assert [(r.responsibility, r.amount_cents) for r in rows] == [("client", FEE)]


def test_a_credit_on_account_pays_the_copay_when_the_appointment_is_completed(engine, practice):
    service_id = add_service(engine)
    insure(engine, practice.client_id)
    pay(engine, practice.biller, practice.client_id, 4000)
    appointment_id = book(engine, practice.manager, practice.client_id, practice, service_id)
    set_status(engine, practice.manager, appointment_id, "completed", 1)
    assert balance(engine, practice.client_id) == {
        "client_due_cents": 0,
        "insurance_pending_cents": FEE - COPAY,
        "unapplied_credit_cents": 4000 - COPAY,
        "insurance_credit_cents": 0,
        "total_cents": FEE - 4000,
        "oldest_unpaid_dos": TODAY - timedelta(days=3),
    }


def test_a_stale_version_is_refused_and_posts_nothing(engine, practice):
    service_id = add_service(engine)
    appointment_id = book(engine, practice.front_desk, practice.client_id, practice, service_id)
    assert set_status(engine, practice.front_desk, appointment_id, "no_show", 1) == 2
    with pytest.raises(AppointmentError, match="changed by someone else"):
        set_status(engine, practice.front_desk, appointment_id, "completed", 1)
    assert ledger_rows(engine, practice.client_id) == []
    with transaction(engine) as session:
        assert session.get(Appointment, appointment_id).status == "no_show"
    assert set_status(engine, practice.front_desk, appointment_id, "completed", 2) == 3
    assert balance(engine, practice.client_id)["client_due_cents"] == FEE


def test_the_date_of_service_is_the_practices_local_date(engine, practice):
    """An evening session in New York is already the next day in UTC."""
    service_id = add_service(engine)
    evening = datetime(2026, 3, 10, 20, 30, tzinfo=ZoneInfo("America/New_York"))
    appointment_id = book(
        engine, practice.manager, practice.client_id, practice, service_id, starts_at=evening
    )
    set_status(
        engine,
        practice.manager,
        appointment_id,
        "completed",
        1,
        time_zone="America/New_York",
    )
    assert [r.service_date for r in ledger_rows(engine, practice.client_id)] == [date(2026, 3, 10)]


def test_by_default_the_date_of_service_is_in_the_configured_practice_time_zone(
    engine, practice, monkeypatch
):
    monkeypatch.setenv("CLIENTDESK_TIME_ZONE", "America/Los_Angeles")
    service_id = add_service(engine)
    evening = datetime(2026, 3, 10, 18, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    appointment_id = book(
        engine, practice.manager, practice.client_id, practice, service_id, starts_at=evening
    )
    set_status(engine, practice.manager, appointment_id, "completed", 1)
    assert [r.service_date for r in ledger_rows(engine, practice.client_id)] == [date(2026, 3, 10)]
