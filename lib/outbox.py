"""The outbox (spec A7): every message to a client waits in ``message_outbox`` until it is sent.

Whoever asks for an email (a receipt, a portal invitation, forms, a statement, a reminder)
writes it here, with its row in the document log, in the same transaction as everything else
it does, and commits. Nothing here talks to a mail server: the worker (``lib.worker``) claims
due emails, sends them outside any transaction and records how it went. So a slow or
unreachable mail server never holds the database's write lock, and a message is never lost
because the app stopped half-way.

A claim is one conditional UPDATE (queued and due → sending, with a fresh token), so two
workers never send the same message; outcomes are written only with the claim's token. A
failed attempt is retried after ``RETRY_DELAYS``; after ``MAX_ATTEMPTS`` (or at once when the
server refused the message for good) it is failed, with the reason, where staff look: the
document log and the client's Documents tab. Texts and voice calls wait here too, and say so,
because ClientDesk has no text or voice provider to hand them to.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from lib import audit, mail
from lib.models import DocumentLogEntry, MessageOutbox
from lib.policy import Actor
from lib.timeutil import as_utc, utcnow

MAX_ATTEMPTS = 6
# Wait after attempt 1, 2, ...: about four and a half hours from the first try to the last.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
)
# A claim older than this belongs to a worker that stopped mid-send (a send takes at most a
# minute or two: the mailer's timeout is 20 s per step); another worker may take it over.
CLAIM_EXPIRES = timedelta(minutes=10)
WAITING_FOR_PROVIDER = {
    "sms": "Waiting in the outbox: no text-message provider is set up, so texts are not sent.",
    "voice": "Waiting in the outbox: no voice-call provider is set up, so calls are not made.",
}


@dataclass(frozen=True)
class Queued:
    document_id: int  # the document log row staff see
    outbox_id: int | None  # None when it failed before it could be queued
    recipient: str
    status: str  # "queued" or "failed"
    error: str
    queued_at: datetime


def _log_row(
    session: Session,
    *,
    actor: Actor | None,
    now: datetime,
    recipient: str,
    what: str,
    attachment_names: str = "",
    error: str = "",
    **fields,
) -> DocumentLogEntry:
    """The document log row (``fields``: client_id, kind, channel, status, resend_of_id)."""
    entry = DocumentLogEntry(
        sent_at=now,
        sender_user_id=actor.user_id if actor else None,
        recipient=recipient[:254],
        form_names=what[:500],
        attachment_names=attachment_names[:1000],
        error=error[:500],
        **fields,
    )
    session.add(entry)
    session.flush()
    return entry


def queue_email(
    session: Session,
    *,
    actor: Actor | None,
    client_id: int,
    kind: str,
    what: str,
    message: EmailMessage,
    attachment_names: str = "",
    ref_id: int | None = None,
    send_before: datetime | None = None,
    resend_of_id: int | None = None,
    now: datetime | None = None,
) -> Queued:
    """Put a built email in the outbox with its "queued" document log row (``kind`` as in the
    log: form, statement, receipt, invitation, reminder; ``what`` its name there). It goes
    out when the transaction commits and the worker next looks, within a minute."""
    now = now or utcnow()
    recipient = str(message["To"] or "")
    entry = _log_row(
        session,
        actor=actor,
        now=now,
        recipient=recipient,
        what=what,
        attachment_names=attachment_names,
        client_id=client_id,
        kind=kind,
        channel="email",
        status="queued",
        resend_of_id=resend_of_id,
    )
    row = MessageOutbox(
        client_id=client_id,
        channel="email",
        recipient=recipient[:254],
        body="",
        created_at=now,
        status="queued",
        kind=kind,
        ref_id=ref_id,
        document_log_id=entry.id,
        message=mail.as_bytes(message),
        attempts=0,
        next_attempt_at=None,  # due at once; set only when an attempt failed
        send_before=send_before,
        last_error="",
    )
    session.add(row)
    session.flush()
    return Queued(entry.id, row.id, recipient, "queued", "", now)


def log_not_sent(
    session: Session,
    *,
    actor: Actor | None,
    client_id: int,
    kind: str,
    what: str,
    recipient: str,
    error: str,
    attachment_names: str = "",
    resend_of_id: int | None = None,
    now: datetime | None = None,
) -> Queued:
    """An email that failed before it could be queued (no valid address, a missing file):
    logged as failed with the reason, so staff see the attempt."""
    now = now or utcnow()
    entry = _log_row(
        session,
        actor=actor,
        now=now,
        recipient=recipient,
        what=what,
        attachment_names=attachment_names,
        error=error,
        client_id=client_id,
        kind=kind,
        channel="email",
        status="failed",
        resend_of_id=resend_of_id,
    )
    return Queued(entry.id, None, recipient, "failed", error[:500], now)


def queue_waiting(
    session: Session,
    *,
    client_id: int,
    channel: str,
    recipient: str,
    body: str,
    kind: str,
    what: str,
    ref_id: int | None = None,
    now: datetime | None = None,
) -> Queued:
    """A text or voice message: it waits in the outbox, and its log row says why."""
    now = now or utcnow()
    note = WAITING_FOR_PROVIDER[channel]
    entry = _log_row(
        session,
        actor=None,
        now=now,
        recipient=recipient,
        what=what,
        error=note,
        client_id=client_id,
        kind=kind,
        channel=channel,
        status="queued",
    )
    row = MessageOutbox(
        client_id=client_id,
        channel=channel,
        recipient=recipient[:254],
        body=body,
        created_at=now,
        status="queued",
        kind=kind,
        ref_id=ref_id,
        document_log_id=entry.id,
        attempts=0,
        last_error=note,
    )
    session.add(row)
    session.flush()
    return Queued(entry.id, row.id, recipient, "queued", note, now)


# --- the worker's side: claim, then record the outcome -------------------------------------


@dataclass(frozen=True)
class Claimed:
    outbox_id: int
    token: str
    attempt: int  # 1 for the first try
    kind: str
    ref_id: int | None
    client_id: int | None
    document_log_id: int | None
    send_before: datetime | None
    message: bytes


def _claimable(now: datetime):
    return and_(
        MessageOutbox.channel == "email",
        or_(
            and_(
                MessageOutbox.status == "queued",
                or_(MessageOutbox.next_attempt_at.is_(None), MessageOutbox.next_attempt_at <= now),
            ),
            and_(MessageOutbox.status == "sending", MessageOutbox.claimed_at < now - CLAIM_EXPIRES),
        ),
    )


def due_ids(session: Session, *, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Emails that may be claimed now, oldest first."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(MessageOutbox.id).where(_claimable(now)).order_by(MessageOutbox.id).limit(limit)
        )
    )


def claim(session: Session, *, outbox_id: int, now: datetime | None = None) -> Claimed | None:
    """Take one email for sending, or None when another worker has it (or it is not due).

    One conditional UPDATE decides, on both engines: SQLite runs writers one at a time and
    PostgreSQL re-checks the condition after a competing UPDATE commits. Commit before
    sending, so the claim is visible and no lock is held while the mail server talks.
    """
    now = now or utcnow()
    token = secrets.token_hex(16)
    claimed = session.execute(
        update(MessageOutbox)
        .where(MessageOutbox.id == outbox_id, _claimable(now))
        .values(
            status="sending",
            claim_token=token,
            claimed_at=now,
            attempts=MessageOutbox.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return None
    row = session.execute(
        select(
            MessageOutbox.attempts,
            MessageOutbox.kind,
            MessageOutbox.ref_id,
            MessageOutbox.client_id,
            MessageOutbox.document_log_id,
            MessageOutbox.send_before,
            MessageOutbox.message,
        ).where(MessageOutbox.id == outbox_id)
    ).one()
    return Claimed(
        outbox_id=outbox_id,
        token=token,
        attempt=row.attempts,
        kind=row.kind,
        ref_id=row.ref_id,
        client_id=row.client_id,
        document_log_id=row.document_log_id,
        send_before=as_utc(row.send_before),
        message=bytes(row.message or b""),
    )


def _retry_delay(attempt: int) -> timedelta:
    return RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]


def _minutes(delay: timedelta) -> str:
    minutes = int(delay.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    return f"{hours} hour{'s' if hours != 1 else ''}"


def finish(
    session: Session,
    *,
    claimed: Claimed,
    result: mail.SendResult,
    now: datetime | None = None,
) -> str | None:
    """Record one attempt: "sent", "retrying" or "failed" — or None when the claim was
    taken over meanwhile (then the other worker records it). Updates the document log row
    and audits the outcome, in the caller's transaction."""
    now = now or utcnow()
    if result.status == "sent":
        state, error = "sent", ""
        values = {"status": "sent", "finished_at": now, "last_error": "", "message": None}
        log_status, log_error = "sent", ""
    elif result.permanent or claimed.attempt >= MAX_ATTEMPTS:
        state = "failed"
        tries = "" if result.permanent else f" ({claimed.attempt} attempts)"
        error = f"{result.error}{tries}"
        values = {"status": "failed", "finished_at": now, "last_error": error[:500]}
        log_status, log_error = "failed", error
    else:
        state = "retrying"
        delay = _retry_delay(claimed.attempt)
        error = result.error
        values = {
            "status": "queued",
            "next_attempt_at": now + delay,
            "last_error": error[:500],
            "claim_token": None,
        }
        log_status = "queued"
        log_error = (
            f"Attempt {claimed.attempt} of {MAX_ATTEMPTS} failed ({error}); "
            f"trying again in {_minutes(delay)}."
        )
    changed = session.execute(
        update(MessageOutbox)
        .where(MessageOutbox.id == claimed.outbox_id, MessageOutbox.claim_token == claimed.token)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        return None
    _update_log(session, claimed, log_status, log_error, now, result.transport)
    return state


def give_up(
    session: Session, *, claimed: Claimed, reason: str, now: datetime | None = None
) -> bool:
    """Not sent, for good, without trying (the appointment was cancelled, the invitation
    revoked, it is too late). Returns False when the claim was taken over meanwhile."""
    now = now or utcnow()
    changed = session.execute(
        update(MessageOutbox)
        .where(MessageOutbox.id == claimed.outbox_id, MessageOutbox.claim_token == claimed.token)
        .values(status="failed", finished_at=now, last_error=reason[:500])
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        return False
    _update_log(session, claimed, "failed", reason, now, "none")
    return True


def _update_log(
    session: Session, claimed: Claimed, status: str, error: str, now: datetime, transport: str
) -> None:
    if claimed.document_log_id is None:
        return
    values = {"status": status, "error": error[:500]}
    if status != "queued":
        values["sent_at"] = now  # the log's time is when it went out (or finally did not)
    session.execute(
        update(DocumentLogEntry)
        .where(DocumentLogEntry.id == claimed.document_log_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=None,
        action="email.send_result",
        entity="document_log",
        entity_id=claimed.document_log_id,
        client_id=claimed.client_id,
        before={"status": "queued"},
        after={"status": status, "attempt": claimed.attempt},
        detail=f"kind={claimed.kind} transport={transport} {error[:200]}".strip(),
        at=now,
    )
