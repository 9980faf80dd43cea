"""Aging buckets by date of service and the outstanding-balances report (spec B4).

Bucket edges are days past the date of service. The report is point-in-time: as of a past day
it counts only the ledger entries posted by the end of that day (``lib.ledger_as_of``); as of
today (or later) every entry counts, and it reads the projections. A charge whose date of
service is after the as-of date (billed ahead) is in the first bucket: it is on the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lib import client_totals
from lib.ledger import UNKNOWN_PAYER_LABEL, PayerRef
from lib.ledger_as_of import LedgerAsOf, Owed, ledger_as_of
from lib.models import Client, Clinician, Coverage, InsuranceCredit, OpenCharge, Payer
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
        """Service dates (oldest, newest) that fall in this bucket on ``as_of``. The first
        bucket has no newest date: a charge billed ahead of its date of service is in it."""
        newest = date.max if self.min_days == 0 else as_of - timedelta(days=self.min_days)
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
# By-payer key and payer filter for insurance entries that name no payer (old payments and
# adjustments, charges from before payers were recorded).
NO_PAYER = PayerRef(None)
NO_PAYER_LABEL = UNKNOWN_PAYER_LABEL
# By-clinician key and clinician filter for entries without a clinician (refunds, fees).
NO_CLINICIAN = -1
NO_CLINICIAN_LABEL = "No clinician (refunds, other)"


@dataclass(frozen=True)
class Slice:
    """Which part of A/R a report or client list covers; None everywhere: all of it."""

    clinician_id: int | None = None
    payer: PayerRef | None = None  # an insurance payer (NO_PAYER: none recorded)
    responsibility: str | None = None  # 'client' or 'insurance'

    def has(self, responsibility: str, clinician_id: int | None, payer: PayerRef | None) -> bool:
        if self.responsibility and responsibility != self.responsibility:
            return False
        if self.clinician_id is not None and (clinician_id or NO_CLINICIAN) != self.clinician_id:
            return False
        return self.payer is None or payer == self.payer

    def conditions(self) -> list:
        """The same test in SQL, over ``open_charges``."""
        found = []
        if self.responsibility:
            found.append(OpenCharge.responsibility == self.responsibility)
        if self.clinician_id == NO_CLINICIAN:
            found.append(OpenCharge.clinician_id.is_(None))
        elif self.clinician_id is not None:
            found.append(OpenCharge.clinician_id == self.clinician_id)
        if self.payer is not None:
            found.append(OpenCharge.responsibility == "insurance")
            if self.payer.payer_id is not None:
                found.append(OpenCharge.payer_id == self.payer.payer_id)
            else:
                found.append(OpenCharge.payer_id.is_(None))
                found.append(func.lower(OpenCharge.payer_name) == self.payer.name_key)
        return found


@dataclass(frozen=True)
class AgingRow:
    """One line of a breakdown: amounts per bucket key, their total, and (by payer) the
    unapplied credit of that payer or, on the client part's row, of the clients."""

    key: object  # clinician id (NO_CLINICIAN); PayerRef or None (client part); responsibility
    label: str
    amounts: dict[str, int]
    total_cents: int
    credit_cents: int = 0


@dataclass(frozen=True)
class AgingReport:
    as_of: date
    buckets: list[Bucket]
    client_due_cents: int
    insurance_pending_cents: int
    unapplied_credit_cents: int  # the clients' own credit
    insurance_credit_cents: int  # what payers paid beyond their charges
    by_bucket: list[AgingRow]  # key = responsibility ('client'/'insurance') rows per bucket
    by_clinician: list[AgingRow]
    by_payer: list[AgingRow]
    replayed: bool = False  # True: a past day, replayed from the ledger

    @property
    def total_ar_cents(self) -> int:
        """Total accounts receivable: everything still owed, before credits."""
        return self.client_due_cents + self.insurance_pending_cents

    @property
    def credit_cents(self) -> int:
        return self.unapplied_credit_cents + self.insurance_credit_cents

    @property
    def net_cents(self) -> int:
        """What the ledger sums to as of the day (for the whole practice, unfiltered)."""
        return self.total_ar_cents - self.credit_cents

    def bucket_totals(self) -> dict[str, int]:
        totals = {b.key: 0 for b in self.buckets}
        for row in self.by_bucket:
            for key, cents in row.amounts.items():
                totals[key] += cents
        return totals


def bucket_for(age: timedelta, bucket_list: list[Bucket]) -> str:
    """The key of the bucket a charge of this age (as-of date minus date of service) is in;
    a negative age (billed ahead of the date of service) is in the first bucket."""
    days = age.days
    for b in bucket_list:
        if b.max_days is None or days <= b.max_days:
            return b.key
    return bucket_list[-1].key


def payer_choices(session: Session) -> list[tuple[PayerRef, str]]:
    """The report's payer filter: the payer list, payers typed on coverages or charges, and
    insurance that names no payer. Payer names are practice reference data, not client data."""
    found: dict[PayerRef, str] = {}
    for p in session.scalars(select(Payer).order_by(func.lower(Payer.name))):
        found[PayerRef.of(p.id)] = p.name if p.active else f"{p.name} (inactive)"
    typed = (
        select(Coverage.payer_name)
        .where(Coverage.payer_id.is_(None))
        .union(
            select(OpenCharge.payer_name).where(
                OpenCharge.responsibility == "insurance", OpenCharge.payer_id.is_(None)
            )
        )
    )
    for name in sorted(session.scalars(typed), key=str.lower):
        ref = PayerRef.of(None, name)
        if not ref.unknown:
            found.setdefault(ref, f"{ref.name} (not in payer list)")
    found[NO_PAYER] = NO_PAYER_LABEL
    return list(found.items())


def history_for(session: Session, *, actor: Actor, as_of: date) -> LedgerAsOf | None:
    """The ledger replayed to ``as_of`` when it is a past day (None for today): a page
    computes it once and hands it to ``report`` and ``clients_behind``."""
    require(actor, "report.balances")
    return ledger_as_of(session, day=as_of) if is_past(as_of) else None


def is_past(as_of: date) -> bool:
    """A past day is replayed from the ledger; today and later read the projections."""
    return as_of < practice_today()


def report(
    session: Session,
    *,
    actor: Actor,
    as_of: date | None = None,
    edges: tuple[int, ...] = DEFAULT_EDGES,
    clinician_id: int | None = None,
    payer: PayerRef | None = None,
    history: LedgerAsOf | None = None,
) -> AgingReport:
    """Everything owed at the end of ``as_of``, aged by date of service on that day, by
    clinician and payer, with the credit held then.

    Today (or later) it reads the projections (one grouped query; its cost follows the number
    of unpaid charges, not the size of the ledger). A past day replays the ledger to that day
    (``history``, when the caller already has it for the same day). Credit is not a
    clinician's: with a clinician chosen none is shown; with a payer chosen, that payer's.
    """
    require(actor, "report.balances")
    as_of = as_of or practice_today()
    bucket_list = buckets(edges)
    chosen = Slice(clinician_id=clinician_id, payer=payer)
    if history is None and is_past(as_of):
        history = ledger_as_of(session, day=as_of)
    if history is not None:
        owed = [
            (o.responsibility, o.clinician_id, o.payer, o.service_date, o.cents)
            for o in history.owed
        ]
        client_credit = sum(history.client_credit.values())
        payer_credit: dict[PayerRef, int] = {}
        for _, ref, cents in history.payer_credit:
            payer_credit[ref] = payer_credit.get(ref, 0) + cents
    else:
        owed, client_credit, payer_credit = _projected(session, chosen)
    grouped = [
        (responsibility, clin, ref, bucket_for(as_of - day, bucket_list), int(cents))
        for responsibility, clin, ref, day, cents in owed
        if chosen.has(responsibility, clin, ref)
    ]
    if clinician_id is not None:
        client_credit, payer_credit = 0, {}
    elif payer is not None:
        client_credit = 0
        payer_credit = {payer: payer_credit[payer]} if payer_credit.get(payer) else {}
    clinicians = {c.id: f"{c.first_name} {c.last_name}" for c in session.scalars(select(Clinician))}
    payer_names = {p.id: p.name for p in session.scalars(select(Payer))}

    def payer_label(ref: PayerRef | None) -> str:
        if ref is None:
            return CLIENT_PART
        if ref.payer_id is not None:
            return payer_names.get(ref.payer_id, "Unknown payer")
        return f"{ref.name} (not in payer list)" if ref.name_key else NO_PAYER_LABEL

    def rows(key_of, label_of, credits: dict | None = None) -> list[AgingRow]:
        table: dict[object, dict[str, int]] = {}
        for responsibility, clin, ref, bkey, cents in grouped:
            key = key_of(responsibility, clin, ref)
            amounts = table.get(key)
            if amounts is None:
                amounts = table[key] = zero()
            amounts[bkey] += cents
        for k, cents in (credits or {}).items():
            if cents:
                table.setdefault(k, zero())
        result = [
            AgingRow(
                key=k,
                label=label_of(k),
                amounts=a,
                total_cents=sum(a.values()),
                credit_cents=(credits or {}).get(k, 0),
            )
            for k, a in table.items()
        ]
        return sorted(result, key=lambda r: (-r.total_cents, -r.credit_cents, r.label))

    def zero() -> dict[str, int]:
        return {b.key: 0 for b in bucket_list}

    by_bucket = rows(lambda r, c, p: r, lambda r: "Client" if r == "client" else "Insurance")
    return AgingReport(
        as_of=as_of,
        buckets=bucket_list,
        client_due_cents=sum(r.total_cents for r in by_bucket if r.key == "client"),
        insurance_pending_cents=sum(r.total_cents for r in by_bucket if r.key == "insurance"),
        unapplied_credit_cents=client_credit,
        insurance_credit_cents=sum(payer_credit.values()),
        by_bucket=by_bucket,
        by_clinician=rows(
            lambda r, c, p: c or NO_CLINICIAN, lambda c: clinicians.get(c, NO_CLINICIAN_LABEL)
        ),
        by_payer=rows(
            lambda r, c, p: p,
            payer_label,
            {None: client_credit, **payer_credit} if client_credit else payer_credit,
        ),
        replayed=history is not None,
    )


def _projected(session: Session, chosen: Slice):
    """What is owed now, grouped by day (served by the covering index), and today's credit."""
    by_day = session.execute(
        select(
            OpenCharge.responsibility,
            OpenCharge.clinician_id,
            OpenCharge.payer_id,
            OpenCharge.payer_name,
            OpenCharge.service_date,
            func.sum(OpenCharge.open_cents),
        )
        .where(*chosen.conditions())
        .group_by(
            OpenCharge.responsibility,
            OpenCharge.clinician_id,
            OpenCharge.payer_id,
            OpenCharge.payer_name,
            OpenCharge.service_date,
        )
    ).all()
    refs: dict[tuple, PayerRef] = {}  # one PayerRef per payer, not one per row

    def ref_of(pid: int | None, name: str) -> PayerRef:
        ref = refs.get((pid, name))
        if ref is None:
            ref = refs[(pid, name)] = PayerRef.of(pid, name)
        return ref

    owed = [
        (r, clin, ref_of(pid, name) if r == "insurance" else None, day, cents)
        for r, clin, pid, name, day, cents in by_day
    ]
    payer_credit: dict[PayerRef, int] = {}
    for pid, name, cents in session.execute(
        select(
            InsuranceCredit.payer_id,
            InsuranceCredit.payer_name,
            func.sum(InsuranceCredit.credit_cents),
        ).group_by(InsuranceCredit.payer_id, InsuranceCredit.payer_name)
    ):
        ref = PayerRef.of(pid, name)
        payer_credit[ref] = payer_credit.get(ref, 0) + int(cents)
    return owed, client_totals.practice_credit(session), payer_credit


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
    payer: PayerRef | None = None,
    responsibility: str | None = None,
    limit: int = 1000,
    history: LedgerAsOf | None = None,
) -> list[BucketClient]:
    """The clients behind a bar of the report: who owed in that bucket/clinician/payer at the
    end of ``as_of`` (largest first). A past day replays the ledger like ``report``."""
    require(actor, "report.balances")
    as_of = as_of or practice_today()
    chosen = Slice(clinician_id=clinician_id, payer=payer, responsibility=responsibility)
    oldest, newest = (None, date.max)
    if bucket_key:
        oldest, newest = bucket_by_key(bucket_key, edges).date_range(as_of)
    if history is None and is_past(as_of):
        history = ledger_as_of(session, day=as_of)
    if history is not None:
        return _clients_in(session, history.owed, chosen, oldest, newest, limit)
    conditions = [*chosen.conditions(), OpenCharge.service_date <= newest]
    if oldest is not None:
        conditions.append(OpenCharge.service_date >= oldest)
    amount = func.sum(OpenCharge.open_cents).label("amount")
    found = session.execute(
        select(OpenCharge.client_id, amount, func.min(OpenCharge.service_date))
        .join(Client, Client.id == OpenCharge.client_id)
        .where(*conditions)
        .group_by(OpenCharge.client_id, Client.client_number)
        .order_by(amount.desc(), Client.client_number)
        .limit(limit)
    ).all()
    return _named(session, [(r[0], int(r[1]), r[2]) for r in found])


def _clients_in(session, owed: list[Owed], chosen: Slice, oldest, newest, limit):
    per_client: dict[int, list] = {}
    for o in owed:
        if not chosen.has(o.responsibility, o.clinician_id, o.payer):
            continue
        if o.service_date > newest or (oldest is not None and o.service_date < oldest):
            continue
        found = per_client.setdefault(o.client_id, [0, o.service_date])
        found[0] += o.cents
        found[1] = min(found[1], o.service_date)
    named = _named(session, [(c, cents, day) for c, (cents, day) in per_client.items()])
    return sorted(named, key=lambda c: (-c.amount_cents, c.client_number))[:limit]


def _named(session: Session, found: list[tuple[int, int, date]]) -> list[BucketClient]:
    """Client numbers, names and clinicians for (client id, cents, oldest date) in order."""
    from lib.clients import display_name  # lib.clients imports this module

    people = {}
    ids = [client_id for client_id, _, _ in found]
    for start in range(0, len(ids), 1000):
        for r in session.execute(
            select(
                Client.id,
                Client.client_number,
                Client.last_name,
                Client.first_name,
                Client.preferred_name,
                Clinician.first_name,
                Clinician.last_name,
            )
            .outerjoin(Clinician, Clinician.id == Client.clinician_id)
            .where(Client.id.in_(ids[start : start + 1000]))
        ):
            people[r[0]] = r
    result = []
    for client_id, cents, oldest in found:
        r = people[client_id]
        result.append(
            BucketClient(
                client_id=client_id,
                client_number=r[1],
                name=display_name(r[2], r[3], r[4]),
                clinician=f"{r[5]} {r[6]}" if r[5] else "",
                amount_cents=cents,
                oldest_dos=oldest,
            )
        )
    return result


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
