"""Read-only tabs of the client record: what the database holds, shown literally in tables."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lib import client_record as cr
from lib import data_export, ledger
from lib.db import read_session, transaction
from lib.timeutil import local_text, practice_today
from ui import context
from ui.export import download_button
from ui.tables import money_column


def _tz() -> str:
    return context.settings().practice_time_zone


def billing_tab(client_id: int) -> None:
    with read_session(context.engine()) as session:
        lines = ledger.client_ledger(session, actor=context.actor(), client_id=client_id)
    if not lines:
        st.caption("No charges or payments yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "#": line.entry_id,
                    "Date": line.service_date,
                    "Type": line.kind + (" (reversed)" if line.reversed else ""),
                    "Description": line.description,
                    "Amount": line.amount_cents / 100,
                    "Balance": line.running_balance_cents / 100,
                }
                for line in lines
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "Date": st.column_config.DateColumn("Date", format="MM/DD/YYYY"),
            "Amount": money_column("Amount"),
            "Balance": money_column("Balance"),
        },
    )


def history_tab(client_id: int) -> None:
    actor = context.actor()
    with read_session(context.engine()) as session:
        statuses = cr.status_history(session, actor=actor, client_id=client_id)
        rows = cr.history(session, actor=actor, client_id=client_id)
    st.markdown("**Status history**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When": local_text(s.changed_at, _tz()),
                    "From": s.old_status,
                    "To": s.new_status,
                    "Reason": s.reason,
                    "By": s.changed_by,
                }
                for s in statuses
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.markdown("**Audit trail** (newest first)")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When": local_text(r.at, _tz()),
                    "Who": r.actor_username,
                    "Action": r.action,
                    "Before": json.dumps(r.before, ensure_ascii=False) if r.before else "",
                    "After": json.dumps(r.after, ensure_ascii=False) if r.after else "",
                    "Detail": r.detail,
                }
                for r in rows
            ],
            columns=["When", "Who", "Action", "Before", "After", "Detail"],
        ),
        hide_index=True,
        width="stretch",
    )


def record_export_button(client_id: int, client_number: int) -> None:
    """ "Export this client's record": everything held about the client (right of access),
    built when clicked, audited on the client's history."""
    actor = context.actor()
    engine = context.engine()

    def build() -> bytes:
        with transaction(engine) as session:
            return data_export.export_client_record(session, actor=actor, client_id=client_id).data

    download_button(
        "Export this client's record",
        build=build,
        file_name=f"client-{client_number}-record-{practice_today().isoformat()}.zip",
        mime="application/zip",
        key=f"export_record_{client_id}",
        icon=":material/folder_zip:",
    )
