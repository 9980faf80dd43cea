"""Emailed payment receipts (spec B3): queued with the payment's transaction, sent by the worker
over a real SMTP conversation (or to the .eml outbox), and failures, logged."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, replace
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from lib import mail, outbox, postings, receipts, worker
from lib.db import transaction
from lib.models import AuditEntry, DocumentLogEntry, PracticeSetting, Service
from lib.policy import Actor, PermissionDenied
from lib.timeutil import utcnow
from tests.factories import make_client, make_user

EMAIL = "zephyrine.q@example.org"
DOB = date(1985, 3, 7)
SERVICE_CODE = "90834"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """An SMTP handler that keeps every envelope it accepts."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, collector
    finally:
        controller.stop()


def settings_for(host: str | None, port: int, outbox: Path) -> mail.MailSettings:
    return mail.MailSettings(
        host=host,
        port=port,
        security="none",
        username=None,
        password=None,
        sender="billing@harbor.example",
        sender_name="Harbor Counseling",
        outbox=outbox,
        timeout=10,
    )


@dataclass(frozen=True)
class Paid:
    biller: Actor
    client_id: int
    payment_id: int
    charge_id: int


@pytest.fixture
def paid(engine) -> Paid:
    """A client who had a 90834 session and paid $42.50 by card, with a revealing note."""
    with transaction(engine) as session:
        session.add(
            PracticeSetting(key="practice_name", value="Harbor Counseling", updated_at=utcnow())
        )
        service = Service(
            code=SERVICE_CODE,
            description="Psychotherapy, 45 minutes",
            fee_cents=13500,
            default_minutes=45,
            active=True,
            version=1,
        )
        session.add(service)
        session.flush()
        biller = make_user(session, "biller")
        client_id = make_client(
            session, first_name="Zephyrine", last_name="Quillfeather", dob=DOB, email=EMAIL
        )
        charge = postings.post_charge(
            session,
            actor=None,
            client_id=client_id,
            amount_cents=13500,
            responsibility="client",
            service_date=date(2026, 3, 2),
            service_id=service.id,
            idempotency_key=uuid.uuid4().hex,
            memo=f"{SERVICE_CODE} Psychotherapy, 45 minutes",
        )
        payment = postings.record_payment(
            session,
            actor=biller,
            client_id=client_id,
            amount_cents=4250,
            method="card",
            reference="4242",
            authorization_code="A1B2C3",
            memo="paid at the session about her panic attacks",
            received_on=date(2026, 3, 2),
            idempotency_key=uuid.uuid4().hex,
        )
    return Paid(biller, client_id, payment.entry_id, charge.entry_id)


def queue(engine, paid: Paid, settings: mail.MailSettings, entry_id: int | None = None):
    """What "Email the receipt" does: queue it, committed."""
    with transaction(engine) as session:
        return receipts.email_receipt(
            session, actor=paid.biller, entry_id=entry_id or paid.payment_id, settings=settings
        )


def send(
    engine, paid: Paid, settings: mail.MailSettings, entry_id: int | None = None
) -> tuple[outbox.Queued, worker.Delivery]:
    """Queue the receipt, then let the worker send it."""
    queued = queue(engine, paid, settings, entry_id)
    return queued, worker.deliver_due(engine, mail_settings=settings)


def receipt_logs(engine) -> list[DocumentLogEntry]:
    with transaction(engine) as session:
        rows = list(
            session.scalars(select(DocumentLogEntry).where(DocumentLogEntry.kind == "receipt"))
        )
        session.expunge_all()
        return rows


def receipt_audits(engine) -> list[AuditEntry]:
    with transaction(engine) as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "receipt.email")))
        session.expunge_all()
        return rows


def assert_no_health_information(message: EmailMessage) -> None:
    visible = f"{message['Subject']}\n{message.get_content()}".lower()
    for secret in (
        "zephyrine",
        "quillfeather",
        "03/07/1985",
        "1985-03-07",
        "3/7/1985",
        SERVICE_CODE,
        "psychotherapy",
        "panic",
    ):
        assert secret not in visible, secret


def test_emailing_a_receipt_contacts_no_mail_server_until_the_worker_runs(
    engine, paid, smtp, tmp_path
):
    controller, collector = smtp
    settings = settings_for("127.0.0.1", controller.port, tmp_path / "outbox")

    queued = queue(engine, paid, settings)

    assert (queued.status, queued.recipient) == ("queued", EMAIL)
    assert collector.envelopes == []
    [log] = receipt_logs(engine)
    assert (log.status, log.id) == ("queued", queued.document_id)
    [audit] = receipt_audits(engine)
    assert audit.detail == f"status=queued document={queued.document_id}"


def test_a_receipt_travels_over_smtp_to_the_clients_address(engine, paid, smtp, tmp_path):
    controller, collector = smtp
    settings = settings_for("127.0.0.1", controller.port, tmp_path / "outbox")
    _, delivery = send(engine, paid, settings)
    assert delivery == worker.Delivery(sent=1)

    [envelope] = collector.envelopes
    assert envelope.rcpt_tos == [EMAIL]
    assert envelope.mail_from == "billing@harbor.example"
    message = message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["To"] == EMAIL
    assert "Harbor Counseling" in message["Subject"]
    body = message.get_content()
    assert "$42.50" in body
    assert "03/02/2026" in body
    assert "Card" in body and "4242" in body
    assert f"Receipt number: {paid.payment_id}" in body
    assert_no_health_information(message)
    assert not (tmp_path / "outbox").exists()

    [log] = receipt_logs(engine)
    assert (log.client_id, log.status, log.channel, log.recipient, log.error) == (
        paid.client_id,
        "sent",
        "email",
        EMAIL,
        "",
    )
    assert log.form_names == f"Receipt #{paid.payment_id}"


def test_an_unreachable_mail_server_is_logged_and_tried_again_later(engine, paid, tmp_path):
    closed = free_port()  # nothing listens there any more
    _, delivery = send(engine, paid, settings_for("127.0.0.1", closed, tmp_path / "outbox"))
    assert delivery == worker.Delivery(retrying=1)
    [log] = receipt_logs(engine)
    assert log.status == "queued"
    assert log.error.startswith("Attempt 1 of 6 failed (mail server unreachable")
    assert "42.50" not in log.error


def test_a_refusing_mail_server_is_a_failure_too(engine, paid, smtp, tmp_path):
    controller, collector = smtp

    async def refuse(server, session, envelope, address, rcpt_options):
        return "550 No such user here"

    collector.handle_RCPT = refuse
    _, delivery = send(engine, paid, settings_for("127.0.0.1", controller.port, tmp_path))
    assert delivery == worker.Delivery(failed=1)
    assert collector.envelopes == []
    assert [(log.status, log.error) for log in receipt_logs(engine)] == [
        ("failed", "recipient refused by the mail server")
    ]


def test_without_smtp_the_receipt_is_written_to_the_outbox(engine, paid, tmp_path):
    outbox_dir = tmp_path / "outbox"
    _, delivery = send(engine, paid, settings_for(None, 25, outbox_dir))
    assert delivery == worker.Delivery(sent=1)
    [eml] = list(outbox_dir.glob("*.eml"))
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"] == EMAIL
    assert "$42.50" in message.get_content()
    assert_no_health_information(message)
    assert [log.status for log in receipt_logs(engine)] == ["sent"]


def test_receipts_are_only_for_client_payments_to_clients_with_an_email(engine, paid, tmp_path):
    settings = settings_for(None, 25, tmp_path / "outbox")
    with pytest.raises(receipts.ReceiptError, match="client payments"):
        queue(engine, paid, settings, entry_id=paid.charge_id)
    with transaction(engine) as session:
        client_id = make_client(session, first_name="NoMail", email="")
        entry_id = postings.record_payment(
            session,
            actor=paid.biller,
            client_id=client_id,
            amount_cents=1000,
            method="cash",
            idempotency_key=uuid.uuid4().hex,
        ).entry_id
    with pytest.raises(receipts.ReceiptError, match="no email"):
        queue(engine, paid, settings, entry_id=entry_id)
    assert not (tmp_path / "outbox").exists()
    assert receipt_logs(engine) == []


def test_front_desk_cannot_email_receipts(engine, paid, tmp_path):
    with transaction(engine) as session:
        desk = make_user(session, "front_desk")
    with pytest.raises(PermissionDenied):
        queue(engine, replace(paid, biller=desk), settings_for(None, 25, tmp_path / "outbox"))
    assert receipt_logs(engine) == []


@pytest.mark.parametrize(
    "subject", ["Receipt\r\nBcc: everyone@example.org", "Receipt\nBcc: x@example.org", "a\rb"]
)
def test_a_subject_cannot_smuggle_in_headers(tmp_path, subject):
    settings = settings_for(None, 25, tmp_path)
    with pytest.raises(mail.MailError):
        mail.build_message(settings, to=EMAIL, subject=subject, body="Thank you.")


def test_a_recipient_cannot_smuggle_in_headers(tmp_path):
    settings = settings_for(None, 25, tmp_path)
    with pytest.raises(mail.MailError):
        mail.build_message(
            settings, to=f"{EMAIL}\r\nBcc: everyone@example.org", subject="Hi", body="x"
        )
