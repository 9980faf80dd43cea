"""Reconciliation (spec B6): the ledger, the stored balances and the aging report agree.

Three totals must be equal: the sum of the ledger (every entry that is not reversed, signed),
the sum of the clients' stored balances, and the sum of the aging buckets (open charges) less
unapplied credit (the clients' and insurance's). Each client's stored balances, open charges
and insurance credit per payer must equal a fresh replay of their ledger, and the list totals
must equal the client rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from lib import client_totals
from lib.ledger import BALANCE_COLUMNS, POSTING_COLUMNS, PayerRef, Posting, balance_rows, replay
from lib.models import Client, InsuranceCredit, LedgerEntry, OpenCharge
from lib.policy import Actor, require


@dataclass(frozen=True)
class ClientMismatch:
    client_id: int
    client_number: int
    stored_total_cents: int
    ledger_total_cents: int
    detail: str


@dataclass
class Reconciliation:
    ledger_total_cents: int
    balances_total_cents: int
    aging_total_cents: int  # open charges (all buckets) minus unapplied and insurance credit
    clients_checked: int
    mismatches: list[ClientMismatch] = field(default_factory=list)
    totals_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.ledger_total_cents == self.balances_total_cents == self.aging_total_cents
            and not self.mismatches
            and not self.totals_problems
        )


def _ledger_total(session: Session) -> int:
    reversed_ids = select(LedgerEntry.reverses_entry_id).where(
        LedgerEntry.reverses_entry_id.is_not(None)
    )
    signed = case(
        (LedgerEntry.kind.in_(("charge", "refund")), LedgerEntry.amount_cents),
        else_=-LedgerEntry.amount_cents,
    )
    return int(
        session.scalar(
            select(func.coalesce(func.sum(signed), 0)).where(
                LedgerEntry.kind != "reversal", LedgerEntry.id.not_in(reversed_ids)
            )
        )
    )


def reconcile(session: Session, *, actor: Actor | None, batch: int = 2000) -> Reconciliation:
    """Check everything; ``actor`` None is the command line. Reads the ledger once, in client
    order and in batches, so memory stays flat at any practice size."""
    if actor is not None:
        require(actor, "reconcile.run")
    ledger_total = _ledger_total(session)
    stored = session.execute(
        select(
            func.coalesce(func.sum(Client.total_cents), 0),
            func.coalesce(func.sum(Client.unapplied_credit_cents), 0),
        )
    ).one()
    insurance_credit = int(
        session.scalar(select(func.coalesce(func.sum(InsuranceCredit.credit_cents), 0)))
    )
    open_total = int(session.scalar(select(func.coalesce(func.sum(OpenCharge.open_cents), 0))))
    result = Reconciliation(
        ledger_total_cents=ledger_total,
        balances_total_cents=int(stored[0]),
        aging_total_cents=open_total - int(stored[1]) - insurance_credit,
        clients_checked=0,
        totals_problems=client_totals.differences(session),
    )
    last_id = 0
    while True:
        clients = session.execute(
            select(Client.id, Client.client_number, *[getattr(Client, c) for c in BALANCE_COLUMNS])
            .where(Client.id > last_id)
            .order_by(Client.id)
            .limit(batch)
        ).all()
        if not clients:
            break
        first, last_id = clients[0].id, clients[-1].id
        entries = session.execute(
            select(LedgerEntry.client_id, *POSTING_COLUMNS)
            .where(LedgerEntry.client_id.between(first, last_id))
            .order_by(LedgerEntry.client_id, LedgerEntry.id)
        ).all()
        opens = session.execute(
            select(OpenCharge.client_id, OpenCharge.charge_entry_id, OpenCharge.open_cents).where(
                OpenCharge.client_id.between(first, last_id)
            )
        ).all()
        by_client = {k: [Posting(*r[1:]) for r in g] for k, g in groupby(entries, lambda r: r[0])}
        open_by_client: dict[int, dict[int, int]] = {}
        for client_id, charge_id, cents in opens:
            open_by_client.setdefault(client_id, {})[charge_id] = cents
        credits_by_client: dict[int, dict[PayerRef, int]] = {}
        for client_id, payer_id, payer_name, cents in session.execute(
            select(
                InsuranceCredit.client_id,
                InsuranceCredit.payer_id,
                InsuranceCredit.payer_name,
                InsuranceCredit.credit_cents,
            ).where(InsuranceCredit.client_id.between(first, last_id))
        ):
            credits_by_client.setdefault(client_id, {})[PayerRef.of(payer_id, payer_name)] = cents
        for row in clients:
            result.clients_checked += 1
            state = replay(by_client.get(row.id, []))
            expected, _ = balance_rows(row.id, state)
            actual = dict(zip(BALANCE_COLUMNS, row[2:], strict=True))
            wrong = [k for k in BALANCE_COLUMNS if actual[k] != expected[k]]
            expected_open = {i.charge_entry_id: i.open_cents for i in state.open_items}
            if open_by_client.get(row.id, {}) != expected_open:
                wrong.append("open charges")
            if credits_by_client.get(row.id, {}) != state.payer_credits:
                wrong.append("insurance credit by payer")
            if wrong:
                result.mismatches.append(
                    ClientMismatch(
                        client_id=row.id,
                        client_number=row.client_number,
                        stored_total_cents=int(actual["total_cents"] or 0),
                        ledger_total_cents=state.total_cents,
                        detail="disagrees on " + ", ".join(wrong),
                    )
                )
    return result
