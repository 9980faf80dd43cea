"""Documents (spec D2, D3): sending forms by email, and the log of everything sent to clients.

Every form, statement, receipt, invitation and reminder sent to a client is one row of
``document_log``: when (stored UTC), who sent it, to which address, which forms and files, over
which channel, and how it went (queued, sent, failed, with the error).

Every email is queued: its "queued" row and the message itself (``lib.outbox``) are committed
together, and the worker (``lib.worker``) sends it and updates the row to sent, or to failed
with the reason, after retrying. So no database write lock is held while a mail server is
slow, and nothing is lost when the app stops half-way. Statements made as a PDF for staff
are "generated", not sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lib import audit, forms, mail, outbox
from lib.clients import display_name, fold
from lib.db import transaction
from lib.models import Client, DocumentLogEntry, PracticeSetting, User
from lib.policy import (
    Actor,
    PermissionDenied,
    allowed,
    require,
    require_client_access,
    sees_only_own_clients,
)
from lib.timeutil import as_utc
from lib.validation import FieldError, ValidationError, clean_email

KIND_LABELS = {
    "form": "Form",
    "statement": "Statement",
    "receipt": "Receipt",
    "invitation": "Portal invitation",
    "reminder": "Reminder",
    "account_reminder": "Account reminder",
}
STATUS_LABELS = {
    "queued": "Queued",
    "sent": "Sent",
    "failed": "Failed",
    "generated": "Generated",
}
WAITING_LABEL = "Queued (no provider)"  # a text or voice call with nobody to hand it to
CHANNEL_LABELS = {"email": "Email", "pdf": "PDF", "sms": "Text", "voice": "Voice"}
NAME_SEPARATOR = "; "
# Raw attachment bytes per email; base64 makes them a third bigger, and most mail servers
# refuse messages over 25 MB.
MAX_EMAIL_ATTACHMENT_BYTES = 18 * 1024 * 1024
SYSTEM_SENDER = 0  # the sender filter's value for rows no staff member sent (CLI, demo)


# --- reading the log -----------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentRow:
    entry_id: int
    client_id: int
    client_number: int
    client_name: str
    sent_at: datetime  # aware UTC; pages show it in the practice's time zone
    kind_key: str
    kind: str
    sender: str
    recipient: str
    forms: str
    attachments: str
    channel: str
    status_key: str
    status: str
    error: str
    resend_of_id: int | None
    can_resend: bool


@dataclass(frozen=True)
class LogPage:
    rows: list[DocumentRow]
    total: int  # rows matching the filters, of which ``rows`` is one page


def _resendable(actor: Actor, entry: DocumentLogEntry) -> bool:
    """A queued form is still on its way (the outbox retries it): resending would send it
    twice."""
    if entry.kind != "form" or not allowed(actor, "documents.send"):
        return False
    return entry.status != "queued"


def _status_label(entry: DocumentLogEntry) -> str:
    if entry.status == "queued" and entry.channel in outbox.WAITING_FOR_PROVIDER:
        return WAITING_LABEL
    return STATUS_LABELS.get(entry.status, entry.status)


def _client_filter(query: str) -> list:
    """A client number, or words of the name in any order."""
    text = query.strip().lstrip("#")
    if text.isdigit():
        return [Client.client_number == int(text)]
    return [Client.search_name.contains(w, autoescape=True) for w in fold(text).split()]


def _form_filter(name: str):
    column = DocumentLogEntry.form_names
    sep = NAME_SEPARATOR
    return or_(
        column == name,
        column.startswith(name + sep, autoescape=True),
        column.endswith(sep + name, autoescape=True),
        column.contains(sep + name + sep, autoescape=True),
    )


def _day_start_utc(day: date, tz_name: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz_name)).astimezone(ZoneInfo("UTC"))


def search_log(
    session: Session,
    *,
    actor: Actor,
    client_id: int | None = None,
    client_query: str = "",
    form_name: str = "",
    kinds: tuple[str, ...] = (),
    statuses: tuple[str, ...] = (),
    sender_user_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    tz_name: str = "America/New_York",
    limit: int = 100,
    offset: int = 0,
) -> LogPage:
    """The document log, newest first, filtered; clinicians see only their own clients' rows.

    Dates are days in the practice's time zone (``tz_name``), both ends included.
    ``sender_user_id`` ``SYSTEM_SENDER`` means rows no staff member sent.
    """
    conditions = []
    if client_id is not None:
        client = session.get(Client, client_id)
        require_client_access(actor, "documents.view", client.clinician_id if client else None)
        conditions.append(DocumentLogEntry.client_id == client_id)
    else:
        require(actor, "documents.view")
        if sees_only_own_clients(actor):
            conditions.append(Client.clinician_id == actor.clinician_id)
    if client_query.strip():
        conditions.extend(_client_filter(client_query))
    if form_name:
        conditions.append(_form_filter(form_name))
    if kinds:
        conditions.append(DocumentLogEntry.kind.in_(kinds))
    if statuses:
        conditions.append(DocumentLogEntry.status.in_(statuses))
    if sender_user_id == SYSTEM_SENDER:
        conditions.append(DocumentLogEntry.sender_user_id.is_(None))
    elif sender_user_id is not None:
        conditions.append(DocumentLogEntry.sender_user_id == sender_user_id)
    if date_from is not None:
        conditions.append(DocumentLogEntry.sent_at >= _day_start_utc(date_from, tz_name))
    if date_to is not None:
        end = _day_start_utc(date_to + timedelta(days=1), tz_name)
        conditions.append(DocumentLogEntry.sent_at < end)
    total = session.scalar(
        select(func.count(DocumentLogEntry.id))
        .join(Client, Client.id == DocumentLogEntry.client_id)
        .where(*conditions)
    )
    rows = session.execute(
        select(DocumentLogEntry, Client, User.display_name)
        .join(Client, Client.id == DocumentLogEntry.client_id)
        .outerjoin(User, User.id == DocumentLogEntry.sender_user_id)
        .where(*conditions)
        .order_by(DocumentLogEntry.sent_at.desc(), DocumentLogEntry.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return LogPage(
        rows=[
            DocumentRow(
                entry_id=d.id,
                client_id=c.id,
                client_number=c.client_number,
                client_name=display_name(c.last_name, c.first_name, c.preferred_name),
                sent_at=as_utc(d.sent_at),
                kind_key=d.kind,
                kind=KIND_LABELS.get(d.kind, d.kind.capitalize()),
                sender=sender or "System",
                recipient=d.recipient,
                forms=d.form_names,
                attachments=d.attachment_names,
                channel=CHANNEL_LABELS.get(d.channel, d.channel),
                status_key=d.status,
                status=_status_label(d),
                error=d.error,
                resend_of_id=d.resend_of_id,
                can_resend=_resendable(actor, d),
            )
            for d, c, sender in rows
        ],
        total=total or 0,
    )


def log_for_client(
    session: Session, *, actor: Actor, client_id: int, limit: int = 1000
) -> list[DocumentRow]:
    """Everything sent to one client, newest first (the Documents tab without filters)."""
    return search_log(session, actor=actor, client_id=client_id, limit=limit).rows


def senders(session: Session, *, actor: Actor) -> list[tuple[int, str]]:
    """(user id, name) of everyone who has sent something, for the sender filter;
    ``SYSTEM_SENDER`` stands for rows no staff member sent."""
    require(actor, "documents.view")
    ids = set(session.scalars(select(DocumentLogEntry.sender_user_id).distinct()))
    named = [
        (u.id, u.display_name)
        for u in session.scalars(select(User).where(User.id.in_([i for i in ids if i is not None])))
    ]
    named.sort(key=lambda pair: pair[1].lower())
    return [*named, (SYSTEM_SENDER, "System")] if None in ids else named


# --- composing and sending forms -----------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    address: str
    problem: str  # "" when forms can be emailed to this client


@dataclass(frozen=True)
class AttachmentInfo:
    name: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True)
class EmailPreview:
    """Exactly the email that will go out, and a fingerprint of it: a send made with the
    fingerprint is refused if anything changed since the sender looked."""

    client_id: int
    recipient: str
    subject: str
    body: str
    form_ids: tuple[int, ...]
    form_names: tuple[str, ...]
    attachments: tuple[AttachmentInfo, ...]
    fingerprint: str

    @property
    def total_bytes(self) -> int:
        return sum(a.size_bytes for a in self.attachments)


@dataclass(frozen=True)
class SendOutcome:
    entry_id: int
    status: str  # "queued" (the worker sends it within a minute) or "failed"
    error: str
    sent_at: datetime  # when it was queued
    recipient: str


def _client(session: Session, actor: Actor, client_id: int, action: str) -> Client:
    client = session.get(Client, client_id)
    if client is None:
        raise PermissionDenied("There is no such client.")
    require_client_access(actor, action, client.clinician_id)
    return client


def email_recipient(client: Client) -> Recipient:
    """The client's own address, if they agreed to be emailed; else why not (spec: forms
    and statements go only to the client's address with email consent)."""
    if not client.email:
        return Recipient("", "The client has no email address (Contact tab).")
    try:
        address = clean_email(client.email, required=True)
    except FieldError:
        return Recipient(client.email, "The email address on the Contact tab is not valid.")
    if not client.email_ok:
        return Recipient(
            address, "The client has not agreed to be emailed (email consent, Contact tab)."
        )
    return Recipient(address, "")


def recipient_for(session: Session, *, actor: Actor, client_id: int) -> Recipient:
    """Where forms to this client would go, or why they cannot be emailed."""
    return email_recipient(_client(session, actor, client_id, "documents.send"))


def _practice_name(session: Session) -> str:
    """The practice's name, or "" when none is set."""
    setting = session.get(PracticeSetting, "practice_name")
    return setting.value.strip() if setting else ""


def compose(chosen: list[forms.FormRow], *, first_name: str, practice_name: str) -> tuple[str, str]:
    """(subject, body) of one email carrying the chosen forms. One form sends its own text;
    several send each form's text under its name, so nothing the admin wrote is lost.

    The subject carries the practice's name and nothing about the client (spec: What an email
    may carry): the first name goes in the body only.
    """
    if len(chosen) == 1:
        form = chosen[0]
        return (
            form_subject(form.email_subject, practice_name=practice_name),
            forms.fill(form.email_body, first_name=first_name),
        )
    parts = []
    for form in chosen:
        body = forms.fill(form.email_body, first_name=first_name)
        parts.append(f"{form.name}\n{'-' * len(form.name)}\n{body}")
    return f"{len(chosen)} forms from {practice_name or 'your practice'}", "\n\n\n".join(parts)


def form_subject(text: str, *, practice_name: str) -> str:
    """A form's subject as sent: the practice's name, then the admin's words. A ``{first_name}``
    saved before subjects refused it is dropped, never filled in."""
    subject = " ".join(text.replace(forms.PLACEHOLDER, "").split())
    if practice_name and practice_name.lower() not in subject.lower():
        subject = f"{practice_name}: {subject}"
    return subject[:200]


def _fingerprint(recipient: str, subject: str, body: str, files: list) -> str:
    digest = hashlib.sha256()
    for part in (recipient, subject, body, *(f"{a.stored_name}:{a.sha256}" for a in files)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _prepare(
    session: Session, actor: Actor, client_id: int, form_ids: tuple[int, ...]
) -> tuple[Client, EmailPreview, list[forms.AttachmentRow]]:
    client = _client(session, actor, client_id, "documents.send")
    errors: dict[str, str] = {}
    recipient = email_recipient(client)
    if recipient.problem:
        errors["recipient"] = recipient.problem
    wanted = tuple(dict.fromkeys(form_ids))
    by_id = {f.form_id: f for f in forms.list_forms(session, actor=actor, form_ids=wanted)}
    chosen = [by_id[i] for i in wanted if i in by_id]
    files = [a for f in chosen for a in f.attachments]
    if not wanted:
        errors["forms"] = "Choose at least one form."
    elif len(chosen) != len(wanted):
        errors["forms"] = "A chosen form is no longer in the library; reload and choose again."
    elif (
        len(NAME_SEPARATOR.join(f.name for f in chosen)) > 500
        or len(", ".join(a.original_name for a in files)) > 1000
    ):  # what the log row can hold, so a resend finds the same forms
        errors["forms"] = "That is more forms than one email can carry. Send fewer at a time."
    elif sum(a.size_bytes for a in files) > MAX_EMAIL_ATTACHMENT_BYTES:
        errors["forms"] = (
            "Together these forms' attachments are too large for one email "
            f"(at most {MAX_EMAIL_ATTACHMENT_BYTES // (1024 * 1024)} MB). Send fewer at a time."
        )
    if errors:
        raise ValidationError(errors)
    subject, body = compose(
        chosen, first_name=client.first_name, practice_name=_practice_name(session)
    )
    preview = EmailPreview(
        client_id=client.id,
        recipient=recipient.address,
        subject=subject,
        body=body,
        form_ids=tuple(f.form_id for f in chosen),
        form_names=tuple(f.name for f in chosen),
        attachments=tuple(
            AttachmentInfo(a.original_name, a.content_type, a.size_bytes) for a in files
        ),
        fingerprint=_fingerprint(recipient.address, subject, body, files),
    )
    return client, preview, files


def preview_forms(
    session: Session, *, actor: Actor, client_id: int, form_ids: tuple[int, ...]
) -> EmailPreview:
    """The email that sending these forms to this client would send. Raises
    ``ValidationError`` on ``recipient`` / ``forms`` when it cannot be sent."""
    return _prepare(session, actor, client_id, tuple(form_ids))[1]


def _audit_send(
    session: Session,
    *,
    actor: Actor,
    queued: outbox.Queued,
    client_id: int,
    form_count: int,
    resend_of_id: int | None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action="documents.send",
        entity="document_log",
        entity_id=queued.document_id,
        client_id=client_id,
        after={"status": queued.status, "resend_of_id": resend_of_id},
        detail=f"forms={form_count} status={queued.status}",
        at=queued.queued_at,
    )


def queue_forms(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    form_ids: tuple[int, ...],
    settings: mail.MailSettings,
    data_dir: Path,
    expected_fingerprint: str | None = None,
    resend_of_id: int | None = None,
) -> SendOutcome:
    """Queue one email with the chosen forms (attachments read and checksum-verified now),
    logged as "queued"; the worker sends it.

    Raises ``ValidationError`` (nothing written) when the email cannot be sent or, with
    ``expected_fingerprint``, differs from the preview the sender saw. A stored file that is
    missing or changed, or an address the mailer refuses, is logged as a failed send.
    """
    client, preview, files = _prepare(session, actor, client_id, tuple(form_ids))
    if expected_fingerprint is not None and expected_fingerprint != preview.fingerprint:
        raise ValidationError(
            {"forms": "The forms or the address changed since you looked. Check the email again."}
        )
    if resend_of_id is not None:
        original = session.get(DocumentLogEntry, resend_of_id)
        if original is None or original.client_id != client.id or original.kind != "form":
            raise ValidationError({"forms": "Only a form sent to this client can be resent."})
    logged = {
        "actor": actor,
        "client_id": client.id,
        "kind": "form",
        "what": NAME_SEPARATOR.join(preview.form_names),
        "attachment_names": ", ".join(a.name for a in preview.attachments),
        "resend_of_id": resend_of_id,
    }
    try:
        loaded = [
            mail.Attachment(
                a.original_name,
                forms.read_attachment(data_dir, stored_name=a.stored_name, sha256=a.sha256),
                a.content_type,
            )
            for a in files
        ]
        message = mail.build_message(
            settings,
            to=preview.recipient,
            subject=preview.subject,
            body=preview.body,
            attachments=loaded,
        )
    except forms.AttachmentUnavailable as exc:
        error = f"not sent: {exc}; an admin should upload it again"
        queued = outbox.log_not_sent(session, recipient=preview.recipient, error=error, **logged)
    except mail.MailError as exc:
        queued = outbox.log_not_sent(session, recipient=preview.recipient, error=str(exc), **logged)
    else:
        queued = outbox.queue_email(session, message=message, **logged)
    _audit_send(
        session,
        actor=actor,
        queued=queued,
        client_id=client.id,
        form_count=len(preview.form_names),
        resend_of_id=resend_of_id,
    )
    return SendOutcome(
        queued.document_id, queued.status, queued.error, queued.queued_at, queued.recipient
    )


def send_forms(
    engine: Engine,
    *,
    actor: Actor,
    client_id: int,
    form_ids: tuple[int, ...],
    settings: mail.MailSettings,
    data_dir: Path,
    expected_fingerprint: str | None = None,
    resend_of_id: int | None = None,
) -> SendOutcome:
    """Queue one email with the chosen forms, in its own transaction, committed when this
    returns. Raises ``ValidationError`` or ``PermissionDenied`` when nothing was queued; an
    attachment or address problem is an outcome (``status == "failed"``), logged."""
    with transaction(engine) as session:
        return queue_forms(
            session,
            actor=actor,
            client_id=client_id,
            form_ids=form_ids,
            settings=settings,
            data_dir=data_dir,
            expected_fingerprint=expected_fingerprint,
            resend_of_id=resend_of_id,
        )


@dataclass(frozen=True)
class ResendPlan:
    entry_id: int
    client_id: int
    form_ids: tuple[int, ...]
    problem: str  # "" when it can be resent


def resend_plan(session: Session, *, actor: Actor, entry_id: int) -> ResendPlan:
    """What resending a logged form send would send: the same forms as they are in the
    library now, to the client's current address (often the reason the first one failed)."""
    entry = session.get(DocumentLogEntry, entry_id)
    if entry is None:
        raise PermissionDenied("There is no such document.")
    _client(session, actor, entry.client_id, "documents.send")
    if entry.kind != "form":
        return ResendPlan(entry_id, entry.client_id, (), "Only emailed forms can be resent here.")
    if not _resendable(actor, entry):
        return ResendPlan(
            entry_id, entry.client_id, (), "This email is still queued: the worker sends it."
        )
    wanted = entry.form_names.split(NAME_SEPARATOR)
    by_name = {f.name: f.form_id for f in forms.list_forms(session, actor=actor)}
    missing = [n for n in wanted if n not in by_name]
    if missing:
        return ResendPlan(
            entry_id,
            entry.client_id,
            tuple(by_name[n] for n in wanted if n in by_name),
            "Not in the library any more: " + ", ".join(missing) + ".",
        )
    return ResendPlan(entry_id, entry.client_id, tuple(by_name[n] for n in wanted), "")
