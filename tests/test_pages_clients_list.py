"""The Clients list as a manager uses it (issue 11 items 5-8), through app.py in AppTest on a
fresh demo practice (SQLite and PostgreSQL).

A click in the grid is an assignment of the table's selection state, as the browser sends it:
a cell ``{"cells": [[row, column]]}``, a column header ``{"columns": [column]}``.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from lib.db import transaction
from lib.models import Client
from tests import test_pages_clients as pages
from tests.downloads import Downloads
from tests.test_pages_clients import (
    active_clients,
    client_row,
    db,
    metrics,
    the_table,
)
from tests.test_pages_login import sign_in

_fresh_streamlit = pages._fresh_streamlit
demo_app = pages.demo_app


def table_key(at) -> str:
    """The grid's key now: a header click starts a new grid (pages/clients.py)."""
    try:
        generation = at.session_state["clients_table_generation"]
    except KeyError:
        generation = 0
    return "clients_table" if not generation else f"clients_table_{generation}"


def click(at, *, cell: tuple[int, str] | None = None, column: str | None = None):
    selection = {"rows": [], "columns": [column] if column else [], "cells": []}
    if cell is not None:
        selection["cells"] = [list(cell)]
    at.session_state[table_key(at)] = {"selection": selection}
    at.run()
    assert not at.exception, at.exception
    return at


def heading(at) -> list[str]:
    """The first two texts of the page: on the client page, its heading (name, number)."""
    return [t.value for t in at.text][:2]


# --- item 5: a click on a name (any cell) opens the client ----------------------------------


def test_clicking_a_name_opens_the_client(demo_app):
    at = sign_in("manager")
    table = the_table(at, "Name")
    number, name = int(table["Client #"][3]), table["Name"][3]

    click(at, cell=(3, "Name"))

    assert at.query_params.get("client") == str(number)
    assert heading(at) == [name, f"#{number}"]


def test_clicking_a_money_cell_opens_that_rows_client(demo_app):
    at = sign_in("manager")
    number = int(the_table(at, "Name")["Client #"][7])
    click(at, cell=(7, "Total"))
    assert at.query_params.get("client") == str(number)


# --- item 8: the client page's heading; blanks; money columns first --------------------------


def test_the_client_page_heading_is_the_name_with_the_number_beside_it(demo_app):
    client = active_clients(demo_app)[5]
    at = pages.open_client(sign_in("manager"), client.client_number)
    name = pages.clients.display_name(client.last_name, client.first_name, client.preferred_name)
    assert heading(at) == [name, f"#{client.client_number}"]
    assert not [t.value for t in at.title]  # no Markdown heading: the name is shown literally


def test_an_empty_oldest_unpaid_shows_blank_and_money_comes_right_after_the_name(demo_app):
    at = sign_in("manager")
    table = the_table(at, "Name")
    assert table["Oldest unpaid"].isna().any(), "the demo should list someone paid up"
    grid = next(df for df in at.dataframe if "Name" in df.value.columns)
    assert grid.proto.placeholder == ""  # what the grid shows for an empty cell
    assert list(table.columns[:7]) == [
        "Client #",
        "Name",
        "Client due",
        "Insurance pending",
        "Unapplied credit",
        "Total",
        "Oldest unpaid",
    ]


# --- item 7: header sort on the server, export page or all, kept settings --------------------


ALL_STATUSES = ["active", "inactive", "prospective", "discharged"]


def everyone(url: str) -> list[Client]:
    with db(url) as engine, transaction(engine) as session:
        rows = session.scalars(select(Client)).all()
        for c in rows:
            session.expunge(c)
        return list(rows)


def _sorted_by_total(url: str, descending: bool) -> list[int]:
    rows = everyone(url)
    rows.sort(key=lambda c: (c.total_cents, c.id), reverse=descending)
    return [c.client_number for c in rows]


def sign_in_listing_everyone():
    """The manager's list of clients in every status: more than one page of 50."""
    at = sign_in("manager")
    at.multiselect(key="clients_status").set_value(ALL_STATUSES)
    at.run()
    assert int(metrics(at)["Clients"]) > 50
    return at


def test_a_column_header_click_sorts_every_matching_client_on_the_server(demo_app):
    at = sign_in_listing_everyone()
    first_grid = next(df for df in at.dataframe if "Name" in df.value.columns).proto.id

    click(at, column="Total")
    assert at.selectbox(key="clients_sort").value == "total"
    assert at.toggle(key="clients_desc").value is False
    expected = _sorted_by_total(demo_app, descending=False)
    assert the_table(at, "Name")["Client #"].tolist() == expected[:50]
    grid = next(df for df in at.dataframe if "Name" in df.value.columns)
    assert grid.proto.id != first_grid  # a new grid: no column stays selected in the browser

    click(at, column="Total")  # the same header again: the other way round
    assert at.toggle(key="clients_desc").value is True
    expected = _sorted_by_total(demo_app, descending=True)
    assert the_table(at, "Name")["Client #"].tolist() == expected[:50]

    click(at, column="Name")  # another header: ascending by it
    assert at.selectbox(key="clients_sort").value == "name"
    assert at.toggle(key="clients_desc").value is False


def test_export_offers_this_page_or_all_matching_clients_in_screen_order(
    demo_app, downloads: Downloads
):
    total = len(everyone(demo_app))
    at = sign_in_listing_everyone()
    click(at, column="Total")
    click(at, column="Total")  # descending total, as on screen
    screen = the_table(at, "Name")

    page_rows = list(
        csv.DictReader(io.StringIO(downloads.click(at, "export_csv_clients").decode("utf-8-sig")))
    )
    assert [int(r["Client #"]) for r in page_rows] == screen["Client #"].tolist()

    scope = at.radio(key="export_scope_clients")
    assert scope.options == ["This page (50 rows)", f"All {total:,} matching clients"]
    scope.set_value("all")
    at.run()
    everything = csv.DictReader(
        io.StringIO(downloads.click(at, "export_csv_clients").decode("utf-8-sig"))
    )
    numbers = [int(r["Client #"]) for r in everything]
    assert numbers == _sorted_by_total(demo_app, descending=True)
    assert numbers[:50] == screen["Client #"].tolist()


def test_the_list_keeps_its_order_and_page_size_after_opening_a_client(demo_app):
    at = sign_in("manager")
    at.toggle(key="clients_desc").set_value(True)
    at.selectbox(key="clients_page_size").set_value(100)
    at.run()
    shown = the_table(at, "Name")["Client #"].tolist()

    at.session_state[table_key(at)] = {"selection": {"rows": [0], "columns": []}}  # checkbox
    at.run()
    assert at.query_params.get("client") == str(shown[0])
    at.switch_page("pages/clients.py")
    at.run()

    assert at.toggle(key="clients_desc").value is True
    assert at.selectbox(key="clients_page_size").value == 100
    assert the_table(at, "Name")["Client #"].tolist() == shown
    assert "clients_query" not in at.query_params  # search text never goes into the URL


# --- item 6: nothing under the status filter, but in other statuses -------------------------


def test_a_search_with_nothing_active_says_where_it_finds_clients_and_includes_them(demo_app):
    with db(demo_app) as engine, transaction(engine) as session:
        inactive = session.scalars(
            select(Client).where(Client.status == "inactive").order_by(Client.id)
        ).first()
        number = inactive.client_number
    at = sign_in("manager")
    at.text_input(key="clients_query").input(f"#{number}")
    at.run()

    assert metrics(at)["Clients"] == "0"
    assert "1 more in Inactive" in " ".join(i.value for i in at.info)
    at.button(key="clients_include_elsewhere").click()
    at.run()

    assert not at.exception
    assert set(at.multiselect(key="clients_status").value) == {"active", "inactive"}
    assert the_table(at, "Name")["Client #"].tolist() == [number]
    assert client_row(demo_app, number).status == "inactive"
