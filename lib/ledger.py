"""The client ledger and the balances derived from it (spec B2).

The ledger is append-only. A client's balances are a pure function of their entries
(``replay``): reversed entries and their reversals drop out, then, in posting order, charges
open items, payments and adjustments pay the oldest open items of the same responsibility,
what is left over becomes unapplied credit, and credit pays the client's later charges.
Refunds pay credit back out. The projections — the balance columns of ``clients``, the
``open_charges`` rows and the list's ``client_totals`` — hold the result, so that lists and
reports never have to read the whole ledger.

Invariant: client_due + insurance_pending - unapplied_credit
           == charges - payments - adjustments + refunds  (over non-reversed entries).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from lib import client_totals
from lib.models import Client, LedgerEntry, OpenCharge
from lib.policy import Actor, require_client_access


@dataclass(frozen=True)
class Posting:
    """The fields of a ledger entry that balances depend on."""

    id: int
    kind: str
    responsibility: str
    amount_cents: int
    service_date: date
    reverses_entry_id: int | None = None
    clinician_id: int | None = None
    payer_id: int | None = None


@dataclass
class OpenItem:
    charge_entry_id: int
    responsibility: str
    service_date: date
    clinician_id: int | None
    payer_id: int | None
    open_cents: int


@dataclass
class ClientState:
    open_items: list[OpenItem] = field(default_factory=list)
    unapplied_credit_cents: int = 0

    def due(self, responsibility: str) -> int:
        return sum(i.open_cents for i in self.open_items if i.responsibility == responsibility)

    @property
    def client_due_cents(self) -> int:
        return self.due("client")

    @property
    def insurance_pending_cents(self) -> int:
        return self.due("insurance")

    @property
    def total_cents(self) -> int:
        return self.client_due_cents + self.insurance_pending_cents - self.unapplied_credit_cents

    @property
    def oldest_unpaid_dos(self) -> date | None:
        dates = [i.service_date for i in self.open_items if i.open_cents > 0]
        return min(dates) if dates else None


def _pay_oldest(items: list[OpenItem], responsibility: str, amount: int) -> int:
    """Apply ``amount`` to the oldest open items of ``responsibility``; return what is left."""
    for item in sorted(
        (i for i in items if i.responsibility == responsibility and i.open_cents > 0),
        key=lambda i: (i.service_date, i.charge_entry_id),
    ):
        if amount == 0:
            break
        paid = min(item.open_cents, amount)
        item.open_cents -= paid
        amount -= paid
    return amount


def replay(postings: Iterable[Posting]) -> ClientState:
    """Balances of one client from their ledger entries (any order; sorted by id here)."""
    ordered = sorted(postings, key=lambda p: p.id)
    reversed_ids = {p.reverses_entry_id for p in ordered if p.kind == "reversal"}
    state = ClientState()
    for p in ordered:
        if p.kind == "reversal" or p.id in reversed_ids:
            continue
        if p.kind == "charge":
            state.open_items.append(
                OpenItem(
                    p.id,
                    p.responsibility,
                    p.service_date,
                    p.clinician_id,
                    p.payer_id,
                    p.amount_cents,
                )
            )
            if p.responsibility == "client" and state.unapplied_credit_cents:
                left = _pay_oldest(state.open_items, "client", state.unapplied_credit_cents)
                state.unapplied_credit_cents = left
        elif p.kind in ("payment", "adjustment"):
            state.unapplied_credit_cents += _pay_oldest(
                state.open_items, p.responsibility, p.amount_cents
            )
        elif p.kind == "refund":
            state.unapplied_credit_cents -= p.amount_cents
            if state.unapplied_credit_cents < 0:
                # Refunded more than the credit: the excess is owed back, as an open item.
                state.open_items.append(
                    OpenItem(
                        p.id, "client", p.service_date, None, None, -state.unapplied_credit_cents
                    )
                )
                state.unapplied_credit_cents = 0
        else:
            raise ValueError(f"unknown ledger kind {p.kind!r}")
    state.open_items = [i for i in state.open_items if i.open_cents > 0]
    return state


def signed_amount(kind: str, amount_cents: int) -> int:
    """How an entry moves the balance owed to the practice (reversals handled by caller)."""
    return amount_cents if kind in ("charge", "refund") else -amount_cents


BALANCE_COLUMNS = (
    "client_due_cents",
    "insurance_pending_cents",
    "unapplied_credit_cents",
    "total_cents",
    "oldest_unpaid_dos",
)


def balance_rows(client_id: int, state: ClientState) -> tuple[dict, list[dict]]:
    """The client row's balance columns and the ``open_charges`` rows for one client's state."""
    balance = {
        "client_due_cents": state.client_due_cents,
        "insurance_pending_cents": state.insurance_pending_cents,
        "unapplied_credit_cents": state.unapplied_credit_cents,
        "total_cents": state.total_cents,
        "oldest_unpaid_dos": state.oldest_unpaid_dos,
    }
    items = [
        {
            "charge_entry_id": i.charge_entry_id,
            "client_id": client_id,
            "responsibility": i.responsibility,
            "service_date": i.service_date,
            "clinician_id": i.clinician_id,
            "payer_id": i.payer_id,
            "open_cents": i.open_cents,
        }
        for i in state.open_items
    ]
    return balance, items


def _postings_for(session: Session, client_id: int) -> list[Posting]:
    rows = session.execute(
        select(
            LedgerEntry.id,
            LedgerEntry.kind,
            LedgerEntry.responsibility,
            LedgerEntry.amount_cents,
            LedgerEntry.service_date,
            LedgerEntry.reverses_entry_id,
            LedgerEntry.clinician_id,
            LedgerEntry.payer_id,
        ).where(LedgerEntry.client_id == client_id)
    )
    return [Posting(*row) for row in rows]


def refresh_client(session: Session, client_id: int) -> ClientState:
    """Recompute one client's projections from their ledger, inside the caller's transaction:
    the client row's balances, its open charges, and the list totals it counts in."""
    state = replay(_postings_for(session, client_id))
    balance, items = balance_rows(client_id, state)
    old = session.execute(
        select(
            Client.status, Client.clinician_id, *[getattr(Client, c) for c in BALANCE_COLUMNS]
        ).where(Client.id == client_id)
    ).one()
    session.execute(delete(OpenCharge).where(OpenCharge.client_id == client_id))
    if items:
        session.execute(insert(OpenCharge), items)
    session.execute(
        update(Client)
        .where(Client.id == client_id)
        .values(**balance)
        .execution_options(synchronize_session=False)
    )
    before = dict(zip(BALANCE_COLUMNS, old[2:], strict=True))
    client_totals.adjust(
        session,
        status=old.status,
        clinician_id=old.clinician_id,
        **{k: balance[k] - (before[k] or 0) for k in client_totals.SUMS},
    )
    return state


def stored_balance(session: Session, client_id: int) -> ClientState | None:
    """What the projections say now (reconciliation compares this with ``replay``)."""
    row = session.get(Client, client_id, populate_existing=True)
    if row is None:
        return None
    items = [
        OpenItem(
            o.charge_entry_id,
            o.responsibility,
            o.service_date,
            o.clinician_id,
            o.payer_id,
            o.open_cents,
        )
        for o in session.scalars(select(OpenCharge).where(OpenCharge.client_id == client_id))
    ]
    return ClientState(open_items=items, unapplied_credit_cents=row.unapplied_credit_cents)


KIND_LABELS = {
    "charge": "Charge",
    "payment": "Payment",
    "adjustment": "Adjustment",
    "refund": "Refund",
    "reversal": "Reversal",
}


@dataclass(frozen=True)
class LedgerLine:
    entry_id: int
    posted_at: object
    service_date: date
    kind: str
    responsibility: str
    description: str
    amount_cents: int  # signed: + raises what is owed, - lowers it
    running_balance_cents: int
    reversed: bool
    reverses_entry_id: int | None


def client_ledger(session: Session, *, actor: Actor, client_id: int) -> list[LedgerLine]:
    """The client's ledger in posting order with a running balance (billing roles only)."""
    client = session.get(Client, client_id)
    require_client_access(actor, "balance.view", client.clinician_id if client else None)
    entries = list(
        session.scalars(
            select(LedgerEntry).where(LedgerEntry.client_id == client_id).order_by(LedgerEntry.id)
        )
    )
    by_id = {e.id: e for e in entries}
    reversed_ids = {e.reverses_entry_id for e in entries if e.kind == "reversal"}
    running = 0
    lines = []
    for e in entries:
        if e.kind == "reversal":
            original = by_id[e.reverses_entry_id]
            signed = -signed_amount(original.kind, original.amount_cents)
            description = f"Reversal of #{original.id}" + (f": {e.memo}" if e.memo else "")
        else:
            signed = signed_amount(e.kind, e.amount_cents)
            parts = [KIND_LABELS[e.kind], f"({e.responsibility})"]
            if e.method:
                parts.append(e.method)
            if e.reference:
                parts.append(f"ref {e.reference}")
            if e.memo:
                parts.append(f"— {e.memo}")
            description = " ".join(parts)
        running += signed
        lines.append(
            LedgerLine(
                entry_id=e.id,
                posted_at=e.posted_at,
                service_date=e.service_date,
                kind=KIND_LABELS[e.kind],
                responsibility=e.responsibility,
                description=description,
                amount_cents=signed,
                running_balance_cents=running,
                reversed=e.id in reversed_ids,
                reverses_entry_id=e.reverses_entry_id,
            )
        )
    return lines


def client_state(session: Session, client_id: int) -> ClientState:
    """A client's balances computed from their ledger now, without writing anything."""
    return replay(_postings_for(session, client_id))
