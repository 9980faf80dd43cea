"""Settings › Payers (admins): the practice's payer list, electronic or paper, with payer IDs."""

import pandas as pd
import streamlit as st

from lib import payers
from lib.client_record import StaleEdit
from lib.db import read_session, transaction
from lib.validation import ValidationError
from ui import context

actor = context.actor()
engine = context.engine()
st.title("Payers")
st.caption("Insurance companies clients can be covered by. Retired payers stay on old coverages.")

with read_session(engine) as session:
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
    [0, *by_id],
    format_func=lambda pid: by_id[pid].name if pid in by_id else "➕ New payer",
    key="payer_choice",
)
current = by_id.get(choice)
with st.form(f"payer_form_{choice}"):
    name = st.text_input("Name", value=current.name if current else "", max_chars=120)
    name_error = st.empty()
    c1, c2 = st.columns(2)
    kind = c1.radio(
        "Claims are sent",
        payers.PAYER_KINDS,
        index=payers.PAYER_KINDS.index(current.kind) if current else 0,
        format_func=lambda k: "Electronically" if k == "electronic" else "On paper",
        horizontal=True,
    )
    code = c2.text_input("Payer ID", value=current.payer_code if current else "", max_chars=20)
    code_error = c2.empty()
    phone = st.text_input("Phone", value=current.phone if current else "", max_chars=30)
    phone_error = st.empty()
    address = st.text_area(
        "Claims address", value=current.address if current else "", max_chars=300
    )
    active = st.checkbox("Active", value=current.active if current else True)
    if st.form_submit_button("Save payer", type="primary"):
        values = {
            "name": name,
            "kind": kind,
            "payer_code": code,
            "phone": phone,
            "address": address,
        }
        try:
            with transaction(engine) as session:
                payers.save_payer(
                    session,
                    actor=actor,
                    values=values,
                    payer_id=current.payer_id if current else None,
                    expected_version=current.version if current else None,
                    active=active,
                )
        except ValidationError as exc:
            slots = {"name": name_error, "payer_code": code_error, "phone": phone_error}
            for field, message in exc.errors.items():
                slots.get(field, st).error(message)
        except StaleEdit:
            st.error("Another admin changed this payer. Reload the page to see their change.")
        else:
            st.success("Payer saved.")
            st.rerun()
