"""End to end in Chromium: sign in, re-login cookie, sign-out revocation (spec A1)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Server, open_app, reload_app, running_server, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e")]

COOKIE = "clientdesk_auth"
DOLLARS = re.compile(r"\$\d")


def _client_names(server: Server) -> re.Pattern:
    """A pattern matching any client's "Last, First" as the client list shows it."""
    engine = create_engine(f"sqlite:///{server.database}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT last_name, first_name FROM clients")).all()
    finally:
        engine.dispose()
    assert rows
    return re.compile("|".join(re.escape(f"{last}, {first}") for last, first in rows))


def _login_form(page: Page):
    return page.get_by_test_id("stForm").filter(has_text="Sign in to ClientDesk")


def _open(page: Page, server: Server) -> None:
    open_app(page, server.url + "/")


def _sign_in(page: Page, username: str, password: str) -> None:
    form = _login_form(page)
    expect(form).to_be_visible()
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Sign in").click()


def _expect_clients_page(page: Page) -> None:
    expect(page.get_by_role("heading", name="Clients", exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Sign out").first).to_be_visible()
    wait_idle(page)
    expect(_login_form(page)).to_have_count(0)


def test_manager_signs_in_and_sees_clients_and_balances(page: Page, server: Server):
    names = _client_names(server)
    cells = page.get_by_test_id("stDataFrame").locator("[role='gridcell']")
    _open(page, server)
    # Before sign-in the only table is the demo logins one: no client in it.
    expect(cells.filter(has_text="demo-manager-2026")).to_have_count(1)
    expect(cells.filter(has_text=names)).to_have_count(0)
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_have_count(0)

    _sign_in(page, "manager", "demo-manager-2026")

    _expect_clients_page(page)
    expect(cells.filter(has_text=names).first).to_be_attached()
    expect(page.get_by_test_id("stMetric").filter(has_text=DOLLARS).first).to_be_visible()
    expect(page.get_by_text("Morgan Manager").first).to_be_visible()


def test_wrong_password_is_refused(page: Page, server: Server):
    _open(page, server)
    _sign_in(page, "biller", "not-the-password")

    expect(page.get_by_text("The username or password is not right.")).to_be_visible()
    wait_idle(page)
    expect(_login_form(page)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_cookie_keeps_the_session_across_reload_until_sign_out(page: Page, server: Server):
    _open(page, server)
    _sign_in(page, "manager", "demo-manager-2026")
    _expect_clients_page(page)
    # The re-login cookie is written from JavaScript by a component, just after sign-in.
    page.wait_for_function(f"document.cookie.includes('{COOKIE}=')")
    context = page.context
    signed_in_cookies = context.cookies()
    token = next(c["value"] for c in signed_in_cookies if c["name"] == COOKIE)

    # A reload is a new Streamlit session: only the cookie can sign the user back in.
    reload_app(page)
    _expect_clients_page(page)

    page.get_by_role("button", name="Sign out").click()
    expect(_login_form(page)).to_be_visible()
    wait_idle(page)

    # Someone who copied the cookie before the sign-out must not get back in with it.
    context.add_cookies(signed_in_cookies)
    assert token in [c["value"] for c in context.cookies() if c["name"] == COOKIE]
    reload_app(page)
    expect(_login_form(page)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_have_count(0)


def test_a_deep_link_right_after_a_restart_goes_through_sign_in(page: Page, demo_data_dir):
    """Streamlit starts a process in its pre-st.navigation mode (there is a pages/ folder), in
    which a deep link runs the page script directly; the very first request must still get
    the sign-in form, and then the page it asked for."""
    with running_server(demo_data_dir) as fresh:  # nobody has opened "/" on this process
        open_app(page, fresh.url + "/users")
        expect(_login_form(page)).to_be_visible()
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(page.get_by_role("heading", name="Staff accounts")).to_have_count(0)

        _sign_in(page, "admin", "demo-admin-2026")
        expect(page.get_by_role("heading", name="Staff accounts").first).to_be_visible()
        expect(page.get_by_role("button", name="Sign out").first).to_be_visible()
