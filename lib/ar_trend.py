"""A/R over time: month-end accounts receivable and the months' charges, payments and
adjustments (issue 15, on spec B4's point-in-time rule).

A month-end figure is the ledger as of the last practice day of that month: every entry
posted by the end of that day and nothing after (``lib.ledger_as_of``), charges aged by date
of service relative to that day. A past month therefore never changes.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lib.aging import DEFAULT_EDGES, Slice, bucket_for, buckets
from lib.ledger import PayerRef
from lib.ledger_as_of import end_of_day, ledger_as_of
from lib.models import LedgerEntry
from lib.timeutil import practice_today

DAYS_IN_AR_WINDOW = 90


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def add_months(day: date, months: int) -> date:
    """The first of the month ``months`` after (or before) ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_ends(months: int, today: date | None = None) -> list[date]:
    """The last ``months`` month-ends, oldest first; the current month counts to ``today``."""
    today = today or practice_today()
    first = month_start(today)
    found = [month_end(add_months(first, -k)) for k in range(months - 1, 0, -1)]
    return [*found, today]


def _slice(clinician_id: int | None, payer_id: int | PayerRef | None) -> Slice:
    payer = PayerRef.of(payer_id) if isinstance(payer_id, int) else payer_id
    return Slice(clinician_id=clinician_id, payer=payer)


def month_end_figures(
    session: Session,
    months: int,
    clinician_id: int | None = None,
    payer_id: int | PayerRef | None = None,
    *,
    edges: tuple[int, ...] = DEFAULT_EDGES,
    today: date | None = None,
) -> list[dict]:
    """One dict per month-end, oldest first (callers check permissions): ``month_end``,
    ``partial`` (the current month, as of today), ``net_ar_cents`` and its parts, amounts per
    aging bucket, and the month's charges, payments, adjustments and refunds."""
    chosen = _slice(clinician_id, payer_id)
    bucket_list = buckets(edges)
    today = today or practice_today()
    result = []
    for day in month_ends(months, today):
        history = ledger_as_of(session, day=day)
        figures = {
            "month": day.strftime("%Y-%m"),
            "month_end": day,
            "partial": day == today and day != month_end(day),
            "client_cents": 0,
            "insurance_cents": 0,
            "buckets": {b.key: 0 for b in bucket_list},
            "client_buckets": {b.key: 0 for b in bucket_list},
            "insurance_buckets": {b.key: 0 for b in bucket_list},
        }
        for o in history.owed:
            if not chosen.has(o.responsibility, o.clinician_id, o.payer):
                continue
            key = bucket_for(day - o.service_date, bucket_list)
            figures[f"{o.responsibility}_cents"] += o.cents
            figures["buckets"][key] += o.cents
            figures[f"{o.responsibility}_buckets"][key] += o.cents
        client_credit = sum(history.client_credit.values())
        payer_credit = sum(c for _, ref, c in history.payer_credit if chosen.payer in (None, ref))
        if chosen.clinician_id is not None:
            client_credit = payer_credit = 0
        elif chosen.payer is not None:
            client_credit = 0
        figures["client_credit_cents"] = client_credit
        figures["insurance_credit_cents"] = payer_credit
        figures["ar_cents"] = figures["client_cents"] + figures["insurance_cents"]
        figures["net_ar_cents"] = figures["ar_cents"] - client_credit - payer_credit
        figures.update(month_flows(session, month_start(day), day, chosen))
        result.append(figures)
    return result


def month_flows(session: Session, first: date, last: date, chosen: Slice) -> dict:
    """Charges, payments, adjustments and refunds posted from ``first`` to ``last`` (practice
    days), a reversal counting against the kind it cancels, in the month it is posted."""
    conn = session.connection()
    start, end = end_of_day(first - timedelta(days=1)), end_of_day(last)
    original = LedgerEntry.__table__.alias("original")
    keys = (
        func.coalesce(original.c.kind, LedgerEntry.kind),
        LedgerEntry.responsibility,
        func.coalesce(original.c.clinician_id, LedgerEntry.clinician_id),
        func.coalesce(original.c.payer_id, LedgerEntry.payer_id),
        func.coalesce(original.c.payer_name, LedgerEntry.payer_name),
        LedgerEntry.reverses_entry_id.is_not(None),
    )
    rows = conn.execute(
        select(*keys, func.sum(LedgerEntry.amount_cents))
        .select_from(LedgerEntry)
        .outerjoin(original, original.c.id == LedgerEntry.reverses_entry_id)
        .where(LedgerEntry.posted_at >= start, LedgerEntry.posted_at < end)
        .group_by(*keys)
    ).all()
    flows = {"charges_cents": 0, "payments_cents": 0, "adjustments_cents": 0, "refunds_cents": 0}
    for kind, responsibility, clin, pid, name, is_reversal, cents in rows:
        ref = PayerRef.of(pid, name) if responsibility == "insurance" else None
        if chosen.clinician_id is not None and kind != "charge":
            continue  # a payment is the client's or a payer's, not a clinician's
        if not chosen.has(responsibility, clin, ref):
            continue
        flows[f"{kind}s_cents"] += -int(cents) if is_reversal else int(cents)
    return flows


def days_in_ar(session: Session, as_of: date) -> float | None:
    """Net A/R at the end of ``as_of`` ÷ average daily charges posted over the 90 days
    ending that day. None when nothing was charged in those days."""
    history = ledger_as_of(session, day=as_of)
    net = (
        sum(o.cents for o in history.owed)
        - sum(history.client_credit.values())
        - sum(c for _, _, c in history.payer_credit)
    )
    first = as_of - timedelta(days=DAYS_IN_AR_WINDOW - 1)
    charges = month_flows(session, first, as_of, Slice())["charges_cents"]
    if charges <= 0:
        return None
    return net / (charges / DAYS_IN_AR_WINDOW)
