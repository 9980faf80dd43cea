"""The collections worklist: who to contact today about what they owe, most pressing first.

A client is on the list when
- what they owe (client due less their unapplied credit) is over the threshold and their
  oldest unpaid client charge has a date of service more than N days ago, or
- their newest contact asked for a follow-up today or earlier, or
- their payment plan is behind (an instalment was missed).

Priority is amount × age (dollars owed × days since the oldest unpaid date of service), shown
with the reasons in words. The selection reads the balance columns kept on ``clients`` (an
index range, not a ledger replay); only the rows on the list look at their open charges,
contacts, plan and statements, so the list stays fast at 100,000 clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from lib import collection_contacts, payment_plans
from lib.models import Client, DocumentLogEntry, OpenCharge
from lib.money import format_cents
from lib.policy import Actor, require
from lib.timeutil import as_utc, practice_today

DEFAULT_THRESHOLD_CENTS = 5_000  # $50
DEFAULT_DAYS = 30
DEFAULT_LIMIT = 500


@dataclass(frozen=True)
class WorkRow:
    client_id: int
    client_number: int
    name: str
    owed_cents: int
    oldest_unpaid: date | None  # oldest unpaid date of service of the client's own part
    age_days: int
    priority: int  # owed dollars × age in days
    reasons: str
    follow_up_on: date | None
    last_contact: str
    last_contact_at: datetime | None
    promise: str
    plan: str
    plan_behind_cents: int
    last_statement_at: datetime | None
    email_ok: bool  # consented to email and has an address


@dataclass(frozen=True)
class Worklist:
    rows: list[WorkRow]  # the first ``limit``, most pressing first
    total_count: int
    total_owed_cents: int
    today: date


def _client_oldest():
    """The oldest unpaid date of service of the client's own part (insurance aside)."""
    return (
        select(func.min(OpenCharge.service_date))
        .where(
            OpenCharge.client_id == Client.id,
            OpenCharge.responsibility == "client",
            OpenCharge.open_cents > 0,
        )
        .correlate(Client)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class _Candidate:
    client_id: int
    owed_cents: int
    oldest: date | None
    on_balance: bool  # on the list for an old balance over the threshold
    priority: int


def _candidates(
    session: Session,
    *,
    today: date,
    threshold_cents: int,
    days: int,
    extra: set[int],
) -> list[_Candidate]:
    """Who is on the list. The balance part reads one covering index of ``clients``
    (``ix_clients_collections``) and, per client found, one of ``open_charges``; clients
    there for a follow-up or a plan are read by id."""
    cutoff = today - timedelta(days=days)  # older than N days: before this day
    owed = Client.client_due_cents - Client.unapplied_credit_cents
    # With nothing pending with insurance, every open charge is the client's own, so the
    # oldest unpaid date on the row is theirs; only the others look at their open charges.
    oldest = case(
        (Client.insurance_pending_cents > 0, _client_oldest()), else_=Client.oldest_unpaid_dos
    )
    columns = (Client.id, owed, oldest)
    conn = session.connection()  # plain rows: no ORM bookkeeping for thousands of them
    rows = conn.execute(
        select(*columns).where(
            # client due over the threshold is implied by owing over it: the index's range
            Client.client_due_cents > threshold_cents,
            owed > threshold_cents,
            Client.oldest_unpaid_dos < cutoff,
        )
    ).all()
    found = {r[0]: r for r in rows}
    missing = sorted(extra - set(found))
    for start in range(0, len(missing), 1000):
        chunk = missing[start : start + 1000]
        found.update(
            {r[0]: r for r in session.execute(select(*columns).where(Client.id.in_(chunk)))}
        )
    out = []
    for cid, owed_cents, oldest in found.values():
        owed_cents = int(owed_cents)
        on_balance = owed_cents > threshold_cents and oldest is not None and oldest < cutoff
        if on_balance or cid in extra:
            age = max((today - oldest).days, 0) if oldest else 0
            out.append(
                _Candidate(cid, owed_cents, oldest, on_balance, max(owed_cents, 0) // 100 * age)
            )
    return out


def _reasons(
    c: _Candidate,
    age: int,
    follow_up: date | None,
    plan: payment_plans.PlanStatus | None,
    today: date,
) -> str:
    parts = []
    if c.on_balance:
        parts.append(f"Owes {format_cents(c.owed_cents)}, unpaid for {age} days")
    if follow_up is not None:
        parts.append(
            "Follow-up due today" if follow_up == today else f"Follow-up due {follow_up:%m/%d/%Y}"
        )
    if plan is not None and not plan.on_track:
        parts.append(f"Payment plan behind by {format_cents(plan.behind_cents)}")
    return "; ".join(parts)


def _select(
    session: Session, *, today: date, threshold_cents: int, days: int
) -> tuple[list[_Candidate], dict, dict]:
    follow_ups = collection_contacts.follow_ups_due(session, today=today)
    plans = payment_plans.statuses(session, today=today)
    behind = {c for c, s in plans.items() if not s.on_track}
    found = _candidates(
        session,
        today=today,
        threshold_cents=threshold_cents,
        days=days,
        extra=set(follow_ups) | behind,
    )
    return found, follow_ups, plans


def count_on_list(
    session: Session,
    *,
    today: date | None = None,
    threshold_cents: int = DEFAULT_THRESHOLD_CENTS,
    days: int = DEFAULT_DAYS,
) -> int:
    """How many clients are on the worklist (an aggregate: the weekly digest)."""
    today = today or practice_today()
    found, _, _ = _select(session, today=today, threshold_cents=threshold_cents, days=days)
    return len(found)


def _last_statements(session: Session, ids: list[int]) -> dict[int, datetime]:
    if not ids:
        return {}
    rows = session.execute(
        select(DocumentLogEntry.client_id, func.max(DocumentLogEntry.sent_at))
        .where(
            DocumentLogEntry.client_id.in_(ids),
            DocumentLogEntry.kind == "statement",
            DocumentLogEntry.status != "failed",
        )
        .group_by(DocumentLogEntry.client_id)
    ).all()
    return {cid: as_utc(at) for cid, at in rows}


def _who(session: Session, ids: list[int]) -> dict[int, tuple[int, str, bool]]:
    """client id -> (client number, "Last, First", may be emailed) for the rows shown."""
    if not ids:
        return {}
    rows = session.execute(
        select(
            Client.id,
            Client.client_number,
            Client.first_name,
            Client.last_name,
            Client.email_ok,
            Client.email,
        ).where(Client.id.in_(ids))
    ).all()
    return {r[0]: (r[1], f"{r[3]}, {r[2]}", bool(r[4] and r[5])) for r in rows}


def worklist(
    session: Session,
    *,
    actor: Actor,
    today: date | None = None,
    threshold_cents: int = DEFAULT_THRESHOLD_CENTS,
    days: int = DEFAULT_DAYS,
    limit: int = DEFAULT_LIMIT,
) -> Worklist:
    """The worklist, most pressing first (billers and managers)."""
    require(actor, "collections.work")
    if threshold_cents < 0 or days < 0:
        raise ValueError("The threshold and the number of days cannot be negative.")
    today = today or practice_today()
    found, follow_ups, plans = _select(
        session, today=today, threshold_cents=threshold_cents, days=days
    )
    found.sort(key=lambda c: (-c.priority, -c.owed_cents, c.client_id))
    shown = found[:limit]
    ids = [c.client_id for c in shown]
    who = _who(session, ids)
    latest = collection_contacts.latest_of(session, ids)
    promises = collection_contacts.latest_promises(session, ids)
    statements = _last_statements(session, ids)
    rows = []
    for c in shown:
        number, name, email_ok = who[c.client_id]
        age = max((today - c.oldest).days, 0) if c.oldest else 0
        plan = plans.get(c.client_id)
        contact = latest.get(c.client_id)
        promise = promises.get(c.client_id)
        rows.append(
            WorkRow(
                client_id=c.client_id,
                client_number=number,
                name=name,
                owed_cents=c.owed_cents,
                oldest_unpaid=c.oldest,
                age_days=age,
                priority=c.priority,
                reasons=_reasons(c, age, follow_ups.get(c.client_id), plan, today),
                follow_up_on=follow_ups.get(c.client_id),
                last_contact=contact.summary if contact else "",
                last_contact_at=contact.contacted_at if contact else None,
                promise=promise.promise if promise else "",
                plan=plan.summary if plan else "",
                plan_behind_cents=plan.behind_cents if plan else 0,
                last_statement_at=statements.get(c.client_id),
                email_ok=email_ok,
            )
        )
    return Worklist(
        rows=rows,
        total_count=len(found),
        total_owed_cents=sum(max(c.owed_cents, 0) for c in found),
        today=today,
    )
