"""The client's Billing tab (issue 10 item 13): "Statement (PDF)" is logged as generated, and
"Email the statement" queues it for the client's own address, or says why it cannot."""

from __future__ import annotations

from sqlalchemy import select, update

from lib import mail, worker
from lib.models import Client, DocumentLogEntry
from tests import test_pages_login as login_tests
from tests.test_pages_clients import db, open_client
from tests.test_pages_login import sign_in

demo_app = login_tests.demo_app
_fresh_streamlit = login_tests._fresh_streamlit

ADDRESS = "statement.reader@example.org"


def demo_client(url: str, **contact) -> tuple[int, int]:
    with db(url) as engine, engine.begin() as conn:
        client_id, number = conn.execute(
            select(Client.id, Client.client_number)
            .where(Client.status == "active", Client.total_cents > 0)
            .order_by(Client.client_number)
            .limit(1)
        ).one()
        conn.execute(update(Client).where(Client.id == client_id).values(**contact))
    return client_id, number


def statement_log(url: str, client_id: int) -> list[tuple[str, str, str]]:
    with db(url) as engine, engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    DocumentLogEntry.channel, DocumentLogEntry.status, DocumentLogEntry.recipient
                )
                .where(
                    DocumentLogEntry.client_id == client_id, DocumentLogEntry.kind == "statement"
                )
                .order_by(DocumentLogEntry.id)
            )
        ]


def test_a_biller_makes_a_pdf_and_emails_the_statement(demo_app, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIENTDESK_DATA_DIR", str(tmp_path))
    client_id, number = demo_client(demo_app, email=ADDRESS, email_ok=True)
    at = open_client(sign_in("biller"), number)

    at.button(key="billing_stmt").click().run()
    assert not at.exception
    assert statement_log(demo_app, client_id) == [("pdf", "generated", "")]

    button = at.button(key="billing_stmt_email")
    assert not button.disabled and ADDRESS in button.help
    button.click().run()
    assert not at.exception
    assert any(f"queued for {ADDRESS}" in s.value for s in at.success)
    assert statement_log(demo_app, client_id)[1] == ("email", "queued", ADDRESS)

    with db(demo_app) as engine:
        assert worker.deliver_due(engine, mail_settings=mail.mail_settings(tmp_path)) == (
            worker.Delivery(sent=1)
        )
    assert statement_log(demo_app, client_id)[1] == ("email", "sent", ADDRESS)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_without_email_consent_the_button_says_why(demo_app, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIENTDESK_DATA_DIR", str(tmp_path))
    client_id, number = demo_client(demo_app, email=ADDRESS, email_ok=False)
    at = open_client(sign_in("biller"), number)

    button = at.button(key="billing_stmt_email")
    assert button.disabled
    assert "not agreed to be emailed" in button.help
    assert statement_log(demo_app, client_id) == []
