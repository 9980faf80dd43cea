"""End to end in Chromium: find a client, open it from the grid, edit it, pay (C1, C6, B3).

The client list is a glide data grid drawn on a canvas. Its cells are mirrored in an
accessibility table (``[role='gridcell']``, raw values such as ``820`` for $820.00), which is
what these tests read. A row is opened the way a user does it: a click on the row's checkbox
cell at the left edge of the canvas (``selection_mode="single-row"``); a click on any other cell
selects only that cell.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import Locator, Page, expect

from lib.clients import fold
from tests.e2e.conftest import Server, client_heading, open_app, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e")]

HEADER_HEIGHT = 35  # px: the grid's header row, then rows of the same height
ROW_HEIGHT = 35
NEW_MOBILE = "617-555-0142"
NEW_MOBILE_SHOWN = "(617) 555-0142"  # as lib.validation stores (and the list shows) it


def _query(server: Server, sql: str, *args):
    with sqlite3.connect(server.database) as conn:
        return conn.execute(sql, args).fetchall()


def _findable_clients(server: Server) -> list[tuple[int, str, str]]:
    """(client #, display name, search text) of active clients that the first four letters of
    their last name find alone, so the search leaves exactly one row."""
    rows = _query(
        server,
        "SELECT client_number, last_name, first_name, preferred_name, search_name, email_norm, "
        "client_due_cents FROM clients WHERE status = 'active' ORDER BY client_number",
    )
    found = []
    for number, last, first, preferred, _name, _email, due in rows:
        if not last.isascii() or len(last) < 4:
            continue
        fragment = fold(last[:4])
        hits = [r for r in rows if fragment in r[4] or fragment in r[5]]
        if len(hits) == 1:
            name = f"{last}, {first}" + (
                f" ({preferred})" if preferred and preferred != first else ""
            )
            found.append((number, name, last[:4], due))
    assert len(found) >= 2, "the demo practice should have clients with distinctive names"
    return found


def _ten_dollar_payments(server: Server, number: int) -> int:
    return _query(
        server,
        "SELECT count(*) FROM ledger_entries JOIN clients ON clients.id = client_id "
        "WHERE client_number = ? AND kind = 'payment' AND amount_cents = 1000",
        number,
    )[0][0]


def _sign_in_as_manager(page: Page, server: Server) -> None:
    page.set_viewport_size({"width": 1920, "height": 1000})  # every grid column on screen
    open_app(page, server.url + "/")
    form = page.get_by_test_id("stForm").filter(has_text="Sign in to ClientDesk")
    form.get_by_label("Username").fill("manager")
    form.get_by_label("Password", exact=True).fill("demo-manager-2026")
    form.get_by_role("button", name="Sign in").click()
    _expect_one_heading(page, "Clients")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(1)


def _expect_one_heading(page: Page, name: str) -> None:
    """Wait for the page to show this heading once and go idle.

    While a rerun is drawing (after a sign-in the cookie component reruns the app once more),
    elements of the previous run can still be on the page next to their new copies, so the
    tests count instead of using strict single-element locators.
    """
    heading = page.get_by_role("heading", name=name, exact=True)
    expect(heading).to_have_count(1)
    wait_idle(page)
    expect(heading).to_have_count(1)


def _metric(page: Page, label: str) -> Locator:
    metric = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").filter(
            has_text=re.compile(f"^{re.escape(label)}$")
        )
    )
    return metric.get_by_test_id("stMetricValue")


def _search(page: Page, text: str) -> None:
    page.get_by_label("Search clients").fill(text)
    # The list reruns as the user types; a list of one value also waits out stale copies.
    expect(_metric(page, "Clients")).to_have_text(["1"])
    wait_idle(page)


def _cell(within: Page | Locator, text: str) -> Locator:
    """Grid cells showing exactly this text (the canvas's accessibility mirror is not in the
    accessibility tree, so role locators do not see it; CSS does)."""
    return within.locator("[role='gridcell']").filter(has_text=re.compile(f"^{re.escape(text)}$"))


def _row(page: Page, name: str) -> dict[str, str]:
    """The grid row showing this client, as {column header: cell text}."""
    grid = page.get_by_test_id("stDataFrame")
    expect(grid).to_have_count(1)
    row = grid.locator("tr[role='row']").filter(has=_cell(page, name))
    expect(row).to_have_count(1)
    headers = grid.locator("th[role='columnheader']").all_inner_texts()
    cells = row.locator("[role='gridcell']").all_inner_texts()
    return dict(zip(headers, cells, strict=True))


def _open_first_row(page: Page, number: int) -> None:
    canvas = page.get_by_test_id("stDataFrame").get_by_test_id("data-grid-canvas")
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 16, box["y"] + HEADER_HEIGHT + ROW_HEIGHT / 2)
    expect(client_heading(page, number)).to_have_count(1)
    wait_idle(page)
    assert page.url.endswith(f"client={number}")


def _back_to_clients(page: Page) -> None:
    page.get_by_test_id("stSidebar").get_by_role("link", name="Clients", exact=True).click()
    _expect_one_heading(page, "Clients")


def test_find_a_client_edit_the_mobile_phone_and_see_it_in_the_list(page: Page, server: Server):
    number, name, fragment, _ = _findable_clients(server)[0]
    _sign_in_as_manager(page, server)

    _search(page, fragment)
    assert _row(page, name)["Client #"] == str(number)
    _open_first_row(page, number)
    expect(page.get_by_text(name, exact=True)).to_have_count(1)

    page.get_by_role("tab", name="Contact", exact=True).click()
    mobile = page.get_by_label("Mobile phone", exact=True)
    expect(mobile).to_be_visible()
    mobile.fill(NEW_MOBILE)
    page.get_by_role("button", name="Save contact details").click()
    expect(page.get_by_text("Saved.", exact=True).first).to_be_visible()
    wait_idle(page)
    stored = _query(server, "SELECT phone_mobile FROM clients WHERE client_number = ?", number)
    assert stored == [(NEW_MOBILE_SHOWN,)]

    _back_to_clients(page)
    _search(page, fragment)
    expect(_cell(page.get_by_test_id("stDataFrame"), NEW_MOBILE_SHOWN)).to_have_count(1)
    assert _row(page, name)["Phone"] == NEW_MOBILE_SHOWN


def test_record_a_ten_dollar_payment_and_see_the_list_balance_drop(page: Page, server: Server):
    number, name, fragment, _ = next(c for c in _findable_clients(server)[1:] if c[3] >= 1000)
    _sign_in_as_manager(page, server)

    _search(page, fragment)
    before = _row(page, name)
    total_before = float(before["Total"])
    due_before = float(before["Client due"])
    _open_first_row(page, number)
    paid_before = _ten_dollar_payments(server, number)

    page.get_by_role("button", name="Record payment").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Amount").fill("$10.00")
    dialog.get_by_role("button", name="Record payment").click()
    expect(page.get_by_text("Payment of $10.00 recorded").first).to_be_visible()
    expect(dialog).to_have_count(0)
    wait_idle(page)
    assert _ten_dollar_payments(server, number) == paid_before + 1

    _back_to_clients(page)
    _search(page, fragment)
    after = _row(page, name)
    assert float(after["Total"]) == pytest.approx(total_before - 10)
    assert float(after["Client due"]) == pytest.approx(due_before - 10)
    expect(_metric(page, "Total balance")).to_have_text([f"${total_before - 10:,.2f}"])
