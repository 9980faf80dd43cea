"""The ledger's history by month, kept as a projection (``ar_changes``) for A/R over time.

Month-end A/R is the ledger replayed to the end of that month (spec B4, ``lib.ledger_as_of``).
Replaying 24 times is too slow for a practice's whole ledger, so every posting also records
how it moved what is owed (by date of service, responsibility, clinician and payer) and the
credit held, in the month it was posted; a month-end is then the sum of every earlier month's
change. Charges, payments, adjustments (by reason) and refunds are recorded per posted day.

Writes keep it in the same transaction as the other projections: ``record_state_change``
from ``lib.ledger.refresh_client`` (old state from the projections, new state from the
replay) and ``record_entry`` from ``lib.postings``. A posting is posted now, after every
earlier entry, so its change belongs to today's month and earlier months stay as they were.
``rebuild`` computes everything from the ledger (demo load, migration); the tests compare
every month-end with ``ledger_as_of``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import date, timedelta
from itertools import groupby

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lib.ledger import POSTING_COLUMNS, ClientState, Posting, clean_payer_name, replay
from lib.models import ArChange, LedgerEntry
from lib.timeutil import practice_day

OWED, CREDIT = "owed", "credit"
BATCH = 1000
KEY_COLUMNS = (
    "day",
    "part",
    "responsibility",
    "clinician_id",
    "payer_id",
    "payer_key",
    "service_date",
)


def payer_key(payer_id: int | None, payer_name: str | None) -> tuple[int, str]:
    """(payer id or 0, casefolded typed name or ""), as ``PayerRef`` compares payers."""
    if payer_id is not None:
        return payer_id, ""
    return 0, clean_payer_name(payer_name).casefold()


def month_of(day: date) -> date:
    return day.replace(day=1)


def flow_part(kind: str, adjustment_reason: str | None) -> str:
    """The flow a posting counts in: charge, payment, adj_<reason> or refund."""
    return f"adj_{adjustment_reason or 'other'}" if kind == "adjustment" else kind


def state_parts(state: ClientState) -> dict[tuple, int]:
    """A client's state as amounts keyed (part, responsibility, clinician, payer id, payer
    key, date of service or None)."""
    found: dict[tuple, int] = {}
    for item in state.open_items:
        pid, pkey = (
            payer_key(item.payer_id, item.payer_name)
            if item.responsibility == "insurance"
            else (0, "")
        )
        key = (OWED, item.responsibility, item.clinician_id or 0, pid, pkey, item.service_date)
        found[key] = found.get(key, 0) + item.open_cents
    if state.unapplied_credit_cents:
        key = (CREDIT, "client", 0, 0, "", None)
        found[key] = state.unapplied_credit_cents
    for ref, cents in state.payer_credits.items():
        key = (CREDIT, "insurance", 0, ref.payer_id or 0, ref.name_key, None)
        found[key] = found.get(key, 0) + cents
    return found


def difference(old: dict[tuple, int], new: dict[tuple, int]) -> dict[tuple, int]:
    changed = {}
    for key in old.keys() | new.keys():
        cents = new.get(key, 0) - old.get(key, 0)
        if cents:
            changed[key] = cents
    return changed


def _row(day: date, key: tuple, cents: int) -> dict:
    part, responsibility, clinician_id, pid, pkey, service_date = key
    month = month_of(day)
    if part in (OWED, CREDIT):
        day = month
    return {
        "day": day,
        "part": part,
        "responsibility": responsibility,
        "clinician_id": clinician_id,
        "payer_id": pid,
        "payer_key": pkey,
        "service_date": service_date or day,
        "cents": cents,
    }


def _add(session: Session, rows: list[dict]) -> None:
    """Add ``cents`` to each keyed row, creating it when missing. Always in the same key order,
    so two postings cannot deadlock on PostgreSQL."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    build = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for row in sorted(rows, key=lambda r: tuple(str(r[k]) for k in KEY_COLUMNS)):
        statement = build(ArChange).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=list(KEY_COLUMNS),
            set_={"cents": ArChange.cents + statement.excluded.cents},
        )
        session.execute(statement)


def record_state_change(
    session: Session, *, client_id: int, old: ClientState, new: ClientState
) -> None:
    """A posting took a client from ``old`` to ``new``: the change counts in the month of
    the client's latest posting (the one just made)."""
    changed = difference(state_parts(old), state_parts(new))
    if not changed:
        return
    latest = session.scalar(
        select(func.max(LedgerEntry.posted_at)).where(LedgerEntry.client_id == client_id)
    )
    day = practice_day(latest)
    _add(session, [_row(day, key, cents) for key, cents in changed.items()])


def record_entry(session: Session, entry: LedgerEntry, original: LedgerEntry | None) -> None:
    """Count a new posting in its day's flows; a reversal takes ``original`` back out."""
    source, sign = (original, -1) if entry.kind == "reversal" else (entry, 1)
    if source is None:
        return
    pid, pkey = (
        payer_key(source.payer_id, source.payer_name)
        if source.responsibility == "insurance"
        else (0, "")
    )
    key = (
        flow_part(source.kind, source.adjustment_reason),
        source.responsibility,
        source.clinician_id or 0,
        pid,
        pkey,
        None,
    )
    _add(session, [_row(practice_day(entry.posted_at), key, sign * source.amount_cents)])


def client_history(entries: list[tuple[Posting, date, str]]) -> dict[tuple, int]:
    """One client's changes keyed (day, *state key): their state at the end of each month in
    which they had postings, minus the month before; and their flows per posted day.
    ``entries``: (posting, practice day posted, adjustment reason)."""
    changes: dict[tuple, int] = {}
    by_id = {p.id: (p, reason) for p, _, reason in entries}
    for p, day, reason in entries:
        source, sign = (
            (by_id.get(p.reverses_entry_id), -1) if p.kind == "reversal" else ((p, reason), 1)
        )
        if source is None:
            continue
        s, s_reason = source
        pid, pkey = (
            payer_key(s.payer_id, s.payer_name) if s.responsibility == "insurance" else (0, "")
        )
        key = (
            day,
            flow_part(s.kind, s_reason),
            s.responsibility,
            s.clinician_id or 0,
            pid,
            pkey,
            day,
        )
        changes[key] = changes.get(key, 0) + sign * s.amount_cents
    ordered = sorted(entries, key=lambda e: e[1])
    days = [day for _, day, _ in ordered]
    previous: dict[tuple, int] = {}
    for month in sorted({month_of(d) for d in days}):
        following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
        cut = bisect_right(days, following - timedelta(days=1))
        current = state_parts(replay(p for p, _, _ in ordered[:cut]))
        for key, cents in difference(previous, current).items():
            full = (month, *key[:5], key[5] or month)
            changes[full] = changes.get(full, 0) + cents
        previous = current
    return changes


def _history(
    session: Session, client_ids: list[int], tz_name: str | None = None
) -> dict[tuple, int]:
    """``client_history`` of these clients, summed by key, read in batches."""
    conn = session.connection()
    totals: dict[tuple, int] = {}
    day_cache: dict = {}
    for start in range(0, len(client_ids), BATCH):
        ids = client_ids[start : start + BATCH]
        rows = conn.execute(
            select(
                LedgerEntry.client_id,
                LedgerEntry.posted_at,
                LedgerEntry.adjustment_reason,
                *POSTING_COLUMNS,
            )
            .where(LedgerEntry.client_id.in_(ids))
            .order_by(LedgerEntry.client_id, LedgerEntry.id)
        ).all()
        for _, client_rows in groupby(rows, lambda r: r[0]):
            entries = []
            for r in client_rows:
                day = day_cache.get(r[1])
                if day is None:
                    day = day_cache[r[1]] = practice_day(r[1], tz_name)
                entries.append((Posting(*r[3:]), day, r[2]))
            for key, cents in client_history(entries).items():
                totals[key] = totals.get(key, 0) + cents
        if len(day_cache) > 200_000:
            day_cache.clear()
    return totals


def rebuild(session: Session, tz_name: str | None = None) -> int:
    """Recompute ``ar_changes`` from the whole ledger; returns the number of rows."""
    conn = session.connection()
    conn.execute(delete(ArChange))
    client_ids = sorted(conn.scalars(select(LedgerEntry.client_id).distinct()))
    rows_out = rows_of(
        (key, cents) for key, cents in _history(session, client_ids, tz_name).items() if cents
    )
    for start in range(0, len(rows_out), 5000):
        conn.execute(insert(ArChange), rows_out[start : start + 5000])
    return len(rows_out)


def add_new_clients(session: Session, client_ids: Iterable[int]) -> None:
    """Count the ledger of clients whose entries were all written in this transaction without
    ``lib.postings`` (an import's opening balances): the same figures ``rebuild`` gives them."""
    totals = _history(session, sorted(set(client_ids)))
    _add(session, rows_of((key, cents) for key, cents in totals.items() if cents))


def stored(session: Session) -> dict[tuple, int]:
    """The projection as it stands (reconciliation compares it with ``rebuild``'s sums)."""
    found: dict[tuple, int] = {}
    for row in session.execute(
        select(*[getattr(ArChange, k) for k in KEY_COLUMNS], ArChange.cents)
    ):
        if row[-1]:
            found[tuple(row[:-1])] = int(row[-1])
    return found


def rows_of(changes: Iterable[tuple[tuple, int]]) -> list[dict]:
    return [dict(zip(KEY_COLUMNS, key, strict=True), cents=cents) for key, cents in changes]
