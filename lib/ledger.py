"""The client ledger and the balances derived from it (spec B2).

The ledger is append-only. A client's balances are a pure function of their entries
(``replay``): reversed entries and their reversals drop out, then, in posting order, charges
open items, and payments and adjustments pay the oldest open items they may pay. A client's
payment pays the client's part; an insurance payment pays only the open charges of its own
payer (``PayerRef``: a payer from the list by id, or a payer typed on a coverage by name).
What a payment leaves over is unapplied credit of whoever paid: the client's credit, or that
payer's insurance credit. Credit pays its owner's later charges as they are posted: the
client's credit the client's charges, a payer's credit that payer's charges (oldest first,
the same rule as a payment). Refunds pay the client's credit back out.

Insurance entries posted before payers were recorded on payments may name no payer at all
(``PayerRef.unknown``): such a payment or adjustment pays the oldest insurance charges of any
payer, and its left-over credit pays any later insurance charge.

The projections — the balance columns of ``clients``, the ``open_charges`` rows, the
``insurance_credits`` rows and the list's ``client_totals`` — hold the result, so that lists
and reports never have to read the whole ledger.

Invariant: client_due + insurance_pending - unapplied_credit - insurance_credit
           == charges - payments - adjustments + refunds  (over non-reversed entries).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from lib import client_totals
from lib.models import Client, InsuranceCredit, LedgerEntry, OpenCharge, Payer
from lib.policy import Actor, require_client_access

UNKNOWN_PAYER_LABEL = "Insurance, payer not recorded"


def clean_payer_name(name: str | None) -> str:
    """A typed payer name as stored: trimmed, inner spaces collapsed."""
    return " ".join((name or "").split())


@dataclass(frozen=True)
class PayerRef:
    """Which insurance an entry is with: a payer from the practice's list (by id) or a payer
    typed by name on a coverage (matched case-insensitively). Neither: not recorded."""

    payer_id: int | None
    name_key: str = ""
    name: str = field(default="", compare=False)

    @classmethod
    def of(cls, payer_id: int | None, payer_name: str | None = "") -> PayerRef:
        if payer_id is not None:
            return cls(payer_id)
        name = clean_payer_name(payer_name)
        return cls(None, name.casefold(), name)

    @property
    def unknown(self) -> bool:
        return self.payer_id is None and not self.name_key

    def pays(self, item: OpenItem) -> bool:
        """Whether a payment from this payer may pay ``item``."""
        if item.responsibility != "insurance":
            return False
        if self.payer_id is not None:
            return item.payer_id == self.payer_id
        if not self.name_key:
            return True  # a payment that names no payer pays any insurance charge
        return item.payer_id is None and item.payer_name.casefold() == self.name_key


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
    payer_name: str = ""


@dataclass
class OpenItem:
    charge_entry_id: int
    responsibility: str
    service_date: date
    clinician_id: int | None
    payer_id: int | None
    open_cents: int
    payer_name: str = ""

    @property
    def payer(self) -> PayerRef | None:
        if self.responsibility != "insurance":
            return None
        return PayerRef.of(self.payer_id, self.payer_name)


def _is_client(item: OpenItem) -> bool:
    return item.responsibility == "client"


@dataclass
class ClientState:
    open_items: list[OpenItem] = field(default_factory=list)
    unapplied_credit_cents: int = 0  # the client's own credit
    payer_credits: dict[PayerRef, int] = field(default_factory=dict)  # insurance credit

    def due(self, responsibility: str) -> int:
        return sum(i.open_cents for i in self.open_items if i.responsibility == responsibility)

    @property
    def client_due_cents(self) -> int:
        return self.due("client")

    @property
    def insurance_pending_cents(self) -> int:
        return self.due("insurance")

    @property
    def insurance_credit_cents(self) -> int:
        return sum(self.payer_credits.values())

    @property
    def total_cents(self) -> int:
        return (
            self.client_due_cents
            + self.insurance_pending_cents
            - self.unapplied_credit_cents
            - self.insurance_credit_cents
        )

    @property
    def oldest_unpaid_dos(self) -> date | None:
        dates = [i.service_date for i in self.open_items if i.open_cents > 0]
        return min(dates) if dates else None


def _pay_oldest(items: list[OpenItem], may_pay: Callable[[OpenItem], bool], amount: int) -> int:
    """Apply ``amount`` to the oldest open items it may pay; return what is left."""
    if amount == 0:
        return 0
    for item in sorted(
        (i for i in items if i.open_cents > 0 and may_pay(i)),
        key=lambda i: (i.service_date, i.charge_entry_id),
    ):
        if amount == 0:
            break
        paid = min(item.open_cents, amount)
        item.open_cents -= paid
        amount -= paid
    return amount


def _apply_payer_credit(state: ClientState, charge: OpenItem) -> None:
    """A new insurance charge is paid from its payer's credit first, then from credit of
    insurance payments that named no payer."""
    for ref in sorted(state.payer_credits, key=lambda r: r.unknown):
        if ref.pays(charge):
            left = _pay_oldest(state.open_items, ref.pays, state.payer_credits[ref])
            if left:
                state.payer_credits[ref] = left
            else:
                del state.payer_credits[ref]


def replay(postings: Iterable[Posting]) -> ClientState:
    """Balances of one client from their ledger entries (any order; sorted by id here)."""
    ordered = sorted(postings, key=lambda p: p.id)
    reversed_ids = {p.reverses_entry_id for p in ordered if p.kind == "reversal"}
    state = ClientState()
    for p in ordered:
        if p.kind == "reversal" or p.id in reversed_ids:
            continue
        if p.kind == "charge":
            item = OpenItem(
                p.id,
                p.responsibility,
                p.service_date,
                p.clinician_id,
                p.payer_id,
                p.amount_cents,
                clean_payer_name(p.payer_name) if p.responsibility == "insurance" else "",
            )
            state.open_items.append(item)
            if p.responsibility == "client" and state.unapplied_credit_cents:
                left = _pay_oldest(state.open_items, _is_client, state.unapplied_credit_cents)
                state.unapplied_credit_cents = left
            elif p.responsibility == "insurance" and state.payer_credits:
                _apply_payer_credit(state, item)
        elif p.kind in ("payment", "adjustment"):
            if p.responsibility == "client":
                state.unapplied_credit_cents += _pay_oldest(
                    state.open_items, _is_client, p.amount_cents
                )
            else:
                ref = PayerRef.of(p.payer_id, p.payer_name)
                left = _pay_oldest(state.open_items, ref.pays, p.amount_cents)
                if left:
                    state.payer_credits[ref] = state.payer_credits.get(ref, 0) + left
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
    "insurance_credit_cents",
    "total_cents",
    "oldest_unpaid_dos",
)


def balance_rows(client_id: int, state: ClientState) -> tuple[dict, list[dict]]:
    """The client row's balance columns and the ``open_charges`` rows for one client's state."""
    balance = {
        "client_due_cents": state.client_due_cents,
        "insurance_pending_cents": state.insurance_pending_cents,
        "unapplied_credit_cents": state.unapplied_credit_cents,
        "insurance_credit_cents": state.insurance_credit_cents,
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
            "payer_name": i.payer_name,
            "open_cents": i.open_cents,
        }
        for i in state.open_items
    ]
    return balance, items


def credit_rows(client_id: int, state: ClientState) -> list[dict]:
    """The ``insurance_credits`` rows (one per payer holding credit) for one client's state."""
    return [
        {
            "client_id": client_id,
            "payer_id": ref.payer_id,
            "payer_name": ref.name,
            "credit_cents": cents,
        }
        for ref, cents in sorted(
            state.payer_credits.items(), key=lambda kv: (kv[0].payer_id or 0, kv[0].name_key)
        )
    ]


POSTING_COLUMNS = (
    LedgerEntry.id,
    LedgerEntry.kind,
    LedgerEntry.responsibility,
    LedgerEntry.amount_cents,
    LedgerEntry.service_date,
    LedgerEntry.reverses_entry_id,
    LedgerEntry.clinician_id,
    LedgerEntry.payer_id,
    LedgerEntry.payer_name,
)


def _postings_for(session: Session, client_id: int) -> list[Posting]:
    rows = session.execute(select(*POSTING_COLUMNS).where(LedgerEntry.client_id == client_id))
    return [Posting(*row) for row in rows]


def refresh_client(session: Session, client_id: int) -> ClientState:
    """Recompute one client's projections from their ledger, inside the caller's transaction:
    the client row's balances, its open charges and insurance credits, and the list totals
    it counts in."""
    from lib import ar_history  # it builds on this module

    state = replay(_postings_for(session, client_id))
    balance, items = balance_rows(client_id, state)
    old = session.execute(
        select(
            Client.status, Client.clinician_id, *[getattr(Client, c) for c in BALANCE_COLUMNS]
        ).where(Client.id == client_id)
    ).one()
    before_state = _projected_state(session, client_id, old.unapplied_credit_cents or 0)
    session.execute(delete(OpenCharge).where(OpenCharge.client_id == client_id))
    if items:
        session.execute(insert(OpenCharge), items)
    session.execute(delete(InsuranceCredit).where(InsuranceCredit.client_id == client_id))
    credits = credit_rows(client_id, state)
    if credits:
        session.execute(insert(InsuranceCredit), credits)
    session.execute(
        update(Client)
        .where(Client.id == client_id)
        .values(**balance)
        .execution_options(synchronize_session=False)
    )
    ar_history.record_state_change(session, client_id=client_id, old=before_state, new=state)
    before = dict(zip(BALANCE_COLUMNS, old[2:], strict=True))
    client_totals.adjust(
        session,
        status=old.status,
        clinician_id=old.clinician_id,
        **{k: balance[k] - (before[k] or 0) for k in client_totals.SUMS},
    )
    return state


def _projected_state(session: Session, client_id: int, unapplied_credit_cents: int) -> ClientState:
    """The client's state as the projections hold it (before a refresh rewrites them)."""
    items = [
        OpenItem(*row)
        for row in session.execute(
            select(
                OpenCharge.charge_entry_id,
                OpenCharge.responsibility,
                OpenCharge.service_date,
                OpenCharge.clinician_id,
                OpenCharge.payer_id,
                OpenCharge.open_cents,
                OpenCharge.payer_name,
            ).where(OpenCharge.client_id == client_id)
        )
    ]
    credits: dict[PayerRef, int] = {}
    for pid, name, cents in session.execute(
        select(
            InsuranceCredit.payer_id, InsuranceCredit.payer_name, InsuranceCredit.credit_cents
        ).where(InsuranceCredit.client_id == client_id)
    ):
        ref = PayerRef.of(pid, name)
        credits[ref] = credits.get(ref, 0) + int(cents)
    return ClientState(
        open_items=items, unapplied_credit_cents=unapplied_credit_cents, payer_credits=credits
    )


def refresh_clients(session: Session, client_ids: Iterable[int], *, chunk: int = 500) -> int:
    """``refresh_client`` for many clients at once (an import's opening balances): the same
    ``replay`` per client, but each step is one statement per ``chunk`` clients instead of
    one per client. Returns how many clients were refreshed. It leaves ``ar_changes`` to the
    caller (``lib.ar_history.add_new_clients`` for an import's new clients)."""
    ids = sorted(set(client_ids))
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        postings: dict[int, list[Posting]] = {cid: [] for cid in part}
        for row in session.execute(
            select(LedgerEntry.client_id, *POSTING_COLUMNS).where(LedgerEntry.client_id.in_(part))
        ):
            postings[row[0]].append(Posting(*row[1:]))
        old = {
            row[0]: row
            for row in session.execute(
                select(
                    Client.id,
                    Client.status,
                    Client.clinician_id,
                    *[getattr(Client, c) for c in BALANCE_COLUMNS],
                ).where(Client.id.in_(part))
            )
        }
        session.execute(delete(OpenCharge).where(OpenCharge.client_id.in_(part)))
        session.execute(delete(InsuranceCredit).where(InsuranceCredit.client_id.in_(part)))
        all_items: list[dict] = []
        all_credits: list[dict] = []
        balances: list[dict] = []
        deltas: dict[tuple[str, int | None], dict[str, int]] = {}
        for cid in part:
            state = replay(postings[cid])
            balance, items = balance_rows(cid, state)
            all_items.extend(items)
            all_credits.extend(credit_rows(cid, state))
            balances.append({"id": cid, **balance})
            before = dict(zip(BALANCE_COLUMNS, old[cid][3:], strict=True))
            group = deltas.setdefault(
                (old[cid][1], old[cid][2]), dict.fromkeys(client_totals.SUMS, 0)
            )
            for k in client_totals.SUMS:
                group[k] += balance[k] - (before[k] or 0)
        if all_items:
            session.execute(insert(OpenCharge.__table__), all_items)
        if all_credits:
            session.execute(insert(InsuranceCredit.__table__), all_credits)
        session.execute(update(Client), balances)  # bulk UPDATE by primary key
        for (status, clinician_id), group in sorted(
            deltas.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)
        ):
            client_totals.adjust(session, status=status, clinician_id=clinician_id, **group)
    return len(ids)


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
            o.payer_name,
        )
        for o in session.scalars(select(OpenCharge).where(OpenCharge.client_id == client_id))
    ]
    credits = {
        PayerRef.of(c.payer_id, c.payer_name): c.credit_cents
        for c in session.scalars(
            select(InsuranceCredit).where(InsuranceCredit.client_id == client_id)
        )
    }
    return ClientState(
        open_items=items, unapplied_credit_cents=row.unapplied_credit_cents, payer_credits=credits
    )


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
    payer_names = dict(session.execute(select(Payer.id, Payer.name)).all())
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
            if e.responsibility == "insurance" and (e.payer_id or e.payer_name):
                parts.append(payer_names.get(e.payer_id, "") if e.payer_id else e.payer_name)
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


def insurance_credits_of(session: Session, client_id: int) -> list[tuple[str, int]]:
    """A client's insurance credit per payer, as (payer's name, cents), largest first."""
    rows = session.execute(
        select(
            InsuranceCredit.payer_id, InsuranceCredit.payer_name, InsuranceCredit.credit_cents
        ).where(InsuranceCredit.client_id == client_id)
    ).all()
    names = dict(session.execute(select(Payer.id, Payer.name)).all()) if rows else {}
    found = [
        (names.get(pid, "") if pid else (typed or UNKNOWN_PAYER_LABEL), int(cents))
        for pid, typed, cents in rows
    ]
    return sorted(found, key=lambda r: (-r[1], r[0]))


def client_state(session: Session, client_id: int) -> ClientState:
    """A client's balances computed from their ledger now, without writing anything."""
    return replay(_postings_for(session, client_id))
