"""Settings › Payers (admins): the practice's payer list, electronic or paper, with payer IDs."""

import pandas as pd
import streamlit as st

from lib import payers
from lib.db import read_session
from ui import context
from ui.record_form import RecordForm

NEW = 0
LABELS = {
    "name": "Name",
    "kind": "Claims are sent",
    "payer_code": "Payer ID",
    "phone": "Phone",
    "address": "Claims address",
    "active": "Active",
}
KIND_LABELS = {"electronic": "Electronically", "paper": "On paper"}

actor = context.actor()
st.title("Payers")
st.caption("Insurance companies clients can be covered by. Retired payers stay on old coverages.")

with read_session(context.engine()) as session:
    rows = payers.list_payers(session, include_inactive=True)
st.dataframe(
    pd.DataFrame(
        [
            {
                "Name": p.name,
                "Claims": p.kind.capitalize(),
                "Payer ID": p.payer_code,
                "Phone": p.phone,
                "Address": p.address,
                "Active": p.active,
            }
            for p in rows
        ],
        columns=["Name", "Claims", "Payer ID", "Phone", "Address", "Active"],
    ),
    hide_index=True,
    width="stretch",
)

by_id = {p.payer_id: p for p in rows}
choice = st.selectbox(
    "Add or edit",
    [NEW, *by_id],
    format_func=lambda pid: by_id[pid].name if pid in by_id else "➕ New payer",
    key="payer_choice",
)
current = by_id.get(choice)
form = RecordForm(
    "payer",
    record_id=choice,
    version=current.version if current else 0,
    values={
        "name": current.name if current else "",
        "kind": current.kind if current else payers.PAYER_KINDS[0],
        "payer_code": current.payer_code if current else "",
        "phone": current.phone if current else "",
        "address": current.address if current else "",
        "active": current.active if current else True,
    },
    labels=LABELS,
)
form.banner()
with st.form(form.prefix + "form"):
    form.text(st, "name", LABELS["name"])
    c1, c2 = st.columns(2)
    form.radio(
        c1,
        "kind",
        LABELS["kind"],
        list(payers.PAYER_KINDS),
        format_func=KIND_LABELS.get,
        horizontal=True,
    )
    form.text(c2, "payer_code", LABELS["payer_code"])
    form.text(st, "phone", LABELS["phone"])
    form.area(st, "address", LABELS["address"])
    form.check(st, "active", LABELS["active"])
    submitted = st.form_submit_button("Save payer", type="primary")
if submitted:
    changes = form.changes(LABELS) if current else {f: form.value(f) for f in LABELS}
    form.save(
        changes,
        lambda session, changes, version: payers.save_payer(
            session,
            actor=actor,
            values={f: changes.get(f, form.shown(f)) for f in LABELS if f != "active"},
            active=changes.get("active", form.shown("active")),
            payer_id=current.payer_id if current else None,
            expected_version=version if current else None,
            tz_name=context.settings().practice_time_zone,
        ),
        saved_notice="Payer saved.",
    )
