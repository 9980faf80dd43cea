"""Read-only tabs of the client record: what the database holds, shown literally in tables."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lib import client_record as cr
from lib import documents, intake, ledger, portal, reminders
from lib.db import read_session
from lib.timeutil import local_text
from ui import context
from ui.tables import money_column


def _tz() -> str:
    return context.settings().practice_time_zone


def _fmt_setting(value) -> str:
    if value is None:
        return "Use default"
    if isinstance(value, bool):
        return "On" if value else "Off"
    return str(value)


def reminders_portal_tab(client_id: int) -> None:
    actor = context.actor()
    with read_session(context.engine()) as session:
        settings = reminders.effective_settings(session, actor=actor, client_id=client_id)
        invitations = portal.invitations_for_client(session, actor=actor, client_id=client_id)
    st.markdown("**Reminders and portal settings**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Setting": s.label,
                    "Default": _fmt_setting(s.default_value),
                    "Default from": s.default_source,
                    "This client": _fmt_setting(s.override),
                    "Effective": _fmt_setting(s.effective),
                }
                for s in settings
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.markdown("**Portal invitations**")
    if not invitations:
        st.caption("Not invited to the portal.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Email": i.email,
                    "Invited": local_text(i.created_at, _tz()),
                    "Sent": local_text(i.sent_at, _tz()),
                    "Expires": local_text(i.expires_at, _tz()),
                    "Status": i.status,
                }
                for i in invitations
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def other_information_tab(client_id: int) -> None:
    with read_session(context.engine()) as session:
        rows = intake.answers_for_client(session, actor=context.actor(), client_id=client_id)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Question": r.label + ("" if r.active else " (retired)"),
                    "Answer": r.answer_text,
                    "Source": r.source,
                    "Answered": local_text(r.answered_at, _tz()),
                }
                for r in rows
            ],
            columns=["Question", "Answer", "Source", "Answered"],
        ),
        hide_index=True,
        width="stretch",
    )


def documents_tab(client_id: int) -> None:
    with read_session(context.engine()) as session:
        rows = documents.log_for_client(session, actor=context.actor(), client_id=client_id)
    if not rows:
        st.caption("Nothing has been sent to this client yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Sent": local_text(r.sent_at, _tz()),
                    "What": r.kind,
                    "Forms": r.forms,
                    "To": r.recipient,
                    "Channel": r.channel,
                    "Status": r.status,
                    "Error": r.error,
                    "Sender": r.sender,
                }
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch",
    )


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
