"""Outstanding balances: A/R totals, aging by date of service, by clinician and by payer.

"As of" is point in time: a past day shows the ledger as it stood at the end of that day.
Select a row of any breakdown to list the clients behind it.
"""

import pandas as pd
import streamlit as st

from lib import aging, clients, export, statements
from lib.db import read_session, transaction
from lib.policy import allowed
from lib.timeutil import practice_today
from ui import balances as ui
from ui import context, generated
from ui.export import export_buttons
from ui.intake_tab import literal
from ui.tables import money_column

actor = context.actor()
engine = context.engine()
st.title("Outstanding balances")

with read_session(engine) as session:
    clinician_names = dict(clients.clinician_choices(session))
    payer_options = dict(aging.payer_choices(session))
payer_values = {f"{ref.payer_id or ''}:{ref.name_key}": ref for ref in payer_options}

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
payer_value = c4.selectbox(
    "Payer",
    ["", *payer_values],
    format_func=lambda v: payer_options[payer_values[v]] if v else "All payers",
    key="ar_payer",
)
try:
    edges = aging.parse_edges(edges_text)
except ValueError as exc:
    c2.error(str(exc))
    st.stop()
payer = payer_values.get(payer_value)

history = ui.history_for(engine, actor, as_of)
with read_session(engine) as session:
    report = aging.report(
        session,
        actor=actor,
        as_of=as_of,
        edges=edges,
        clinician_id=clinician_id or None,
        payer=payer,
        history=history,
    )

ui.headline(report)
st.caption(
    f"As of {as_of:%m/%d/%Y}: every ledger entry posted through the end of that day "
    "(practice time) and nothing after, charges aged by date of service on that day. "
    "Credit is shown for the whole practice, for the chosen payer, or not at all when a "
    "clinician is chosen."
)

labels = {b.key: b.label for b in report.buckets}
bucket_frame = ui.bucket_frame(report)


filters = (
    ("Clinician", clinician_names.get(clinician_id, "All clinicians")),
    ("Payer", payer_options[payer] if payer else "All payers"),
)


def about(title: str, money: list[str], selected: tuple = ()) -> export.About:
    return export.About(
        title=title,
        as_of=as_of,
        edges=edges,
        details=(*filters, *selected),
        money_columns=tuple(money),
    )


bucket_pick = ui.remembered_pick("bucket", [(b.key, b.label) for b in report.buckets])
clinician_frame = ui.breakdown_frame(report, report.by_clinician, "Clinician")
clinician_pick = ui.remembered_pick("clinician", [(r.key, r.label) for r in report.by_clinician])
payer_frame = ui.breakdown_frame(report, report.by_payer, "Payer", credit=True)
payer_pick = ui.remembered_pick("payer", [(r.key, r.label) for r in report.by_payer])

st.subheader("Aging")
st.altair_chart(ui.aging_chart(bucket_frame, list(labels.values())), width="stretch")
ui.pickable_table("bucket", bucket_frame, ["Client", "Insurance", "Total"])
export_buttons(
    bucket_frame,
    name="aging-buckets",
    what="aging_buckets",
    action="report.balances",
    about=about("Aging by bucket", ["Client", "Insurance", "Total"]),
)

left, right = st.columns(2)
with left:
    st.subheader("By clinician")
    if not clinician_frame.empty:
        st.altair_chart(ui.ranked_chart(clinician_frame, "Clinician"), width="stretch")
    ui.pickable_table("clinician", clinician_frame, [*labels.values(), "Total"])
    export_buttons(
        clinician_frame,
        name="aging-by-clinician",
        what="aging_by_clinician",
        action="report.balances",
        about=about("Aging by clinician", [*labels.values(), "Total"]),
    )
with right:
    st.subheader("By payer")
    if not payer_frame.empty:
        st.altair_chart(ui.ranked_chart(payer_frame, "Payer"), width="stretch")
    ui.pickable_table("payer", payer_frame, [*labels.values(), "Total", "Unapplied credit"])
    export_buttons(
        payer_frame,
        name="aging-by-payer",
        what="aging_by_payer",
        action="report.balances",
        about=about("Aging by payer", [*labels.values(), "Total", "Unapplied credit"]),
    )

# Every selected row narrows the client list below; filters above still apply.
selection = {
    "bucket_key": None,
    "clinician_id": clinician_id or None,
    "payer": payer,
    "responsibility": None,
}
parts = []
title = "Clients with a balance"
if bucket_pick:
    selection["bucket_key"] = bucket_pick[0]
    title = f"Clients owing {bucket_pick[1]} days"
    parts.append(f"{bucket_pick[1]} days")
if clinician_pick:
    selection["clinician_id"] = clinician_pick[0]
    title += f" · clinician {clinician_pick[1]}"
    parts.append(clinician_pick[1])
if payer_pick:
    if payer_pick[0] is None:
        selection["responsibility"] = "client"
    else:
        selection["payer"] = payer_pick[0]
        selection["responsibility"] = "insurance"
    title += f" · {payer_pick[1]}"
    parts.append(payer_pick[1])
ui.show_selection(parts)

st.subheader(literal(title))
with read_session(engine) as session:
    behind = aging.clients_behind(
        session, actor=actor, as_of=as_of, edges=edges, history=history, **selection
    )
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
opened_pick = ui.remembered_pick(
    "clients", [(c.client_number, str(c.client_number)) for c in behind]
)
st.dataframe(
    client_frame,
    hide_index=True,
    width="stretch",
    key=ui.table_key("clients"),
    column_config={
        "Owed": money_column("Owed"),
        "Client #": st.column_config.NumberColumn("Client #", format="%d"),
        "Oldest unpaid": st.column_config.DateColumn("Oldest unpaid", format="MM/DD/YYYY"),
    },
    on_select="rerun",
    selection_mode="single-row",
)
if opened_pick:
    st.session_state.pop(ui.table_key("clients"), None)
    st.switch_page("pages/client.py", query_params={"client": str(opened_pick[0])})
st.caption(f"{len(behind):,} clients · click one to open it")
export_buttons(
    client_frame,
    name="aging-clients",
    what="aging_clients",
    action="report.balances",
    about=about(title, ["Owed"], (("Selected", " · ".join(parts) or "Nothing"),)),
)
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
