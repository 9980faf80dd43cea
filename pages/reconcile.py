"""Reconciliation: the ledger, the stored balances and the aging report must agree (B6)."""

import pandas as pd
import streamlit as st

from lib.db import read_session
from lib.money import format_cents
from lib.reconcile import reconcile
from ui import context

actor = context.actor()
st.title("Reconciliation")
st.caption(
    "Checks that the sum of the ledger equals the sum of the stored client balances and the sum "
    "of the aging buckets (less unapplied credit), and replays every client's ledger against "
    "their stored balance. The same check runs from the command line: "
    "`python -m lib.cli reconcile`."
)
if st.button("Run reconciliation", type="primary", icon=":material/fact_check:"):
    with st.spinner("Replaying every client's ledger…"), read_session(context.engine()) as s:
        st.session_state["cd_reconcile"] = reconcile(s, actor=actor)

result = st.session_state.get("cd_reconcile")
if result is not None:
    m = st.columns(3)
    m[0].metric("Ledger total", format_cents(result.ledger_total_cents))
    m[1].metric("Stored client balances", format_cents(result.balances_total_cents))
    m[2].metric("Aging buckets less credit", format_cents(result.aging_total_cents))
    if result.ok:
        st.success(f"Reconciled: all three agree and all {result.clients_checked:,} clients match.")
    else:
        st.error("Not reconciled. The clients and totals below disagree with the ledger.")
        for problem in result.totals_problems:
            st.text(problem)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Client #": m.client_number,
                        "Stored total": format_cents(m.stored_total_cents),
                        "Ledger total": format_cents(m.ledger_total_cents),
                        "Problem": m.detail,
                    }
                    for m in result.mismatches
                ]
            ),
            hide_index=True,
            width="stretch",
        )
