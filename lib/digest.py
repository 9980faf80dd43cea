"""The weekly A/R digest: aggregate figures emailed to the managers who asked for it.

It carries the practice's net A/R, its change over the week, days in A/R and how many clients
are on the collections worklist, with a link to the app: no client's name, number or date of
birth (spec: digests to staff carry aggregates only). The worker queues it once per
subscriber and practice week (Monday to Sunday, practice time): ``digest_sends`` has one row
per subscriber and week under a unique key, so several workers cannot send it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lib import audit, collections_worklist, mail
from lib.ar_trend import days_in_ar
from lib.db import transaction
from lib.ledger_as_of import ledger_as_of
from lib.models import DigestSend, DigestSubscription, MessageOutbox, PracticeSetting, User
from lib.money import format_cents
from lib.policy import Actor, allowed, require
from lib.timeutil import practice_day, utcnow

KIND = "digest"


@dataclass(frozen=True)
class Figures:
    as_of: date
    net_ar_cents: int
    week_ago_cents: int
    days_in_ar: float | None
    on_worklist: int

    @property
    def change_cents(self) -> int:
        return self.net_ar_cents - self.week_ago_cents


def net_ar(session: Session, day: date, tz_name: str | None = None) -> int:
    """Net A/R at the end of ``day``: everything owed less every credit (as the B4 report)."""
    history = ledger_as_of(session, day=day, tz_name=tz_name)
    return (
        sum(o.cents for o in history.owed)
        - sum(history.client_credit.values())
        - sum(c for _, _, c in history.payer_credit)
    )


def figures(session: Session, *, today: date, tz_name: str | None = None) -> Figures:
    """The figures as the ledger stands now, and the change since the end of the same day a
    week ago (point in time, as the balances report's "as of")."""
    return Figures(
        as_of=today,
        net_ar_cents=net_ar(session, today, tz_name),
        week_ago_cents=net_ar(session, today - timedelta(days=7), tz_name),
        days_in_ar=days_in_ar(session, today),
        on_worklist=collections_worklist.count_on_list(session, today=today),
    )


def digest_text(practice_name: str, f: Figures, base_url: str) -> tuple[str, str]:
    """(subject, body): aggregates and a link, nothing about any client."""
    sign = "+" if f.change_cents > 0 else "−" if f.change_cents < 0 else "±"
    days = (
        "not available (no charges in 90 days)" if f.days_in_ar is None else f"{f.days_in_ar:.1f}"
    )
    body = (
        f"Weekly A/R digest for {practice_name}, as of {f.as_of:%m/%d/%Y}.\n\n"
        f"Net A/R: {format_cents(f.net_ar_cents)}\n"
        f"Change over the week: {sign}{format_cents(abs(f.change_cents))} "
        f"(from {format_cents(f.week_ago_cents)})\n"
        f"Days in A/R: {days}\n"
        f"Clients on the collections worklist: {f.on_worklist:,}\n\n"
        f"Open ClientDesk to see the details: {base_url}/\n\n"
        "You receive this because you asked for the weekly digest on My account; "
        "you can turn it off there.\n"
    )
    return f"Weekly A/R digest from {practice_name}", body


# --- subscribing ---------------------------------------------------------------------------


def is_subscribed(session: Session, *, actor: Actor) -> bool:
    return session.get(DigestSubscription, actor.user_id) is not None


def address_problem(session: Session, *, actor: Actor) -> str:
    """Why a digest could not reach this staff member, or "" (it goes to their account's
    email address)."""
    user = session.get(User, actor.user_id)
    if user is None or not user.email:
        return "Your staff account has no email address; ask an administrator to add one."
    return ""


def set_subscribed(session: Session, *, actor: Actor, on: bool) -> None:
    """Opt in or out of the weekly digest (managers). Audited."""
    require(actor, "digest.receive")
    current = session.get(DigestSubscription, actor.user_id) is not None
    if current == on:
        return
    if on:
        session.add(DigestSubscription(user_id=actor.user_id, since=utcnow()))
    else:
        session.execute(
            delete(DigestSubscription).where(DigestSubscription.user_id == actor.user_id)
        )
    audit.record(
        session,
        actor=actor,
        action="digest.subscribe" if on else "digest.unsubscribe",
        entity="user",
        entity_id=actor.user_id,
        before={"weekly_digest": current},
        after={"weekly_digest": on},
    )


# --- the worker's part ---------------------------------------------------------------------


def week_start(day: date) -> date:
    """Monday of the practice week holding ``day``."""
    return day - timedelta(days=day.weekday())


def _subscribers_due(session: Session, week: date) -> list[tuple[int, str, str]]:
    rows = session.execute(
        select(User.id, User.email, User.role)
        .join(DigestSubscription, DigestSubscription.user_id == User.id)
        .where(
            User.active.is_(True),
            User.email != "",
            ~select(DigestSend.id)
            .where(DigestSend.user_id == User.id, DigestSend.week_start == week)
            .exists(),
        )
        .order_by(User.id)
    ).all()
    # A subscriber whose role no longer receives digests is skipped, not emailed.
    return [
        (uid, email, role)
        for uid, email, role in rows
        if allowed(Actor(uid, "", "", role), "digest.receive")
    ]


def queue_due_digests(
    engine: Engine,
    *,
    mail_settings: mail.MailSettings,
    base_url: str,
    practice_tz: str,
    now: datetime | None = None,
) -> int:
    """Queue this week's digest for every subscriber who has not had it; returns how many.

    Each one is its own transaction: the ``digest_sends`` row and the outbox row commit
    together, and a second worker's insert of the same (user, week) fails and queues nothing.
    """
    now = now or utcnow()
    today = practice_day(now, practice_tz)
    week = week_start(today)
    with transaction(engine) as session:
        due = _subscribers_due(session, week)
        if not due:
            return 0
        numbers = figures(session, today=today, tz_name=practice_tz)
        setting = session.get(PracticeSetting, "practice_name")
        practice = setting.value.strip() if setting and setting.value.strip() else "ClientDesk"
    subject, body = digest_text(practice, numbers, base_url)
    queued = 0
    for user_id, email, _ in due:
        try:
            message = mail.build_message(mail_settings, to=email, subject=subject, body=body)
        except mail.MailError:
            continue  # an address the mailer refuses: nothing to queue
        try:
            with transaction(engine) as session:
                send = DigestSend(user_id=user_id, week_start=week, queued_at=now)
                session.add(send)
                session.flush()  # the unique (user, week) key decides here
                row = MessageOutbox(
                    client_id=None,
                    channel="email",
                    recipient=email[:254],
                    body="",
                    created_at=now,
                    status="queued",
                    kind=KIND,
                    message=mail.as_bytes(message),
                    attempts=0,
                    last_error="",
                )
                session.add(row)
                session.flush()
                send.outbox_id = row.id
                audit.record(
                    session,
                    actor=None,
                    action="digest.queue",
                    entity="user",
                    entity_id=user_id,
                    detail=f"week={week.isoformat()}",
                    at=now,
                )
        except IntegrityError:
            continue  # another worker queued this one
        queued += 1
    return queued
