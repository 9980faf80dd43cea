"""Emailed payment receipts (spec B3): amount, date, method and reference — no health data.

The receipt names neither the client nor any service, only the practice and the payment. The
staff's receipt note stays in the ledger and is not emailed: free text could carry health
details. Every receipt is a row of the client's document log: queued here, in the outbox
(``lib.outbox``), then sent or failed by the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from lib import audit, mail, outbox
from lib.models import Client, LedgerEntry, PracticeSetting
from lib.money import format_cents
from lib.policy import Actor, require_client_access
from lib.postings import METHOD_LABELS


class ReceiptError(ValueError):
    """No receipt can be sent (no email on file, not a payment); nothing was sent."""


@dataclass(frozen=True)
class ReceiptText:
    subject: str
    body: str


def receipt_text(practice_name: str, entry: LedgerEntry) -> ReceiptText:
    reference = f"\nReference: {entry.reference}" if entry.reference else ""
    return ReceiptText(
        subject=f"Payment receipt from {practice_name}",
        body=(
            f"Thank you. {practice_name} received your payment.\n\n"
            f"Amount: {format_cents(entry.amount_cents)}\n"
            f"Date: {entry.service_date:%m/%d/%Y}\n"
            f"Method: {METHOD_LABELS.get(entry.method, entry.method)}{reference}\n"
            f"Receipt number: {entry.id}\n\n"
            "Please keep this email for your records.\n"
        ),
    )


def email_receipt(
    session: Session, *, actor: Actor, entry_id: int, settings: mail.MailSettings
) -> outbox.Queued:
    """Queue the receipt of a client payment for the client's address on file, and log it.

    Raises ``ReceiptError`` (not a client payment, no address) or ``mail.MailError`` (the
    address is not valid); nothing is queued then. The worker sends it within a minute.
    """
    entry = session.get(LedgerEntry, entry_id)
    if entry is None or entry.kind != "payment" or entry.responsibility != "client":
        raise ReceiptError("Receipts are for client payments.")
    client = session.get(Client, entry.client_id)
    require_client_access(actor, "payment.record", client.clinician_id)
    if not client.email:
        raise ReceiptError("The client has no email address on the Contact tab.")
    practice = session.get(PracticeSetting, "practice_name")
    text = receipt_text(practice.value if practice else "Your practice", entry)
    message = mail.build_message(settings, to=client.email, subject=text.subject, body=text.body)
    queued = outbox.queue_email(
        session,
        actor=actor,
        client_id=client.id,
        kind="receipt",
        what=f"Receipt #{entry.id}",
        message=message,
    )
    audit.record(
        session,
        actor=actor,
        action="receipt.email",
        entity="ledger_entry",
        entity_id=entry.id,
        client_id=client.id,
        detail=f"status={queued.status} document={queued.document_id}",
    )
    return queued
