"""Turning lib results into frames for ``st.dataframe``: one place for money and date columns.

Values stay plain data; user-typed text is shown literally by ``st.dataframe``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.clients import ClientListResult

MONEY_COLUMNS = {
    "client_due_cents": "Client due",
    "insurance_pending_cents": "Insurance pending",
    "unapplied_credit_cents": "Unapplied credit",
    "total_cents": "Total",
}


def money_column(label: str, width: int | str | None = None):
    return st.column_config.NumberColumn(label, format="dollar", width=width)


# Money right after the name: at 1440 px with the sidebar open the grid is about 1,050 px wide,
# and a manager must see who owes what without scrolling sideways (issue 11 item 8).
CLIENT_LIST_COLUMNS = ["Client #", "Name"]
CLIENT_LIST_MONEY = [*MONEY_COLUMNS.values(), "Oldest unpaid"]
CLIENT_LIST_DETAILS = ["Date of birth", "Phone", "Email", "Status", "Clinician"]

# Grid column -> lib.clients sort key: a click on a column header sorts all matching clients.
CLIENT_LIST_SORTS = {
    "Client #": "client_number",
    "Name": "name",
    "Client due": "client_due",
    "Insurance pending": "insurance_pending",
    "Unapplied credit": "unapplied_credit",
    "Total": "total",
    "Oldest unpaid": "oldest_unpaid",
    "Date of birth": "dob",
    "Phone": "phone",
    "Email": "email",
    "Status": "status",
    "Clinician": "clinician",
}


def client_list_frame(result: ClientListResult) -> pd.DataFrame:
    """The client list exactly as shown on screen (and exported): same rows, columns, order."""
    records = []
    for r in result.rows:
        record = {
            "Client #": r.client_number,
            "Name": r.name,
            "Date of birth": r.dob,
            "Phone": r.phone,
            "Email": r.email,
            "Status": r.status,
            "Clinician": r.clinician,
        }
        if result.shows_balances:
            for key, label in MONEY_COLUMNS.items():
                record[label] = getattr(r, key) / 100
            record["Oldest unpaid"] = r.oldest_unpaid_dos
        records.append(record)
    columns = list(CLIENT_LIST_COLUMNS)
    if result.shows_balances:
        columns += CLIENT_LIST_MONEY
    columns += CLIENT_LIST_DETAILS
    return pd.DataFrame.from_records(records, columns=columns)


def client_list_column_config(shows_balances: bool) -> dict:
    config = {
        "Client #": st.column_config.NumberColumn("Client #", format="%d", width=70),
        "Name": st.column_config.TextColumn("Name", width=200),
        "Date of birth": st.column_config.DateColumn(
            "Date of birth", format="MM/DD/YYYY", width=100
        ),
        "Phone": st.column_config.TextColumn("Phone", width=120),
        "Status": st.column_config.TextColumn("Status", width=85),
    }
    if shows_balances:
        config.update({label: money_column(label, width=100) for label in MONEY_COLUMNS.values()})
        config["Insurance pending"] = money_column("Insurance pending", width=130)
        config["Unapplied credit"] = money_column("Unapplied credit", width=120)
        config["Oldest unpaid"] = st.column_config.DateColumn(
            "Oldest unpaid", format="MM/DD/YYYY", width=105
        )
    return config
