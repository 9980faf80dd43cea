"""Client portal invitations (R2): what was sent, and whether it was accepted or expired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib.models import Client, PortalInvitation
from lib.policy import Actor, require_client_access
from lib.timeutil import as_utc, utcnow


@dataclass(frozen=True)
class InvitationRow:
    invitation_id: int
    email: str
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime
    status: str  # Accepted, Revoked, Expired, Invited


def invitation_status(inv: PortalInvitation, now: datetime) -> str:
    if inv.accepted_at is not None:
        return "Accepted"
    if inv.revoked_at is not None:
        return "Revoked"
    if as_utc(inv.expires_at) <= now:
        return "Expired"
    return "Invited"


def invitations_for_client(
    session: Session, *, actor: Actor, client_id: int
) -> list[InvitationRow]:
    client = session.get(Client, client_id)
    require_client_access(actor, "client.view", client.clinician_id if client else None)
    now = utcnow()
    return [
        InvitationRow(
            invitation_id=i.id,
            email=i.email,
            created_at=as_utc(i.created_at),
            sent_at=as_utc(i.sent_at),
            expires_at=as_utc(i.expires_at),
            status=invitation_status(i, now),
        )
        for i in session.scalars(
            select(PortalInvitation)
            .where(PortalInvitation.client_id == client_id)
            .order_by(PortalInvitation.id.desc())
        )
    ]
