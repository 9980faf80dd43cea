"""Aging buckets by date of service (spec B4). Bucket edges are days past the date of service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from lib import client_totals
from lib.models import Client, Clinician, OpenCharge, Payer
from lib.policy import Actor, require
from lib.timeutil import practice_today

DEFAULT_EDGES = (30, 60, 90, 120)


@dataclass(frozen=True)
class Bucket:
    key: str
    label: str
    min_days: int
    max_days: int | None  # None: open-ended

    def date_range(self, as_of: date) -> tuple[date | None, date]:
        """Service dates (oldest, newest) that fall in this bucket on ``as_of``."""
        newest = as_of - timedelta(days=self.min_days)
        oldest = None if self.max_days is None else as_of - timedelta(days=self.max_days)
        return oldest, newest


def buckets(edges: tuple[int, ...] = DEFAULT_EDGES) -> list[Bucket]:
    """0-30, 31-60, 61-90, 91-120, 120+ for the default edges."""
    result = []
    low = 0
    for edge in edges:
        label = f"{low}–{edge}" if low == 0 else f"{low + 1}–{edge}"
        result.append(
            Bucket(
                key=f"{low}_{edge}",
                label=label,
                min_days=low if low == 0 else low + 1,
                max_days=edge,
            )
        )
        low = edge
    result.append(Bucket(key=f"{low}_plus", label=f"{low}+", min_days=low + 1, max_days=None))
    return result


def bucket_by_key(key: str, edges: tuple[int, ...] = DEFAULT_EDGES) -> Bucket:
    for b in buckets(edges):
        if b.key == key:
            return b
    raise KeyError(key)


# --- the outstanding-balances report (B4) -------------------------------------------------

CLIENT_PART = "Client responsibility"
# By-payer key and ``payer_id`` filter for insurance whose payer is typed on the coverage
# rather than chosen from the payer list (its charges carry no payer id).
NO_PAYER = 0
NO_PAYER_LABEL = "Insurance, payer not in the list"


def _payer_condition(payer_id: int):
    if payer_id == NO_PAYER:
        return and_(OpenCharge.responsibility == "insurance", OpenCharge.payer_id.is_(None))
    return OpenCharge.payer_id == payer_id


@dataclass(frozen=True)
class AgingRow:
    """One line of a breakdown: amounts per bucket key, and their total."""

    key: object  # clinician id, payer id or None
    label: str
    amounts: dict[str, int]
    total_cents: int


@dataclass(frozen=True)
class AgingReport:
    as_of: date
    buckets: list[Bucket]
    client_due_cents: int
    insurance_pending_cents: int
    unapplied_credit_cents: int
    by_bucket: list[AgingRow]  # key = responsibility ('client'/'insurance') rows per bucket
    by_clinician: list[AgingRow]
    by_payer: list[AgingRow]

    @property
    def total_ar_cents(self) -> int:
        """Total accounts receivable: everything still owed, before credits."""
        return self.client_due_cents + self.insurance_pending_cents

    @property
    def net_cents(self) -> int:
        return self.total_ar_cents - self.unapplied_credit_cents

    def bucket_totals(self) -> dict[str, int]:
        totals = {b.key: 0 for b in self.buckets}
        for row in self.by_bucket:
            for key, cents in row.amounts.items():
                totals[key] += cents
        return totals


def bucket_for(age: timedelta, bucket_list: list[Bucket]) -> str:
    """The key of the bucket a charge of this age (as-of date minus date of service) is in."""
    days = age.days
    for b in bucket_list:
        if b.max_days is None or days <= b.max_days:
            return b.key
    return bucket_list[-1].key


def report(
    session: Session,
    *,
    actor: Actor,
    as_of: date | None = None,
    edges: tuple[int, ...] = DEFAULT_EDGES,
    clinician_id: int | None = None,
    payer_id: int | None = None,
) -> AgingReport:
    """Everything still owed, aged by date of service on ``as_of``, by clinician and payer.

    Reads only the open-charges projection (one grouped query), so its cost follows the number
    of unpaid charges, not the size of the ledger. Charges dated after ``as_of`` are left out.
    """
    require(actor, "report.balances")
    as_of = as_of or practice_today()
    bucket_list = buckets(edges)
    conditions = [OpenCharge.service_date <= as_of]
    if clinician_id is not None:
        conditions.append(OpenCharge.clinician_id == clinician_id)
    if payer_id is not None:
        conditions.append(_payer_condition(payer_id))
    # Grouped by day in SQL (served by the covering index), bucketed here: a few thousand rows.
    by_day = session.execute(
        select(
            OpenCharge.responsibility,
            OpenCharge.clinician_id,
            OpenCharge.payer_id,
            OpenCharge.service_date,
            func.sum(OpenCharge.open_cents),
        )
        .where(*conditions)
        .group_by(
            OpenCharge.responsibility,
            OpenCharge.clinician_id,
            OpenCharge.payer_id,
            OpenCharge.service_date,
        )
    ).all()
    grouped = [
        (responsibility, clin, payer, bucket_for(as_of - day, bucket_list), cents)
        for responsibility, clin, payer, day, cents in by_day
    ]
    clinicians = {c.id: f"{c.first_name} {c.last_name}" for c in session.scalars(select(Clinician))}
    payers = {p.id: p.name for p in session.scalars(select(Payer))}
    credit = 0
    if clinician_id is None and payer_id is None:
        credit = client_totals.practice_credit(session)

    def rows(key_of, label_of) -> list[AgingRow]:
        table: dict[object, dict[str, int]] = {}
        for responsibility, clin, payer, bkey, cents in grouped:
            key = key_of(responsibility, clin, payer)
            amounts = table.setdefault(key, {b.key: 0 for b in bucket_list})
            amounts[bkey] += int(cents)
        result = [
            AgingRow(key=k, label=label_of(k), amounts=a, total_cents=sum(a.values()))
            for k, a in table.items()
        ]
        return sorted(result, key=lambda r: -r.total_cents)

    by_bucket = rows(lambda r, c, p: r, lambda r: "Client" if r == "client" else "Insurance")
    due = sum(r.total_cents for r in by_bucket if r.key == "client")
    pending = sum(r.total_cents for r in by_bucket if r.key == "insurance")
    return AgingReport(
        as_of=as_of,
        buckets=bucket_list,
        client_due_cents=due,
        insurance_pending_cents=pending,
        unapplied_credit_cents=credit,
        by_bucket=by_bucket,
        by_clinician=rows(
            lambda r, c, p: c, lambda c: clinicians.get(c, "No clinician (refunds, other)")
        ),
        by_payer=rows(
            lambda r, c, p: (NO_PAYER if p is None else p) if r == "insurance" else None,
            lambda p: (
                CLIENT_PART
                if p is None
                else NO_PAYER_LABEL
                if p == NO_PAYER
                else payers.get(p, "Unknown payer")
            ),
        ),
    )


@dataclass(frozen=True)
class BucketClient:
    client_id: int
    client_number: int
    name: str
    clinician: str
    amount_cents: int  # owed in the chosen slice
    oldest_dos: date


def clients_behind(
    session: Session,
    *,
    actor: Actor,
    as_of: date | None = None,
    bucket_key: str | None = None,
    edges: tuple[int, ...] = DEFAULT_EDGES,
    clinician_id: int | None = None,
    payer_id: int | None = None,
    responsibility: str | None = None,
    limit: int = 1000,
) -> list[BucketClient]:
    """The clients behind a bar of the report: who owes in that bucket/clinician/payer."""
    from lib.clients import display_name  # lib.clients imports this module

    require(actor, "report.balances")
    as_of = as_of or practice_today()
    conditions = [OpenCharge.service_date <= as_of]
    if bucket_key:
        oldest, newest = bucket_by_key(bucket_key, edges).date_range(as_of)
        conditions.append(OpenCharge.service_date <= newest)
        if oldest is not None:
            conditions.append(OpenCharge.service_date >= oldest)
    if clinician_id is not None:
        conditions.append(OpenCharge.clinician_id == clinician_id)
    if payer_id is not None:
        conditions.append(_payer_condition(payer_id))
    if responsibility:
        conditions.append(OpenCharge.responsibility == responsibility)
    amount = func.sum(OpenCharge.open_cents).label("amount")
    rows = session.execute(
        select(
            Client.id,
            Client.client_number,
            Client.last_name,
            Client.first_name,
            Client.preferred_name,
            Clinician.first_name,
            Clinician.last_name,
            amount,
            func.min(OpenCharge.service_date),
        )
        .join(Client, Client.id == OpenCharge.client_id)
        .outerjoin(Clinician, Clinician.id == Client.clinician_id)
        .where(*conditions)
        .group_by(
            Client.id,
            Client.client_number,
            Client.last_name,
            Client.first_name,
            Client.preferred_name,
            Clinician.first_name,
            Clinician.last_name,
        )
        .order_by(amount.desc(), Client.client_number)
        .limit(limit)
    ).all()
    return [
        BucketClient(
            client_id=r[0],
            client_number=r[1],
            name=display_name(r[2], r[3], r[4]),
            clinician=f"{r[5]} {r[6]}" if r[5] else "",
            amount_cents=int(r[7]),
            oldest_dos=r[8],
        )
        for r in rows
    ]


def parse_edges(text: str) -> tuple[int, ...]:
    """Bucket edges typed as "30, 60, 90, 120": increasing whole days, at least one."""
    parts = [p.strip() for p in (text or "").replace(";", ",").split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError("Type the edges as whole days separated by commas, like 30, 60, 90, 120.")
    edges = tuple(int(p) for p in parts)
    if edges[0] < 1 or any(b <= a for a, b in pairwise(edges)):
        raise ValueError("Each edge must be larger than the one before it (and at least 1).")
    if len(edges) > 8:
        raise ValueError("Use at most 8 edges.")
    return edges
