"""The editable tabs of the client record: Personal, Contact, Insurance.

Each tab is a form; saving calls lib and shows lib's messages next to the fields.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from lib import client_record as cr
from lib import clients, insurance
from lib.money import MoneyError, format_cents, parse_amount
from lib.payers import PayerRow
from lib.timeutil import practice_today
from ui import context
from ui.record_form import RecordForm

TIME_ZONES = (
    "",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
)
DOB_MIN = date(1900, 1, 1)


PERSONAL_LABELS = {
    "first_name": "Legal first name",
    "middle_name": "Middle name",
    "last_name": "Legal last name",
    "preferred_name": "Preferred name",
    "pronouns": "Pronouns",
    "dob": "Date of birth",
    "sex": "Sex (as on insurance)",
    "gender_identity": "Gender identity",
    "marital_status": "Marital status",
    "client_type": "Client type",
    "status": "Status",
    "status_reason": "Reason for a status change",
    "clinician_id": "Assigned clinician",
    "client_since": "Client since",
    "referral_source": "Referral source",
    "language": "Preferred language",
}
CONTACT_LABELS = {
    "address_line1": "Address line 1",
    "address_line2": "Address line 2",
    "city": "City",
    "state": "State",
    "zip_code": "ZIP code",
    "phone_mobile": "Mobile phone",
    "phone_home": "Home phone",
    "phone_work": "Work phone",
    "preferred_phone": "Preferred phone",
    "text_ok": "Text messages OK",
    "voicemail_ok": "Voicemail OK",
    "email": "Email",
    "email_ok": "Email OK (consent)",
    "emergency_name": "Emergency contact name",
    "emergency_relationship": "Emergency contact relationship",
    "emergency_phone": "Emergency contact phone",
    "guardian_name": "Guardian name",
    "guardian_relationship": "Guardian relationship",
    "guardian_phone": "Guardian phone",
    "time_zone": "Time zone",
}


def personal_form(record: cr.ClientRecord) -> RecordForm:
    return RecordForm(
        "client_personal",
        record_id=record.client_id,
        version=record.versions["personal"],
        values={
            **{f: record.values[f] for f in cr.PERSONAL_FIELDS},
            "clinician_id": record.values["clinician_id"] or 0,
            "status_reason": "",
        },
        labels=PERSONAL_LABELS,
    )


def personal_tab(record: cr.ClientRecord, clinicians: dict[int, str], can_edit: bool) -> None:
    form = personal_form(record)
    form.banner()
    today = practice_today()
    with st.form(form.prefix + "form", border=False):
        c1, c2, c3 = st.columns(3)
        form.text(c1, "first_name", "Legal first name")
        form.text(c2, "middle_name", "Middle name")
        form.text(c3, "last_name", "Legal last name")
        c1, c2, c3 = st.columns(3)
        form.text(c1, "preferred_name", "Preferred name")
        form.text(c2, "pronouns", "Pronouns")
        form.date(c3, "dob", "Date of birth", min_value=DOB_MIN, max_value=today)
        c1, c2, c3 = st.columns(3)
        form.select(
            c1, "sex", "Sex (as on insurance)", ["", *cr.SEXES], format_func=cr.SEX_LABELS.get
        )
        form.text(c2, "gender_identity", "Gender identity")
        form.select(
            c3,
            "marital_status",
            "Marital status",
            ["", *cr.MARITAL_STATUSES],
            format_func=lambda v: v or "—",
        )
        c1, c2, c3 = st.columns(3)
        form.select(
            c1, "client_type", "Client type", list(clients.CLIENT_TYPES), format_func=str.capitalize
        )
        form.select(
            c2,
            "status",
            "Status",
            list(clients.STATUS_LABELS),
            format_func=clients.STATUS_LABELS.get,
        )
        form.text(
            c3,
            "status_reason",
            "Reason for a status change",
            help="Needed only when you change the status.",
        )
        c1, c2, c3 = st.columns(3)
        form.select(
            c1,
            "clinician_id",
            "Assigned clinician",
            [0, *clinicians],
            format_func=lambda c: clinicians.get(c, "Not assigned"),
        )
        form.date(c2, "client_since", "Client since", min_value=DOB_MIN, max_value=today)
        form.text(c3, "referral_source", "Referral source")
        form.text(st, "language", "Preferred language")
        submitted = st.form_submit_button(
            "Save personal details", disabled=not can_edit, type="primary"
        )
    if not submitted:
        return
    changes = form.changes(cr.PERSONAL_FIELDS)
    if "clinician_id" in changes:
        changes["clinician_id"] = changes["clinician_id"] or None
    reason = form.value("status_reason") or ""
    form.save(
        changes,
        lambda session, changes, version: cr.save_section(
            session,
            actor=context.actor(),
            client_id=record.client_id,
            section="personal",
            changes=changes,
            expected_version=version,
            status_reason=reason,
            tz_name=context.settings().practice_time_zone,
        ),
    )


def contact_tab(record: cr.ClientRecord, can_edit: bool, is_minor: bool) -> None:
    form = RecordForm(
        "client_contact",
        record_id=record.client_id,
        version=record.versions["contact"],
        values={f: record.values[f] for f in cr.CONTACT_FIELDS},
        labels=CONTACT_LABELS,
    )
    form.banner()
    with st.form(form.prefix + "form", border=False):
        st.markdown("**Address**")
        c1, c2 = st.columns(2)
        form.text(c1, "address_line1", "Address line 1")
        form.text(c2, "address_line2", "Address line 2")
        c1, c2, c3 = st.columns([3, 1, 2])
        form.text(c1, "city", "City")
        form.text(c2, "state", "State")
        form.text(c3, "zip_code", "ZIP code")
        st.markdown("**Phone and email**")
        c1, c2, c3 = st.columns(3)
        form.text(c1, "phone_mobile", "Mobile phone")
        form.text(c2, "phone_home", "Home phone")
        form.text(c3, "phone_work", "Work phone")
        c1, c2, c3 = st.columns(3)
        form.radio(
            c1,
            "preferred_phone",
            "Preferred phone",
            list(cr.PHONE_KINDS),
            horizontal=True,
            format_func=str.capitalize,
        )
        form.check(c2, "text_ok", "Text messages OK")
        form.check(c3, "voicemail_ok", "Voicemail OK")
        c1, c2 = st.columns([2, 1])
        form.text(c1, "email", "Email")
        form.check(c2, "email_ok", "Email OK (consent)")
        st.markdown("**Emergency contact**")
        c1, c2, c3 = st.columns(3)
        form.text(c1, "emergency_name", "Name")
        form.text(c2, "emergency_relationship", "Relationship")
        form.text(c3, "emergency_phone", "Phone")
        st.markdown("**Guardian**" + (" (this client is a minor)" if is_minor else ""))
        c1, c2, c3 = st.columns(3)
        form.text(c1, "guardian_name", "Guardian name")
        form.text(c2, "guardian_relationship", "Relationship")
        form.text(c3, "guardian_phone", "Guardian phone")
        form.select(
            st,
            "time_zone",
            "Time zone",
            list(TIME_ZONES),
            format_func=lambda z: z or "Practice time zone",
        )
        submitted = st.form_submit_button(
            "Save contact details", disabled=not can_edit, type="primary"
        )
    if not submitted:
        return
    form.save(
        form.changes(cr.CONTACT_FIELDS),
        lambda session, changes, version: cr.save_section(
            session,
            actor=context.actor(),
            client_id=record.client_id,
            section="contact",
            changes=changes,
            expected_version=version,
            tz_name=context.settings().practice_time_zone,
        ),
    )


OTHER_PAYER = -1


def _coverage_values(view: insurance.InsuranceView) -> dict:
    values = {"billing_type": view.billing_type, "count": max(1, len(view.coverages))}
    for i in range(1, insurance.MAX_COVERAGES + 1):
        cov = (
            view.coverages[i - 1].fields if i <= len(view.coverages) else insurance.CoverageInput()
        )
        values.update(
            {
                f"{i}_id": cov.coverage_id,
                f"{i}_payer": cov.payer_id
                if cov.payer_id is not None
                else (OTHER_PAYER if cov.payer_name else 0),
                f"{i}_payer_name": cov.payer_name,
                f"{i}_plan_name": cov.plan_name,
                f"{i}_member_id": cov.member_id,
                f"{i}_group_number": cov.group_number,
                f"{i}_subscriber_relationship": cov.subscriber_relationship,
                f"{i}_subscriber_name": cov.subscriber_name,
                f"{i}_subscriber_dob": cov.subscriber_dob,
                f"{i}_start_date": cov.start_date,
                f"{i}_end_date": cov.end_date,
                f"{i}_copay": format_cents(cov.copay_cents).replace("$", "")
                if cov.copay_cents
                else "",
            }
        )
    return values


COVERAGE_FIELD_LABELS = {
    "payer": "payer",
    "payer_name": "payer name",
    "plan_name": "plan",
    "member_id": "member ID",
    "group_number": "group number",
    "copay": "copay",
    "subscriber_relationship": "subscriber",
    "subscriber_name": "subscriber name",
    "subscriber_dob": "subscriber date of birth",
    "start_date": "coverage start",
    "end_date": "coverage end",
}
INSURANCE_LABELS = {
    "billing_type": "Billing",
    "count": "Number of coverages",
    **{
        f"{i}_{field}": f"{insurance.RANK_LABELS[i]} {label}"
        for i in range(1, insurance.MAX_COVERAGES + 1)
        for field, label in COVERAGE_FIELD_LABELS.items()
    },
}
INSURANCE_FIELDS = tuple(INSURANCE_LABELS)


def insurance_tab(
    view: insurance.InsuranceView, client_id: int, payers: list[PayerRow], can_edit: bool
) -> None:
    form = RecordForm(
        "client_insurance",
        record_id=client_id,
        version=view.version,
        values=_coverage_values(view),
        labels=INSURANCE_LABELS,
    )
    payer_labels = {p.payer_id: p.label for p in payers}
    for c in view.coverages:  # a retired payer still shows on the coverage that uses it
        if c.payer_id is not None and c.payer_id not in payer_labels:
            payer_labels[c.payer_id] = c.payer_label
    payer_options = [0, *payer_labels, OTHER_PAYER]

    def payer_label(pid: int) -> str:
        if pid == OTHER_PAYER:
            return "Other — not in the payer list (type the name)"
        return payer_labels.get(pid, "Choose a payer…")

    form.banner()
    # Outside the form: choosing self-pay/insurance and the number of coverages redraws it.
    form.radio(
        st,
        "billing_type",
        "Billing",
        list(insurance.BILLING_TYPES),
        format_func=insurance.BILLING_TYPES.get,
        horizontal=True,
    )
    insured = form.value("billing_type") == "insurance"
    count = form.start("count")
    if insured:
        b1, b2, _ = st.columns([1, 1, 3])
        if count < insurance.MAX_COVERAGES and b1.button(
            "Add a coverage", disabled=not can_edit, key=form.prefix + "add"
        ):
            form.set_start("count", count + 1)
            st.rerun()
        if count > 1 and b2.button(
            "Remove the last coverage", disabled=not can_edit, key=form.prefix + "remove"
        ):
            form.set_start("count", count - 1)
            st.rerun()
    with st.form(form.prefix + "form", border=False):
        form.error_slot("coverages")
        if insured:
            for i in range(1, count + 1):
                p = f"coverage_{i}."
                st.markdown(f"**{insurance.RANK_LABELS[i]} coverage**")
                c1, c2 = st.columns([2, 1])
                form.select(c1, f"{i}_payer", "Payer", payer_options, format_func=payer_label)
                form.error_slot(p + "payer_id", c1)
                form.text(c2, f"{i}_payer_name", "Payer name (if not in the list)")
                form.error_slot(p + "payer_name", c2)
                c1, c2, c3, c4 = st.columns(4)
                for col, fld, label in (
                    (c1, "plan_name", "Plan"),
                    (c2, "member_id", "Member ID"),
                    (c3, "group_number", "Group number"),
                ):
                    form.text(col, f"{i}_{fld}", label)
                    form.error_slot(p + fld, col)
                form.text(c4, f"{i}_copay", "Copay ($)")
                form.error_slot(p + "copay_cents", c4)
                c1, c2, c3 = st.columns(3)
                form.select(
                    c1,
                    f"{i}_subscriber_relationship",
                    "Subscriber",
                    list(insurance.RELATIONSHIPS),
                    format_func=lambda r: "Client (self)" if r == "self" else r.title(),
                )
                form.error_slot(p + "subscriber_relationship", c1)
                form.text(c2, f"{i}_subscriber_name", "Subscriber name")
                form.error_slot(p + "subscriber_name", c2)
                form.date(
                    c3,
                    f"{i}_subscriber_dob",
                    "Subscriber date of birth",
                    min_value=DOB_MIN,
                    max_value=practice_today(),
                )
                form.error_slot(p + "subscriber_dob", c3)
                c1, c2 = st.columns(2)
                form.date(c1, f"{i}_start_date", "Coverage start", min_value=DOB_MIN)
                form.date(c2, f"{i}_end_date", "Coverage end", min_value=DOB_MIN)
                form.error_slot(p + "end_date", c2)
        else:
            st.caption("Self-pay: the client is responsible for every charge.")
        submitted = st.form_submit_button("Save insurance", disabled=not can_edit, type="primary")
    if not submitted:
        return
    coverages, copay_errors = [], {}
    if insured:
        for i in range(1, count + 1):
            try:
                copay = parse_amount(form.value(f"{i}_copay") or "0", allow_zero=True)
            except MoneyError as exc:
                copay_errors[f"coverage_{i}.copay_cents"] = str(exc)
                copay = 0
            payer = form.value(f"{i}_payer")
            coverages.append(
                insurance.CoverageInput(
                    coverage_id=form.start(f"{i}_id"),
                    payer_id=payer if payer not in (0, OTHER_PAYER) else None,
                    payer_name=(form.value(f"{i}_payer_name") or "")
                    if payer == OTHER_PAYER
                    else "",
                    plan_name=form.value(f"{i}_plan_name") or "",
                    member_id=form.value(f"{i}_member_id") or "",
                    group_number=form.value(f"{i}_group_number") or "",
                    subscriber_relationship=form.value(f"{i}_subscriber_relationship") or "self",
                    subscriber_name=form.value(f"{i}_subscriber_name") or "",
                    subscriber_dob=form.value(f"{i}_subscriber_dob"),
                    start_date=form.value(f"{i}_start_date"),
                    end_date=form.value(f"{i}_end_date"),
                    copay_cents=copay,
                )
            )
    if copay_errors:
        form.show_errors(copay_errors)
        st.error("Nothing was saved: correct the fields marked above.")
        return
    billing_type = form.value("billing_type")
    # The version check makes "what the form showed" the stored coverages, so the coverages
    # as they stand in the form are the stored ones with exactly the user's changes applied.
    form.save(
        form.changes(INSURANCE_FIELDS),
        lambda session, changes, version: insurance.save_insurance(
            session,
            actor=context.actor(),
            client_id=client_id,
            billing_type=billing_type,
            coverages=coverages,
            expected_version=version,
            tz_name=context.settings().practice_time_zone,
        ),
    )
