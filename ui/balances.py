"""Pieces of the Outstanding balances screen: headline figures, charts and row selections.

Charts are Altair specs with an explicit order (aging buckets in bucket order; clinicians and
payers by amount, largest first) and horizontal bars for names, so every label can be read.

A row selected in a breakdown table is remembered by what it is (a bucket, a clinician, a
payer), not by its position: when the report changes (another as-of date, other bucket edges,
another filter) the selection follows its row, or, when that row is gone, is cleared with a
notice. Nothing a user selects can point past the end of a table.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import date

import altair as alt
import pandas as pd
import streamlit as st

from lib import aging
from lib.db import read_session
from lib.ledger_as_of import LedgerAsOf
from lib.money import format_cents, format_compact
from lib.policy import Actor
from ui.intake_tab import literal
from ui.tables import money_column

TABLES = ("bucket", "clinician", "payer")
HISTORY = "ar_history"
CLEARED = "ar_cleared_notice"
ROW_HEIGHT = 30


def table_key(table: str) -> str:
    """The widget key of a table: ``ar_bucket_table``, ... and ``ar_clients`` (the list)."""
    return "ar_clients" if table == "clients" else f"ar_{table}_table"


def history_for(engine, actor: Actor, as_of: date) -> LedgerAsOf | None:
    """The ledger replayed to a past ``as_of`` (None for today), kept in this session while
    that day is shown: a past day never changes (later entries are posted after it), so every
    click on the report reuses one replay. Kept per session, never in a shared cache."""
    kept = st.session_state.get(HISTORY)
    if kept is not None and kept.day == as_of and aging.is_past(as_of):
        return kept
    st.session_state.pop(HISTORY, None)
    if not aging.is_past(as_of):
        return None
    with st.spinner(f"Replaying the ledger to {as_of:%m/%d/%Y}…"), read_session(engine) as session:
        history = aging.history_for(session, actor=actor, as_of=as_of)
    st.session_state[HISTORY] = history
    return history


def headline(report: aging.AgingReport) -> None:
    """The report's totals, three to a row. A large figure is shown short ($13.52M), so it
    is never cut off whatever the window or the practice's size, with the exact amount
    written under it."""
    figures = [
        ("Total A/R", report.total_ar_cents, "Everything still owed, before credit."),
        ("Client due", report.client_due_cents, None),
        ("Insurance pending", report.insurance_pending_cents, None),
        ("Unapplied credit", report.unapplied_credit_cents, "Clients' own credit."),
        (
            "Insurance credit",
            report.insurance_credit_cents,
            "What payers paid beyond their own open charges (by payer below).",
        ),
        ("Net (after credit)", report.net_cents, "Total A/R less all credit."),
    ]
    for start in range(0, len(figures), 3):
        for column, (label, cents, tip) in zip(
            st.columns(3), figures[start : start + 3], strict=True
        ):
            exact = format_cents(cents)
            short = format_compact(cents)
            column.metric(label, short, help=tip, border=True)
            if short != exact:
                column.caption(exact)


def bucket_frame(report: aging.AgingReport) -> pd.DataFrame:
    """The aging table: one row per bucket, in bucket order, client and insurance parts."""
    parts = {r.key: r.amounts for r in report.by_bucket}
    frame = pd.DataFrame(
        [
            {
                "Bucket (days)": b.label,
                "Client": parts.get("client", {}).get(b.key, 0) / 100,
                "Insurance": parts.get("insurance", {}).get(b.key, 0) / 100,
            }
            for b in report.buckets
        ],
        columns=["Bucket (days)", "Client", "Insurance"],
    )
    frame["Total"] = frame["Client"] + frame["Insurance"]
    return frame


def breakdown_frame(
    report: aging.AgingReport, rows: list[aging.AgingRow], first: str, credit: bool = False
) -> pd.DataFrame:
    """A by-clinician or by-payer table: amounts per bucket, the total and (by payer) the
    unapplied credit of each row."""
    labels = {b.key: b.label for b in report.buckets}
    columns = [first, *labels.values(), "Total", *(["Unapplied credit"] if credit else [])]
    return pd.DataFrame(
        [
            {
                first: r.label,
                **{labels[k]: v / 100 for k, v in r.amounts.items()},
                "Total": r.total_cents / 100,
                **({"Unapplied credit": r.credit_cents / 100} if credit else {}),
            }
            for r in rows
        ],
        columns=columns,
    )


def pickable_table(table: str, frame: pd.DataFrame, money_columns: list[str]) -> None:
    """A breakdown table whose rows can be selected (one at a time)."""
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key=table_key(table),
        column_config={c: money_column(c) for c in money_columns},
        on_select="rerun",
        selection_mode="single-row",
    )


def aging_chart(frame: pd.DataFrame, order: list[str]) -> alt.Chart:
    """Stacked client/insurance bars per bucket, in bucket order (not alphabetical)."""
    long = frame.melt(
        id_vars=["Bucket (days)"], value_vars=["Client", "Insurance"], var_name="Owed by"
    )
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("Bucket (days):N", sort=order, axis=alt.Axis(labelAngle=0, title=None)),
            y=alt.Y("sum(value):Q", title="Owed ($)", axis=alt.Axis(format="$,.0f")),
            color=alt.Color("Owed by:N", sort=["Client", "Insurance"]),
            order=alt.Order("Owed by:N"),
            tooltip=[
                "Bucket (days):N",
                "Owed by:N",
                alt.Tooltip("value:Q", title="Owed", format="$,.2f"),
            ],
        )
        .properties(height=260)
    )


def ranked_chart(frame: pd.DataFrame, label: str) -> alt.Chart:
    """Horizontal bars, largest amount on top, full names on the axis."""
    ranked = frame.sort_values("Total", ascending=False, kind="stable")
    order = ranked[label].tolist()
    return (
        alt.Chart(ranked[[label, "Total"]])
        .mark_bar()
        .encode(
            y=alt.Y(f"{label}:N", sort=order, axis=alt.Axis(title=None, labelLimit=320)),
            x=alt.X("Total:Q", title="Owed ($)", axis=alt.Axis(format="$.2~s")),
            tooltip=[f"{label}:N", alt.Tooltip("Total:Q", title="Owed", format="$,.2f")],
        )
        .properties(height=alt.Step(ROW_HEIGHT))  # one readable band per name
    )


def remembered_pick(table: str, rows: list[tuple[Hashable, str]]) -> tuple[Hashable, str] | None:
    """The row (key, label) selected in ``table`` this run, or None. Call before drawing the
    table; ``rows`` are the table's rows in the order about to be shown.

    The dataframe reports a position in the rows the user saw, so the position is read
    against the rows of the last run; the row is then found again in the new rows (and the
    checkbox moved there) or, when it is gone, the selection is cleared and a notice shown.
    """
    key, seen_key, pick_key = table_key(table), f"ar_{table}_seen", f"ar_{table}_pick"
    state = st.session_state.get(key)
    seen = st.session_state.get(seen_key) or []
    picked = st.session_state.get(pick_key)
    st.session_state[seen_key] = rows
    keys = [k for k, _ in rows]
    if state is None:
        if picked is None:
            return None
        # The table was not drawn last run (the edges were being fixed): restore the pick.
        chosen = picked
    else:
        positions = list(state["selection"]["rows"])
        if not positions:
            st.session_state.pop(pick_key, None)
            return None
        position = positions[0]
        chosen = seen[position] if position < len(seen) else picked
    if chosen is None or chosen[0] not in keys:
        _clear(table)
        if chosen is not None:
            st.session_state[CLEARED] = [*st.session_state.get(CLEARED, []), chosen[1]]
        return None
    index = keys.index(chosen[0])
    if state is None or list(state["selection"]["rows"]) != [index]:
        st.session_state[key] = {"selection": {"rows": [index], "columns": []}}
    st.session_state[pick_key] = rows[index]
    return rows[index]


def _clear(table: str) -> None:
    st.session_state[table_key(table)] = {"selection": {"rows": [], "columns": []}}
    st.session_state.pop(f"ar_{table}_pick", None)


def clear_all() -> None:
    """Button callback: forget every selection (and uncheck the rows)."""
    for table in TABLES:
        _clear(table)


def show_selection(parts: list[str]) -> None:
    """What the client list is narrowed to, a way to clear it, and what was cleared."""
    cleared = st.session_state.pop(CLEARED, [])
    if cleared:
        st.info(
            "The selection "
            + ", ".join(f"“{literal(label)}”" for label in cleared)
            + " is not in the report any more and was cleared."
        )
    if parts:
        left, right = st.columns([4, 1])
        left.caption("Selected: " + " · ".join(literal(p) for p in parts))
        right.button("Clear selection", key="ar_clear", on_click=clear_all)
