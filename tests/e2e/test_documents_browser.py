"""End to end in Chromium (spec D2, D3): a manager sends a form to a demo client from the client
screen, sees the exact email first, and — once the worker sent it — finds the send in the
Document log with its time."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from lib import mail, worker
from lib.db import make_engine
from lib.timeutil import as_utc, local_text
from tests.e2e.conftest import Server, client_heading, open_app, settle, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e")]

FORM = "Consent for treatment"
TZ = "America/New_York"  # the server runs with the default practice time zone


def _query(server: Server, sql: str, **params):
    engine = create_engine(f"sqlite:///{server.database}")
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def _as_datetime(value) -> datetime:
    """SQLite hands the stored UTC time back as text through a plain connection."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _sign_in(page: Page, server: Server) -> None:
    open_app(page, server.url + "/")
    form = page.get_by_test_id("stForm").filter(has_text="Sign in to ClientDesk")
    form.get_by_label("Username").fill("manager")
    form.get_by_label("Password", exact=True).fill("demo-manager-2026")
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_be_visible()
    wait_idle(page)


def test_a_manager_sends_a_form_and_sees_it_in_the_log_with_the_time(page: Page, server: Server):
    [(client_id, number, first_name, address)] = _query(
        server,
        "SELECT id, client_number, first_name, email FROM clients "
        "WHERE status = 'active' AND email != '' AND email_ok "
        "ORDER BY client_number LIMIT 1",
    )
    _sign_in(page, server)
    page.goto(f"{server.url}/client?client={number}")
    settle(page)
    expect(client_heading(page, number)).to_be_visible()

    page.locator(".st-key-head_send_forms button").click()
    dialog = page.get_by_test_id("stDialog")
    expect(dialog.get_by_text("Send forms").first).to_be_visible()
    dialog.get_by_role("combobox").click()
    page.get_by_role("option", name=FORM).click()
    page.keyboard.press("Tab")  # closes the option list, which hides the rest of the dialog
    wait_idle(page)
    expect(dialog.get_by_text(f"To: {address}")).to_be_visible()
    expect(dialog.get_by_text(f"Hello {first_name},")).to_be_visible()
    dialog.get_by_role("button", name="Send").click()

    expect(page.get_by_test_id("stToast").filter(has_text="Forms queued")).to_be_visible()
    expect(dialog).to_have_count(0)
    wait_idle(page)
    engine = make_engine(f"sqlite:///{server.database}")
    try:  # the worker's turn (`make run` runs it next to the app)
        sent = worker.deliver_due(engine, mail_settings=mail.mail_settings(server.data_dir))
    finally:
        engine.dispose()
    assert sent == worker.Delivery(sent=1)
    [(sent_at, status, forms)] = _query(
        server,
        "SELECT sent_at, status, form_names FROM document_log "
        "WHERE client_id = :client_id AND sender_user_id IS NOT NULL",
        client_id=client_id,
    )
    assert (status, forms) == ("sent", FORM)
    when = local_text(as_utc(_as_datetime(sent_at)), TZ)
    [eml] = list((server.data_dir / "outbox").glob("*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"] == address

    page.get_by_test_id("stSidebar").get_by_role("link", name="Document log").click()
    expect(page.get_by_role("heading", name="Document log")).to_be_visible()
    wait_idle(page)
    cells = page.get_by_test_id("stDataFrame").locator("[role='gridcell']")
    expect(cells.filter(has_text=when).first).to_be_attached()
    expect(cells.filter(has_text=str(number)).first).to_be_attached()
    expect(cells.filter(has_text="Morgan Manager").first).to_be_attached()
