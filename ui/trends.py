"""Pieces of the Trends screen: month-end frames, the stacked charts and the KPI tiles.

Charts are Altair specs with an explicit order: months left to right, aging buckets stacked
youngest at the bottom in bucket order, so a growing old bucket is visible at a glance.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from lib import aging, ar_trend
from lib.money import format_cents, format_compact

MONTH = "Month end"


def month_label(figures: dict) -> str:
    label = figures["month_end"].strftime("%b %Y")
    return f"{label} (to {figures['month_end']:%m/%d})" if figures["partial"] else label


def bucket_long_frame(months: list[dict], bucket_list: list[aging.Bucket]) -> pd.DataFrame:
    """One row per (month, bucket): what was owed at that month-end in that bucket."""
    return pd.DataFrame(
        [
            {
                MONTH: month_label(m),
                "Bucket (days)": b.label,
                "order": i,
                "Owed": m["buckets"][b.key] / 100,
            }
            for m in months
            for i, b in enumerate(bucket_list)
        ],
        columns=[MONTH, "Bucket (days)", "order", "Owed"],
    )


def months_frame(months: list[dict]) -> pd.DataFrame:
    """The month-end table exactly as shown: A/R, its parts, the month's flows."""

    def dollars(cents: int | None) -> float | None:
        return None if cents is None else cents / 100

    return pd.DataFrame(
        [
            {
                MONTH: month_label(m),
                "Net A/R": dollars(m["net_ar_cents"]),
                "Client": dollars(m["client_cents"]),
                "Insurance": dollars(m["insurance_cents"]),
                "Unapplied credit": dollars(m["unapplied_credit_cents"]),
                "Charges": dollars(m["charges_cents"]),
                "Payments": dollars(m["payments_cents"]),
                "Adjustments": dollars(m["adjustments_cents"]),
                "Refunds": dollars(m["refunds_cents"]),
            }
            for m in months
        ]
    )


MONEY = [
    "Net A/R",
    "Client",
    "Insurance",
    "Unapplied credit",
    "Charges",
    "Payments",
    "Adjustments",
    "Refunds",
]


def bucket_chart(frame: pd.DataFrame, month_order: list[str], bucket_order: list[str]):
    """Stacked bars: month-end A/R by aging bucket, months in order, buckets in order."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{MONTH}:N", sort=month_order, axis=alt.Axis(labelAngle=-45, title=None)),
            y=alt.Y("sum(Owed):Q", title="Owed ($)", axis=alt.Axis(format="$,.0f")),
            color=alt.Color("Bucket (days):N", sort=bucket_order, title="Days since service"),
            order=alt.Order("order:Q"),
            tooltip=[
                f"{MONTH}:N",
                "Bucket (days):N",
                alt.Tooltip("Owed:Q", title="Owed", format="$,.2f"),
            ],
        )
        .properties(height=300)
    )


def parts_chart(frame: pd.DataFrame, month_order: list[str]):
    """Stacked bars: client and insurance parts of each month-end."""
    long = frame.melt(id_vars=[MONTH], value_vars=["Client", "Insurance"], var_name="Owed by")
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X(f"{MONTH}:N", sort=month_order, axis=alt.Axis(labelAngle=-45, title=None)),
            y=alt.Y("sum(value):Q", title="Owed ($)", axis=alt.Axis(format="$,.0f")),
            color=alt.Color("Owed by:N", sort=["Client", "Insurance"]),
            order=alt.Order("Owed by:N"),
            tooltip=[f"{MONTH}:N", "Owed by:N", alt.Tooltip("value:Q", format="$,.2f")],
        )
        .properties(height=260)
    )


def flows_chart(frame: pd.DataFrame, month_order: list[str]):
    """Side by side bars per month: charges, payments and adjustments posted."""
    long = frame.melt(
        id_vars=[MONTH], value_vars=["Charges", "Payments", "Adjustments"], var_name="Posted"
    ).dropna()
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X(f"{MONTH}:N", sort=month_order, axis=alt.Axis(labelAngle=-45, title=None)),
            xOffset=alt.XOffset("Posted:N", sort=["Charges", "Payments", "Adjustments"]),
            y=alt.Y("value:Q", title="Posted ($)", axis=alt.Axis(format="$,.0f")),
            color=alt.Color("Posted:N", sort=["Charges", "Payments", "Adjustments"]),
            tooltip=[f"{MONTH}:N", "Posted:N", alt.Tooltip("value:Q", format="$,.2f")],
        )
        .properties(height=260)
    )


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def kpi_tiles(figures: dict) -> None:
    """The period's KPIs, each with its definition in the tile's help (one click away)."""
    defs = ar_trend.KPI_DEFINITIONS
    days = figures["days_in_ar"]
    credit = figures["unapplied_credit_cents"]
    tiles = [
        ("days_in_ar", "—" if days is None else f"{days:.1f}"),
        ("gross_collection_rate", _percent(figures["gross_collection_rate"])),
        ("net_collection_rate", _percent(figures["net_collection_rate"])),
        ("pct_ar_over_90", _percent(figures["pct_ar_over_90"])),
        ("pct_ar_over_120", _percent(figures["pct_ar_over_120"])),
        ("unapplied_credit_cents", format_compact(credit)),
    ]
    for start in range(0, len(tiles), 3):
        for column, (key, value) in zip(st.columns(3), tiles[start : start + 3], strict=True):
            label, definition = defs[key]
            column.metric(label, value, help=definition, border=True)
            if key == "unapplied_credit_cents" and value != format_cents(credit):
                column.caption(format_cents(credit))
    with st.popover("What each figure means"):
        for label, definition in defs.values():
            st.markdown(f"**{label}** — {definition}")


def days_to_payment_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Payer": r["payer"],
                "Charges paid": r["charges_closed"],
                "Average days to payment": r["average_days"],
            }
            for r in rows
        ],
        columns=["Payer", "Charges paid", "Average days to payment"],
    )
