"""Settings › Services (admins): what the practice bills for, with default fees."""

import pandas as pd
import streamlit as st

from lib import services
from lib.db import read_session
from lib.money import MoneyError, format_cents, parse_amount
from lib.validation import ValidationError
from ui import context
from ui.record_form import RecordForm
from ui.tables import money_column

NEW = 0
LABELS = {
    "code": "Code",
    "description": "Description",
    "fee": "Fee",
    "default_minutes": "Default minutes",
    "active": "Active",
}

actor = context.actor()
st.title("Services")
st.caption("New fees apply to appointments completed from now on; posted charges keep theirs.")

with read_session(context.engine()) as session:
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
    [NEW, *by_id],
    format_func=lambda i: by_id[i].label if i in by_id else "➕ New service",
    key="service_choice",
)
current = by_id.get(choice)
form = RecordForm(
    "service",
    record_id=choice,
    version=current.version if current else 0,
    values={
        "code": current.code if current else "",
        "description": current.description if current else "",
        "fee": format_cents(current.fee_cents).replace("$", "") if current else "",
        "default_minutes": current.default_minutes if current else 50,
        "active": current.active if current else True,
    },
    labels=LABELS,
)
form.banner()
with st.form(form.prefix + "form"):
    c1, c2 = st.columns([1, 3])
    form.text(c1, "code", LABELS["code"])
    form.text(c2, "description", LABELS["description"])
    c1, c2, c3 = st.columns(3)
    form.text(c1, "fee", LABELS["fee"])
    form.error_slot("fee_cents", c1)  # lib's name for the same field
    form.number(
        c2, "default_minutes", LABELS["default_minutes"], min_value=5, max_value=480, step=5
    )
    form.check(c3, "active", LABELS["active"])
    submitted = st.form_submit_button("Save service", type="primary")


def _save(session, changes: dict, version) -> int:
    values = {f: changes.get(f, form.shown(f)) for f in LABELS}
    try:
        fee_cents = parse_amount(values["fee"])
    except MoneyError as exc:
        raise ValidationError({"fee": str(exc)}) from None
    return services.save_service(
        session,
        actor=actor,
        code=values["code"],
        description=values["description"],
        fee_cents=fee_cents,
        default_minutes=int(values["default_minutes"]),
        active=values["active"],
        service_id=current.service_id if current else None,
        expected_version=version if current else None,
        tz_name=context.settings().practice_time_zone,
    )


if submitted:
    changes = form.changes(LABELS) if current else {f: form.value(f) for f in LABELS}
    form.save(changes, _save, saved_notice="Service saved.")
