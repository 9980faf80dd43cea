"""Portal invitations (spec R2) on SQLite and PostgreSQL: who can be invited, and the token's
whole life — queued, emailed once by the worker, stored hashed, accepted once, dead when
expired, resent or revoked, and one message for every token that does not work."""

from __future__ import annotations

import base64
import email
import hashlib
import re
from datetime import date, timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from lib import mail, portal, worker
from lib.db import transaction
from lib.models import AuditEntry, Client, DocumentLogEntry, MessageOutbox, PortalInvitation
from lib.policy import Actor, PermissionDenied
from lib.timeutil import utcnow
from tests.test_reminders import Practice, add_client, build_practice, set_level

TOKEN_IN_LINK = re.compile(r"http://localhost:8501/portal\?token=([A-Za-z0-9_-]+)")
SETTINGS = portal.portal_settings(env={})


@pytest.fixture
def practice(engine) -> Practice:
    return build_practice(engine)


def queue_invite(
    engine, actor: Actor, client_id: int, tmp_path: Path, **kwargs
) -> portal.InvitationQueued:
    """What the invite button does: the invitation is queued (and committed)."""
    with transaction(engine) as session:
        return portal.send_invitation(
            session,
            actor=actor,
            client_id=client_id,
            mail_settings=kwargs.pop("mail_settings", mail.mail_settings(tmp_path, env={})),
            settings=kwargs.pop("settings", SETTINGS),
            **kwargs,
        )


def deliver(engine, tmp_path: Path) -> worker.Delivery:
    """The worker's turn: send what the outbox holds (as .eml files under tmp_path)."""
    return worker.deliver_due(engine, mail_settings=mail.mail_settings(tmp_path, env={}))


def invite(
    engine, actor: Actor, client_id: int, tmp_path: Path, **kwargs
) -> portal.InvitationQueued:
    """Invite, and let the worker send it."""
    queued = queue_invite(engine, actor, client_id, tmp_path, **kwargs)
    deliver(engine, tmp_path)
    return queued


def queued_token(engine) -> str:
    """The token of the newest invitation still in the outbox, read from the queued email."""
    with transaction(engine) as session:
        raw = session.scalar(
            select(MessageOutbox.message)
            .where(MessageOutbox.kind == "invitation", MessageOutbox.status == "queued")
            .order_by(MessageOutbox.id.desc())
        )
    (token,) = TOKEN_IN_LINK.findall(mail.from_bytes(raw).get_content())
    return token


def last_token(tmp_path: Path) -> str:
    """The token of the newest invitation in the outbox, read from the email as sent."""
    newest = max((tmp_path / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    message = email.message_from_bytes(newest.read_bytes(), policy=policy.default)
    (token,) = TOKEN_IN_LINK.findall(message.get_content())
    return token


def accept(engine, token: str, **kwargs) -> None:
    with transaction(engine) as session:
        portal.accept_invitation(session, token=token, **kwargs)


def status(engine, actor: Actor, client_id: int, **kwargs) -> portal.PortalStatus:
    with transaction(engine) as session:
        return portal.portal_status(session, actor=actor, client_id=client_id, **kwargs)


def log_rows(engine, client_id: int) -> list[DocumentLogEntry]:
    with transaction(engine) as session:
        return list(
            session.scalars(
                select(DocumentLogEntry)
                .where(DocumentLogEntry.client_id == client_id)
                .order_by(DocumentLogEntry.id)
            )
        )


def refused(engine, token: str, **kwargs) -> str:
    with pytest.raises(portal.InvalidInvitation) as raised:
        accept(engine, token, **kwargs)
    return str(raised.value)


# --- who can be invited ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"email": "", "email_ok": False}, ["an email address (Contact tab)"]),
        ({"dob": None}, ["a date of birth (Personal tab)"]),
        (
            {"email": "", "email_ok": False, "dob": None},
            ["an email address (Contact tab)", "a date of birth (Personal tab)"],
        ),
    ],
)
def test_an_invitation_needs_an_email_and_a_date_of_birth(
    engine, practice, tmp_path, fields, missing
):
    client_id = add_client(engine, practice, **fields)
    shown = status(engine, practice.front_desk, client_id)
    assert not shown.can_invite
    assert shown.blockers == missing
    assert shown.blocker_text() == "To invite this client, add " + " and ".join(missing) + "."
    with pytest.raises(portal.InvitationNotPossible, match="To invite this client, add"):
        invite(engine, practice.front_desk, client_id, tmp_path)
    assert log_rows(engine, client_id) == []
    assert not (tmp_path / "outbox").exists()


def test_no_invitation_when_the_portal_is_off_for_the_client(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    set_level(engine, practice.front_desk, "client", client_id, portal_enabled=False)
    assert "portal is off" in status(engine, practice.manager, client_id).blocker_text()
    with pytest.raises(portal.InvitationNotPossible):
        invite(engine, practice.manager, client_id, tmp_path)


@pytest.mark.parametrize("role", ["biller", "clinician"])
def test_roles_without_portal_invite_cannot_invite(engine, practice, tmp_path, role):
    client_id = add_client(engine, practice)
    with pytest.raises(PermissionDenied):
        invite(engine, getattr(practice, role), client_id, tmp_path)
    assert log_rows(engine, client_id) == []


# --- the token's life --------------------------------------------------------------------------


def test_an_invitation_is_queued_then_emailed_logged_and_stored_hashed(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    assert status(engine, practice.front_desk, client_id).status_text("UTC") == (
        "Not invited to the portal."
    )
    queued = queue_invite(engine, practice.front_desk, client_id, tmp_path)
    assert (queued.status, queued.error) == ("queued", "")
    assert not (tmp_path / "outbox").exists()  # the worker sends it, not the button
    waiting = status(engine, practice.front_desk, client_id)
    assert [i.status for i in waiting.invitations] == ["Queued"]
    assert waiting.status_text("UTC").startswith("Invitation queued ")
    assert "waiting to be emailed" in waiting.blocker_text()  # no second one meanwhile
    (entry,) = log_rows(engine, client_id)
    assert (entry.kind, entry.status) == ("invitation", "queued")
    early = queued_token(engine)
    assert refused(engine, early) == portal.INVALID_LINK  # no link works before it is sent

    assert deliver(engine, tmp_path) == worker.Delivery(sent=1)

    token = last_token(tmp_path)
    assert token == early
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 16  # ≥128 bits
    with transaction(engine) as session:
        (row,) = session.scalars(select(PortalInvitation))
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.token_hash, row.email)
        assert row.email == "jane.doe@example.com"
        assert row.sent_at is not None and row.created_by == practice.front_desk.user_id
        lifetime = row.expires_at - row.created_at
    assert lifetime == timedelta(hours=72)
    (entry,) = log_rows(engine, client_id)
    assert (entry.kind, entry.channel, entry.status, entry.error) == (
        "invitation",
        "email",
        "sent",
        "",
    )
    assert entry.recipient == "jane.doe@example.com"
    assert entry.sender_user_id == practice.front_desk.user_id
    shown = status(engine, practice.front_desk, client_id)
    assert shown.current.status == "Invited"
    assert shown.status_text("UTC").startswith("Invited ")
    assert "link valid until" in shown.status_text("UTC")


def test_a_token_is_accepted_once(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    invite(engine, practice.front_desk, client_id, tmp_path)
    token = last_token(tmp_path)

    accept(engine, token)
    assert refused(engine, token) == portal.INVALID_LINK

    shown = status(engine, practice.front_desk, client_id)
    assert shown.current.status == "Accepted"
    assert shown.status_text("UTC").startswith("Accepted ")
    assert "already accepted" in shown.blocker_text()
    with transaction(engine) as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "portal.accept"))
        assert (entry.actor_username, entry.client_id) == ("system", client_id)


def test_a_token_expires(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    short = portal.portal_settings(env={"CLIENTDESK_PORTAL_INVITE_HOURS": "2"})
    sent = invite(engine, practice.front_desk, client_id, tmp_path, settings=short)
    token = last_token(tmp_path)
    assert sent.expires_at - utcnow() < timedelta(hours=2)

    assert refused(engine, token, now=sent.expires_at + timedelta(seconds=1)) == (
        portal.INVALID_LINK
    )
    later = status(engine, practice.front_desk, client_id, now=sent.expires_at)
    assert later.current.status == "Expired"
    assert later.status_text("UTC").startswith("Invitation expired ")
    assert later.can_invite  # an expired invitation can be sent again
    accept(engine, token, now=sent.expires_at - timedelta(seconds=1))  # just in time


def test_a_resend_kills_the_old_token_once_it_is_sent(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    invite(engine, practice.front_desk, client_id, tmp_path)
    old = last_token(tmp_path)
    queue_invite(engine, practice.manager, client_id, tmp_path)
    assert [i.status for i in status(engine, practice.front_desk, client_id).invitations] == [
        "Queued",
        "Invited",
    ]
    deliver(engine, tmp_path)
    new = last_token(tmp_path)
    assert new != old

    assert refused(engine, old) == portal.INVALID_LINK
    shown = status(engine, practice.front_desk, client_id)
    assert [i.status for i in shown.invitations] == ["Invited", "Replaced"]
    accept(engine, new)
    assert [e.status for e in log_rows(engine, client_id)] == ["sent", "sent"]
    assert [i.status for i in status(engine, practice.manager, client_id).invitations] == [
        "Accepted",
        "Replaced",
    ]


def test_revoking_a_queued_invitation_stops_it_going_out(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    queue_invite(engine, practice.front_desk, client_id, tmp_path)
    token = queued_token(engine)
    with transaction(engine) as session:
        assert portal.revoke_invitation(session, actor=practice.manager, client_id=client_id) == 1

    assert deliver(engine, tmp_path) == worker.Delivery()
    assert not (tmp_path / "outbox").exists()
    (entry,) = log_rows(engine, client_id)
    assert (entry.status, entry.error) == (
        "failed",
        "Not sent: the invitation was revoked before it went out.",
    )
    assert refused(engine, token) == portal.INVALID_LINK
    assert status(engine, practice.manager, client_id).can_invite


def test_a_revoked_token_is_dead(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    invite(engine, practice.front_desk, client_id, tmp_path)
    token = last_token(tmp_path)
    with transaction(engine) as session:
        assert portal.revoke_invitation(session, actor=practice.manager, client_id=client_id) == 1
    with transaction(engine) as session:
        assert portal.revoke_invitation(session, actor=practice.manager, client_id=client_id) == 0

    assert refused(engine, token) == portal.INVALID_LINK
    shown = status(engine, practice.front_desk, client_id)
    assert shown.current.status == "Revoked"
    assert shown.status_text("UTC").startswith("Invitation revoked ")
    assert shown.can_invite
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).where(AuditEntry.action == "portal.revoke")) == 1


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "x",
        "A" * 43,
        "not a token at all; DROP TABLE clients",
        "é" * 43,
        "A" * 5000,
    ],
)
def test_a_forged_token_gets_the_same_message(engine, practice, tmp_path, forged):
    client_id = add_client(engine, practice)
    invite(engine, practice.front_desk, client_id, tmp_path)
    real = last_token(tmp_path)
    assert refused(engine, forged) == portal.INVALID_LINK
    assert refused(engine, real[:-1] + ("A" if real[-1] != "A" else "B")) == portal.INVALID_LINK
    with transaction(engine) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(PortalInvitation)
                .where(PortalInvitation.accepted_at.is_not(None))
            )
            == 0
        )


def test_a_failed_send_is_logged_and_the_earlier_link_keeps_working(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    invite(engine, practice.front_desk, client_id, tmp_path)
    working = last_token(tmp_path)
    with transaction(engine) as session:  # an address no email can be built for
        session.execute(update(Client).values(email="jane.doe@invalid"))

    failed = invite(engine, practice.front_desk, client_id, tmp_path)

    assert failed.status == "failed"
    _, not_sent = log_rows(engine, client_id)
    assert (not_sent.kind, not_sent.status) == ("invitation", "failed")
    assert "email" in not_sent.error.lower()
    shown = status(engine, practice.front_desk, client_id)
    assert [i.status for i in shown.invitations] == ["Not sent", "Invited"]
    assert shown.current.status == "Invited"
    accept(engine, working)


def test_the_link_address_and_lifetime_come_from_the_environment():
    custom = portal.portal_settings(
        env={
            "CLIENTDESK_BASE_URL": "https://desk.example.org/",
            "CLIENTDESK_PORTAL_INVITE_HOURS": "24",
        }
    )
    assert custom.accept_url("abc") == "https://desk.example.org/portal?token=abc"
    assert custom.invite_hours == 24
    for bad in ({"CLIENTDESK_PORTAL_INVITE_HOURS": "soon"}, {"CLIENTDESK_BASE_URL": "ftp://x"}):
        fallback = portal.portal_settings(env=bad)
        assert (fallback.base_url, fallback.invite_hours) == ("http://localhost:8501", 72)


def test_the_invitation_greets_the_client_by_first_name_only(engine, practice, tmp_path):
    client_id = add_client(engine, practice, dob=date(1985, 3, 7))
    with transaction(engine) as session:
        session.execute(update(Client).where(Client.id == client_id).values(preferred_name="Janie"))
    invite(engine, practice.front_desk, client_id, tmp_path)
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    body = message.get_content()
    assert message["To"] == "jane.doe@example.com"
    assert body.startswith("Hello Janie,")
    for secret in ("Doe", "1985", "03/07", "Ana", "Abara"):
        assert secret not in body and secret not in message["Subject"], secret
