"""Statements in the document log (issue 10 item 13; spec B5, "What an email may carry").

A statement made as a PDF for staff is logged as generated, never as sent. Emailing it queues
it in the outbox; the worker sends it to a real SMTP server (aiosmtpd) only to the client's own
address with email consent, as a PDF attachment, with a body that names no amount; the log
shows queued, then sent or failed.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from lib import documents, mail, statements, worker
from lib.db import transaction
from lib.models import AuditEntry, Client, DocumentLogEntry
from tests.test_receipts import Collector, free_port, settings_for
from tests.test_statements_reconcile import Practice, owing_client
from tests.test_statements_reconcile import practice as practice  # the fixture

ADDRESS = "hana.ito@example.org"


@pytest.fixture
def smtp():
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, collector
    finally:
        controller.stop()


def consenting(engine, practice: Practice, **contact) -> int:
    client_id = owing_client(engine, practice)
    values = {"email": ADDRESS, "email_ok": True, **contact}
    with transaction(engine) as session:
        session.execute(update(Client).where(Client.id == client_id).values(**values))
    return client_id


def email_statement(engine, practice: Practice, client_id: int, settings, data_dir: Path):
    with transaction(engine) as session:
        return statements.email_statement(
            session,
            actor=practice.biller,
            client_id=client_id,
            data_dir=data_dir,
            mail_settings=settings,
        )


def log_of(engine, client_id: int) -> list[DocumentLogEntry]:
    with transaction(engine) as session:
        rows = session.scalars(
            select(DocumentLogEntry).where(DocumentLogEntry.client_id == client_id)
        ).all()
        session.expunge_all()
        return rows


def test_a_generated_statement_shows_as_generated_in_the_documents_tab(engine, practice, tmp_path):
    client_id = owing_client(engine, practice)
    with transaction(engine) as session:
        statements.create_statements(
            session, actor=practice.biller, client_ids=[client_id], data_dir=tmp_path
        )
    with transaction(engine) as session:
        (row,) = documents.log_for_client(session, actor=practice.biller, client_id=client_id)
    assert (row.kind, row.channel, row.status, row.status_key) == (
        "Statement",
        "PDF",
        "Generated",
        "generated",
    )
    assert row.recipient == ""


def test_an_emailed_statement_is_a_pdf_to_the_clients_address_and_names_no_amount(
    engine, practice, smtp, tmp_path
):
    port, collector = smtp
    settings = settings_for("127.0.0.1", port, tmp_path / "outbox")
    client_id = consenting(engine, practice)

    queued = email_statement(engine, practice, client_id, settings, tmp_path)

    assert (queued.status, queued.recipient) == ("queued", ADDRESS)
    assert collector.envelopes == []  # queued; the worker sends it
    (row,) = log_of(engine, client_id)
    assert (row.kind, row.channel, row.status) == ("statement", "email", "queued")
    stored = tmp_path / "statements" / row.attachment_names
    assert stored.read_bytes().startswith(b"%PDF")

    assert worker.deliver_due(engine, mail_settings=settings) == worker.Delivery(sent=1)

    [envelope] = collector.envelopes
    assert envelope.rcpt_tos == [ADDRESS]
    message = message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Subject"] == "Your statement from Harbor Counseling"
    body = message.get_body(("plain",)).get_content()
    assert "statement" in body and "attached" in body
    for amount in ("$", "170", "17,000", "Ito", "Hana", "90834"):
        assert amount not in body and amount not in message["Subject"], amount
    [pdf] = list(message.iter_attachments())
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content() == stored.read_bytes()
    assert "Ito" not in pdf.get_filename()
    (row,) = log_of(engine, client_id)
    assert (row.status, row.error, row.recipient) == ("sent", "", ADDRESS)
    with transaction(engine) as session:
        (audit,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "statement.email"))
    assert audit.client_id == client_id


@pytest.mark.parametrize(
    ("contact", "says"),
    [
        ({"email": ""}, "no email address"),
        ({"email_ok": False}, "not agreed to be emailed"),
        ({"email": "hana at example"}, "not valid"),
    ],
)
def test_a_statement_is_not_emailed_without_an_address_and_consent(
    engine, practice, tmp_path, contact, says
):
    client_id = consenting(engine, practice, **contact)
    with pytest.raises(statements.StatementNotEmailed, match=says):
        email_statement(engine, practice, client_id, mail.mail_settings(tmp_path, env={}), tmp_path)
    assert log_of(engine, client_id) == []
    assert not (tmp_path / "statements").exists()
