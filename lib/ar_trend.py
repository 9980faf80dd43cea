"""A/R over time: month-end accounts receivable and the months' charges, payments and
adjustments (issue 15, on spec B4's point-in-time rule).

A month-end figure is the ledger as of the last practice day of that month: every entry
posted by the end of that day and nothing after (``lib.ledger_as_of``), charges aged by date
of service relative to that day. A past month therefore never changes.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from lib import ar_history
from lib.aging import DEFAULT_EDGES, NO_CLINICIAN, Slice, bucket_for, buckets
from lib.ledger import PayerRef
from lib.ledger_as_of import end_of_day, ledger_as_of
from lib.models import ADJUSTMENT_REASONS, ArChange, LedgerEntry
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


FLOW_KEYS = ("charges_cents", "payments_cents", "adjustments_cents", "refunds_cents")


def _conditions(chosen: Slice) -> list:
    """The slice over ``ar_changes`` (credit is no clinician's; with a payer, its own)."""
    found = []
    if chosen.clinician_id is not None:
        clinician = 0 if chosen.clinician_id == NO_CLINICIAN else chosen.clinician_id
        found.append(ArChange.clinician_id == clinician)
        # A payment, adjustment or refund is the client's or a payer's, not a clinician's.
        found.append(ArChange.part.in_((ar_history.OWED, "charge")))
    if chosen.payer is not None:
        found.append(ArChange.responsibility == "insurance")
        found.append(ArChange.payer_id == (chosen.payer.payer_id or 0))
        found.append(ArChange.payer_key == chosen.payer.name_key)
    return found


def _changes(session: Session, chosen: Slice, first: date, flows_from: date) -> list[tuple]:
    """(part, responsibility, day, service date, cents): the A/R changes before ``first``
    summed into ``first``'s month, and those since; flows only from ``flows_from``."""
    day = case((ArChange.day < first, first), else_=ArChange.day).label("d")
    return session.execute(
        select(
            ArChange.part,
            ArChange.responsibility,
            day,
            ArChange.service_date,
            func.sum(ArChange.cents),
        )
        .where(
            *_conditions(chosen),
            or_(
                ArChange.part.in_((ar_history.OWED, ar_history.CREDIT)),
                ArChange.day >= flows_from,
            ),
        )
        .group_by(ArChange.part, ArChange.responsibility, day, ArChange.service_date)
    ).all()


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
    ``partial`` (the current month, as of today), ``net_ar_cents`` and its parts
    (``client_cents``, ``insurance_cents`` owed; ``client_credit_cents``,
    ``insurance_credit_cents`` held), amounts per aging bucket (all, client, insurance), and
    the month's charges, payments, adjustments (and ``adjustments_by_reason``) and refunds.

    One grouped query over the ``ar_changes`` projection, then running sums per month: the
    figure for a month-end is every change posted by the end of that month.
    """
    chosen = _slice(clinician_id, payer_id)
    bucket_list = buckets(edges)
    today = today or practice_today()
    ends = month_ends(months, today)
    first = month_start(ends[0])
    rows = _changes(session, chosen, first, first)
    by_month: dict[date, list[tuple]] = {}
    for part, responsibility, day, service_date, cents in rows:
        if isinstance(day, str):  # SQLite hands a CASE over dates back as text
            day = date.fromisoformat(day)
        by_month.setdefault(month_start(day), []).append(
            (part, responsibility, service_date, int(cents))
        )
    owed: dict[tuple[str, date], int] = {}
    credit = {"client": 0, "insurance": 0}
    result = []
    for end in ends:
        flows = dict.fromkeys(FLOW_KEYS, 0)
        by_reason = dict.fromkeys(ADJUSTMENT_REASONS, 0)
        for part, responsibility, service_date, cents in by_month.get(month_start(end), ()):
            if part == ar_history.OWED:
                key = (responsibility, service_date)
                owed[key] = owed.get(key, 0) + cents
            elif part == ar_history.CREDIT:
                credit[responsibility] += cents
            elif part.startswith("adj_"):
                flows["adjustments_cents"] += cents
                by_reason[part[4:]] = by_reason.get(part[4:], 0) + cents
            else:
                flows[f"{part}s_cents"] += cents
        figures = {
            "month": end.strftime("%Y-%m"),
            "month_end": end,
            "partial": end == today and end != month_end(end),
            "client_cents": 0,
            "insurance_cents": 0,
            "buckets": {b.key: 0 for b in bucket_list},
            "client_buckets": {b.key: 0 for b in bucket_list},
            "insurance_buckets": {b.key: 0 for b in bucket_list},
            "over_90_cents": 0,
            "over_120_cents": 0,
        }
        for (responsibility, service_date), cents in owed.items():
            if not cents:
                continue
            age = end - service_date
            key = bucket_for(age, bucket_list)
            figures[f"{responsibility}_cents"] += cents
            figures["buckets"][key] += cents
            figures[f"{responsibility}_buckets"][key] += cents
            if age.days > 90:
                figures["over_90_cents"] += cents
            if age.days > 120:
                figures["over_120_cents"] += cents
        figures["client_credit_cents"] = credit["client"]
        figures["insurance_credit_cents"] = credit["insurance"]
        figures["ar_cents"] = figures["client_cents"] + figures["insurance_cents"]
        figures["net_ar_cents"] = figures["ar_cents"] - credit["client"] - credit["insurance"]
        if chosen.clinician_id is not None:
            for key in ("payments_cents", "adjustments_cents", "refunds_cents"):
                flows[key] = None
            by_reason = None
        figures.update(flows)
        figures["adjustments_by_reason"] = by_reason
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
