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

from sqlalchemy import and_, func, or_, select
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
    client_number: int
    name: str
    owed_cents: int
    oldest: date | None
    email_ok: bool


def _candidates(
    session: Session,
    *,
    today: date,
    threshold_cents: int,
    days: int,
    follow_ups: dict[int, date],
    plans_behind: dict[int, payment_plans.PlanStatus],
) -> list[tuple[_Candidate, bool]]:
    cutoff = today - timedelta(days=days)  # older than N days: before this day
    owed = Client.client_due_cents - Client.unapplied_credit_cents
    extra = sorted(set(follow_ups) | set(plans_behind))
    by_balance = and_(owed > threshold_cents, Client.oldest_unpaid_dos < cutoff)
    where = or_(by_balance, Client.id.in_(extra)) if extra else by_balance
    rows = session.execute(
        select(
            Client.id,
            Client.client_number,
            Client.first_name,
            Client.last_name,
            owed,
            _client_oldest(),
            Client.email_ok,
            Client.email,
        ).where(where)
    ).all()
    out = []
    for cid, number, first, last, owed_cents, oldest, email_ok, email in rows:
        on_balance = owed_cents > threshold_cents and oldest is not None and oldest < cutoff
        if on_balance or cid in follow_ups or cid in plans_behind:
            name = f"{last}, {first}"
            out.append(
                (
                    _Candidate(
                        cid, number, name, int(owed_cents), oldest, bool(email_ok and email)
                    ),
                    on_balance,
                )
            )
    return out


def _reasons(
    c: _Candidate,
    on_balance: bool,
    age: int,
    follow_up: date | None,
    plan: payment_plans.PlanStatus | None,
    today: date,
) -> str:
    parts = []
    if on_balance:
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
) -> tuple[list[tuple[_Candidate, bool]], dict, dict]:
    follow_ups = collection_contacts.follow_ups_due(session, today=today)
    plans = payment_plans.statuses(session, today=today)
    behind = {c: s for c, s in plans.items() if not s.on_track}
    found = _candidates(
        session,
        today=today,
        threshold_cents=threshold_cents,
        days=days,
        follow_ups=follow_ups,
        plans_behind=behind,
    )
    return found, follow_ups, plans


def _age(oldest: date | None, today: date) -> int:
    return max((today - oldest).days, 0) if oldest else 0


def _priority(c: _Candidate, today: date) -> int:
    return max(c.owed_cents, 0) // 100 * _age(c.oldest, today)


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
    found.sort(key=lambda f: (-_priority(f[0], today), -f[0].owed_cents, f[0].client_id))
    shown = found[:limit]
    ids = [c.client_id for c, _ in shown]
    latest = collection_contacts.latest_of(session, ids)
    promises = collection_contacts.latest_promises(session, ids)
    statements = _last_statements(session, ids)
    rows = []
    for c, on_balance in shown:
        age = _age(c.oldest, today)
        plan = plans.get(c.client_id)
        contact = latest.get(c.client_id)
        promise = promises.get(c.client_id)
        rows.append(
            WorkRow(
                client_id=c.client_id,
                client_number=c.client_number,
                name=c.name,
                owed_cents=c.owed_cents,
                oldest_unpaid=c.oldest,
                age_days=age,
                priority=_priority(c, today),
                reasons=_reasons(c, on_balance, age, follow_ups.get(c.client_id), plan, today),
                follow_up_on=follow_ups.get(c.client_id),
                last_contact=contact.summary if contact else "",
                last_contact_at=contact.contacted_at if contact else None,
                promise=promise.promise if promise else "",
                plan=plan.summary if plan else "",
                plan_behind_cents=plan.behind_cents if plan else 0,
                last_statement_at=statements.get(c.client_id),
                email_ok=c.email_ok,
            )
        )
    return Worklist(
        rows=rows,
        total_count=len(found),
        total_owed_cents=sum(max(c.owed_cents, 0) for c, _ in found),
        today=today,
    )
