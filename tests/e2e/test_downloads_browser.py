"""Downloads in Chromium, checked from outside with a plain HTTP client (issue 12 item 1, A8).

A file with client data must not exist at any URL before the click that asks for it; after the
click it answers only the browser that clicked (its HttpOnly download cookie), stops answering
within the configured seconds (60 by default; 4 here), and nothing answers after the session
closes. Each click is audited (exports) or logged (statements). The plain client is urllib,
with no cookie unless a test passes one explicitly.
"""

from __future__ import annotations

import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Download, Page, expect

from tests.e2e.conftest import Server, client_heading, open_app, running_server, settle, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e")]

SECONDS = 4  # CLIENTDESK_DOWNLOAD_SECONDS for this server
COOKIE = "clientdesk_download"


@pytest.fixture(scope="module")
def guarded(demo_data_dir: Path) -> Iterator[Server]:
    with running_server(demo_data_dir, CLIENTDESK_DOWNLOAD_SECONDS=str(SECONDS)) as server:
        yield server


def _query(server: Server, sql: str, *args):
    with sqlite3.connect(server.database) as conn:
        return conn.execute(sql, args).fetchall()


def _client_names(server: Server) -> re.Pattern:
    rows = _query(server, "SELECT last_name, first_name FROM clients")
    return re.compile("|".join(re.escape(f"{last}, {first}") for last, first in rows))


def _get(url: str, cookie: str | None = None) -> tuple[int, bytes]:
    """A plain HTTP GET: no browser, and no cookie unless one is given."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _cookies(context: BrowserContext) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())


def _another_browsers_cookie(server: Server) -> str:
    """The download cookie a different browser gets by loading the app."""
    with urllib.request.urlopen(server.url + "/", timeout=10) as response:
        issued = response.headers.get_all("Set-Cookie") or []
    [cookie] = [c.split(";", 1)[0] for c in issued if c.startswith(f"{COOKIE}=")]
    return cookie


def _media_requests(page: Page) -> list[str]:
    """Every /media/ URL (not the app's /static/ assets) the page asks for, from now on."""
    seen: list[str] = []
    page.on(
        "request", lambda r: seen.append(r.url) if "/media/" in r.url.split("/static/")[0] else None
    )
    return seen


def _sign_in_as_manager(page: Page, server: Server) -> None:
    open_app(page, server.url + "/")
    form = page.get_by_test_id("stForm").filter(has_text="Sign in to ClientDesk")
    form.get_by_label("Username").fill("manager")
    form.get_by_label("Password", exact=True).fill("demo-manager-2026")
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_be_visible()
    wait_idle(page)


def _click_download(page: Page, name: str) -> Download:
    button = page.get_by_role("button", name=name).first
    expect(button).to_be_visible()
    wait_idle(page)
    with page.expect_download() as info:
        button.click()
    return info.value


def _exports(server: Server, what: str) -> int:
    return _query(
        server, "SELECT count(*) FROM audit_log WHERE action = 'export' AND entity = ?", what
    )[0][0]


def _answers_only_the_browser_that_clicked(
    url: str, body: bytes, context: BrowserContext, server: Server
) -> None:
    assert _get(url) == (404, b""), "the file answered a request without any cookie"
    assert _get(url, _another_browsers_cookie(server)) == (404, b""), "another browser got it"
    assert _get(url, _cookies(context)) == (200, body), "the browser that clicked cannot fetch it"


def test_a_client_list_export_exists_only_after_the_click_and_only_for_that_browser(
    page: Page, guarded: Server
):
    names = _client_names(guarded)
    media = _media_requests(page)
    _sign_in_as_manager(page, guarded)
    expect(page.get_by_role("button", name="Export CSV").first).to_be_visible()
    wait_idle(page)

    # Before the click: no URL holds the export, for this browser or anyone else.
    before = list(media)
    leaked = [url for url in before if _get(url)[0] == 200]
    assert not leaked, f"fetchable without a cookie before any click: {leaked}"
    assert before == [], f"files published before any click: {before}"

    exports = _exports(guarded, "client_list")
    download = _click_download(page, "Export CSV")
    body = Path(download.path()).read_bytes()
    assert names.search(body.decode("utf-8-sig")), "the export holds the client list"
    assert _exports(guarded, "client_list") == exports + 1  # the click is audited

    # During the session: only the browser that clicked gets the file...
    _answers_only_the_browser_that_clicked(download.url, body, page.context, guarded)
    cookie = _cookies(page.context)
    # ...and soon not even that browser.
    time.sleep(SECONDS + 1)
    assert _get(download.url, cookie) == (404, b"")

    # After the session: the page is gone, and nothing answers.
    page.close()
    assert _get(download.url) == (404, b"")
    assert _get(download.url, cookie) == (404, b"")


def test_statements_and_the_document_log_export_answer_only_the_browser_that_clicked(
    page: Page, guarded: Server
):
    [(client_id, number)] = _query(
        guarded,
        "SELECT id, client_number FROM clients WHERE status = 'active' AND client_due_cents > 0 "
        "ORDER BY client_number LIMIT 1",
    )
    media = _media_requests(page)
    _sign_in_as_manager(page, guarded)

    page.goto(f"{guarded.url}/client?client={number}")
    settle(page)
    expect(client_heading(page, number)).to_be_visible()
    page.get_by_role("tab", name="Billing").click()
    wait_idle(page)
    assert media == [], f"files published before any click: {media}"
    statements = _query(
        guarded,
        "SELECT count(*) FROM document_log WHERE client_id = ? AND kind = 'statement'",
        client_id,
    )[0][0]
    download = _click_download(page, "Statement (PDF)")
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    _answers_only_the_browser_that_clicked(download.url, pdf, page.context, guarded)
    wait_idle(page)
    assert (
        _query(
            guarded,
            "SELECT count(*) FROM document_log WHERE client_id = ? AND kind = 'statement'",
            client_id,
        )[0][0]
        == statements + 1
    )

    page.get_by_test_id("stSidebar").get_by_role("link", name="Document log").click()
    expect(page.get_by_role("heading", name="Document log")).to_be_visible()
    wait_idle(page)
    published = [url for url in media if url != download.url]
    assert published == [], f"files published before any click: {published}"
    exports = _exports(guarded, "document_log")
    download = _click_download(page, "Export CSV")
    log = Path(download.path()).read_bytes()
    assert str(number).encode() in log
    assert _exports(guarded, "document_log") == exports + 1
    _answers_only_the_browser_that_clicked(download.url, log, page.context, guarded)
