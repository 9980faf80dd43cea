"""Clients: search as you type, filter, sort and page through clients with their balances."""

import streamlit as st

from lib import aging, clients, payers
from lib.db import read_session
from lib.money import format_cents
from lib.policy import allowed, sees_only_own_clients
from ui import context
from ui.export import scoped_export_buttons
from ui.tables import CLIENT_LIST_SORTS, client_list_column_config, client_list_frame

PAGE_SIZES = (50, 100, 250, 500)
SORT_LABELS = {
    "name": "Name",
    "client_number": "Client #",
    "dob": "Date of birth",
    "status": "Status",
    "clinician": "Clinician",
    "email": "Email",
    "phone": "Phone",
    "total": "Total balance",
    "client_due": "Client due",
    "insurance_pending": "Insurance pending",
    "unapplied_credit": "Unapplied credit",
    "oldest_unpaid": "Oldest unpaid",
}


TABLE_GENERATION = "clients_table_generation"


def table_key() -> str:
    """The grid's widget key. A header click starts a new grid (a new key): the browser keeps
    a column selected until the grid is new, and a second click on the same header would
    otherwise just unselect it."""
    generation = st.session_state.get(TABLE_GENERATION, 0)
    return "clients_table" if not generation else f"clients_table_{generation}"


def _first_page() -> None:
    st.session_state["clients_page"] = 1


def _apply_header_click() -> None:
    """A click on a column header sorts every matching client on the server (a second click on
    the same column turns the order round). Runs before the sort widgets are drawn, so it may
    set them. Row and cell clicks are handled after the table is drawn."""
    state = st.session_state.get(table_key()) or {}
    columns = (state.get("selection") or {}).get("columns") or []
    if not columns:
        return
    st.session_state[TABLE_GENERATION] = st.session_state.get(TABLE_GENERATION, 0) + 1
    sort = CLIENT_LIST_SORTS.get(columns[0])
    if sort is None:
        return
    if st.session_state.get("clients_sort") == sort:
        st.session_state["clients_desc"] = not st.session_state.get("clients_desc", False)
    else:
        st.session_state["clients_sort"] = sort
        st.session_state["clients_desc"] = False
    _first_page()


def _include_statuses(more: list[str]) -> None:
    st.session_state["clients_status"] = [*st.session_state.get("clients_status", []), *more]
    _first_page()


actor = context.actor()
engine = context.engine()
_apply_header_click()
shows_money = allowed(actor, "balance.view")

title, add = st.columns([4, 1], vertical_alignment="bottom")
title.title("Clients")
if allowed(actor, "client.create") and add.button("Add client", icon=":material/person_add:"):
    st.switch_page("pages/client_new.py")

with read_session(engine) as session:
    clinicians = dict(clients.clinician_choices(session))
    payer_names = {p.payer_id: p.label for p in payers.list_payers(session)}

query = st.text_input(
    "Search clients",
    key="clients_query",
    type="search",
    live=True,
    on_change=_first_page,
    persist_state="session",
    placeholder="Name, phone, email, date of birth (3/7/1985) or client #",
)
f1, f2, f3, f4 = st.columns(4)
statuses = f1.multiselect(
    "Status",
    options=list(clients.STATUS_LABELS),
    default=["active"],
    format_func=clients.STATUS_LABELS.get,
    key="clients_status",
    on_change=_first_page,
    persist_state="session",
)
clinician_id = 0
if not sees_only_own_clients(actor):
    clinician_id = f2.selectbox(
        "Clinician",
        options=[0, *clinicians],
        format_func=lambda cid: clinicians.get(cid, "All clinicians"),
        key="clients_clinician",
        on_change=_first_page,
        persist_state="session",
    )
payer_id = f3.selectbox(
    "Payer",
    options=[0, *payer_names],
    format_func=lambda pid: payer_names.get(pid, "All payers"),
    key="clients_payer",
    on_change=_first_page,
    persist_state="session",
)
bucket_labels = {b.key: f"{b.label} days" for b in aging.buckets()}
bucket = None
has_balance = False
if shows_money:
    bucket = f4.selectbox(
        "Aging bucket (unpaid since)",
        options=[None, *bucket_labels],
        format_func=lambda k: bucket_labels.get(k, "Any age"),
        key="clients_bucket",
        on_change=_first_page,
        persist_state="session",
    )
s1, s2, s3, s4 = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
sort_options = [k for k in SORT_LABELS if shows_money or k in clients.SORTS]
sort = s1.selectbox(
    "Sort by",
    sort_options,
    format_func=SORT_LABELS.get,
    key="clients_sort",
    on_change=_first_page,
    persist_state="session",
)
descending = s2.toggle(
    "Descending", key="clients_desc", on_change=_first_page, persist_state="session"
)
if shows_money:
    has_balance = s3.toggle("Has balance", key="clients_has_balance", on_change=_first_page)
page_size = s4.selectbox(
    "Rows per page",
    PAGE_SIZES,
    key="clients_page_size",
    on_change=_first_page,
    persist_state="session",
)

page_number = st.session_state.get("clients_page", 1)
listing = dict(
    actor=actor,
    query=query or "",
    statuses=tuple(statuses),
    clinician_id=clinician_id or None,
    payer_id=payer_id or None,
    has_balance=has_balance,
    aging_bucket=bucket,
    sort=sort,
    descending=descending,
)
with read_session(engine) as session:
    result = clients.list_clients(
        session, **listing, limit=page_size, offset=(page_number - 1) * page_size
    )

if result.search_note:  # the box keeps what was typed; the note says what was searched
    st.info(result.search_note, icon=":material/info:")
if result.elsewhere:
    more = sum(result.elsewhere.values())
    where = ", ".join(clients.STATUS_LABELS[s] for s in result.elsewhere)
    note, include = st.columns([3, 1], vertical_alignment="center")
    note.info(f"No match under this status filter; {more:,} more in {where}.")
    include.button(
        f"Include {where}",
        key="clients_include_elsewhere",
        on_click=_include_statuses,
        args=(list(result.elsewhere),),
        icon=":material/add:",
    )
pages = max(1, -(-result.count // page_size))
if page_number > pages:  # the list shrank since the page was chosen
    _first_page()
    st.rerun()
if result.totals is not None:
    m = st.columns(5)
    m[0].metric("Clients", f"{result.count:,}")
    m[1].metric("Client due", format_cents(result.totals.client_due_cents))
    m[2].metric("Insurance pending", format_cents(result.totals.insurance_pending_cents))
    m[3].metric("Unapplied credit", format_cents(result.totals.unapplied_credit_cents))
    m[4].metric("Total balance", format_cents(result.totals.total_cents))
else:
    st.metric("Clients", f"{result.count:,}")

frame = client_list_frame(result)
# Row and cell selection: a click anywhere in a row opens the client. Column selection: a
# header click sorts on the server (Streamlit then turns its in-browser sort off, which sorted
# only this page and left the export in another order).
event = st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config=client_list_column_config(result.shows_balances),
    key=table_key(),
    on_select="rerun",
    selection_mode=["single-row", "single-cell", "single-column"],
    placeholder="",
)
selection = event.selection
picked = [*selection.get("rows", []), *(cell[0] for cell in selection.get("cells", []))]
if picked and picked[0] < len(result.rows):
    chosen = result.rows[picked[0]]
    st.switch_page("pages/client.py", query_params={"client": str(chosen.client_number)})
arrow = "descending" if descending else "ascending"
st.caption(
    f"Sorted by {SORT_LABELS[sort]}, {arrow}, over all {result.count:,} clients. "
    "Click a name or any cell to open the client; click a column header to sort by it."
)


def _all_matching():
    """Every matching client in the order on screen, read when an export button is clicked."""
    with read_session(engine) as session:
        everything = clients.list_clients(session, **listing, limit=max(result.count, 1))
    return client_list_frame(everything)


nav, exports = st.columns([1, 1], vertical_alignment="bottom")
if pages > 1:
    nav.number_input(
        f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key="clients_page"
    )
if allowed(actor, "client.export"):
    with exports:
        scoped_export_buttons(
            frame,
            _all_matching,
            total=result.count,
            noun="clients",
            name="clients",
            what="client_list",
            action="client.export",
        )
