"""A/R over time: month-end accounts receivable and the months' charges, payments and
adjustments (issue 15, on spec B4's point-in-time rule).

A month-end figure is the ledger as of the last practice day of that month: every entry
posted by the end of that day and nothing after (``lib.ledger_as_of``), charges aged by date
of service relative to that day. A past month therefore never changes.

The figures are not a replay per month (too slow for a whole practice's ledger): they sum the
``ar_changes`` projection (``lib.ar_history``), which records, posting by posting, how what is
owed (by date of service) and the credit held moved in each month, and what was posted each
day. One grouped query and running sums give every month-end; the tests hold each figure to
``ledger_as_of`` at that month-end.

``month_end_figures`` and ``days_in_ar`` check no permissions (the collections worklist and
the weekly digest build on them); ``trend`` is the page's and the command line's entry.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import groupby

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from lib import ar_history
from lib.aging import DEFAULT_EDGES, NO_CLINICIAN, Slice, bucket_for, buckets
from lib.ledger import POSTING_COLUMNS, UNKNOWN_PAYER_LABEL, PayerRef, Posting, replay
from lib.ledger_as_of import end_of_day, ledger_as_of
from lib.models import ADJUSTMENT_REASONS, ArChange, LedgerEntry, Payer
from lib.policy import Actor, require
from lib.timeutil import practice_day, practice_today

DAYS_IN_AR_WINDOW = 90
MAX_MONTHS = 60


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
    # Plain rows from the connection: no ORM bookkeeping for what is only summed.
    return (
        session.connection()
        .execute(
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
        )
        .all()
    )


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


def daily_charges(session: Session, chosen: Slice, first: date, last: date) -> dict[date, int]:
    """Charges posted per practice day from ``first`` to ``last`` (reversals taken out)."""
    rows = session.execute(
        select(ArChange.day, func.sum(ArChange.cents))
        .where(
            *_conditions(chosen),
            ArChange.part == "charge",
            ArChange.day >= first,
            ArChange.day <= last,
        )
        .group_by(ArChange.day)
    ).all()
    return {(date.fromisoformat(d) if isinstance(d, str) else d): int(c) for d, c in rows}


def net_ar_at(session: Session, day: date, chosen: Slice | None = None) -> int:
    """Net A/R at the end of ``day``: a month-end (or today and later) from the projection,
    any other past day by replaying the ledger to it."""
    chosen = chosen or Slice()
    if day >= practice_today() or day == month_end(day):
        return int(
            session.scalar(
                select(func.coalesce(func.sum(ArChange.cents), 0)).where(
                    *_conditions(chosen),
                    ArChange.part == ar_history.OWED,
                    ArChange.day <= month_start(day),
                )
            )
        ) - _credit_at(session, day, chosen)
    history = ledger_as_of(session, day=day)
    owed = sum(
        o.cents for o in history.owed if chosen.has(o.responsibility, o.clinician_id, o.payer)
    )
    if chosen.clinician_id is not None:
        return owed
    credit = sum(c for _, ref, c in history.payer_credit if chosen.payer in (None, ref))
    if chosen.payer is None:
        credit += sum(history.client_credit.values())
    return owed - credit


def _credit_at(session: Session, day: date, chosen: Slice) -> int:
    if chosen.clinician_id is not None:
        return 0
    return int(
        session.scalar(
            select(func.coalesce(func.sum(ArChange.cents), 0)).where(
                *_conditions(chosen),
                ArChange.part == ar_history.CREDIT,
                ArChange.day <= month_start(day),
            )
        )
    )


def _days_in_ar(net: int, charges: dict[date, int], as_of: date) -> float | None:
    first = as_of - timedelta(days=DAYS_IN_AR_WINDOW - 1)
    total = sum(c for d, c in charges.items() if first <= d <= as_of)
    if total <= 0:
        return None
    return round(net / (total / DAYS_IN_AR_WINDOW), 1)


def days_in_ar(
    session: Session,
    as_of: date,
    clinician_id: int | None = None,
    payer_id: int | PayerRef | None = None,
) -> float | None:
    """Net A/R at the end of ``as_of`` ÷ average daily charges posted over the 90 days
    ending that day (one decimal). None when nothing was charged in those days."""
    chosen = _slice(clinician_id, payer_id)
    first = as_of - timedelta(days=DAYS_IN_AR_WINDOW - 1)
    charges = daily_charges(session, chosen, first, as_of)
    return _days_in_ar(net_ar_at(session, as_of, chosen), charges, as_of)


def _ratio(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole or whole <= 0:
        return None
    return round(part / whole, 4)


def add_kpis(session: Session, figures: list[dict], chosen: Slice) -> list[dict]:
    """Each month's KPIs, in place: days in A/R, gross and net collection rate, share of A/R
    over 90 and over 120 days, unapplied credit (see ``KPI_DEFINITIONS``)."""
    if not figures:
        return figures
    first = figures[0]["month_end"] - timedelta(days=DAYS_IN_AR_WINDOW + 31)
    charges = daily_charges(session, chosen, first, figures[-1]["month_end"])
    for f in figures:
        f["days_in_ar"] = _days_in_ar(f["net_ar_cents"], charges, f["month_end"])
        f["gross_collection_rate"] = _ratio(f["payments_cents"], f["charges_cents"])
        contractual = (f["adjustments_by_reason"] or {}).get("contractual", 0)
        f["net_collection_rate"] = (
            None
            if f["payments_cents"] is None
            else _ratio(f["payments_cents"], f["charges_cents"] - contractual)
        )
        f["pct_ar_over_90"] = _ratio(f["over_90_cents"], f["ar_cents"])
        f["pct_ar_over_120"] = _ratio(f["over_120_cents"], f["ar_cents"])
        f["unapplied_credit_cents"] = f["client_credit_cents"] + f["insurance_credit_cents"]
    return figures


KPI_DEFINITIONS = {
    "days_in_ar": (
        "Days in A/R",
        "Net A/R at the end of the period (what is owed minus unapplied credit) divided by "
        "the average charges per day posted over the 90 days ending that day. Fewer days: "
        "you are paid sooner.",
    ),
    "gross_collection_rate": (
        "Gross collection rate",
        "Payments posted in the period divided by charges posted in the period (reversals "
        "taken out of both).",
    ),
    "net_collection_rate": (
        "Net collection rate",
        "Payments posted in the period divided by (charges minus contractual adjustments) "
        "posted in the period: of what you could collect, how much you did. Write-offs and "
        "other adjustments stay in the denominator.",
    ),
    "pct_ar_over_90": (
        "A/R over 90 days",
        "The share of what is owed at the end of the period whose date of service is more "
        "than 90 days before that day (before credits).",
    ),
    "pct_ar_over_120": (
        "A/R over 120 days",
        "The share of what is owed at the end of the period whose date of service is more "
        "than 120 days before that day (before credits).",
    ),
    "unapplied_credit_cents": (
        "Unapplied credit",
        "Money received but not yet applied to a charge at the end of the period: clients' "
        "prepayments and overpayments plus what payers paid beyond their charges.",
    ),
    "days_to_payment": (
        "Average days to payment",
        "For each charge fully paid during the period: the days from its date of service to "
        "the posting day of the payment (or adjustment or credit) that closed it, averaged "
        "per payer. A charge reopened later (its payment reversed) counts when it closes again.",
    ),
}


def days_to_payment(
    session: Session,
    first: date,
    last: date,
    clinician_id: int | None = None,
    payer_id: int | PayerRef | None = None,
) -> list[dict]:
    """Average days from date of service to the posting that closed the charge, for charges
    closed from ``first`` to ``last`` (practice days), per payer (the client part as one).

    Replays, day by day through the period, the clients with entries posted in it (the same
    rule as "as of": a charge counts as closed on the day the ledger, replayed to that day,
    shows nothing left on it)."""
    chosen = _slice(clinician_id, payer_id)
    conn = session.connection()
    start, end = end_of_day(first - timedelta(days=1)), end_of_day(last)
    active = sorted(
        conn.scalars(
            select(LedgerEntry.client_id)
            .where(LedgerEntry.posted_at >= start, LedgerEntry.posted_at < end)
            .distinct()
        )
    )
    sums: dict[object, list[int]] = {}
    day_cache: dict = {}
    for at in range(0, len(active), 1000):
        ids = active[at : at + 1000]
        rows = conn.execute(
            select(LedgerEntry.client_id, LedgerEntry.posted_at, *POSTING_COLUMNS)
            .where(LedgerEntry.client_id.in_(ids), LedgerEntry.posted_at < end)
            .order_by(LedgerEntry.client_id, LedgerEntry.id)
        ).all()
        for _, client_rows in groupby(rows, lambda r: r[0]):
            entries = []
            for r in client_rows:
                day = day_cache.get(r[1])
                if day is None:
                    day = day_cache[r[1]] = practice_day(r[1])
                entries.append((day, Posting(*r[2:])))
            for charge, closed_on in _closings(entries, first).items():
                ref = (
                    PayerRef.of(charge.payer_id, charge.payer_name)
                    if charge.responsibility == "insurance"
                    else None
                )
                if not chosen.has(charge.responsibility, charge.clinician_id, ref):
                    continue
                found = sums.setdefault(ref, [0, 0])
                found[0] += 1
                found[1] += max(0, (closed_on - charge.service_date).days)
    names = dict(session.execute(select(Payer.id, Payer.name)).all())

    def label(ref: PayerRef | None) -> str:
        if ref is None:
            return "Client"
        if ref.payer_id is not None:
            return names.get(ref.payer_id, "Unknown payer")
        return ref.name or UNKNOWN_PAYER_LABEL

    result = [
        {
            "payer": label(ref),
            "payer_id": ref.payer_id if ref else None,
            "charges_closed": n,
            "average_days": round(total / n, 1),
        }
        for ref, (n, total) in sums.items()
    ]
    return sorted(result, key=lambda r: (r["payer"] != "Client", r["payer"]))


def _closings(entries: list[tuple[date, Posting]], first: date) -> dict[Posting, date]:
    """Charges that were closed at the end of the entries' last day and became closed on or
    after ``first``: charge -> the day they last closed."""
    entries.sort(key=lambda e: e[0])
    days = sorted({d for d, _ in entries})
    check = [d for d in days if d >= first]
    before = [d for d in days if d < first]
    closed_on: dict[int, date] = {}
    was_closed: set[int] = set()
    charges: dict[int, Posting] = {}
    for d in ([before[-1]] if before else []) + check:
        posted = [p for day, p in entries if day <= d]
        cancelled = {p.reverses_entry_id for p in posted if p.kind == "reversal"}
        live = {p.id: p for p in posted if p.kind == "charge" and p.id not in cancelled}
        charges.update(live)
        state = replay(posted)
        open_ids = {i.charge_entry_id for i in state.open_items}
        closed = set(live) - open_ids
        if d >= first:
            for cid in closed - was_closed:
                closed_on[cid] = d
        for cid in list(closed_on):
            if cid not in closed:
                del closed_on[cid]
        was_closed = closed
    return {charges[cid]: d for cid, d in closed_on.items()}


def trend(
    session: Session,
    *,
    actor: Actor | None,
    months: int = 12,
    clinician_id: int | None = None,
    payer_id: int | PayerRef | None = None,
    edges: tuple[int, ...] = DEFAULT_EDGES,
    today: date | None = None,
) -> list[dict]:
    """The Trends page and ``ar-trend``: month-end figures with each month's KPIs.
    ``actor`` None: the command line (whoever runs it has the database)."""
    if actor is not None:
        require(actor, "report.trends")
    if months < 1 or months > MAX_MONTHS:
        raise ValueError(f"Choose between 1 and {MAX_MONTHS} months.")
    figures = month_end_figures(session, months, clinician_id, payer_id, edges=edges, today=today)
    return add_kpis(session, figures, _slice(clinician_id, payer_id))


def period_days_to_payment(
    session: Session,
    *,
    actor: Actor | None,
    month: date,
    clinician_id: int | None = None,
    payer_id: int | PayerRef | None = None,
) -> list[dict]:
    """Average days to payment per payer for the month of ``month`` (to today if current)."""
    if actor is not None:
        require(actor, "report.trends")
    last = min(month_end(month), practice_today())
    return days_to_payment(session, month_start(month), last, clinician_id, payer_id)
