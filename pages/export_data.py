"""Settings › Export all data (admins): every table the practice owns as CSV in one zip, with
a README naming the columns, for moving to another system or a spreadsheet. Built only when
the button is clicked, and audited."""

import streamlit as st

from lib import data_export
from lib.db import transaction
from lib.timeutil import practice_today
from ui import context
from ui.export import download_button

actor = context.actor()
engine = context.engine()
st.title("Export all data")
st.write(
    "One zip file with every table the practice keeps in ClientDesk as a CSV file (clients, "
    "insurance, appointments, the ledger, intake answers, the document log, the audit log, "
    "settings…) and a README that names every column. Password hashes, invitation tokens and "
    "other secrets are left out. The export is recorded in the audit log."
)
st.caption(
    "A large practice's export can take a minute to prepare. It holds every client's "
    "personal and health information: keep the file as safe as the practice's records."
)


def build() -> bytes:
    with transaction(engine) as session:  # one snapshot of every table, and its audit row
        return data_export.export_all(session, actor=actor).data


download_button(
    "Export all data (zip)",
    build=build,
    file_name=f"clientdesk-export-{practice_today().isoformat()}.zip",
    mime="application/zip",
    key="export_all_data",
)
