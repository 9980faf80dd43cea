"""Add client: a short form, field-level validation, and a duplicate check before saving."""

from datetime import date

import streamlit as st

from lib import clients
from lib.db import read_session, write
from lib.timeutil import practice_today
from lib.validation import ValidationError
from ui import context

PENDING = "new_client_duplicates"
actor = context.actor()
engine = context.engine()

st.title("Add client")
with read_session(engine) as session:
    clinician_names = dict(clients.clinician_choices(session))

FIELDS = ("first_name", "last_name", "dob", "email", "phone_mobile", "clinician_id", "status")
with st.form("new_client"):
    c1, c2 = st.columns(2)
    first_name = c1.text_input("Legal first name", key="nc_first_name")
    slot = {"first_name": c1.empty()}
    last_name = c2.text_input("Legal last name", key="nc_last_name")
    slot["last_name"] = c2.empty()
    c3, c4 = st.columns(2)
    dob = c3.date_input(
        "Date of birth",
        value=None,
        min_value=date(1900, 1, 1),
        max_value=practice_today(),
        format="MM/DD/YYYY",
        key="nc_dob",
    )
    slot["dob"] = c3.empty()
    status = c4.selectbox(
        "Status",
        ["active", "prospective"],
        format_func=clients.STATUS_LABELS.get,
        key="nc_status",
    )
    slot["status"] = c4.empty()
    c5, c6 = st.columns(2)
    email = c5.text_input("Email", key="nc_email")
    slot["email"] = c5.empty()
    phone = c6.text_input("Mobile phone", key="nc_phone")
    slot["phone_mobile"] = c6.empty()
    clinician_id = st.selectbox(
        "Clinician",
        [0, *clinician_names],
        format_func=lambda c: clinician_names.get(c, "Not assigned yet"),
        key="nc_clinician",
    )
    slot["clinician_id"] = st.empty()
    submitted = st.form_submit_button("Check and save", type="primary")


def _save(acknowledged: tuple[int, ...]) -> None:
    try:
        created = write(
            engine,
            lambda session: clients.create_client(
                session,
                actor=actor,
                first_name=first_name,
                last_name=last_name,
                dob=dob,
                email=email,
                phone_mobile=phone,
                clinician_id=clinician_id or None,
                status=status,
                acknowledged_duplicates=acknowledged,
            ),
        )
    except ValidationError as exc:
        st.session_state.pop(PENDING, None)
        for field, message in exc.errors.items():
            slot.get(field, st).error(message)
    except clients.PossibleDuplicates as dup:
        st.session_state[PENDING] = dup.matches
    else:
        st.session_state.pop(PENDING, None)
        for key in [k for k in st.session_state if k.startswith("nc_")]:
            del st.session_state[key]
        st.switch_page("pages/client.py", query_params={"client": str(created.client_number)})


if submitted:
    _save(())

matches = st.session_state.get(PENDING)
if matches:
    st.warning(
        f"{len(matches)} existing client(s) look like the same person. Open one, or save the "
        "new client anyway."
    )
    for m in matches:
        row = st.columns([3, 2, 1, 3, 1], vertical_alignment="center")
        row[0].text(f"#{m.client_number}  {m.name}")
        row[1].text(f"DOB {m.dob:%m/%d/%Y}" if m.dob else "DOB —")
        row[2].text(f"Score {m.score}")
        row[3].text(", ".join(m.reasons))
        if row[4].button("Open", key=f"open_dup_{m.client_id}"):
            st.switch_page("pages/client.py", query_params={"client": str(m.client_number)})
    if st.button("Save as a new client anyway", type="primary", key="nc_save_anyway"):
        _save(tuple(m.client_id for m in matches))
