"""Documents: the log of every form, statement, receipt, invitation and reminder sent (D2, D3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib.models import Client, DocumentLogEntry, User
from lib.policy import Actor, require_client_access
from lib.timeutil import as_utc

STATUS_LABELS = {"queued": "Queued", "sent": "Sent", "failed": "Failed"}


@dataclass(frozen=True)
class DocumentRow:
    entry_id: int
    sent_at: datetime
    kind: str
    sender: str
    recipient: str
    forms: str
    attachments: str
    channel: str
    status: str
    error: str


def log_for_client(session: Session, *, actor: Actor, client_id: int) -> list[DocumentRow]:
    """Newest first. Times are stored in UTC; pages show them in the practice's time zone."""
    client = session.get(Client, client_id)
    require_client_access(actor, "documents.view", client.clinician_id if client else None)
    rows = session.execute(
        select(DocumentLogEntry, User.display_name)
        .outerjoin(User, User.id == DocumentLogEntry.sender_user_id)
        .where(DocumentLogEntry.client_id == client_id)
        .order_by(DocumentLogEntry.sent_at.desc(), DocumentLogEntry.id.desc())
    ).all()
    return [
        DocumentRow(
            entry_id=d.id,
            sent_at=as_utc(d.sent_at),
            kind=d.kind.capitalize(),
            sender=name or "system",
            recipient=d.recipient,
            forms=d.form_names,
            attachments=d.attachment_names,
            channel=d.channel,
            status=STATUS_LABELS.get(d.status, d.status),
            error=d.error,
        )
        for d, name in rows
    ]
