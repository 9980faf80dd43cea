"""Settings › Clinicians (admins): add, edit and deactivate clinicians, their default service,
their reminder defaults and the staff account they sign in with."""

import pandas as pd
import streamlit as st

from lib import auth, clinicians, reminders, services
from lib.db import read_session
from ui import context
from ui.record_form import RecordForm
from ui.reminders_tab import settings_grid

NEW = 0
NO_ACCOUNT = ""
LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "credentials": "Credentials",
    "email": "Email",
    "default_service_id": "Default service",
    "username": "Staff account",
    "active": "Active",
}

actor = context.actor()
engine = context.engine()
st.title("Clinicians")
st.caption(
    "Inactive clinicians keep their clients, appointments and history; they are only taken "
    "off the lists to choose from. A clinician's staff account lets them sign in and see "
    "their own clients."
)

with read_session(engine) as session:
    rows = clinicians.list_clinicians(session)
    service_rows = services.list_services(session, include_inactive=True)
    accounts = auth.list_users(session, actor=actor)

service_names = {s.service_id: s.label for s in service_rows}
st.dataframe(
    pd.DataFrame(
        [
            {
                "Name": c.name,
                "Credentials": c.credentials,
                "Email": c.email,
                "Default service": service_names.get(c.default_service_id, ""),
                "Staff account": c.username,
                "Active": c.active,
            }
            for c in rows
        ],
        columns=["Name", "Credentials", "Email", "Default service", "Staff account", "Active"],
    ),
    hide_index=True,
    width="stretch",
)

by_id = {c.clinician_id: c for c in rows}
choice = st.selectbox(
    "Add or edit",
    [NEW, *by_id],
    format_func=lambda i: by_id[i].label if i in by_id else "➕ New clinician",
    key="clinician_choice",
)
current = by_id.get(choice)
form = RecordForm(
    "clinician",
    record_id=choice,
    version=current.version if current else 0,
    values={
        "first_name": current.first_name if current else "",
        "last_name": current.last_name if current else "",
        "credentials": current.credentials if current else "",
        "email": current.email if current else "",
        "default_service_id": current.default_service_id if current else None,
        "username": current.username if current else NO_ACCOUNT,
        "active": current.active if current else True,
    },
    labels=LABELS,
)
form.banner()
usernames = [NO_ACCOUNT, *(a.username for a in accounts)]
account_names = {a.username: f"{a.username} ({a.display_name})" for a in accounts}
with st.form(form.prefix + "form"):
    c1, c2, c3 = st.columns([2, 2, 1])
    form.text(c1, "first_name", LABELS["first_name"])
    form.text(c2, "last_name", LABELS["last_name"])
    form.text(c3, "credentials", LABELS["credentials"], placeholder="LCSW")
    c1, c2 = st.columns(2)
    form.text(c1, "email", LABELS["email"])
    form.select(
        c2,
        "default_service_id",
        LABELS["default_service_id"],
        [None, *service_names],
        format_func=lambda s: "—" if s is None else service_names[s],
    )
    c1, c2 = st.columns(2)
    form.select(
        c1,
        "username",
        LABELS["username"],
        usernames,
        format_func=lambda u: "— none —" if u == NO_ACCOUNT else account_names[u],
    )
    form.check(c2, "active", LABELS["active"])
    submitted = st.form_submit_button(
        "Save clinician" if current else "Add clinician", type="primary"
    )


def _save(session, changes: dict, version) -> int:
    return clinicians.save_clinician(
        session,
        actor=actor,
        changes=changes,
        clinician_id=current.clinician_id if current else None,
        expected_version=version if current else None,
        tz_name=context.settings().practice_time_zone,
    )


if submitted:
    if current:
        changes = form.changes(LABELS)
        notice = "Clinician saved: " + ", ".join(LABELS[f].lower() for f in changes) + "."
    else:
        changes = {f: form.value(f) for f in LABELS}
        notice = "Clinician added."
    form.save(changes, _save, saved_notice=notice)

if current:
    st.subheader("Reminder defaults")
    st.caption(
        "These apply to this clinician's clients unless a client has their own setting; "
        "“use default” follows the practice's defaults."
    )
    with read_session(engine) as session:
        view = reminders.level_settings(
            session, actor=actor, scope="clinician", scope_id=current.clinician_id
        )
    settings_grid(view, can_edit=True)
