"""The worker (spec A7): ``python -m lib.cli worker`` sends the email outbox and due reminders.

It runs next to the app (``make run`` starts it; a practice runs it as a service, see the
README). Every ``poll`` seconds it sends what is due in the outbox; every ``interval`` seconds
(a minute) it also queues due appointment reminders and writes its heartbeat, which the
reminder settings page shows admins. SIGTERM (or Ctrl-C) makes it finish the message in hand,
record it, and exit with status 0.

Each email is claimed in one short transaction, sent with no transaction open, and its
outcome recorded in another: a slow mail server never holds the database's write lock.
What an outcome means for the record it belongs to (a portal invitation's link starts to
work; a reminder counts as sent) is decided here, in the same transaction as the outcome.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from lib import digest, mail, outbox, portal, reminder_sender
from lib.config import load_settings
from lib.db import DatabaseNotReady, read_session, transaction
from lib.models import MessageOutbox, WorkerStatus
from lib.policy import Actor, require
from lib.timeutil import as_utc, utcnow

SILENT_AFTER = timedelta(minutes=10)  # the reminder settings page flags a quieter worker
DEFAULT_INTERVAL = 60.0
DEFAULT_POLL = 10.0

_TOO_LATE = {
    "reminder": "Not sent: the appointment had started before the reminder could go out.",
    "invitation": "Not sent: the invitation's link expired before it could go out.",
}


# --- sending the outbox ---------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def __add__(self, other: Delivery) -> Delivery:
        return Delivery(
            self.sent + other.sent, self.retrying + other.retrying, self.failed + other.failed
        )


def _not_wanted(session: Session, claimed: outbox.Claimed, now: datetime) -> str:
    if not claimed.message:
        return "Not sent: the message was not in the outbox any more."
    if claimed.send_before is not None and claimed.send_before <= now:
        return _TOO_LATE.get(claimed.kind, "Not sent: it was no longer useful to send it.")
    if claimed.kind == "reminder" and claimed.ref_id is not None:
        return reminder_sender.reminder_not_wanted(
            session, reminder_send_id=claimed.ref_id, now=now
        )
    if claimed.kind == "invitation" and claimed.ref_id is not None:
        return portal.invitation_not_wanted(session, invitation_id=claimed.ref_id, now=now)
    return ""


def _follow_up(session: Session, claimed: outbox.Claimed, state: str, now: datetime) -> None:
    """What a final outcome means for the record the email belongs to."""
    if state not in ("sent", "failed") or claimed.ref_id is None:
        return
    if claimed.kind == "reminder":
        reminder_sender.record_reminder_outcome(
            session, reminder_send_id=claimed.ref_id, status=state, now=now
        )
    elif claimed.kind == "invitation" and state == "sent":
        portal.invitation_delivered(session, invitation_id=claimed.ref_id, now=now)
    elif claimed.kind == "invitation":
        portal.invitation_not_sent(session, invitation_id=claimed.ref_id, now=now)


def _claim(engine: Engine, outbox_id: int) -> outbox.Claimed | None:
    """Claim one email, or settle it at once when it should not go out any more."""
    with transaction(engine) as session:
        now = utcnow()
        claimed = outbox.claim(session, outbox_id=outbox_id, now=now)
        if claimed is None:
            return None
        reason = _not_wanted(session, claimed, now)
        if not reason:
            return claimed
        if outbox.give_up(session, claimed=claimed, reason=reason, now=now):
            _follow_up(session, claimed, "failed", now)
        return None


def deliver_one(engine: Engine, outbox_id: int, *, mail_settings: mail.MailSettings) -> str | None:
    """Claim, send and record one email: "sent", "retrying", "failed", or None when it was
    not ours to send (another worker has it, or it should not go out any more)."""
    claimed = _claim(engine, outbox_id)
    if claimed is None:
        return None
    # No transaction is open here: the mail server may take its time.
    result = mail.send(mail_settings, mail.from_bytes(claimed.message))
    with transaction(engine) as session:
        now = utcnow()
        state = outbox.finish(session, claimed=claimed, result=result, now=now)
        if state is not None:
            _follow_up(session, claimed, state, now)
    return state


def deliver_due(
    engine: Engine,
    *,
    mail_settings: mail.MailSettings,
    stop: threading.Event | None = None,
    limit: int = 100,
) -> Delivery:
    """Send every email that is due now, one at a time; stops early when ``stop`` is set."""
    with read_session(engine) as session:
        ids = outbox.due_ids(session, now=utcnow(), limit=limit)
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    for outbox_id in ids:
        if stop is not None and stop.is_set():
            break
        state = deliver_one(engine, outbox_id, mail_settings=mail_settings)
        if state in counts:
            counts[state] += 1
    return Delivery(**counts)


# --- one round, and the loop ----------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    reminders: reminder_sender.ReminderRun
    delivery: Delivery
    digests: int = 0  # weekly digests queued this round

    def summary(self) -> str:
        """Counts only (this goes to logs)."""
        r, d = self.reminders, self.delivery
        digests = f"; digests queued {self.digests}" if self.digests else ""
        return (
            f"reminders queued: {r.queued_email} email, {r.queued_sms} text, "
            f"{r.queued_voice} voice; emails sent {d.sent}, retrying {d.retrying}, "
            f"failed {d.failed}{digests}"
        )


def run_round(
    engine: Engine,
    *,
    mail_settings: mail.MailSettings,
    practice_tz: str,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    base_url: str | None = None,
) -> Round:
    """Queue due reminders and this week's digests, then send what the outbox holds
    (``send-reminders``, and the worker's minute)."""
    reminders = reminder_sender.queue_due_reminders(
        engine, now=now, mail_settings=mail_settings, practice_tz=practice_tz
    )
    digests = digest.queue_due_digests(
        engine,
        mail_settings=mail_settings,
        base_url=base_url or load_settings().base_url,
        practice_tz=practice_tz,
        now=now,
    )
    return Round(reminders, deliver_due(engine, mail_settings=mail_settings, stop=stop), digests)


def worker_name() -> str:
    return socket.gethostname()[:100] or "worker"


def beat(
    engine: Engine,
    *,
    name: str,
    started_at: datetime,
    summary: str,
    stopped: bool = False,
    now: datetime | None = None,
) -> None:
    """Write the heartbeat: this machine's worker ran at ``now`` (or stopped then)."""
    now = now or utcnow()
    for attempt in range(2):
        try:
            with transaction(engine) as session:
                row = session.get(WorkerStatus, name)
                if row is None:
                    row = WorkerStatus(name=name)
                    session.add(row)
                row.pid = os.getpid()
                row.started_at = started_at
                row.last_run_at = now
                row.stopped_at = now if stopped else None
                row.last_summary = summary[:300]
            return
        except IntegrityError:  # another process inserted the row first: update it
            if attempt:
                raise


def run_forever(
    engine: Engine,
    *,
    mail_settings: mail.MailSettings,
    practice_tz: str,
    stop: threading.Event,
    interval: float = DEFAULT_INTERVAL,
    poll: float = DEFAULT_POLL,
    say: Callable[[str], None] = print,
) -> None:
    """Until ``stop`` is set: a round every ``interval`` seconds, the outbox every ``poll``.

    A database that is away for a while (a restart, a network blip) is reported and tried
    again at the next poll; it does not end the worker.
    """
    name, started = worker_name(), utcnow()
    beat(engine, name=name, started_at=started, summary="started")
    say(f"Worker started on {name} (pid {os.getpid()}).")
    next_round = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_round:
                next_round = time.monotonic() + interval
                done = run_round(
                    engine, mail_settings=mail_settings, practice_tz=practice_tz, stop=stop
                )
                beat(engine, name=name, started_at=started, summary=done.summary())
                if done.delivery != Delivery() or done.reminders.queued_email or done.digests:
                    say(done.summary())
            else:
                delivery = deliver_due(engine, mail_settings=mail_settings, stop=stop)
                if delivery != Delivery():
                    say(
                        f"emails sent {delivery.sent}, retrying {delivery.retrying}, "
                        f"failed {delivery.failed}"
                    )
        # hide_parameters: the message carries no data. DatabaseNotReady includes a database
        # that stayed busy longer than CLIENTDESK_DB_WRITE_TIMEOUT: the next poll tries again.
        except (SQLAlchemyError, DatabaseNotReady) as exc:
            say(f"Database error ({type(exc).__name__}); trying again in {poll:g} s.")
        stop.wait(poll)
    with contextlib.suppress(SQLAlchemyError, DatabaseNotReady):  # it may be what stopped us
        beat(engine, name=name, started_at=started, summary="stopped", stopped=True)
    say("Worker stopped.")


# --- what admins see ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxCounts:
    emails_waiting: int  # queued or being sent
    oldest_waiting_at: datetime | None
    texts_and_calls_waiting: int
    failed_last_day: int


def outbox_counts(session: Session, *, now: datetime | None = None) -> OutboxCounts:
    """How much is waiting; aggregates only (callers check the actor)."""
    now = now or utcnow()
    waiting = (MessageOutbox.status.in_(("queued", "sending")),)
    emails, oldest = session.execute(
        select(func.count(), func.min(MessageOutbox.created_at)).where(
            MessageOutbox.channel == "email", *waiting
        )
    ).one()
    others = session.scalar(select(func.count()).where(MessageOutbox.channel != "email", *waiting))
    failed = session.scalar(
        select(func.count()).where(
            MessageOutbox.status == "failed", MessageOutbox.finished_at >= now - timedelta(days=1)
        )
    )
    return OutboxCounts(int(emails), as_utc(oldest), int(others or 0), int(failed or 0))


@dataclass(frozen=True)
class WorkerHealth:
    last_run_at: datetime | None  # the latest heartbeat of any worker
    name: str
    stopped_at: datetime | None  # set when that worker was stopped on purpose
    last_summary: str
    minutes_since: int | None  # since the last heartbeat
    silent: bool  # no heartbeat for SILENT_AFTER: emails and reminders are not going out
    counts: OutboxCounts


def worker_health(session: Session, *, actor: Actor, now: datetime | None = None) -> WorkerHealth:
    """When the worker last ran, and whether it has gone quiet (admins)."""
    require(actor, "settings.manage")
    now = now or utcnow()
    latest = session.scalar(select(WorkerStatus).order_by(WorkerStatus.last_run_at.desc()))
    last = as_utc(latest.last_run_at) if latest else None
    return WorkerHealth(
        last_run_at=last,
        name=latest.name if latest else "",
        stopped_at=as_utc(latest.stopped_at) if latest else None,
        last_summary=latest.last_summary if latest else "",
        minutes_since=None if last is None else int((now - last).total_seconds() // 60),
        silent=last is None or now - last > SILENT_AFTER,
        counts=outbox_counts(session, now=now),
    )
