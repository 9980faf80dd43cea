"""A/R trends: month-end A/R over 12 or 24 months by aging bucket, client vs insurance, the
months' charges, payments and adjustments, and the practice's KPIs for a chosen month.

Every month-end is the ledger as it stood at the end of that month's last day (the same rule
as "as of" on Outstanding balances), so a past month never changes.
"""

import streamlit as st

from lib import aging, ar_trend, clients
from lib.db import read_session
from ui import context
from ui import trends as ui
from ui.export import export_buttons
from ui.tables import money_column

actor = context.actor()
engine = context.engine()
st.title("A/R trends")

with read_session(engine) as session:
    clinician_names = dict(clients.clinician_choices(session))
    payer_options = dict(aging.payer_choices(session))
payer_values = {f"{ref.payer_id or ''}:{ref.name_key}": ref for ref in payer_options}

c1, c2, c3, c4 = st.columns(4)
months_n = c1.segmented_control(
    "Months", [12, 24], default=12, key="trend_months", format_func=lambda n: f"{n} months"
)
clinician_id = c2.selectbox(
    "Clinician",
    [0, *clinician_names],
    format_func=lambda c: clinician_names.get(c, "All clinicians"),
    key="trend_clinician",
)
payer_value = c3.selectbox(
    "Payer",
    ["", *payer_values],
    format_func=lambda v: payer_options[payer_values[v]] if v else "All payers",
    key="trend_payer",
)
edges_text = c4.text_input(
    "Bucket edges (days)",
    value="30, 60, 90, 120",
    key="trend_edges",
    help="Where each aging bucket ends, in days after the date of service.",
)
try:
    edges = aging.parse_edges(edges_text)
except ValueError as exc:
    c4.error(str(exc))
    st.stop()
payer = payer_values.get(payer_value)

with read_session(engine) as session:
    months = ar_trend.trend(
        session,
        actor=actor,
        months=months_n or 12,
        clinician_id=clinician_id or None,
        payer_id=payer,
        edges=edges,
    )

bucket_list = aging.buckets(edges)
month_order = [ui.month_label(m) for m in months]
frame = ui.months_frame(months)
st.caption(
    "Each month-end counts every ledger entry posted through the end of that month's last day "
    "(practice time) and nothing after, charges aged by date of service on that day; the "
    "current month counts to today. Credit is the whole practice's, the chosen payer's, or "
    "none when a clinician is chosen; with a clinician chosen only charges are shown (a "
    "payment is the client's or a payer's, not a clinician's)."
)

st.subheader("Month-end A/R by aging bucket")
st.altair_chart(
    ui.bucket_chart(
        ui.bucket_long_frame(months, bucket_list), month_order, [b.label for b in bucket_list]
    ),
    width="stretch",
)
left, right = st.columns(2)
with left:
    st.subheader("Client vs insurance")
    st.altair_chart(ui.parts_chart(frame, month_order), width="stretch")
with right:
    st.subheader("Charges, payments, adjustments")
    st.altair_chart(ui.flows_chart(frame, month_order), width="stretch")

st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config={c: money_column(c) for c in ui.MONEY},
)
export_buttons(
    frame,
    name="ar-trend",
    what="ar_trend",
    action="report.trends",
)

st.subheader("KPIs")
complete = [m for m in months if not m["partial"]] or months
labels = {ui.month_label(m): m for m in months}
period = st.selectbox(
    "Period",
    list(labels),
    index=list(labels).index(ui.month_label(complete[-1])),
    key="trend_period",
    help="A month; the current month counts to today.",
)
chosen = labels[period]
ui.kpi_tiles(chosen)
st.markdown("**Average days to payment, by payer**")
if st.button("Work it out for this month", key="trend_days_to_payment"):
    with (
        st.spinner("Replaying the month's payments…"),
        read_session(engine) as session,
    ):
        rows = ar_trend.period_days_to_payment(
            session,
            actor=actor,
            month=chosen["month_end"],
            clinician_id=clinician_id or None,
            payer_id=payer,
        )
    st.dataframe(ui.days_to_payment_frame(rows), hide_index=True, width="stretch")
    if not rows:
        st.caption("No charge was paid in full in this month.")
st.caption(ar_trend.KPI_DEFINITIONS["days_to_payment"][1])
