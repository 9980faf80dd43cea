"""Reports › Document log (spec D3): everything the practice sent to clients, newest first,
with filters, resend and export. Clinicians see their own clients' rows only."""

import streamlit as st

from lib import documents
from lib.db import read_session
from lib.policy import allowed
from ui import context, documents_tab
from ui.export import export_buttons

PAGE_SIZE = 100


def _first_page() -> None:
    st.session_state["doclog_page"] = 1


actor = context.actor()
tz = context.settings().practice_time_zone
st.title("Document log")
st.caption(
    "Forms, statements, receipts, portal invitations and reminders sent to clients. "
    f"Times are {tz} time."
)

filters = documents_tab.log_filters("doclog", with_client=True, on_change=_first_page)
page_number = st.session_state.get("doclog_page", 1)
with read_session(context.engine()) as session:
    result = documents.search_log(
        session,
        actor=actor,
        tz_name=tz,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
        **filters,
    )
pages = max(1, -(-result.total // PAGE_SIZE))
if page_number > pages:  # the filters shrank the log since the page was chosen
    _first_page()
    st.rerun()

st.metric("Documents", f"{result.total:,}")
if not result.rows:
    st.info("Nothing in the log matches these filters.")
else:
    picked = documents_tab.log_table(result.rows, key="doclog_table", with_client=True)
    st.caption("Click a row to open the client or resend it.")
    if picked is not None:
        c1, c2, _ = st.columns([1, 1, 3])
        if c1.button("Open client", icon=":material/person:", key="doclog_open"):
            st.switch_page("pages/client.py", query_params={"client": str(picked.client_number)})
        with c2:
            documents_tab.resend_button(picked, key="doclog")

nav, exports = st.columns([1, 1], vertical_alignment="bottom")
if pages > 1:
    nav.number_input(
        f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key="doclog_page"
    )
if result.rows and allowed(actor, "client.export"):
    with exports:
        export_buttons(
            documents_tab.log_frame(result.rows, with_client=True),
            name="document-log",
            what="document_log",
            action="client.export",
        )
documents_tab.show_send_dialog()
