"""Invitations and reminders through a real SMTP server (spec A3, R2, R3).

Each test starts aiosmtpd on a free local port, lets the worker send the outbox to it, and reads
what arrived: the right recipient, the client's first name, and none of the health information
a shared inbox must not show (last name, date of birth, service, clinician). One server speaks
STARTTLS with a password, as a hosted mail provider does; failures come back as logged results,
never as exceptions.
"""

from __future__ import annotations

import email
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from lib import mail, portal, worker
from lib.db import transaction
from lib.models import DocumentLogEntry
from lib.reminder_sender import RETRY_FAILED_AFTER
from lib.timeutil import utcnow
from tests.test_reminders import (
    PRACTICE_NAME,
    Practice,
    add_appointment,
    add_client,
    build_practice,
)

SMTP_USER, SMTP_PASSWORD = "clientdesk", "smtp-password-for-tests"
# What the client's record holds besides the first name, and must never be in a message.
PHI = (
    "Doe",  # last name
    "1985",  # date of birth in any format
    "03/07",
    "3/7/",
    "March 7",
    "90837",  # service code and description
    "Psychotherapy",
    "Abara",  # the clinician
    "LCSW",
    "Main office",  # the location
)


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what arrives; ``refuse`` makes it refuse recipients."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    refuse: bool = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class SmtpServer:
    inbox: Inbox
    settings: mail.MailSettings


@pytest.fixture
def smtp(tmp_path) -> Iterator[SmtpServer]:
    """A plain SMTP server on localhost (as a local relay would be)."""
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    env = {
        "CLIENTDESK_SMTP_HOST": "127.0.0.1",
        "CLIENTDESK_SMTP_PORT": str(port),
        "CLIENTDESK_SMTP_SECURITY": "none",
        "CLIENTDESK_MAIL_FROM": "office@riverside.example",
        "CLIENTDESK_MAIL_FROM_NAME": PRACTICE_NAME,
    }
    try:
        yield SmtpServer(inbox, mail.mail_settings(tmp_path, env=env))
    finally:
        controller.stop()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_smtp(tmp_path, monkeypatch) -> Iterator[tuple[Inbox, dict[str, str]]]:
    """STARTTLS required, then a login: the way a hosted mail provider is used. The test's
    own certificate is trusted through SSL_CERT_FILE; the mailer verifies it as usual."""
    cert_path, key_path = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    inbox = Inbox()
    port = _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticate,
    )
    controller.start()
    env = {
        "CLIENTDESK_SMTP_HOST": "127.0.0.1",
        "CLIENTDESK_SMTP_PORT": str(port),
        "CLIENTDESK_SMTP_SECURITY": "starttls",
        "CLIENTDESK_SMTP_USERNAME": SMTP_USER,
        "CLIENTDESK_SMTP_PASSWORD": SMTP_PASSWORD,
    }
    try:
        yield inbox, env
    finally:
        controller.stop()


@pytest.fixture
def practice(engine) -> Practice:
    return build_practice(engine)


def jane(engine, practice: Practice) -> int:
    return add_client(engine, practice, dob=date(1985, 3, 7))


def invite(engine, practice: Practice, client_id: int, settings: mail.MailSettings):
    """Queue an invitation as the button does, then let the worker send it."""
    with transaction(engine) as session:
        portal.send_invitation(
            session,
            actor=practice.front_desk,
            client_id=client_id,
            mail_settings=settings,
            settings=portal.portal_settings(env={}),
        )
    return worker.deliver_due(engine, mail_settings=settings)


def remind(engine, settings: mail.MailSettings, now: datetime | None = None) -> worker.Round:
    return worker.run_round(engine, now=now, mail_settings=settings, practice_tz="America/New_York")


def logged(engine, kind: str) -> list[DocumentLogEntry]:
    with transaction(engine) as session:
        return list(
            session.scalars(
                select(DocumentLogEntry)
                .where(DocumentLogEntry.kind == kind)
                .order_by(DocumentLogEntry.id)
            )
        )


def assert_no_phi(message: EmailMessage) -> None:
    text = f"{message['Subject']}\n{message.get_content()}"
    leaked = [item for item in PHI if item in text]
    assert leaked == [], leaked


def test_an_invitation_arrives_with_a_working_link_and_no_phi(engine, practice, smtp):
    client_id = jane(engine, practice)

    sent = invite(engine, practice, client_id, smtp.settings)

    assert sent == worker.Delivery(sent=1)
    ((recipients, message),) = smtp.inbox.messages
    assert recipients == ["jane.doe@example.com"]
    assert message["To"] == "jane.doe@example.com"
    assert message["From"] == f"{PRACTICE_NAME} <office@riverside.example>"
    assert message["Subject"] == f"Your client portal invitation from {PRACTICE_NAME}"
    body = message.get_content()
    assert body.startswith("Hello Jane,")
    assert_no_phi(message)
    (token,) = re.findall(r"/portal\?token=([A-Za-z0-9_-]+)", body)
    with transaction(engine) as session:
        portal.accept_invitation(session, token=token)
    (entry,) = logged(engine, "invitation")
    assert (entry.status, entry.channel, entry.recipient) == (
        "sent",
        "email",
        "jane.doe@example.com",
    )


def test_a_reminder_arrives_with_the_time_and_no_phi(engine, practice, smtp):
    client_id = jane(engine, practice)
    starts = (utcnow() + timedelta(hours=5)).replace(second=0, microsecond=0)
    add_appointment(engine, practice, client_id, starts)

    run = remind(engine, smtp.settings)

    assert (run.reminders.queued_email, run.delivery) == (1, worker.Delivery(sent=1))
    ((recipients, message),) = smtp.inbox.messages
    assert recipients == ["jane.doe@example.com"]
    assert message["Subject"] == f"Appointment reminder from {PRACTICE_NAME}"
    body = message.get_content()
    assert body.startswith("Hello Jane,")
    local = starts.astimezone(ZoneInfo("America/New_York"))
    assert f"{local:%B} {local.day}, {local.year} at {local.hour % 12 or 12}:{local:%M %p}" in body
    assert_no_phi(message)
    (entry,) = logged(engine, "reminder")
    assert (entry.status, entry.channel) == ("sent", "email")

    remind(engine, smtp.settings)
    assert len(smtp.inbox.messages) == 1


def test_starttls_with_a_password_delivers(engine, practice, tls_smtp, tmp_path):
    inbox, env = tls_smtp
    client_id = jane(engine, practice)

    sent = invite(engine, practice, client_id, mail.mail_settings(tmp_path, env=env))

    assert sent == worker.Delivery(sent=1)
    ((recipients, message),) = inbox.messages
    assert recipients == ["jane.doe@example.com"]
    assert_no_phi(message)


def test_a_wrong_smtp_password_is_logged_and_tried_again_later(
    engine, practice, tls_smtp, tmp_path
):
    inbox, env = tls_smtp
    client_id = jane(engine, practice)
    settings = mail.mail_settings(tmp_path, env={**env, "CLIENTDESK_SMTP_PASSWORD": "wrong"})

    sent = invite(engine, practice, client_id, settings)

    assert sent == worker.Delivery(retrying=1)  # an admin can fix the password meanwhile
    assert inbox.messages == []
    (entry,) = logged(engine, "invitation")
    assert entry.status == "queued"
    assert entry.error.startswith("Attempt 1 of 6 failed (SMTP 535)")
    assert SMTP_PASSWORD not in entry.error and "wrong" not in entry.error


def test_a_refused_recipient_fails_at_once_and_the_next_run_does_not_resend_it(
    engine, practice, smtp
):
    client_id = jane(engine, practice)
    add_appointment(engine, practice, client_id, utcnow() + timedelta(hours=3))
    smtp.inbox.refuse = True

    failed = remind(engine, smtp.settings)

    assert failed.delivery == worker.Delivery(failed=1)  # 550: trying again cannot help
    (entry,) = logged(engine, "reminder")
    assert (entry.status, entry.error) == ("failed", "recipient refused by the mail server")
    assert "jane" not in entry.error.lower()

    smtp.inbox.refuse = False
    assert remind(engine, smtp.settings).reminders.queued_email == 0  # not every minute
    retried = remind(engine, smtp.settings, now=utcnow() + RETRY_FAILED_AFTER)
    assert retried.delivery == worker.Delivery(sent=1)
    assert len(smtp.inbox.messages) == 1


def test_a_refused_invitation_leaves_the_earlier_link_working(engine, practice, smtp):
    client_id = jane(engine, practice)
    invite(engine, practice, client_id, smtp.settings)
    ((_, first),) = smtp.inbox.messages
    (working,) = re.findall(r"/portal\?token=([A-Za-z0-9_-]+)", first.get_content())
    smtp.inbox.refuse = True

    assert invite(engine, practice, client_id, smtp.settings) == worker.Delivery(failed=1)

    _, refused = logged(engine, "invitation")
    assert (refused.status, refused.error) == ("failed", "recipient refused by the mail server")
    with transaction(engine) as session:
        shown = portal.portal_status(session, actor=practice.front_desk, client_id=client_id)
    assert [i.status for i in shown.invitations] == ["Not sent", "Invited"]
    with transaction(engine) as session:
        portal.accept_invitation(session, token=working)
