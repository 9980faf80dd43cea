"""Settings › Services (admins): what the practice bills for, with default fees."""

import pandas as pd
import streamlit as st

from lib import services
from lib.client_record import StaleEdit
from lib.db import read_session, transaction
from lib.money import MoneyError, format_cents, parse_amount
from lib.validation import ValidationError
from ui import context
from ui.tables import money_column

actor = context.actor()
engine = context.engine()
st.title("Services")
st.caption("New fees apply to appointments completed from now on; posted charges keep theirs.")

with read_session(engine) as session:
    rows = services.list_services(session, include_inactive=True)
st.dataframe(
    pd.DataFrame(
        [
            {
                "Code": s.code,
                "Description": s.description,
                "Fee": s.fee_cents / 100,
                "Minutes": s.default_minutes,
                "Active": s.active,
            }
            for s in rows
        ],
        columns=["Code", "Description", "Fee", "Minutes", "Active"],
    ),
    hide_index=True,
    width="stretch",
    column_config={"Fee": money_column("Fee")},
)
by_id = {s.service_id: s for s in rows}
choice = st.selectbox(
    "Add or edit",
    [0, *by_id],
    format_func=lambda i: by_id[i].label if i in by_id else "➕ New service",
    key="service_choice",
)
current = by_id.get(choice)
with st.form(f"service_form_{choice}"):
    c1, c2 = st.columns([1, 3])
    code = c1.text_input("Code", value=current.code if current else "", max_chars=20)
    code_error = c1.empty()
    description = c2.text_input(
        "Description", value=current.description if current else "", max_chars=200
    )
    description_error = c2.empty()
    c1, c2, c3 = st.columns(3)
    fee_text = c1.text_input(
        "Fee", value=format_cents(current.fee_cents).replace("$", "") if current else ""
    )
    fee_error = c1.empty()
    minutes = c2.number_input(
        "Default minutes",
        min_value=5,
        max_value=480,
        step=5,
        value=current.default_minutes if current else 50,
    )
    active = c3.checkbox("Active", value=current.active if current else True)
    if st.form_submit_button("Save service", type="primary"):
        try:
            fee = parse_amount(fee_text)
        except MoneyError as exc:
            fee_error.error(str(exc))
        else:
            try:
                with transaction(engine) as session:
                    services.save_service(
                        session,
                        actor=actor,
                        code=code,
                        description=description,
                        fee_cents=fee,
                        default_minutes=int(minutes),
                        active=active,
                        service_id=current.service_id if current else None,
                        expected_version=current.version if current else None,
                    )
            except ValidationError as exc:
                slots = {
                    "code": code_error,
                    "description": description_error,
                    "fee_cents": fee_error,
                }
                for field, message in exc.errors.items():
                    slots.get(field, st).error(message)
            except StaleEdit:
                st.error("Another admin changed this service. Reload the page to see it.")
            else:
                st.success("Service saved.")
                st.rerun()
