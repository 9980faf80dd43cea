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


def money_column(label: str):
    return st.column_config.NumberColumn(label, format="dollar")


def client_list_frame(result: ClientListResult) -> pd.DataFrame:
    """The client list exactly as shown on screen (and exported)."""
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
    columns = ["Client #", "Name", "Date of birth", "Phone", "Email", "Status", "Clinician"]
    if result.shows_balances:
        columns += [*MONEY_COLUMNS.values(), "Oldest unpaid"]
    return pd.DataFrame.from_records(records, columns=columns)


def client_list_column_config(shows_balances: bool) -> dict:
    config = {
        "Client #": st.column_config.NumberColumn("Client #", format="%d"),
        "Date of birth": st.column_config.DateColumn("Date of birth", format="MM/DD/YYYY"),
    }
    if shows_balances:
        config.update({label: money_column(label) for label in MONEY_COLUMNS.values()})
        config["Oldest unpaid"] = st.column_config.DateColumn("Oldest unpaid", format="MM/DD/YYYY")
    return config
