"""The ledger as it stood at the end of a past day: what was owed and what was credit then.

"As of D" counts every ledger entry whose ``posted_at`` falls on or before D in the
practice's time zone and nothing after (spec B4). A late entry for an old date of service
therefore counts from the day it is posted, and a day once past never changes. Reversals and
refunds posted after D do not count as of D either: the entries they cancel still do.

The balances as of D are the same pure ``lib.ledger.replay``, fed only the entries posted by
the end of D. A client with no entry posted after D stands as of D exactly as the projections
say now, so only clients with later entries are replayed; everyone else is read from the
projections. The cost therefore follows the activity since D, not the size of the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib.ledger import POSTING_COLUMNS, PayerRef, Posting, replay
from lib.models import Client, InsuranceCredit, LedgerEntry, OpenCharge
from lib.timeutil import practice_zone

BATCH = 1000


def end_of_day(day: date, tz_name: str | None = None) -> datetime:
    """The first instant (UTC) after the practice's day ``day``: entries posted before it
    count as of ``day``."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=practice_zone(tz_name))
    return midnight.astimezone(UTC)


@dataclass(frozen=True)
class Owed:
    """What was still owed on one charge (or on a refund beyond the credit)."""

    client_id: int
    responsibility: str
    clinician_id: int | None
    payer: PayerRef | None  # None: the client's part
    service_date: date
    cents: int


@dataclass
class LedgerAsOf:
    day: date
    owed: list[Owed] = field(default_factory=list)
    client_credit: dict[int, int] = field(default_factory=dict)  # client id -> their credit
    payer_credit: list[tuple[int, PayerRef, int]] = field(default_factory=list)
    replayed_clients: int = 0  # how many clients had entries after the day (replayed)


def ledger_as_of(session: Session, *, day: date, tz_name: str | None = None) -> LedgerAsOf:
    """Everything owed and every credit at the end of ``day`` (callers check permissions)."""
    end = end_of_day(day, tz_name)
    conn = session.connection()  # plain rows: no ORM bookkeeping for a ledger's worth of rows
    later = select(LedgerEntry.client_id).where(LedgerEntry.posted_at >= end).distinct()
    changed = sorted(conn.scalars(later))
    result = LedgerAsOf(day=day, replayed_clients=len(changed))

    # Clients with nothing posted after the day: the projections are their state then.
    for row in conn.execute(
        select(
            OpenCharge.client_id,
            OpenCharge.responsibility,
            OpenCharge.clinician_id,
            OpenCharge.payer_id,
            OpenCharge.payer_name,
            OpenCharge.service_date,
            OpenCharge.open_cents,
        ).where(OpenCharge.client_id.not_in(later))
    ):
        payer = PayerRef.of(row[3], row[4]) if row[1] == "insurance" else None
        result.owed.append(Owed(row[0], row[1], row[2], payer, row[5], int(row[6])))
    for client_id, cents in conn.execute(
        select(Client.id, Client.unapplied_credit_cents).where(
            Client.unapplied_credit_cents != 0, Client.id.not_in(later)
        )
    ):
        result.client_credit[client_id] = int(cents)
    for client_id, payer_id, payer_name, cents in conn.execute(
        select(
            InsuranceCredit.client_id,
            InsuranceCredit.payer_id,
            InsuranceCredit.payer_name,
            InsuranceCredit.credit_cents,
        ).where(InsuranceCredit.client_id.not_in(later))
    ):
        result.payer_credit.append((client_id, PayerRef.of(payer_id, payer_name), int(cents)))

    # Clients with later entries: replay what they had posted by the end of the day.
    for start in range(0, len(changed), BATCH):
        ids = changed[start : start + BATCH]
        rows = conn.execute(
            select(LedgerEntry.client_id, *POSTING_COLUMNS)
            .where(LedgerEntry.client_id.in_(ids), LedgerEntry.posted_at < end)
            .order_by(LedgerEntry.client_id, LedgerEntry.id)
        ).all()
        for client_id, entries in groupby(rows, lambda r: r[0]):
            _add_state(result, client_id, replay(Posting(*r[1:]) for r in entries))
    return result


def _add_state(result: LedgerAsOf, client_id: int, state) -> None:
    for item in state.open_items:
        result.owed.append(
            Owed(
                client_id,
                item.responsibility,
                item.clinician_id,
                item.payer,
                item.service_date,
                item.open_cents,
            )
        )
    if state.unapplied_credit_cents:
        result.client_credit[client_id] = state.unapplied_credit_cents
    for ref, cents in state.payer_credits.items():
        result.payer_credit.append((client_id, ref, cents))
