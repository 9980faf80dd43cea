"""End to end in Chromium (spec I3): a prospective client fills the public intake page on a
phone, the practice manager accepts the submission, and the answers are on the new client's
Other Information tab."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, text

from tests.e2e.conftest import IDLE, Server, client_heading, open_app, running_server, wait_idle
from tests.e2e.test_browser import _expect_clients_page, _sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e")]

PHONE = {"width": 390, "height": 844}
REASON = "Trouble sleeping since the move"
THANKS = "Thank you. Your information was sent to the practice"


def _fill_public_form(page: Page) -> None:
    page.get_by_label("First name").fill("Marisol")
    page.get_by_label("Last name").fill("Featherstone")
    page.get_by_role("group", name="Date of birth").get_by_role("spinbutton", name="month").click()
    page.keyboard.type("04121990")
    page.get_by_label("Email").fill("marisol.f@example.com")
    page.get_by_label("What brings you to therapy").fill(REASON)
    radios = page.get_by_test_id("stRadio")
    radios.filter(has_text="Have you been in therapy before").get_by_text("No", exact=True).click()
    radios.filter(has_text="How did you hear about us").get_by_text("Online search").click()
    page.get_by_test_id("stMultiSelect").filter(has_text="Which times work best").click()
    page.keyboard.type("Weekday evenings")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.get_by_label("On a scale of 1 to 10").fill("7")
    page.get_by_label("Current medications").fill("None")


def _submission(server: Server) -> tuple[str, str | None, int | None]:
    engine = create_engine(f"sqlite:///{server.database}")
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT s.status, c.status, c.client_number FROM intake_submissions s "
                    "LEFT JOIN clients c ON c.id = s.client_id WHERE s.last_name = 'Featherstone'"
                )
            ).one()
    finally:
        engine.dispose()
    return row[0], row[1], row[2]


def test_a_signup_from_a_phone_is_accepted_and_its_answers_are_on_the_client(
    browser: Browser, page: Page, server: Server
):
    # The manager's window opens first; the public page opened first is tested below.
    open_app(page, server.url + "/")

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        public = phone.new_page()
        public.goto(server.url + "/intake")
        expect(public.get_by_role("heading", name="New client intake")).to_be_visible()
        public.wait_for_selector(IDLE)
        expect(public.get_by_role("button", name="Sign out")).to_have_count(0)
        public.get_by_role("button", name="Send to the practice").click()
        expect(public.get_by_text("Please answer this question.").first).to_be_visible()
        _fill_public_form(public)
        # The honeypot is there for programs and screen readers, never on a person's screen.
        trap = public.get_by_role("textbox", name="Leave this field empty")
        expect(trap).to_have_count(1)
        expect(trap).not_to_be_in_viewport()
        public.get_by_role("button", name="Send to the practice").click()
        expect(public.get_by_text(THANKS)).to_be_visible()
        wait_idle(public)
        # Nothing is wider than the phone's screen.
        assert public.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        phone.close()
    assert _submission(server) == ("pending", None, None)

    _sign_in(page, "manager", "demo-manager-2026")
    _expect_clients_page(page)
    page.get_by_test_id("stSidebar").get_by_text("Intake review").click()
    expect(page.get_by_role("heading", name="Intake review")).to_be_visible()
    expect(page.get_by_text("Name: Marisol Featherstone")).to_be_visible()
    wait_idle(page)
    page.get_by_role("button", name="Accept as new Prospective client").click()
    expect(page.get_by_text("Accepted as a new Prospective client")).to_be_visible()
    wait_idle(page)
    status, client_status, number = _submission(server)
    assert (status, client_status) == ("accepted", "prospective")

    page.get_by_role("link", name=f"Open client #{number}").click()
    expect(client_heading(page, number)).to_be_visible()
    wait_idle(page)
    page.get_by_role("tab", name="Other Information").click()
    expect(page.get_by_label("What brings you to therapy")).to_have_value(REASON)
    expect(page.get_by_label("On a scale of 1 to 10")).to_have_value("7")
    expect(page.get_by_text("Anonymous signup ·").first).to_be_visible()
    assert page.get_by_text("Anonymous signup ·").count() == 6  # one per answered question


def test_the_public_page_opened_first_after_a_restart_shows_no_error(
    browser: Browser, demo_data_dir
):
    """A server's first request runs in Streamlit's pre-navigation mode; pages/intake.py makes
    /intake a page there too, so the first visitor gets the form and no 'Page not found'."""
    context = browser.new_context(viewport=PHONE)
    try:
        with running_server(demo_data_dir) as fresh:
            page = context.new_page()
            page.goto(fresh.url + "/intake")
            expect(page.get_by_role("heading", name="New client intake")).to_be_visible()
            wait_idle(page)
            expect(page.get_by_label("First name")).to_be_visible()
            assert page.get_by_text("Page not found").count() == 0
            expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    finally:
        context.close()
