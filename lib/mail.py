"""The one mailer (spec A3): SMTP when configured, otherwise .eml files in data/outbox/.

Messages are built with the standard ``email`` package, which refuses line breaks in header
values, so user data can never add headers. Building happens where a message is asked for;
sending happens only in the worker (``lib.worker``), outside any database transaction, from
the outbox (``lib.outbox``). Sending never raises to the caller: the result says sent or
failed, with a short error that contains no message content, and whether trying again could
help.
"""

from __future__ import annotations

import secrets
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path

from lib.config import setting
from lib.validation import FieldError, clean_email


@dataclass(frozen=True)
class MailSettings:
    host: str | None
    port: int
    security: str  # "starttls", "tls" or "none"
    username: str | None
    password: str | None
    sender: str
    sender_name: str
    outbox: Path
    timeout: float = 20.0

    @property
    def uses_smtp(self) -> bool:
        return bool(self.host)


def mail_settings(data_dir: Path, env: Mapping[str, str] | None = None) -> MailSettings:
    """The CLIENTDESK_SMTP_* and CLIENTDESK_MAIL_FROM* settings (``env``: for tests)."""
    security = setting("CLIENTDESK_SMTP_SECURITY", env).lower()
    if security not in ("starttls", "tls", "none"):
        security = "starttls"
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    return MailSettings(
        host=setting("CLIENTDESK_SMTP_HOST", env),
        port=setting("CLIENTDESK_SMTP_PORT", env) or default_port,
        security=security,
        username=setting("CLIENTDESK_SMTP_USERNAME", env),
        password=setting("CLIENTDESK_SMTP_PASSWORD", env),
        sender=setting("CLIENTDESK_MAIL_FROM", env),
        sender_name=setting("CLIENTDESK_MAIL_FROM_NAME", env),
        outbox=data_dir / "outbox",
    )


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str  # e.g. "application/pdf"


@dataclass(frozen=True)
class SendResult:
    status: str  # "sent" or "failed"
    transport: str  # "smtp" or "outbox"
    error: str = ""
    message_id: str = ""
    permanent: bool = False  # the server refused this message for good: retrying cannot help


class MailError(ValueError):
    """The message cannot be built (bad address or header); nothing was sent."""


def build_message(
    settings: MailSettings,
    *,
    to: str,
    subject: str,
    body: str,
    attachments: list[Attachment] = (),
) -> EmailMessage:
    try:
        recipient = clean_email(to, required=True)
    except FieldError as exc:
        raise MailError(str(exc)) from None
    if any(c in subject for c in "\r\n") or len(subject) > 200:
        raise MailError("The subject must be one line of at most 200 characters.")
    message = EmailMessage()
    try:
        message["From"] = f"{settings.sender_name} <{settings.sender}>"
        message["To"] = recipient
        message["Subject"] = subject
    except (ValueError, TypeError):
        raise MailError("The message headers are not valid.") from None
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=settings.sender.split("@")[-1])
    message.set_content(body)
    for item in attachments:
        maintype, _, subtype = item.mime_type.partition("/")
        message.add_attachment(
            item.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=item.filename,
        )
    return message


def as_bytes(message: EmailMessage) -> bytes:
    """The message exactly as it goes out, for the outbox."""
    return bytes(message)


def from_bytes(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def _refused_for_good(exc: smtplib.SMTPRecipientsRefused) -> bool:
    return all(code >= 500 for code, _ in exc.recipients.values())


def send(settings: MailSettings, message: EmailMessage) -> SendResult:
    """Deliver one message now. Never raises: failures come back as ``status == "failed"``.

    Talks to the mail server, which can take up to ``settings.timeout`` per step: call it only
    outside a database transaction (the worker does).
    """
    message_id = message["Message-ID"] or ""
    if not settings.uses_smtp:
        try:
            settings.outbox.mkdir(parents=True, exist_ok=True)
            name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.eml"
            (settings.outbox / name).write_bytes(bytes(message))
        except OSError as exc:
            return SendResult("failed", "outbox", f"could not write the outbox ({exc.strerror})")
        return SendResult("sent", "outbox", message_id=message_id)
    try:
        if settings.security == "tls":
            client = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=settings.timeout,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            if settings.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.username:
                client.login(settings.username, settings.password or "")
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        return SendResult(
            "failed",
            "smtp",
            "recipient refused by the mail server",
            message_id,
            permanent=_refused_for_good(exc),
        )
    except smtplib.SMTPDataError as exc:  # the server read the message and refused it
        return SendResult(
            "failed", "smtp", f"SMTP {exc.smtp_code}", message_id, permanent=exc.smtp_code >= 500
        )
    except smtplib.SMTPResponseException as exc:  # e.g. 535: a login a person can fix
        return SendResult("failed", "smtp", f"SMTP {exc.smtp_code}", message_id)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        return SendResult(
            "failed", "smtp", f"mail server unreachable ({type(exc).__name__})", message_id
        )
    except ValueError:  # no sender or recipient header: this message can never be sent
        return SendResult("failed", "smtp", "the message has no address", message_id, True)
    return SendResult("sent", "smtp", message_id=message_id)
