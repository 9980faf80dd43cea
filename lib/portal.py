"""Client portal invitations (R2): send, resend, revoke, accept.

An invitation is an emailed link carrying a single-use token: 256 random bits from ``secrets``.
Only its SHA-256 is stored, so a copy of the database cannot be used to accept anyone's
invitation. A token works once, until it expires (``CLIENTDESK_PORTAL_INVITE_HOURS``, 72 by
default), and dies when the invitation is revoked or resent. The public page that accepts a
token says one and the same thing for every token it refuses, so it tells a guesser nothing.
The client portal itself is out of scope: accepting only records the acceptance.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lib import audit, mail
from lib.client_record import ClientNotFound
from lib.models import Client, DocumentLogEntry, PortalInvitation, PracticeSetting
from lib.policy import Actor, require_client_access
from lib.reminders import settings_for_client
from lib.timeutil import as_utc, local_text, utcnow

DEFAULT_BASE_URL = "http://localhost:8501"
DEFAULT_INVITE_HOURS = 72
ACCEPT_PATH = "portal"  # app.py's URL_PATHS maps pages/portal_accept.py here
TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,100}")
INVALID_LINK = (
    "This invitation link cannot be used. It may have expired, been used already or been "
    "replaced by a newer invitation. Please ask the practice to send you a new one."
)


@dataclass(frozen=True)
class PortalSettings:
    base_url: str
    invite_hours: int

    def accept_url(self, token: str) -> str:
        return f"{self.base_url}/{ACCEPT_PATH}?token={token}"


def portal_settings(env: dict[str, str] | None = None) -> PortalSettings:
    """``CLIENTDESK_BASE_URL`` (where clients reach ClientDesk) and
    ``CLIENTDESK_PORTAL_INVITE_HOURS``; a value that makes no sense falls back to the default."""
    env = dict(os.environ if env is None else env)
    base = (env.get("CLIENTDESK_BASE_URL") or "").strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s?#]+", base):
        base = DEFAULT_BASE_URL
    try:
        hours = int(env.get("CLIENTDESK_PORTAL_INVITE_HOURS") or DEFAULT_INVITE_HOURS)
    except ValueError:
        hours = DEFAULT_INVITE_HOURS
    return PortalSettings(base_url=base, invite_hours=hours if hours > 0 else DEFAULT_INVITE_HOURS)


def _utc(now: datetime | None) -> datetime:
    """Stored instants are UTC (SQLite keeps no offset), so every ``now`` is made UTC first."""
    return (now or utcnow()).astimezone(UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


# --- status ------------------------------------------------------------------------------

NOT_SENT, INVITED, ACCEPTED, EXPIRED, REVOKED, REPLACED = (
    "Not sent",
    "Invited",
    "Accepted",
    "Expired",
    "Revoked",
    "Replaced",
)


@dataclass(frozen=True)
class InvitationRow:
    invitation_id: int
    email: str
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    status: str  # Invited, Accepted, Expired, Revoked, Replaced (by a resend), Not sent

    @property
    def is_live(self) -> bool:
        return self.status == INVITED


def _status(inv: PortalInvitation, now: datetime, replaced: bool) -> str:
    if inv.accepted_at is not None:
        return ACCEPTED
    if inv.sent_at is None:
        return NOT_SENT
    if inv.revoked_at is not None:
        return REPLACED if replaced else REVOKED
    if as_utc(inv.expires_at) <= now:
        return EXPIRED
    return INVITED


def _client(session: Session, client_id: int) -> Client:
    client = session.get(Client, client_id)
    if client is None:
        raise ClientNotFound("There is no client with that number.")
    return client


def _rows(session: Session, client_id: int, now: datetime) -> list[InvitationRow]:
    """Newest first. A resend revokes the older invitation at the instant the new one is
    created, which is how a replaced invitation is told from a revoked one."""
    invitations = list(
        session.scalars(
            select(PortalInvitation)
            .where(PortalInvitation.client_id == client_id)
            .order_by(PortalInvitation.id.desc())
        )
    )
    rows = []
    for i, inv in enumerate(invitations):
        newer = invitations[:i]
        replaced = inv.revoked_at is not None and any(
            as_utc(n.created_at) <= as_utc(inv.revoked_at) for n in newer
        )
        rows.append(
            InvitationRow(
                invitation_id=inv.id,
                email=inv.email,
                created_at=as_utc(inv.created_at),
                sent_at=as_utc(inv.sent_at),
                expires_at=as_utc(inv.expires_at),
                accepted_at=as_utc(inv.accepted_at),
                revoked_at=as_utc(inv.revoked_at),
                status=_status(inv, now, replaced),
            )
        )
    return rows


def invitations_for_client(
    session: Session, *, actor: Actor, client_id: int, now: datetime | None = None
) -> list[InvitationRow]:
    client = _client(session, client_id)
    require_client_access(actor, "client.view", client.clinician_id)
    return _rows(session, client_id, _utc(now))


@dataclass(frozen=True)
class PortalStatus:
    missing: list[str]  # what the record lacks: "an email address (Contact tab)", ...
    refusals: list[str]  # other reasons no invitation can go now, as sentences
    current: InvitationRow | None  # the newest invitation that was sent
    invitations: list[InvitationRow]

    @property
    def blockers(self) -> list[str]:
        return [*self.missing, *self.refusals]

    @property
    def can_invite(self) -> bool:
        return not self.blockers

    def blocker_text(self) -> str:
        """What stops an invitation, for the disabled invite button: what to add, and why."""
        parts = []
        if self.missing:
            parts.append("To invite this client, add " + " and ".join(self.missing) + ".")
        parts.extend(self.refusals)
        return " ".join(parts)

    def status_text(self, tz_name: str) -> str:
        """'Not invited', 'Invited <when> · link valid until <when>', 'Accepted <when>', ..."""
        inv = self.current
        if inv is None:
            return "Not invited to the portal."
        sent = local_text(inv.sent_at, tz_name)
        if inv.status == ACCEPTED:
            return f"Accepted {local_text(inv.accepted_at, tz_name)} (invited {sent})."
        if inv.status == INVITED:
            return f"Invited {sent} · link valid until {local_text(inv.expires_at, tz_name)}."
        if inv.status == EXPIRED:
            return f"Invitation expired {local_text(inv.expires_at, tz_name)} (invited {sent})."
        if inv.status == REVOKED:
            return f"Invitation revoked {local_text(inv.revoked_at, tz_name)} (invited {sent})."
        return f"{inv.status} (invited {sent})."


def _blockers(
    session: Session, client: Client, rows: list[InvitationRow]
) -> tuple[list[str], list[str]]:
    missing, refusals = [], []
    if not client.email:
        missing.append("an email address (Contact tab)")
    if client.dob is None:
        missing.append("a date of birth (Personal tab)")
    if not settings_for_client(session, client).get("portal_enabled").effective:
        refusals.append("The client portal is off for this client (Reminders & Portal tab).")
    if any(r.status == ACCEPTED for r in rows):
        refusals.append("This client has already accepted a portal invitation.")
    return missing, refusals


def portal_status(
    session: Session, *, actor: Actor, client_id: int, now: datetime | None = None
) -> PortalStatus:
    """What the tab and the header's invite button need: can we invite, and where are we."""
    client = _client(session, client_id)
    require_client_access(actor, "client.view", client.clinician_id)
    rows = _rows(session, client_id, _utc(now))
    sent = [r for r in rows if r.sent_at is not None]
    missing, refusals = _blockers(session, client, rows)
    return PortalStatus(
        missing=missing,
        refusals=refusals,
        current=sent[0] if sent else None,
        invitations=rows,
    )


# --- sending, revoking -------------------------------------------------------------------


class InvitationNotPossible(ValueError):
    """The client cannot be invited now (the message says why); nothing was sent."""


@dataclass(frozen=True)
class InvitationSent:
    invitation_id: int
    status: str  # "sent" or "failed"
    error: str
    expires_at: datetime
    replaced_earlier: bool  # a live earlier link died (only when sent)


@dataclass(frozen=True)
class InvitationText:
    subject: str
    body: str


def invitation_text(
    *, practice_name: str, first_name: str, url: str, expires_text: str
) -> InvitationText:
    """No health information: the practice's name, the client's first name and the link."""
    return InvitationText(
        subject=f"Your client portal invitation from {practice_name}",
        body=(
            f"Hello {first_name},\n\n"
            f"{practice_name} invites you to its secure client portal. To accept, open this "
            f"link:\n\n{url}\n\n"
            f"The link works once and until {expires_text}. If it has expired, ask us for a "
            "new one.\n\n"
            "If you did not expect this email, you can ignore it.\n\n"
            f"{practice_name}\n"
        ),
    )


def practice_name(session: Session) -> str:
    setting = session.get(PracticeSetting, "practice_name")
    return setting.value if setting and setting.value.strip() else "Your practice"


def greeting_name(client: Client) -> str:
    """The client's first name as they go by it (preferred name when given), never more."""
    return (client.preferred_name or client.first_name).strip()


def send_invitation(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    mail_settings: mail.MailSettings,
    settings: PortalSettings,
    tz_name: str = "America/New_York",
    now: datetime | None = None,
) -> InvitationSent:
    """Email a new invitation link; a live earlier invitation dies once this one is sent.

    Resending is sending again. The send is a row of the client's document log (sent or
    failed, with the error) and is audited. A failed send leaves the earlier link working and
    the new token dead. Raises ``InvitationNotPossible`` (no email, no date of birth, portal
    off, already accepted) or ``PermissionDenied``.
    """
    client = session.scalar(select(Client).where(Client.id == client_id).with_for_update())
    if client is None:
        raise InvitationNotPossible("There is no such client.")
    require_client_access(actor, "portal.invite", client.clinician_id)
    now = _utc(now)
    rows = _rows(session, client_id, now)
    blocked = PortalStatus(*_blockers(session, client, rows), current=None, invitations=rows)
    if not blocked.can_invite:
        raise InvitationNotPossible(blocked.blocker_text())
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = PortalInvitation(
        client_id=client.id,
        token_hash=hash_token(token),
        email=client.email,
        created_at=now,
        sent_at=None,
        expires_at=now + timedelta(hours=settings.invite_hours),
        created_by=actor.user_id,
    )
    session.add(invitation)
    session.flush()
    text = invitation_text(
        practice_name=practice_name(session),
        first_name=greeting_name(client),
        url=settings.accept_url(token),
        expires_text=local_text(invitation.expires_at, client.time_zone or tz_name),
    )
    try:
        message = mail.build_message(
            mail_settings, to=client.email, subject=text.subject, body=text.body
        )
    except mail.MailError as exc:
        result = mail.SendResult("failed", "none", str(exc))
    else:
        result = mail.send(mail_settings, message)
    live = [r for r in rows if r.is_live]
    if result.status == "sent":
        invitation.sent_at = now
        for older in live:
            session.execute(
                update(PortalInvitation)
                .where(PortalInvitation.id == older.invitation_id)
                .values(revoked_at=now)
            )
    else:
        invitation.revoked_at = now  # nobody holds this token; make sure it never works
    session.add(
        DocumentLogEntry(
            client_id=client.id,
            kind="invitation",
            sent_at=now,
            sender_user_id=actor.user_id,
            recipient=client.email,
            form_names="Portal invitation",
            attachment_names="",
            channel="email",
            status=result.status,
            error=result.error[:500],
        )
    )
    audit.record(
        session,
        actor=actor,
        action="portal.invite",
        entity="portal_invitation",
        entity_id=invitation.id,
        client_id=client.id,
        detail=f"status={result.status} resend={bool(live)}",
        at=now,
    )
    return InvitationSent(
        invitation_id=invitation.id,
        status=result.status,
        error=result.error,
        expires_at=as_utc(invitation.expires_at),
        replaced_earlier=bool(live) and result.status == "sent",
    )


def revoke_invitation(
    session: Session, *, actor: Actor, client_id: int, now: datetime | None = None
) -> int:
    """Kill the client's live invitation link(s). Returns how many were revoked (0 or 1)."""
    client = _client(session, client_id)
    require_client_access(actor, "portal.invite", client.clinician_id)
    now = _utc(now)
    live = [r for r in _rows(session, client_id, now) if r.is_live]
    for row in live:
        session.execute(
            update(PortalInvitation)
            .where(PortalInvitation.id == row.invitation_id, PortalInvitation.accepted_at.is_(None))
            .values(revoked_at=now)
        )
        audit.record(
            session,
            actor=actor,
            action="portal.revoke",
            entity="portal_invitation",
            entity_id=row.invitation_id,
            client_id=client_id,
            at=now,
        )
    return len(live)


# --- accepting (public) ------------------------------------------------------------------


class InvalidInvitation(ValueError):
    """Used, expired, revoked, replaced or forged: always the same message."""

    def __init__(self) -> None:
        super().__init__(INVALID_LINK)


def accept_invitation(session: Session, *, token: str, now: datetime | None = None) -> None:
    """Mark the invitation of ``token`` accepted, once. Public: no actor, audited as system.

    One conditional UPDATE does the check and the write, so two clicks racing each other
    accept once. Every refusal raises the same ``InvalidInvitation``.
    """
    if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
        raise InvalidInvitation()
    now = _utc(now)
    token_hash = hash_token(token)
    result = session.execute(
        update(PortalInvitation)
        .where(
            PortalInvitation.token_hash == token_hash,
            PortalInvitation.accepted_at.is_(None),
            PortalInvitation.revoked_at.is_(None),
            PortalInvitation.sent_at.is_not(None),
            PortalInvitation.expires_at > now,
        )
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise InvalidInvitation()
    invitation = session.scalar(
        select(PortalInvitation).where(PortalInvitation.token_hash == token_hash)
    )
    audit.record(
        session,
        actor=None,
        action="portal.accept",
        entity="portal_invitation",
        entity_id=invitation.id,
        client_id=invitation.client_id,
        at=now,
    )
