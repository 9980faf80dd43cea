"""Payment plans: an amount per instalment on a schedule, and whether the client keeps to it.

A plan's status compares the client payments posted since the plan started (by the practice's
day of posting; reversed payments do not count) with what the schedule asked for before
today. An instalment falls due on its day and counts as missed from the next practice day, so
a client paying on the due day is never shown behind that day. A plan that is behind puts the
client on the collections worklist.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lib import audit
from lib.models import PLAN_SCHEDULES, Client, LedgerEntry, PaymentPlan
from lib.money import format_cents
from lib.policy import Actor, require_client_access
from lib.timeutil import as_utc, practice_today, practice_zone, utcnow
from lib.validation import ValidationError

SCHEDULE_LABELS = {"weekly": "Weekly", "biweekly": "Every 2 weeks", "monthly": "Monthly"}
MAX_INSTALMENT_CENTS = 10_000_000  # $100,000, the largest posting


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _nth(schedule: str, start_on: date, n: int) -> date:
    if schedule == "monthly":
        return _add_months(start_on, n)
    return start_on + timedelta(days=n * (7 if schedule == "weekly" else 14))


def due_dates(schedule: str, start_on: date, before: date) -> list[date]:
    """The instalment days from ``start_on`` up to, not including, ``before``."""
    days: list[date] = []
    while (day := _nth(schedule, start_on, len(days))) < before:
        days.append(day)
    return days


def next_due(schedule: str, start_on: date, today: date) -> date:
    """The first instalment day on or after ``today``."""
    return _nth(schedule, start_on, len(due_dates(schedule, start_on, today)))


@dataclass(frozen=True)
class PlanStatus:
    plan_id: int
    client_id: int
    instalment_cents: int
    schedule: str
    start_on: date
    asked_cents: int  # what the schedule asked for before today
    paid_cents: int  # client payments posted since the start
    next_due_on: date

    @property
    def behind_cents(self) -> int:
        return max(self.asked_cents - self.paid_cents, 0)

    @property
    def on_track(self) -> bool:
        return self.behind_cents == 0

    @property
    def summary(self) -> str:
        """The plan in words, e.g. "$50.00 monthly · behind by $25.00"."""
        plan = f"{format_cents(self.instalment_cents)} {SCHEDULE_LABELS[self.schedule].lower()}"
        if self.on_track:
            return f"{plan} · on track"
        return f"{plan} · behind by {format_cents(self.behind_cents)}"


def paid_since(session: Session, starts: dict[int, date]) -> dict[int, int]:
    """Client payments (less reversals of them) posted on or after each client's start day."""
    if not starts:
        return {}
    zone = practice_zone()  # once: a plan's day starts at the practice's midnight
    bounds = {
        c: datetime.combine(d, time(0), tzinfo=zone).astimezone(UTC) for c, d in starts.items()
    }
    conn = session.connection()
    rows = conn.execute(
        select(
            LedgerEntry.id, LedgerEntry.client_id, LedgerEntry.posted_at, LedgerEntry.amount_cents
        ).where(
            LedgerEntry.client_id.in_(list(starts)),
            LedgerEntry.kind == "payment",
            LedgerEntry.responsibility == "client",
            LedgerEntry.posted_at >= min(bounds.values()),
        )
    ).all()
    # Reversed payments do not count: looked up by the payments' ids (a unique index), not
    # joined, which lets PostgreSQL read the whole reversal index.
    reversed_ids: set[int] = set()
    ids = [r[0] for r in rows]
    for chunk in range(0, len(ids), 1000):
        reversed_ids.update(
            conn.scalars(
                select(LedgerEntry.reverses_entry_id).where(
                    LedgerEntry.reverses_entry_id.in_(ids[chunk : chunk + 1000]),
                    LedgerEntry.kind == "reversal",
                )
            )
        )
    rows = [r[1:] for r in rows if r[0] not in reversed_ids]
    paid = dict.fromkeys(starts, 0)
    for client_id, posted_at, cents in rows:
        if as_utc(posted_at) >= bounds[client_id]:
            paid[client_id] += int(cents)
    return paid


def statuses(
    session: Session, *, today: date | None = None, client_ids: Iterable[int] | None = None
) -> dict[int, PlanStatus]:
    """Each active plan's standing today, by client (callers check permissions). One query
    for the plans and one for their payments: plans are few next to clients."""
    today = today or practice_today()
    query = select(PaymentPlan).where(PaymentPlan.status == "active")
    if client_ids is not None:
        ids = list(client_ids)
        if not ids:
            return {}
        query = query.where(PaymentPlan.client_id.in_(ids))
    plans = {p.client_id: p for p in session.scalars(query.order_by(PaymentPlan.id))}
    paid = paid_since(session, {c: p.start_on for c, p in plans.items()})
    out = {}
    for client_id, plan in plans.items():
        asked = len(due_dates(plan.schedule, plan.start_on, today)) * plan.instalment_cents
        out[client_id] = PlanStatus(
            plan_id=plan.id,
            client_id=client_id,
            instalment_cents=plan.instalment_cents,
            schedule=plan.schedule,
            start_on=plan.start_on,
            asked_cents=asked,
            paid_cents=paid[client_id],
            next_due_on=next_due(plan.schedule, plan.start_on, today),
        )
    return out


def behind_client_ids(session: Session, *, today: date | None = None) -> set[int]:
    """Clients whose active plan is behind (they go on the worklist)."""
    return {c for c, s in statuses(session, today=today).items() if not s.on_track}


def _client(session: Session, actor: Actor, client_id: int) -> Client:
    client = session.get(Client, client_id)
    require_client_access(actor, "collections.work", client.clinician_id if client else None)
    if client is None:
        raise ValidationError({"client": "This client does not exist."})
    return client


def start_plan(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    instalment_cents: int,
    schedule: str,
    start_on: date,
) -> int:
    """Start a plan for the client (ending any other plan they had). Audited; returns its id.
    The same plan again (a double click) changes nothing."""
    _client(session, actor, client_id)
    errors = {}
    if not isinstance(instalment_cents, int) or not 0 < instalment_cents <= MAX_INSTALMENT_CENTS:
        errors["instalment_cents"] = "Enter an amount per instalment between $0.01 and $100,000."
    if schedule not in PLAN_SCHEDULES:
        errors["schedule"] = "Choose weekly, every 2 weeks or monthly."
    if errors:
        raise ValidationError(errors)
    today = practice_today()
    for old in session.scalars(
        select(PaymentPlan).where(
            PaymentPlan.client_id == client_id, PaymentPlan.status == "active"
        )
    ):
        if (old.instalment_cents, old.schedule, old.start_on) == (
            instalment_cents,
            schedule,
            start_on,
        ):
            return old.id  # the same plan again (a double click): nothing changes
        _end(session, actor, old, today)
    plan = PaymentPlan(
        client_id=client_id,
        instalment_cents=instalment_cents,
        schedule=schedule,
        start_on=start_on,
        status="active",
        created_at=utcnow(),
        created_by=actor.user_id,
    )
    session.add(plan)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="payment_plan.start",
        entity="payment_plan",
        entity_id=plan.id,
        client_id=client_id,
        after={"instalment_cents": instalment_cents, "schedule": schedule, "start_on": start_on},
    )
    return plan.id


def _end(session: Session, actor: Actor, plan: PaymentPlan, today: date) -> None:
    plan.status, plan.ended_on = "ended", today
    audit.record(
        session,
        actor=actor,
        action="payment_plan.end",
        entity="payment_plan",
        entity_id=plan.id,
        client_id=plan.client_id,
        before={"status": "active"},
        after={"status": "ended", "ended_on": today},
    )


def end_plan(session: Session, *, actor: Actor, client_id: int) -> bool:
    """End the client's active plan; False when there was none."""
    _client(session, actor, client_id)
    plans = session.scalars(
        select(PaymentPlan).where(
            PaymentPlan.client_id == client_id, PaymentPlan.status == "active"
        )
    ).all()
    for plan in plans:
        _end(session, actor, plan, practice_today())
    return bool(plans)


def plan_of(session: Session, *, actor: Actor, client_id: int) -> PlanStatus | None:
    """The client's active plan and its standing, for the Billing tab."""
    _client(session, actor, client_id)
    return statuses(session, client_ids=[client_id]).get(client_id)


def active_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(PaymentPlan.status == "active")) or 0)
