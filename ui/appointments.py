"""Appointments on the client record: schedule one, and mark one completed / cancelled / no-show.

Times are typed in the practice's time zone and stored in UTC.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from lib import appointments, clients, services
from lib.db import read_session, transaction
from lib.policy import PermissionDenied
from lib.timeutil import local_text, practice_today
from lib.validation import ValidationError
from ui import context


@st.dialog("Schedule appointment")
def schedule_dialog(client_id: int, default_clinician: int | None) -> None:
    tz = context.settings().practice_time_zone
    with read_session(context.engine()) as session:
        clinician_names = dict(clients.clinician_choices(session))
        service_rows = services.list_services(session)
    by_id = {s.service_id: s for s in service_rows}
    c1, c2 = st.columns(2)
    day = c1.date_input("Date", value=practice_today(), format="MM/DD/YYYY", key="appt_day")
    start = c2.time_input("Start time", value=time(10, 0), step=900, key="appt_time")
    service_id = st.selectbox(
        "Service", list(by_id), format_func=lambda s: by_id[s].label, key="appt_service"
    )
    slots = {"service_id": st.empty()}
    c1, c2 = st.columns(2)
    duration = c1.number_input(
        "Minutes",
        min_value=5,
        max_value=480,
        step=5,
        value=by_id[service_id].default_minutes if service_id else 50,
        key="appt_minutes",
    )
    slots["duration_minutes"] = c1.empty()
    ids = list(clinician_names)
    clinician_id = c2.selectbox(
        "Clinician",
        ids,
        format_func=clinician_names.get,
        key="appt_clinician",
        index=ids.index(default_clinician) if default_clinician in ids else 0,
    )
    slots["clinician_id"] = c2.empty()
    telehealth = st.toggle("Telehealth", key="appt_telehealth")
    location = (
        "" if telehealth else st.text_input("Location", value="Main office", key="appt_location")
    )
    slots["location"] = st.empty()
    if st.button("Schedule", type="primary", key="appt_submit"):
        starts = datetime.combine(day, start, tzinfo=ZoneInfo(tz))
        try:
            with transaction(context.engine()) as session:
                appointments.schedule(
                    session,
                    actor=context.actor(),
                    client_id=client_id,
                    starts_at=starts,
                    duration_minutes=int(duration),
                    clinician_id=clinician_id,
                    service_id=service_id,
                    telehealth=telehealth,
                    location=location,
                )
        except ValidationError as exc:
            for field, message in exc.errors.items():
                slots.get(field, st).error(message)
        except PermissionDenied as exc:
            st.error(str(exc))
        else:
            st.rerun()


def appointment_list(client_id: int, can_change: bool) -> None:
    """Recent and upcoming appointments, with status changes for scheduled ones."""
    tz = context.settings().practice_time_zone
    with read_session(context.engine()) as session:
        rows = appointments.for_client(session, actor=context.actor(), client_id=client_id)
    if not rows:
        st.caption("No appointments yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When": local_text(a.starts_at, tz),
                    "Minutes": a.duration_minutes,
                    "Service": a.service,
                    "Clinician": a.clinician,
                    "Where": a.where,
                    "Status": a.status,
                }
                for a in rows
            ]
        ),
        hide_index=True,
        width="stretch",
        height=min(400, 38 + 35 * len(rows)),
    )
    open_ones = {a.appointment_id: a for a in rows if a.status_key == "scheduled"}
    if not can_change or not open_ones:
        return
    c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
    chosen = c1.selectbox(
        "Scheduled appointment",
        list(open_ones),
        format_func=lambda i: f"{local_text(open_ones[i].starts_at, tz)} · {open_ones[i].service}",
        key=f"appt_pick_{client_id}",
    )
    status = c2.selectbox(
        "Mark as",
        ["completed", "cancelled", "no_show"],
        format_func=appointments.STATUS_LABELS.get,
        key=f"appt_status_{client_id}",
    )
    if c3.button("Apply", key=f"appt_apply_{client_id}"):
        try:
            with transaction(context.engine()) as session:
                appointments.set_status(
                    session,
                    actor=context.actor(),
                    appointment_id=chosen,
                    status=status,
                    expected_version=open_ones[chosen].version,
                )
        except (appointments.AppointmentError, PermissionDenied) as exc:
            st.error(str(exc))
        else:
            st.rerun()
