"""Outstanding balances: A/R totals, aging by date of service, by clinician and by payer.

Select a row of any breakdown to list the clients behind it.
"""

import pandas as pd
import streamlit as st

from lib import aging, clients, payers, statements
from lib.db import read_session, transaction
from lib.money import format_cents
from lib.policy import allowed
from lib.timeutil import practice_today
from ui import context, generated
from ui.export import export_buttons
from ui.tables import money_column

actor = context.actor()
engine = context.engine()
st.title("Outstanding balances")

with read_session(engine) as session:
    clinician_names = dict(clients.clinician_choices(session))
    payer_names = {p.payer_id: p.name for p in payers.list_payers(session, include_inactive=True)}

c1, c2, c3, c4 = st.columns(4)
as_of = c1.date_input("As of", value=practice_today(), format="MM/DD/YYYY", key="ar_as_of")
edges_text = c2.text_input(
    "Bucket edges (days)",
    value="30, 60, 90, 120",
    key="ar_edges",
    help="Where each aging bucket ends, in days after the date of service.",
)
clinician_id = c3.selectbox(
    "Clinician",
    [0, *clinician_names],
    format_func=lambda c: clinician_names.get(c, "All clinicians"),
    key="ar_clinician",
)
payer_id = c4.selectbox(
    "Payer",
    [0, *payer_names],
    format_func=lambda p: payer_names.get(p, "All payers"),
    key="ar_payer",
)
try:
    edges = aging.parse_edges(edges_text)
except ValueError as exc:
    c2.error(str(exc))
    st.stop()

with read_session(engine) as session:
    report = aging.report(
        session,
        actor=actor,
        as_of=as_of,
        edges=edges,
        clinician_id=clinician_id or None,
        payer_id=payer_id or None,
    )

m = st.columns(5)
m[0].metric("Total A/R", format_cents(report.total_ar_cents))
m[1].metric("Client due", format_cents(report.client_due_cents))
m[2].metric("Insurance pending", format_cents(report.insurance_pending_cents))
m[3].metric("Unapplied credit", format_cents(report.unapplied_credit_cents))
m[4].metric("Net (after credit)", format_cents(report.net_cents))
st.caption(
    "Aged by date of service as of the date above; charges dated after it are left out. "
    "Unapplied credit is shown for the whole practice when no clinician or payer is chosen."
)

labels = {b.key: b.label for b in report.buckets}


def breakdown(rows: list[aging.AgingRow], first: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                first: r.label,
                **{labels[k]: v / 100 for k, v in r.amounts.items()},
                "Total": r.total_cents / 100,
            }
            for r in rows
        ],
        columns=[first, *labels.values(), "Total"],
    )


money = {name: money_column(name) for name in [*labels.values(), "Total"]}
bucket_frame = pd.DataFrame(
    [
        {
            "Bucket (days)": b.label,
            "Client": next((r.amounts[b.key] for r in report.by_bucket if r.key == "client"), 0)
            / 100,
            "Insurance": next(
                (r.amounts[b.key] for r in report.by_bucket if r.key == "insurance"), 0
            )
            / 100,
        }
        for b in report.buckets
    ],
    columns=["Bucket (days)", "Client", "Insurance"],
)
bucket_frame["Total"] = bucket_frame["Client"] + bucket_frame["Insurance"]

st.subheader("Aging")
st.bar_chart(
    bucket_frame,
    x="Bucket (days)",
    y=["Client", "Insurance"],
    stack=True,
    y_label="Owed ($)",
    height=260,
)
pick_bucket = st.dataframe(
    bucket_frame,
    hide_index=True,
    width="stretch",
    key="ar_bucket_table",
    column_config={k: money_column(k) for k in ("Client", "Insurance", "Total")},
    on_select="rerun",
    selection_mode="single-row",
)
export_buttons(bucket_frame, name="aging-buckets", what="aging_buckets", action="report.balances")

left, right = st.columns(2)
with left:
    st.subheader("By clinician")
    clinician_frame = breakdown(report.by_clinician, "Clinician")
    st.bar_chart(clinician_frame, x="Clinician", y="Total", height=220, y_label="Owed ($)")
    pick_clinician = st.dataframe(
        clinician_frame,
        hide_index=True,
        width="stretch",
        key="ar_clinician_table",
        column_config=money,
        on_select="rerun",
        selection_mode="single-row",
    )
    export_buttons(
        clinician_frame,
        name="aging-by-clinician",
        what="aging_by_clinician",
        action="report.balances",
    )
with right:
    st.subheader("By payer")
    payer_frame = breakdown(report.by_payer, "Payer")
    st.bar_chart(payer_frame, x="Payer", y="Total", height=220, y_label="Owed ($)")
    pick_payer = st.dataframe(
        payer_frame,
        hide_index=True,
        width="stretch",
        key="ar_payer_table",
        column_config=money,
        on_select="rerun",
        selection_mode="single-row",
    )
    export_buttons(
        payer_frame, name="aging-by-payer", what="aging_by_payer", action="report.balances"
    )

# Whichever breakdown row was selected last decides the client list below.
selection = {
    "bucket_key": None,
    "clinician_id": clinician_id or None,
    "payer_id": payer_id or None,
    "responsibility": None,
}
title = "Clients with a balance"
if pick_bucket.selection.rows:
    bucket = report.buckets[pick_bucket.selection.rows[0]]
    selection["bucket_key"] = bucket.key
    title = f"Clients owing {bucket.label} days"
if pick_clinician.selection.rows:
    row = report.by_clinician[pick_clinician.selection.rows[0]]
    selection["clinician_id"] = row.key
    title += f" · clinician {row.label}"
if pick_payer.selection.rows:
    row = report.by_payer[pick_payer.selection.rows[0]]
    if row.key is None:
        selection["responsibility"] = "client"
    else:
        selection["payer_id"] = row.key
        selection["responsibility"] = "insurance"
    title += f" · {row.label}"

st.subheader(title)
with read_session(engine) as session:
    behind = aging.clients_behind(session, actor=actor, as_of=as_of, edges=edges, **selection)
client_frame = pd.DataFrame(
    [
        {
            "Client #": c.client_number,
            "Name": c.name,
            "Clinician": c.clinician,
            "Owed": c.amount_cents / 100,
            "Oldest unpaid": c.oldest_dos,
        }
        for c in behind
    ],
    columns=["Client #", "Name", "Clinician", "Owed", "Oldest unpaid"],
)
opened = st.dataframe(
    client_frame,
    hide_index=True,
    width="stretch",
    key="ar_clients",
    column_config={
        "Owed": money_column("Owed"),
        "Client #": st.column_config.NumberColumn("Client #", format="%d"),
        "Oldest unpaid": st.column_config.DateColumn("Oldest unpaid", format="MM/DD/YYYY"),
    },
    on_select="rerun",
    selection_mode="single-row",
)
if opened.selection.rows:
    chosen = behind[opened.selection.rows[0]]
    st.switch_page("pages/client.py", query_params={"client": str(chosen.client_number)})
st.caption(f"{len(behind):,} clients · click one to open it")
export_buttons(client_frame, name="aging-clients", what="aging_clients", action="report.balances")
if behind and allowed(actor, "statement.create"):
    # The batch belongs to exactly these clients on this as-of date: a filter change drops it.
    batch_owner = (as_of, tuple(c.client_id for c in behind))
    if st.button(f"Statements for these {len(behind):,} clients (one PDF)", key="ar_statements"):
        with transaction(engine) as session:
            pdf, name = statements.create_statements(
                session,
                actor=actor,
                client_ids=[c.client_id for c in behind],
                data_dir=context.settings().data_dir,
            )
        generated.keep(
            "batch_statements",
            owner=batch_owner,
            file_name=name,
            content=pdf,
            mime="application/pdf",
        )
    ready = generated.ready("batch_statements", owner=batch_owner)
    if ready:
        st.download_button(
            "Download the statements",
            data=ready.content,
            file_name=ready.file_name,
            mime=ready.mime,
            key="ar_statements_dl",
        )
        st.caption("Each statement is logged in the client's Documents.")
