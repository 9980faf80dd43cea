"""Client portal invitations (R2): send, resend, revoke, accept.

An invitation is an emailed link carrying a single-use token: 256 random bits from ``secrets``.
Only its SHA-256 is stored, so a copy of the database cannot be used to accept anyone's
invitation. A token works once, until it expires (``CLIENTDESK_PORTAL_INVITE_HOURS``, 72 by
default), and dies when the invitation is revoked or resent. The public page that accepts a
token says one and the same thing for every token it refuses, so it tells a guesser nothing.
The client portal itself is out of scope: accepting only records the acceptance.

Sending goes through the outbox (``lib.outbox``): an invitation is queued with its token, and
only once the worker has sent it does its link work and does an earlier live link die. An
invitation the worker could not send is dead, and the earlier link keeps working.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lib import audit, mail, outbox
from lib.client_record import ClientNotFound
from lib.config import ConfigurationError, default_of, setting
from lib.models import Client, PortalInvitation, PracticeSetting
from lib.policy import Actor, require_client_access
from lib.reminders import settings_for_client
from lib.timeutil import as_utc, local_text, utcnow

DEFAULT_BASE_URL: str = default_of("CLIENTDESK_BASE_URL")
DEFAULT_INVITE_HOURS: int = default_of("CLIENTDESK_PORTAL_INVITE_HOURS")
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


def portal_settings(env: Mapping[str, str] | None = None) -> PortalSettings:
    """``CLIENTDESK_BASE_URL`` (where clients reach ClientDesk) and
    ``CLIENTDESK_PORTAL_INVITE_HOURS``; a value that makes no sense falls back to the default."""
    base = setting("CLIENTDESK_BASE_URL", env).strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s?#]+", base):
        base = DEFAULT_BASE_URL
    try:
        hours = setting("CLIENTDESK_PORTAL_INVITE_HOURS", env)
    except ConfigurationError:
        hours = DEFAULT_INVITE_HOURS
    return PortalSettings(base_url=base, invite_hours=hours if hours > 0 else DEFAULT_INVITE_HOURS)


def _utc(now: datetime | None) -> datetime:
    """Stored instants are UTC (SQLite keeps no offset), so every ``now`` is made UTC first."""
    return (now or utcnow()).astimezone(UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


# --- status ------------------------------------------------------------------------------

NOT_SENT, QUEUED, INVITED, ACCEPTED, EXPIRED, REVOKED, REPLACED = (
    "Not sent",
    "Queued",
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
    status: str  # Queued, Invited, Accepted, Expired, Revoked, Replaced (by a resend), Not sent

    @property
    def is_live(self) -> bool:
        return self.status == INVITED

    @property
    def is_queued(self) -> bool:
        return self.status == QUEUED


def _status(inv: PortalInvitation, now: datetime, replaced: bool) -> str:
    if inv.accepted_at is not None:
        return ACCEPTED
    if inv.sent_at is None:
        return QUEUED if inv.revoked_at is None else NOT_SENT
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
    sent (before the outbox: created), which is how a replaced invitation is told from a
    revoked one."""
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
            as_utc(inv.revoked_at) in (as_utc(n.sent_at), as_utc(n.created_at)) for n in newer
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
    queued: InvitationRow | None = None  # an invitation waiting in the outbox

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
        if self.queued is not None:
            queued = local_text(self.queued.created_at, tz_name)
            return f"Invitation queued {queued}; it is emailed within a minute."
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
    if any(r.is_queued for r in rows):
        refusals.append(
            "An invitation is waiting to be emailed (Documents tab); send another once it went."
        )
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
        queued=next((r for r in rows if r.is_queued), None),
    )


# --- sending, revoking -------------------------------------------------------------------


class InvitationNotPossible(ValueError):
    """The client cannot be invited now (the message says why); nothing was sent."""


@dataclass(frozen=True)
class InvitationQueued:
    invitation_id: int
    status: str  # "queued", or "failed" when no email could be built (nothing was queued)
    error: str
    expires_at: datetime


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
) -> InvitationQueued:
    """Queue an email with a new invitation link; the worker sends it within a minute.

    Resending is sending again. The invitation is a row of the client's document log
    (queued, then sent or failed with the reason) and is audited. Until it is sent its link
    does not work; once sent, a live earlier invitation dies (``invitation_delivered``).
    Raises ``InvitationNotPossible`` (no email, no date of birth, portal off, already
    accepted, one already waiting) or ``PermissionDenied``.
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
    what = "Portal invitation"
    try:
        message = mail.build_message(
            mail_settings, to=client.email, subject=text.subject, body=text.body
        )
    except mail.MailError as exc:
        invitation.revoked_at = now  # nobody holds this token; make sure it never works
        queued = outbox.log_not_sent(
            session,
            actor=actor,
            client_id=client.id,
            kind="invitation",
            what=what,
            recipient=client.email,
            error=str(exc),
            now=now,
        )
    else:
        queued = outbox.queue_email(
            session,
            actor=actor,
            client_id=client.id,
            kind="invitation",
            what=what,
            message=message,
            ref_id=invitation.id,
            send_before=invitation.expires_at,
            now=now,
        )
    audit.record(
        session,
        actor=actor,
        action="portal.invite",
        entity="portal_invitation",
        entity_id=invitation.id,
        client_id=client.id,
        detail=f"status={queued.status} resend={any(r.is_live for r in rows)}",
        at=now,
    )
    return InvitationQueued(
        invitation_id=invitation.id,
        status=queued.status,
        error=queued.error,
        expires_at=as_utc(invitation.expires_at),
    )


# --- what the worker asks and tells ---------------------------------------------------------


def invitation_not_wanted(session: Session, *, invitation_id: int, now: datetime) -> str:
    """Why a queued invitation email should not go out any more ("" when it should)."""
    invitation = session.get(PortalInvitation, invitation_id)
    if invitation is None or invitation.revoked_at is not None:
        return "Not sent: the invitation was revoked before it went out."
    if as_utc(invitation.expires_at) <= now:
        return "Not sent: the invitation's link expired before it could go out."
    return ""


def invitation_delivered(session: Session, *, invitation_id: int, now: datetime) -> bool:
    """The worker sent the invitation: its link works from now, and a live earlier
    invitation of the same client dies. Returns whether an earlier link died."""
    invitation = session.get(PortalInvitation, invitation_id)
    if invitation is None:
        return False
    invitation.sent_at = now
    earlier = session.execute(
        update(PortalInvitation)
        .where(
            PortalInvitation.client_id == invitation.client_id,
            PortalInvitation.id != invitation.id,
            PortalInvitation.sent_at.is_not(None),
            PortalInvitation.accepted_at.is_(None),
            PortalInvitation.revoked_at.is_(None),
            PortalInvitation.expires_at > now,
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(earlier)


def invitation_not_sent(session: Session, *, invitation_id: int, now: datetime) -> None:
    """The worker gave up on the invitation: its token must never work."""
    session.execute(
        update(PortalInvitation)
        .where(PortalInvitation.id == invitation_id, PortalInvitation.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def revoke_invitation(
    session: Session, *, actor: Actor, client_id: int, now: datetime | None = None
) -> int:
    """Kill the client's live invitation link, or stop one still waiting to be emailed.
    Returns how many were revoked (0 or 1)."""
    client = _client(session, client_id)
    require_client_access(actor, "portal.invite", client.clinician_id)
    now = _utc(now)
    live = [r for r in _rows(session, client_id, now) if r.is_live or r.is_queued]
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
