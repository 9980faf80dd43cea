"""Client record: header (name, number, status, balance, next appointments, actions) and tabs.

The client is chosen by the ``client`` query parameter, so the URL can be shared.
"""

import streamlit as st

from lib import appointments, clients, insurance, payers
from lib import client_record as cr
from lib.db import read_session, write
from lib.money import format_cents
from lib.policy import PermissionDenied, allowed
from lib.timeutil import local_text
from lib.validation import ValidationError
from ui import appointments as appointment_ui
from ui import (
    billing,
    client_tabs,
    client_views,
    context,
    documents_tab,
    intake_tab,
    record_form,
    reminders_tab,
)

OPENED = "cd_client_opened"
HEADING_CSS = (
    "<style>"
    ".st-key-client_heading_name [data-testid='stText']"
    "{font-size:2.25rem;font-weight:700;line-height:1.25;padding:0.75rem 0 0.25rem 0;}"
    ".st-key-client_heading_number [data-testid='stText']"
    "{font-size:1.5rem;opacity:0.65;line-height:1.25;padding-bottom:0.4rem;}"
    "</style>"
)
actor = context.actor()
engine = context.engine()
tz = context.settings().practice_time_zone

raw = st.query_params.get("client", "")
if not raw.strip().isdigit():
    st.title("Client")
    st.info("Open a client from the Clients list.")
    st.page_link("pages/clients.py", label="Back to Clients", icon=":material/arrow_back:")
    st.stop()
number = int(raw)


def _load(session, audit_open: bool):
    record = cr.open_record(session, actor=actor, client_number=number, audit_open=audit_open)
    return (
        record,
        appointments.upcoming(session, actor=actor, client_id=record.client_id),
        insurance.get_insurance(session, actor=actor, client_id=record.client_id),
        payers.list_payers(session),
        dict(clients.clinician_choices(session)),
    )


try:
    # Audit an open once per visit (a write); every other rerun of the page is a pure read.
    if st.session_state.get(OPENED) != number:
        loaded = write(engine, lambda session: _load(session, audit_open=True))
    else:
        with read_session(engine) as session:
            loaded = _load(session, audit_open=False)
    record, upcoming, insurance_view, payer_list, clinician_names = loaded
    st.session_state[OPENED] = number
except cr.ClientNotFound as exc:
    st.error(str(exc))
    st.page_link("pages/clients.py", label="Back to Clients", icon=":material/arrow_back:")
    st.stop()
except PermissionDenied as exc:
    st.error(str(exc))
    st.stop()

st.page_link("pages/clients.py", label="Clients", icon=":material/arrow_back:")
head, money = st.columns([3, 2])
with head:
    # The heading is the client's name with the number beside it. The name is typed by users,
    # and st.title renders Markdown, so it is st.text (literal) styled as a heading by static
    # CSS that carries no client data.
    st.html(HEADING_CSS)
    with st.container(key="client_heading", horizontal=True, vertical_alignment="bottom"):
        with st.container(key="client_heading_name", width="content"):
            st.text(record.name)
        with st.container(key="client_heading_number", width="content"):
            st.text(f"#{record.client_number}")
    facts = [f"Status: {record.status_label}"]
    if record.clinician_name:
        facts.append(f"Clinician: {record.clinician_name}")
    if record.age is not None:
        facts.append(f"Age {record.age}")
    st.caption(" · ".join(facts))
with money:
    if record.balance_cents is not None:
        m1, m2 = st.columns(2)
        m1.metric("Balance", format_cents(record.balance_cents))
        m2.metric("Client due", format_cents(record.client_due_cents))
        if record.unapplied_credit_cents:
            st.caption(f"Unapplied credit {format_cents(record.unapplied_credit_cents)}")
        for payer, cents in record.insurance_credits:  # the payer's money, not the client's
            st.caption(f"Insurance credit {format_cents(cents)} · {intake_tab.literal(payer)}")


STATUS_DIALOG = "cd_status_dialog"  # id of the client whose status dialog is open


def _close_status_dialog() -> None:
    st.session_state.pop(STATUS_DIALOG, None)


@st.dialog("Change status", on_dismiss=_close_status_dialog)
def _change_status() -> None:
    new = st.selectbox(
        "New status",
        [s for s in clients.STATUS_LABELS if s != record.status],
        format_func=clients.STATUS_LABELS.get,
        key=f"status_new_{record.client_id}_{record.versions['personal']}",
    )
    reason = st.text_input(
        "Reason", key=f"status_reason_{record.client_id}_{record.versions['personal']}"
    )
    reason_error = st.empty()
    if st.button("Change status", type="primary"):
        try:
            write(
                engine,
                lambda session: cr.change_status(
                    session,
                    actor=actor,
                    client_id=record.client_id,
                    new_status=new,
                    reason=reason,
                    expected_version=record.versions["personal"],
                    tz_name=tz,
                ),
            )
        except ValidationError as exc:
            reason_error.error(exc.errors.get("status_reason") or " ".join(exc.errors.values()))
        except (cr.StaleEdit, PermissionDenied) as exc:
            st.error(str(exc))
        else:
            # The Personal tab shows the new status at once, under new widget keys.
            record_form.forget("client_personal")
            _close_status_dialog()
            st.rerun()


actions = st.columns(5)
if allowed(actor, "payment.record"):
    actions[0].button(
        "Record payment",
        icon=":material/payments:",
        key="head_pay",
        on_click=billing.open_payment_dialog,
        args=(record.client_id,),
    )
    billing.payment_dialog_if_open(record.client_id)
if allowed(actor, "appointment.schedule") and actions[1].button(
    "Schedule appointment", icon=":material/event:", key="head_schedule"
):
    appointment_ui.schedule_dialog(record.client_id, record.clinician_id)
if allowed(actor, "client.change_status"):
    actions[2].button(
        "Change status",
        icon=":material/swap_horiz:",
        key="head_status",
        on_click=lambda: st.session_state.update({STATUS_DIALOG: record.client_id}),
    )
    if st.session_state.get(STATUS_DIALOG) == record.client_id:
        _change_status()
if allowed(actor, "portal.invite"):
    reminders_tab.invite_action(actions[3], record.client_id)
if allowed(actor, "documents.send") and actions[4].button(
    "Send forms", icon=":material/outgoing_mail:", key="head_send_forms"
):
    documents_tab.open_send_dialog(record.client_id)

st.markdown("**Upcoming appointments**")
if upcoming:
    for a in upcoming:
        st.text(
            f"{local_text(a.starts_at, tz)} · {a.duration_minutes} min · {a.service} · "
            f"{a.clinician} · {a.where}"
        )
else:
    st.caption("No upcoming appointments.")
if allowed(actor, "client.export_record"):
    client_views.record_export_button(record.client_id, record.client_number)
with st.expander("All appointments"):
    appointment_ui.appointment_list(record.client_id, allowed(actor, "appointment.schedule"))

TABS = [
    ("Personal", None),
    ("Contact", None),
    ("Insurance", None),
    ("Reminders & Portal", None),
    ("Other Information", "intake.view"),
    ("Documents", "documents.view"),
    ("Billing", "balance.view"),
    ("History", "client.history"),
]
visible = [name for name, action in TABS if action is None or allowed(actor, action)]
tabs = dict(zip(visible, st.tabs(visible), strict=True))
can_edit = allowed(actor, "client.edit")
with tabs["Personal"]:
    client_tabs.personal_tab(record, clinician_names, can_edit)
with tabs["Contact"]:
    client_tabs.contact_tab(record, can_edit, is_minor=record.values["client_type"] == "minor")
with tabs["Insurance"]:
    client_tabs.insurance_tab(
        insurance_view, record.client_id, payer_list, allowed(actor, "insurance.edit")
    )
with tabs["Reminders & Portal"]:
    reminders_tab.render(record.client_id)
if "Other Information" in tabs:
    with tabs["Other Information"]:
        intake_tab.render(record.client_id)
if "Documents" in tabs:
    with tabs["Documents"]:
        documents_tab.render(record.client_id)
if "Billing" in tabs:
    with tabs["Billing"]:
        billing.billing_section(record.client_id)
if "History" in tabs:
    with tabs["History"]:
        client_views.history_tab(record.client_id)
