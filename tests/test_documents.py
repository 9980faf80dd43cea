"""Sending forms and the document log (spec D2, D3), on both engines.

Sending queues the email; the worker (``lib.worker``) sends it to a real SMTP server (aiosmtpd)
started in the test: what arrives is parsed back and compared byte for byte with what the admin
uploaded.
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from lib import documents, forms, mail, postings, receipts, worker
from lib.db import transaction
from lib.models import AuditEntry, Client, DocumentLogEntry
from lib.policy import ADMIN, BILLER, CLINICIAN, FRONT_DESK, MANAGER, PermissionDenied
from lib.timeutil import utcnow
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user
from tests.test_forms import pdf_bytes, png_bytes

MB = 1024 * 1024


# --- a real SMTP server --------------------------------------------------------------------


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every message, or refuses recipients when told to."""

    messages: list[bytes] = field(default_factory=list)
    refuse: bool = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"

    def parsed(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(m, policy=email.policy.default) for m in self.messages]


def body_of(message: email.message.EmailMessage) -> str:
    """The plain-text body as written (SMTP carries it with CRLF line ends)."""
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_settings(port: int, data_dir: Path) -> mail.MailSettings:
    return mail.mail_settings(
        data_dir,
        env={
            "CLIENTDESK_SMTP_HOST": "127.0.0.1",
            "CLIENTDESK_SMTP_PORT": str(port),
            "CLIENTDESK_SMTP_SECURITY": "none",
            "CLIENTDESK_MAIL_FROM": "frontdesk@riverbend.example",
        },
    )


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


# --- a small practice ----------------------------------------------------------------------


@dataclass(frozen=True)
class Practice:
    admin: object
    desk: object
    clinician: object
    client_id: int
    other_client_id: int
    form_id: int
    second_form_id: int
    pdf: bytes
    png: bytes
    data_dir: Path


@pytest.fixture
def practice(engine, tmp_path) -> Practice:
    data_dir = tmp_path / "data"
    with transaction(engine) as session:
        admin = make_user(session, ADMIN)
        desk = make_user(session, FRONT_DESK)
        own = make_clinician(session, "Maya", "Okafor")
        clinician = make_user(session, CLINICIAN, clinician_id=own)
        other = make_clinician(session, "Daniel", "Reyes")
        client_id = make_client(
            session,
            first_name="Zoë",
            last_name="Brennan-Whitlock",
            email="zoe.b@example.net",
            clinician_id=own,
            dob=date(1979, 5, 2),
        )
        other_client_id = make_client(
            session,
            first_name="Sam",
            last_name="Ortiz",
            email="sam@example.org",
            clinician_id=other,
        )
        session.execute(update(Client).values(email_ok=True))
    with transaction(engine) as session:
        form_id = forms.save_form(
            session,
            actor=admin,
            name="Consent for treatment",
            email_subject="A consent form for {first_name}",
            email_body="Hello {first_name},\n\nPlease sign the attached consent form.\n",
        )
        second_form_id = forms.save_form(
            session,
            actor=admin,
            name="Release of information",
            email_subject="A form from Riverbend",
            email_body="Hello {first_name},\n\nThe release form is attached.\n",
        )
    pdf, png = pdf_bytes("consent"), png_bytes()
    for name, content in (("Consent form.pdf", pdf), ("map.png", png)):
        with transaction(engine) as session:
            forms.add_attachment(
                session,
                actor=admin,
                form_id=form_id,
                filename=name,
                content=content,
                data_dir=data_dir,
                max_bytes=10 * MB,
            )
    return Practice(
        admin,
        desk,
        clinician,
        client_id,
        other_client_id,
        form_id,
        second_form_id,
        pdf,
        png,
        data_dir,
    )


@dataclass(frozen=True)
class Sent:
    """How a send went, as the log shows it once the worker had its turn."""

    entry_id: int
    status: str
    error: str
    sent_at: datetime
    queued: documents.SendOutcome  # what the Send button reported


def send(engine, p: Practice, settings, *, actor=None, client_id=None, form_ids=None, **kw):
    """Press Send (the email is queued), then let the worker send what is due."""
    queued = documents.send_forms(
        engine,
        actor=actor or p.desk,
        client_id=client_id or p.client_id,
        form_ids=tuple((p.form_id,) if form_ids is None else form_ids),
        settings=settings,
        data_dir=p.data_dir,
        **kw,
    )
    worker.deliver_due(engine, mail_settings=settings)
    with transaction(engine) as session:
        row = session.get(DocumentLogEntry, queued.entry_id)
        return Sent(row.id, row.status, row.error, row.sent_at, queued)


def log_rows(engine) -> list[DocumentLogEntry]:
    with transaction(engine) as session:
        return session.scalars(select(DocumentLogEntry).order_by(DocumentLogEntry.id)).all()


def audit_actions(engine) -> list[str]:
    with transaction(engine) as session:
        return session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity == "document_log")
            .order_by(AuditEntry.id)
        ).all()


# --- sending -------------------------------------------------------------------------------


def test_a_sent_form_arrives_with_its_attachments_byte_identical(engine, practice, inbox):
    handler, port = inbox
    before = utcnow()

    outcome = send(engine, practice, smtp_settings(port, practice.data_dir))

    assert (outcome.queued.status, outcome.queued.error) == ("queued", "")
    assert (outcome.status, outcome.error) == ("sent", "")
    [message] = handler.parsed()
    assert message["To"] == "zoe.b@example.net"
    assert message["Subject"] == "A consent form for Zoë"
    assert body_of(message).startswith("Hello Zoë,\n\nPlease sign")
    files = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(files) == {"Consent form.pdf", "map.png"}
    assert files["Consent form.pdf"].get_content() == practice.pdf
    assert files["Consent form.pdf"].get_content_type() == "application/pdf"
    assert files["map.png"].get_content() == practice.png
    assert files["map.png"].get_content_type() == "image/png"
    raw = handler.messages[0].decode("utf-8", "replace")
    assert "Brennan" not in raw and "1979" not in raw  # first name only: no PHI in the email

    [row] = log_rows(engine)
    assert row.kind == "form"
    assert row.status == "sent" and row.error == ""
    assert row.recipient == "zoe.b@example.net"
    assert row.form_names == "Consent for treatment"
    assert row.attachment_names == "Consent form.pdf, map.png"
    assert row.channel == "email"
    assert row.sender_user_id == practice.desk.user_id
    sent_at = outcome.queued.sent_at
    assert sent_at.tzinfo is not None and sent_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= sent_at <= utcnow()
    assert audit_actions(engine) == ["documents.send", "email.send_result"]


def test_a_refused_recipient_is_logged_as_failed_with_the_error(engine, practice, inbox):
    handler, port = inbox
    handler.refuse = True

    outcome = send(engine, practice, smtp_settings(port, practice.data_dir))

    assert outcome.status == "failed"
    assert outcome.error == "recipient refused by the mail server"
    assert handler.messages == []
    [row] = log_rows(engine)
    assert (row.status, row.error) == ("failed", "recipient refused by the mail server")
    assert row.form_names == "Consent for treatment"
    assert audit_actions(engine) == ["documents.send", "email.send_result"]


def test_an_unreachable_mail_server_is_logged_and_tried_again(engine, practice):
    settings = smtp_settings(_free_port(), practice.data_dir)  # nobody listens there

    outcome = send(engine, practice, settings)

    assert outcome.status == "queued"
    assert outcome.error.startswith("Attempt 1 of 6 failed (mail server unreachable")
    [row] = log_rows(engine)
    assert row.status == "queued" and row.error == outcome.error
    with transaction(engine) as session:
        [shown] = documents.log_for_client(session, actor=practice.desk, client_id=row.client_id)
    assert (shown.status, shown.can_resend) == ("Queued", False)  # the worker will try again


def test_without_smtp_the_email_lands_in_the_outbox_and_is_logged_sent(engine, practice):
    settings = mail.mail_settings(practice.data_dir, env={})

    outcome = send(engine, practice, settings)

    assert outcome.status == "sent"
    [eml] = list((practice.data_dir / "outbox").glob("*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    pdf = next(p for p in message.iter_attachments() if p.get_filename() == "Consent form.pdf")
    assert pdf.get_content() == practice.pdf


def test_a_changed_attachment_file_fails_the_send_before_any_mail_goes(engine, practice, inbox):
    handler, port = inbox
    [stored] = [p for p in (practice.data_dir / "forms").iterdir() if p.suffix == ".pdf"]
    stored.write_bytes(b"%PDF-1.4 something else")

    outcome = send(engine, practice, smtp_settings(port, practice.data_dir))

    assert outcome.status == "failed"
    assert "changed on the server" in outcome.error
    assert handler.messages == []
    [row] = log_rows(engine)
    assert row.status == "failed" and "changed on the server" in row.error


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": ""}, "no email address"),
        ({"email_ok": False}, "not agreed to be emailed"),
        ({"email": "not an address"}, "not valid"),
    ],
)
def test_a_client_who_cannot_be_emailed_gets_nothing_and_nothing_is_logged(
    engine, practice, inbox, change, message
):
    handler, port = inbox
    with transaction(engine) as session:
        session.execute(update(Client).where(Client.id == practice.client_id).values(**change))

    with pytest.raises(ValidationError) as refused:
        send(engine, practice, smtp_settings(port, practice.data_dir))

    assert message in refused.value.errors["recipient"]
    assert handler.messages == [] and log_rows(engine) == []
    assert audit_actions(engine) == []


def test_choosing_no_form_or_a_retired_one_is_refused(engine, practice, inbox):
    _, port = inbox
    settings = smtp_settings(port, practice.data_dir)
    with pytest.raises(ValidationError) as none:
        send(engine, practice, settings, form_ids=[])
    with pytest.raises(ValidationError) as unknown:
        send(engine, practice, settings, form_ids=[practice.form_id, 99_999])
    with transaction(engine) as session:
        forms.save_form(
            session,
            actor=practice.admin,
            form_id=practice.second_form_id,
            expected_version=1,
            name="Release of information",
            email_subject="A form from Riverbend",
            email_body="Hello {first_name},\n\nThe release form is attached.",
            active=False,
        )
    with pytest.raises(ValidationError) as retired:
        send(engine, practice, settings, form_ids=[practice.second_form_id])
    assert "Choose at least one form" in none.value.errors["forms"]
    assert "no longer in the library" in unknown.value.errors["forms"]
    assert "no longer in the library" in retired.value.errors["forms"]
    assert log_rows(engine) == []


def test_the_preview_is_exactly_what_is_sent_and_a_change_since_is_refused(engine, practice, inbox):
    handler, port = inbox
    settings = smtp_settings(port, practice.data_dir)
    with transaction(engine) as session:
        preview = documents.preview_forms(
            session, actor=practice.desk, client_id=practice.client_id, form_ids=(practice.form_id,)
        )
    assert [a.name for a in preview.attachments] == ["Consent form.pdf", "map.png"]
    assert preview.total_bytes == len(practice.pdf) + len(practice.png)

    send(engine, practice, settings, expected_fingerprint=preview.fingerprint)
    [message] = handler.parsed()
    assert message["Subject"] == preview.subject
    assert message["To"] == preview.recipient
    assert body_of(message).rstrip("\n") == preview.body.rstrip("\n")

    with transaction(engine) as session:
        forms.save_form(
            session,
            actor=practice.admin,
            form_id=practice.form_id,
            expected_version=3,  # created, then two attachments
            name="Consent for treatment",
            email_subject="New wording",
            email_body="Hello {first_name}",
        )
    with pytest.raises(ValidationError) as stale:
        send(engine, practice, settings, expected_fingerprint=preview.fingerprint)
    assert "changed since you looked" in stale.value.errors["forms"]
    assert len(handler.messages) == 1 and len(log_rows(engine)) == 1


def test_several_forms_go_in_one_email_and_one_log_row(engine, practice, inbox):
    handler, port = inbox

    send(
        engine,
        practice,
        smtp_settings(port, practice.data_dir),
        form_ids=[practice.second_form_id, practice.form_id],
    )

    [message] = handler.parsed()
    body = body_of(message)
    assert "Release of information\n----------------------\nHello Zoë" in body
    assert body.index("Release of information") < body.index("Consent for treatment")
    assert [p.get_filename() for p in message.iter_attachments()] == ["Consent form.pdf", "map.png"]
    [row] = log_rows(engine)
    assert row.form_names == "Release of information; Consent for treatment"


def test_attachments_too_large_for_one_email_are_refused(engine, practice, inbox, monkeypatch):
    _, port = inbox
    monkeypatch.setattr(documents, "MAX_EMAIL_ATTACHMENT_BYTES", len(practice.pdf))
    with pytest.raises(ValidationError) as refused:
        send(engine, practice, smtp_settings(port, practice.data_dir))
    assert "too large for one email" in refused.value.errors["forms"]


def test_resending_a_failed_send_links_it_and_goes_to_the_current_address(engine, practice, inbox):
    handler, port = inbox
    settings = smtp_settings(port, practice.data_dir)
    handler.refuse = True
    failed = send(engine, practice, settings)
    handler.refuse = False
    with transaction(engine) as session:
        session.execute(
            update(Client)
            .where(Client.id == practice.client_id)
            .values(email="zoe.new@example.net")
        )
        plan = documents.resend_plan(session, actor=practice.desk, entry_id=failed.entry_id)
    assert plan.problem == ""
    assert plan.form_ids == (practice.form_id,)

    again = send(engine, practice, settings, form_ids=plan.form_ids, resend_of_id=failed.entry_id)

    assert again.status == "sent"
    assert handler.parsed()[0]["To"] == "zoe.new@example.net"
    first, second = log_rows(engine)
    assert (first.status, first.recipient) == ("failed", "zoe.b@example.net")
    assert (second.status, second.resend_of_id) == ("sent", first.id)
    with pytest.raises(ValidationError):  # a resend must be of this client's form send
        send(
            engine,
            practice,
            settings,
            client_id=practice.other_client_id,
            resend_of_id=failed.entry_id,
        )


def test_a_queued_send_is_not_resent_while_the_worker_has_it(engine, practice, inbox):
    handler, port = inbox
    settings = smtp_settings(port, practice.data_dir)
    queued = documents.send_forms(
        engine,
        actor=practice.desk,
        client_id=practice.client_id,
        form_ids=(practice.form_id,),
        settings=settings,
        data_dir=practice.data_dir,
    )
    assert queued.status == "queued"
    assert handler.messages == []  # the Send button talks to no mail server
    [row] = log_rows(engine)
    assert row.status == "queued"
    with transaction(engine) as session:
        [shown] = documents.log_for_client(session, actor=practice.desk, client_id=row.client_id)
        assert (shown.status, shown.can_resend) == ("Queued", False)
        assert (
            "still queued"
            in documents.resend_plan(session, actor=practice.desk, entry_id=row.id).problem
        )

    assert worker.deliver_due(engine, mail_settings=settings) == worker.Delivery(sent=1)
    with transaction(engine) as session:
        [shown] = documents.log_for_client(session, actor=practice.desk, client_id=row.client_id)
    assert (shown.status, shown.can_resend) == ("Sent", True)
    assert len(handler.messages) == 1


# --- who may send and see ------------------------------------------------------------------


def test_clinicians_send_and_see_only_their_own_clients(engine, practice, inbox):
    _, port = inbox
    settings = smtp_settings(port, practice.data_dir)
    send(engine, practice, settings, actor=practice.clinician)
    send(engine, practice, settings, client_id=practice.other_client_id)

    with pytest.raises(PermissionDenied):
        send(
            engine, practice, settings, actor=practice.clinician, client_id=practice.other_client_id
        )
    with transaction(engine) as session:
        own = documents.search_log(session, actor=practice.clinician)
        everyone = documents.search_log(session, actor=practice.desk)
        with pytest.raises(PermissionDenied):
            documents.search_log(
                session, actor=practice.clinician, client_id=practice.other_client_id
            )
    assert [r.client_id for r in own.rows] == [practice.client_id]
    assert own.total == 1
    assert everyone.total == 2
    assert len(log_rows(engine)) == 2


def test_a_biller_sees_the_log_but_cannot_send(engine, practice, inbox):
    _, port = inbox
    with transaction(engine) as session:
        biller = make_user(session, BILLER)
    with pytest.raises(PermissionDenied):
        send(engine, practice, smtp_settings(port, practice.data_dir), actor=biller)
    send(engine, practice, smtp_settings(port, practice.data_dir))
    with transaction(engine) as session:
        [row] = documents.search_log(session, actor=biller).rows
    assert row.can_resend is False


# --- the log -------------------------------------------------------------------------------


def _row(
    client_id,
    sent_at,
    *,
    kind="form",
    forms_="Consent for treatment",
    status="sent",
    sender=None,
    recipient="zoe.b@example.net",
):
    return DocumentLogEntry(
        client_id=client_id,
        kind=kind,
        sent_at=sent_at,
        sender_user_id=sender,
        recipient=recipient,
        form_names=forms_,
        attachment_names="",
        channel="email",
        status=status,
        error="550 mailbox unavailable" if status == "failed" else "",
    )


def test_the_log_is_newest_first_and_filters_by_client_form_status_sender_and_dates(
    engine, practice
):
    p = practice
    with transaction(engine) as session:
        manager = make_user(session, MANAGER)
        session.add_all(
            [
                # 23:30 on Feb 28 in New York is already Mar 1 in UTC.
                _row(p.client_id, datetime(2026, 3, 1, 4, 30, tzinfo=UTC), sender=p.desk.user_id),
                _row(
                    p.client_id,
                    datetime(2026, 3, 2, 15, 0, tzinfo=UTC),
                    forms_="Release of information; Consent for treatment",
                    status="failed",
                    sender=manager.user_id,
                ),
                _row(
                    p.other_client_id,
                    datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
                    forms_="Consent for treatment (old)",
                ),
                _row(
                    p.other_client_id,
                    datetime(2026, 3, 4, 15, 0, tzinfo=UTC),
                    kind="receipt",
                    forms_="Receipt #12",
                ),
            ]
        )

    def ids(**filters):
        with transaction(engine) as session:
            page = documents.search_log(
                session, actor=manager, tz_name="America/New_York", **filters
            )
        return [(r.client_id, r.sent_at.day) for r in page.rows]

    c, o = p.client_id, p.other_client_id
    assert ids() == [(o, 4), (o, 3), (c, 2), (c, 1)]
    assert ids(form_name="Consent for treatment") == [(c, 2), (c, 1)]
    assert ids(form_name="Release of information") == [(c, 2)]
    assert ids(statuses=("failed",)) == [(c, 2)]
    assert ids(statuses=("sent", "queued")) == [(o, 4), (o, 3), (c, 1)]
    assert ids(sender_user_id=manager.user_id) == [(c, 2)]
    assert ids(sender_user_id=documents.SYSTEM_SENDER) == [(o, 4), (o, 3)]
    assert ids(kinds=("receipt",)) == [(o, 4)]
    assert ids(client_query="brennan zo") == [(c, 2), (c, 1)]
    assert ids(client_query="ortiz") == [(o, 4), (o, 3)]
    assert ids(date_from=date(2026, 2, 28), date_to=date(2026, 2, 28)) == [(c, 1)]
    assert ids(date_from=date(2026, 3, 1), date_to=date(2026, 3, 2)) == [(c, 2)]
    assert ids(date_from=date(2026, 3, 3)) == [(o, 4), (o, 3)]
    assert ids(limit=2, offset=1) == [(o, 3), (c, 2)]
    with transaction(engine) as session:
        number = session.get(Client, o).client_number
        assert documents.search_log(session, actor=manager, limit=1).total == 4
        names = documents.senders(session, actor=manager)
    assert ids(client_query=str(number)) == [(o, 4), (o, 3)]
    assert names == [
        (p.desk.user_id, "Test front_desk"),
        (manager.user_id, "Test manager"),
        (documents.SYSTEM_SENDER, "System"),
    ]


def test_receipts_and_sent_forms_share_the_clients_log(engine, practice, inbox):
    handler, port = inbox
    settings = smtp_settings(port, practice.data_dir)
    send(engine, practice, settings)
    with transaction(engine) as session:
        manager = make_user(session, MANAGER)
        payment = postings.record_payment(
            session,
            actor=manager,
            client_id=practice.client_id,
            amount_cents=5000,
            method="cash",
            idempotency_key="receipt-test",
        )
    with transaction(engine) as session:
        receipts.email_receipt(session, actor=manager, entry_id=payment.entry_id, settings=settings)
    worker.deliver_due(engine, mail_settings=settings)

    with transaction(engine) as session:
        rows = documents.log_for_client(session, actor=manager, client_id=practice.client_id)
    assert [(r.kind, r.channel, r.status) for r in rows] == [
        ("Receipt", "Email", "Sent"),
        ("Form", "Email", "Sent"),
    ]
    assert [r.can_resend for r in rows] == [False, True]  # only form sends are resent from the log
    assert [r.sender for r in rows] == ["Test manager", "Test front_desk"]
    assert len(handler.messages) == 2
