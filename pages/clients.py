"""Clients: search, filter and page through the practice's clients with their balances."""

import streamlit as st

from lib import clients
from lib.db import read_session
from lib.money import format_cents
from lib.policy import allowed
from ui import context
from ui.tables import client_list_column_config, client_list_frame

PAGE_SIZE = 50
SORT_LABELS = {
    "name": "Name",
    "client_number": "Client #",
    "clinician": "Clinician",
    "total": "Total balance",
    "client_due": "Client due",
    "insurance_pending": "Insurance pending",
    "oldest_unpaid": "Oldest unpaid",
}


def _first_page() -> None:
    st.session_state["clients_page"] = 1


actor = context.actor()
engine = context.engine()
st.title("Clients")

with read_session(engine) as session:
    clinicians = clients.clinician_choices(session)

query = st.text_input(
    "Search clients",
    key="clients_query",
    on_change=_first_page,
    placeholder="Name, phone, email, date of birth (3/7/1985) or client #",
)
f1, f2, f3, f4 = st.columns([2, 2, 1, 2])
statuses = f1.multiselect(
    "Status",
    options=list(clients.STATUS_LABELS),
    default=["active"],
    format_func=clients.STATUS_LABELS.get,
    key="clients_status",
    on_change=_first_page,
)
clinician_names = dict(clinicians)
clinician_id = f2.selectbox(
    "Clinician",
    options=[0, *clinician_names],
    format_func=lambda cid: clinician_names.get(cid, "All clinicians"),
    key="clients_clinician",
    on_change=_first_page,
)
shows_money = allowed(actor, "balance.view")
has_balance = (
    f3.checkbox("Has balance", key="clients_has_balance", on_change=_first_page)
    if shows_money
    else False
)
sort_options = [k for k in SORT_LABELS if shows_money or k in clients.SORTS]
s1, s2 = f4.columns([3, 2])
sort = s1.selectbox("Sort by", sort_options, format_func=SORT_LABELS.get, key="clients_sort")
descending = s2.toggle("Descending", key="clients_desc", on_change=_first_page)

page_number = st.session_state.get("clients_page", 1)
with read_session(engine) as session:
    result = clients.list_clients(
        session,
        actor=actor,
        query=query,
        statuses=tuple(statuses),
        clinician_id=clinician_id or None,
        has_balance=has_balance,
        sort=sort,
        descending=descending,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )

pages = max(1, -(-result.count // PAGE_SIZE))
if result.totals is not None:
    m = st.columns(5)
    m[0].metric("Clients", f"{result.count:,}")
    m[1].metric("Client due", format_cents(result.totals.client_due_cents))
    m[2].metric("Insurance pending", format_cents(result.totals.insurance_pending_cents))
    m[3].metric("Unapplied credit", format_cents(result.totals.unapplied_credit_cents))
    m[4].metric("Total balance", format_cents(result.totals.total_cents))
else:
    st.metric("Clients", f"{result.count:,}")

st.dataframe(
    client_list_frame(result),
    hide_index=True,
    width="stretch",
    column_config=client_list_column_config(result.shows_balances),
    key="clients_table",
)
if pages > 1:
    st.number_input(
        f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key="clients_page"
    )
