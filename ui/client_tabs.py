"""The editable tabs of the client record: Personal, Contact, Insurance.

Each tab is a form; saving calls lib and shows lib's messages next to the fields.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from lib import client_record as cr
from lib import clients, insurance
from lib.db import write
from lib.money import MoneyError, format_cents, parse_amount
from lib.payers import PayerRow
from lib.timeutil import practice_today
from lib.validation import ValidationError
from ui import context
from ui.client_form import TabForm

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


def _save(form: TabForm, save_fn, values: dict) -> None:
    """Run a lib save; show field errors, the stale-edit message with Reload, or success."""
    try:
        new_version = write(context.engine(), save_fn)
    except ValidationError as exc:
        form.show_errors(exc.errors)
        st.error("Nothing was saved: correct the fields marked above.")
    except cr.StaleEdit as exc:
        st.session_state[f"{form.prefix}stale"] = str(exc)
        st.rerun()
    else:
        form.saved(new_version, values)
        st.session_state.pop(f"{form.prefix}stale", None)
        # A toast sent right before st.rerun() never reaches the screen: show it next run.
        st.session_state[f"{form.prefix}saved_notice"] = True
        st.rerun()


def _stale_notice(form: TabForm) -> None:
    if st.session_state.pop(f"{form.prefix}saved_notice", False):
        st.toast("Saved.", icon=":material/check:")
    message = st.session_state.get(f"{form.prefix}stale")
    if message:
        st.error(message)
        st.caption("Your edits are still in the form below. Copy what you need, then reload.")
        if st.button("Reload", key=f"{form.prefix}reload", icon=":material/refresh:"):
            form.reload()
            st.rerun()


def personal_tab(record: cr.ClientRecord, clinicians: dict[int, str], can_edit: bool) -> None:
    form = TabForm(
        "personal",
        record.client_id,
        record.versions["personal"],
        {
            **{f: record.values[f] for f in cr.PERSONAL_FIELDS},
            "clinician_id": record.values["clinician_id"] or 0,
            "status_reason": "",
        },
    )
    _stale_notice(form)
    with st.form(f"{form.prefix}form", border=False):
        c1, c2, c3 = st.columns(3)
        form.text(c1, "first_name", "Legal first name", max_chars=80)
        form.text(c2, "middle_name", "Middle name", max_chars=80)
        form.text(c3, "last_name", "Legal last name", max_chars=80)
        c1, c2, c3 = st.columns(3)
        form.text(c1, "preferred_name", "Preferred name", max_chars=80)
        form.text(c2, "pronouns", "Pronouns", max_chars=40)
        form.date(c3, "dob", "Date of birth", min_value=DOB_MIN, max_value=practice_today())
        c1, c2, c3 = st.columns(3)
        form.select(
            c1, "sex", "Sex (as on insurance)", ["", *cr.SEXES], format_func=cr.SEX_LABELS.get
        )
        form.text(c2, "gender_identity", "Gender identity", max_chars=60)
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
        form.text(c3, "status_reason", "Reason for a status change", max_chars=300)
        c1, c2, c3 = st.columns(3)
        form.select(
            c1,
            "clinician_id",
            "Assigned clinician",
            [0, *clinicians],
            format_func=lambda c: clinicians.get(c, "Not assigned"),
        )
        form.date(c2, "client_since", "Client since", min_value=DOB_MIN, max_value=practice_today())
        form.text(c3, "referral_source", "Referral source", max_chars=120)
        form.text(st, "language", "Preferred language", max_chars=40)
        submitted = st.form_submit_button(
            "Save personal details", disabled=not can_edit, type="primary"
        )
    if submitted:
        values = form.values(cr.PERSONAL_FIELDS)
        values["clinician_id"] = values["clinician_id"] or None
        _save(
            form,
            lambda s: cr.save_section(
                s,
                actor=context.actor(),
                client_id=record.client_id,
                section="personal",
                values=values,
                expected_version=form.version,
                status_reason=form.value("status_reason") or "",
                tz_name=context.settings().practice_time_zone,
            ),
            {**values, "clinician_id": values["clinician_id"] or 0, "status_reason": ""},
        )


def contact_tab(record: cr.ClientRecord, can_edit: bool, is_minor: bool) -> None:
    form = TabForm(
        "contact",
        record.client_id,
        record.versions["contact"],
        {f: record.values[f] for f in cr.CONTACT_FIELDS},
    )
    _stale_notice(form)
    with st.form(f"{form.prefix}form", border=False):
        st.markdown("**Address**")
        c1, c2 = st.columns(2)
        form.text(c1, "address_line1", "Address line 1")
        form.text(c2, "address_line2", "Address line 2")
        c1, c2, c3 = st.columns([3, 1, 2])
        form.text(c1, "city", "City", max_chars=80)
        form.text(c2, "state", "State", max_chars=2)
        form.text(c3, "zip_code", "ZIP code", max_chars=10)
        st.markdown("**Phone and email**")
        c1, c2, c3 = st.columns(3)
        form.text(c1, "phone_mobile", "Mobile phone", max_chars=30)
        form.text(c2, "phone_home", "Home phone", max_chars=30)
        form.text(c3, "phone_work", "Work phone", max_chars=30)
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
        form.text(c1, "email", "Email", max_chars=254)
        form.check(c2, "email_ok", "Email OK (consent)")
        st.markdown("**Emergency contact**")
        c1, c2, c3 = st.columns(3)
        form.text(c1, "emergency_name", "Name")
        form.text(c2, "emergency_relationship", "Relationship", max_chars=40)
        form.text(c3, "emergency_phone", "Phone", max_chars=30)
        st.markdown("**Guardian**" + (" (this client is a minor)" if is_minor else ""))
        c1, c2, c3 = st.columns(3)
        form.text(c1, "guardian_name", "Guardian name")
        form.text(c2, "guardian_relationship", "Relationship", max_chars=40)
        form.text(c3, "guardian_phone", "Guardian phone", max_chars=30)
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
    if submitted:
        values = form.values(cr.CONTACT_FIELDS)
        _save(
            form,
            lambda s: cr.save_section(
                s,
                actor=context.actor(),
                client_id=record.client_id,
                section="contact",
                values=values,
                expected_version=form.version,
                tz_name=context.settings().practice_time_zone,
            ),
            values,
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


def insurance_tab(
    view: insurance.InsuranceView, client_id: int, payers: list[PayerRow], can_edit: bool
) -> None:
    form = TabForm("insurance", client_id, view.version, _coverage_values(view))
    _stale_notice(form)
    payer_labels = {p.payer_id: p.label for p in payers}
    for c in view.coverages:  # a retired payer still shows on the coverage that uses it
        if c.payer_id is not None and c.payer_id not in payer_labels:
            payer_labels[c.payer_id] = c.payer_label
    payer_options = [0, *payer_labels, OTHER_PAYER]

    def payer_label(pid: int) -> str:
        if pid == OTHER_PAYER:
            return "Other — not in the payer list (type the name)"
        return payer_labels.get(pid, "Choose a payer…")

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
    count = form.default("count")
    if insured:
        b1, b2, _ = st.columns([1, 1, 3])
        if count < insurance.MAX_COVERAGES and b1.button("Add a coverage", disabled=not can_edit):
            form.set_default("count", count + 1)
            st.rerun()
        if count > 1 and b2.button("Remove the last coverage", disabled=not can_edit):
            form.set_default("count", count - 1)
            st.rerun()
    with st.form(f"{form.prefix}form", border=False):
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
                    form.text(col, f"{i}_{fld}", label, max_chars=40)
                    form.error_slot(p + fld, col)
                form.text(c4, f"{i}_copay", "Copay ($)", max_chars=10)
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
                    coverage_id=form.default(f"{i}_id"),
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

    def save(session):
        new_version = insurance.save_insurance(
            session,
            actor=context.actor(),
            client_id=client_id,
            billing_type=billing_type,
            coverages=coverages,
            expected_version=form.version,
            tz_name=context.settings().practice_time_zone,
        )
        fresh = insurance.get_insurance(session, actor=context.actor(), client_id=client_id)
        saved_values.update(_coverage_values(fresh))
        return new_version

    saved_values: dict = {}
    _save(form, save, saved_values)
