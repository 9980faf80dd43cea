"""Batch reminder emails from the collections worklist.

The email comes from one template: it asks the client to get in touch about their account and
carries no amount, no date of service and no name (spec: what an email may carry). It goes
only to clients with a valid address who agreed to be emailed; the others are listed back
to staff, not emailed. Each email is queued in the outbox (the worker sends it) with its row
in the client's Documents, and logged as a contact ("email · sent").

A batch is run once per key: the page takes a key when the selection is made, and a second
click with the same key (a double click, a rerun) finds the batch done and queues nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib import audit, collection_contacts, mail, outbox
from lib.db import exclusive
from lib.documents import email_recipient
from lib.models import Client, CollectionBatch, PracticeSetting
from lib.policy import Actor, require, require_client_access
from lib.timeutil import utcnow

KIND = "account_reminder"  # the document log's kind
WHAT = "Account reminder"


def reminder_text(practice_name: str) -> tuple[str, str]:
    """(subject, body) of the account reminder: the practice's words, no client details."""
    return (
        f"A reminder from {practice_name}",
        "Hello,\n\n"
        f"This is a reminder from the billing office of {practice_name} about your account. "
        "Please contact our office at your convenience, or bring it up at your next visit.\n\n"
        "If you have already been in touch with us about it, thank you, and please disregard "
        "this message.\n\n"
        f"{practice_name}\n",
    )


@dataclass(frozen=True)
class BatchResult:
    queued: int  # emails put in the outbox now
    skipped: list[tuple[int, str]]  # (client id, why not emailed)
    duplicate: bool  # this key ran before: nothing was queued this time


def _practice_name(session: Session) -> str:
    setting = session.get(PracticeSetting, "practice_name")
    return setting.value.strip() if setting and setting.value.strip() else "Your practice"


def send_reminders(
    session: Session,
    *,
    actor: Actor,
    client_ids: list[int],
    idempotency_key: str,
    mail_settings: mail.MailSettings,
) -> BatchResult:
    """Queue the account reminder for each chosen client who may be emailed, once per key."""
    require(actor, "collections.work")
    key = (idempotency_key or "").strip()
    if not key or len(key) > 80:
        raise ValueError("A batch needs an idempotency key of 1-80 characters.")
    if not client_ids:
        raise ValueError("Choose at least one client.")
    exclusive(session, f"collection-batch:{key}")  # a concurrent double click waits here
    done = session.scalar(
        select(CollectionBatch.queued_count).where(CollectionBatch.idempotency_key == key)
    )
    if done is not None:
        return BatchResult(queued=0, skipped=[], duplicate=True)
    practice = _practice_name(session)
    subject, body = reminder_text(practice)
    now = utcnow()
    queued, skipped = 0, []
    for client_id in dict.fromkeys(client_ids):
        client = session.get(Client, client_id)
        require_client_access(actor, "collections.work", client.clinician_id if client else None)
        recipient = email_recipient(client)
        if recipient.problem:
            skipped.append((client_id, recipient.problem))
            continue
        try:
            message = mail.build_message(
                mail_settings, to=recipient.address, subject=subject, body=body
            )
        except mail.MailError as exc:
            skipped.append((client_id, str(exc)))
            continue
        sent = outbox.queue_email(
            session,
            actor=actor,
            client_id=client_id,
            kind=KIND,
            what=WHAT,
            message=message,
            now=now,
        )
        collection_contacts.log_contact(
            session,
            actor=actor,
            client_id=client_id,
            kind="email",
            outcome="sent",
            note="Account reminder emailed from the collections worklist.",
            idempotency_key=f"{key[:60]}-{client_id}",
        )
        audit.record(
            session,
            actor=actor,
            action="collections.reminder",
            entity="document_log",
            entity_id=sent.document_id,
            client_id=client_id,
            detail=f"batch={key[:40]}",
            at=now,
        )
        queued += 1
    session.add(
        CollectionBatch(
            idempotency_key=key,
            action="reminder_email",
            created_at=now,
            created_by=actor.user_id,
            chosen_count=len(set(client_ids)),
            queued_count=queued,
        )
    )
    session.flush()
    return BatchResult(queued=queued, skipped=skipped, duplicate=False)
