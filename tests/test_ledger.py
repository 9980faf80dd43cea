"""Balances from the ledger (spec B2): the ``replay`` rules, its invariant, the projections."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from lib import ledger
from lib.db import transaction
from lib.ledger import Posting, replay, signed_amount
from lib.models import Client, LedgerEntry, OpenCharge
from lib.timeutil import utcnow
from tests.factories import make_client
from tests.hypothesis_runs import scaled

D1, D2, D3 = date(2026, 1, 5), date(2026, 2, 9), date(2026, 3, 16)


class Book:
    """Postings with ids in posting order, written the way a biller talks."""

    def __init__(self):
        self.postings: list[Posting] = []

    def _post(self, kind, responsibility, amount, day, reverses=None) -> int:
        entry_id = len(self.postings) + 1
        self.postings.append(Posting(entry_id, kind, responsibility, amount, day, reverses))
        return entry_id

    def charge(self, amount, day=D1, responsibility="client") -> int:
        return self._post("charge", responsibility, amount, day)

    def payment(self, amount, day=D3, responsibility="client") -> int:
        return self._post("payment", responsibility, amount, day)

    def adjustment(self, amount, day=D3, responsibility="insurance") -> int:
        return self._post("adjustment", responsibility, amount, day)

    def refund(self, amount, day=D3) -> int:
        return self._post("refund", "client", amount, day)

    def reverse(self, entry_id, day=D3) -> int:
        target = self.postings[entry_id - 1]
        return self._post("reversal", target.responsibility, target.amount_cents, day, entry_id)

    def state(self) -> ledger.ClientState:
        return replay(self.postings)


def open_by_charge(state: ledger.ClientState) -> dict[int, int]:
    return {i.charge_entry_id: i.open_cents for i in state.open_items}


# --- replay rules ------------------------------------------------------------------------------


def test_a_charge_opens_an_item_the_client_owes():
    book = Book()
    charge = book.charge(13500, D2)
    state = book.state()
    assert open_by_charge(state) == {charge: 13500}
    assert state.client_due_cents == 13500
    assert state.insurance_pending_cents == 0
    assert state.total_cents == 13500
    assert state.oldest_unpaid_dos == D2


def test_a_payment_pays_the_oldest_date_of_service_first():
    book = Book()
    newer = book.charge(10000, D2)  # posted first, but served later
    older = book.charge(10000, D1)
    book.payment(15000)
    state = book.state()
    assert older not in open_by_charge(state)
    assert open_by_charge(state) == {newer: 5000}
    assert state.oldest_unpaid_dos == D2
    assert state.client_due_cents == 5000


def test_a_fully_paid_charge_leaves_nothing_open():
    book = Book()
    book.charge(10000, D1)
    book.payment(10000)
    state = book.state()
    assert state.open_items == []
    assert state.total_cents == 0
    assert state.oldest_unpaid_dos is None


def test_an_overpayment_becomes_unapplied_credit():
    book = Book()
    book.charge(10000)
    book.payment(15000)
    state = book.state()
    assert state.client_due_cents == 0
    assert state.unapplied_credit_cents == 5000
    assert state.total_cents == -5000


def test_credit_pays_a_later_client_charge():
    book = Book()
    book.payment(5000, D1)  # prepayment
    charge = book.charge(12000, D2)
    state = book.state()
    assert state.unapplied_credit_cents == 0
    assert open_by_charge(state) == {charge: 7000}


def test_credit_larger_than_a_later_charge_pays_it_and_keeps_the_rest():
    book = Book()
    book.payment(20000, D1)
    book.charge(12000, D2)
    state = book.state()
    assert state.open_items == []
    assert state.unapplied_credit_cents == 8000


def test_an_insurance_payment_does_not_pay_what_the_client_owes():
    book = Book()
    copay = book.charge(2500, D1, "client")
    claim = book.charge(11000, D1, "insurance")
    book.payment(8000, responsibility="insurance")
    state = book.state()
    assert open_by_charge(state) == {copay: 2500, claim: 3000}
    assert state.client_due_cents == 2500
    assert state.insurance_pending_cents == 3000


def test_a_client_payment_does_not_pay_the_insurance_claim():
    book = Book()
    claim = book.charge(11000, D1, "insurance")
    book.payment(4000, responsibility="client")
    state = book.state()
    assert open_by_charge(state) == {claim: 11000}
    assert state.unapplied_credit_cents == 4000


def test_a_contractual_adjustment_reduces_insurance_pending():
    book = Book()
    book.charge(11000, D1, "insurance")
    book.payment(8000, responsibility="insurance")
    book.adjustment(2000, responsibility="insurance")
    state = book.state()
    assert state.insurance_pending_cents == 1000
    assert state.client_due_cents == 0


def test_a_refund_pays_credit_back_out():
    book = Book()
    book.charge(10000)
    book.payment(15000)
    book.refund(3000)
    state = book.state()
    assert state.unapplied_credit_cents == 2000
    assert state.client_due_cents == 0


def test_a_refund_larger_than_the_credit_leaves_the_excess_owed_by_the_client():
    book = Book()
    book.charge(10000)
    book.payment(15000)
    refund = book.refund(8000, D3)
    state = book.state()
    assert state.unapplied_credit_cents == 0
    assert state.client_due_cents == 3000
    assert open_by_charge(state) == {refund: 3000}
    assert state.oldest_unpaid_dos == D3


def test_reversing_a_payment_reopens_the_charge_it_paid():
    book = Book()
    charge = book.charge(10000)
    payment = book.payment(10000)
    book.reverse(payment)
    state = book.state()
    assert open_by_charge(state) == {charge: 10000}
    assert state.unapplied_credit_cents == 0


def test_reversing_a_charge_frees_its_payment_into_credit():
    book = Book()
    charge = book.charge(10000)
    book.payment(10000)
    book.reverse(charge)
    state = book.state()
    assert state.open_items == []
    assert state.unapplied_credit_cents == 10000
    assert state.total_cents == -10000


def test_replay_does_not_depend_on_the_order_rows_come_back_in():
    book = Book()
    book.charge(10000, D1)
    book.charge(5000, D2, "insurance")
    payment = book.payment(12000)
    book.reverse(payment)
    book.payment(3000)
    forwards = book.state()
    backwards = replay(list(reversed(book.postings)))
    assert open_by_charge(backwards) == open_by_charge(forwards)
    assert backwards.unapplied_credit_cents == forwards.unapplied_credit_cents


# --- the invariant -----------------------------------------------------------------------------

_step = st.one_of(
    st.tuples(
        st.sampled_from(("charge", "payment", "adjustment", "refund")),
        st.sampled_from(("client", "insurance")),
        st.integers(min_value=1, max_value=50_000),
        st.integers(min_value=0, max_value=400),
    ),
    # A reversal of the n-th (modulo) earlier entry that is still reversible.
    st.tuples(st.just("reversal"), st.integers(min_value=0, max_value=1000)),
)


def _book_from(steps) -> list[Posting]:
    postings: list[Posting] = []
    reversed_ids: set[int] = set()
    for step in steps:
        entry_id = len(postings) + 1
        if step[0] == "reversal":
            candidates = [p for p in postings if p.kind != "reversal" and p.id not in reversed_ids]
            if not candidates:
                continue
            target = candidates[step[1] % len(candidates)]
            reversed_ids.add(target.id)
            postings.append(
                Posting(
                    entry_id,
                    "reversal",
                    target.responsibility,
                    target.amount_cents,
                    target.service_date,
                    target.id,
                )
            )
            continue
        kind, responsibility, amount, day = step
        if kind == "refund":
            responsibility = "client"
        postings.append(Posting(entry_id, kind, responsibility, amount, D1 + timedelta(days=day)))
    return postings


@settings(max_examples=scaled(200), deadline=None)
@given(st.lists(_step, max_size=40))
def test_balances_always_add_up_to_the_signed_sum_of_the_ledger(steps):
    postings = _book_from(steps)
    reversed_ids = {p.reverses_entry_id for p in postings if p.kind == "reversal"}
    signed_sum = sum(
        signed_amount(p.kind, p.amount_cents)
        for p in postings
        if p.kind != "reversal" and p.id not in reversed_ids
    )
    state = replay(postings)
    assert (
        state.client_due_cents
        + state.insurance_pending_cents
        - state.unapplied_credit_cents
        - state.insurance_credit_cents
        == signed_sum
    )
    assert state.total_cents == signed_sum
    assert state.unapplied_credit_cents >= 0
    assert all(cents > 0 for cents in state.payer_credits.values())
    assert all(item.open_cents > 0 for item in state.open_items)


# --- the stored projections --------------------------------------------------------------------


def _insert(
    session,
    client_id: int,
    kind: str,
    responsibility: str,
    amount: int,
    day: date,
    reverses: int | None = None,
) -> int:
    entry = LedgerEntry(
        client_id=client_id,
        kind=kind,
        responsibility=responsibility,
        amount_cents=amount,
        service_date=day,
        posted_at=utcnow(),
        reverses_entry_id=reverses,
        idempotency_key=f"test-{client_id}-{kind}-{amount}-{day}-{reverses}",
    )
    session.add(entry)
    session.flush()
    return entry.id


def _postings(session, client_id: int) -> list[Posting]:
    return [
        Posting(e.id, e.kind, e.responsibility, e.amount_cents, e.service_date, e.reverses_entry_id)
        for e in session.scalars(select(LedgerEntry).where(LedgerEntry.client_id == client_id))
    ]


def _stored(engine, client_id: int):
    with transaction(engine) as session:
        balance = session.get(Client, client_id)
        opens = {
            o.charge_entry_id: (o.responsibility, o.service_date, o.open_cents)
            for o in session.scalars(select(OpenCharge).where(OpenCharge.client_id == client_id))
        }
        return balance, opens, replay(_postings(session, client_id))


def test_refresh_client_stores_exactly_what_replay_computes(engine):
    with transaction(engine) as session:
        client_id = make_client(session)
        copay = _insert(session, client_id, "charge", "client", 2500, D1)
        claim = _insert(session, client_id, "charge", "insurance", 11000, D1)
        later = _insert(session, client_id, "charge", "client", 2500, D2)
        _insert(session, client_id, "payment", "insurance", 8000, D3)
        _insert(session, client_id, "payment", "client", 3000, D3)
        ledger.refresh_client(session, client_id)

    balance, opens, expected = _stored(engine, client_id)
    assert opens == {
        claim: ("insurance", D1, 3000),
        later: ("client", D2, 2000),
    }
    assert copay not in opens
    assert (
        balance.client_due_cents,
        balance.insurance_pending_cents,
        balance.unapplied_credit_cents,
        balance.total_cents,
        balance.oldest_unpaid_dos,
    ) == (
        expected.client_due_cents,
        expected.insurance_pending_cents,
        expected.unapplied_credit_cents,
        expected.total_cents,
        expected.oldest_unpaid_dos,
    )
    assert (balance.client_due_cents, balance.insurance_pending_cents) == (2000, 3000)


def test_refresh_client_replaces_the_previous_projection(engine):
    with transaction(engine) as session:
        client_id = make_client(session)
        other_id = make_client(session, first_name="Other")
        charge = _insert(session, client_id, "charge", "client", 10000, D1)
        _insert(session, other_id, "charge", "client", 700, D1)
        ledger.refresh_client(session, client_id)
        ledger.refresh_client(session, other_id)
    with transaction(engine) as session:
        payment = _insert(session, client_id, "payment", "client", 12000, D2)
        ledger.refresh_client(session, client_id)

    balance, opens, _ = _stored(engine, client_id)
    assert opens == {}
    assert (balance.client_due_cents, balance.unapplied_credit_cents, balance.total_cents) == (
        0,
        2000,
        -2000,
    )
    assert balance.oldest_unpaid_dos is None

    with transaction(engine) as session:
        _insert(session, client_id, "reversal", "client", 12000, D3, reverses=payment)
        ledger.refresh_client(session, client_id)
        stored = ledger.stored_balance(session, client_id)
    assert open_by_charge(stored) == {charge: 10000}
    assert stored.unapplied_credit_cents == 0

    other_balance, other_opens, _ = _stored(engine, other_id)
    assert other_balance.total_cents == 700
    assert list(other_opens.values()) == [("client", D1, 700)]
