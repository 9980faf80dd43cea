"""Collections on screen: the log-a-contact form (worklist and Billing tab), the client's
contacts and payment plan, and the worklist table.

Every widget key carries the client's id, so nothing typed for one client shows for another.
The form's defaults make a valid contact (a call, no answer, follow up in a week), so logging
one takes two clicks: pick the client, then "Log contact". Each form holds one idempotency key
until it saved; afterwards the form steps aside ("Log another contact"), so the second click of
a double click finds no button and logs nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pandas as pd
import streamlit as st

from lib import collection_contacts as contacts
from lib import collections_worklist, payment_plans
from lib.db import read_session, write
from lib.money import MoneyError, format_cents, parse_amount
from lib.policy import PermissionDenied
from lib.timeutil import local_text, practice_today
from lib.validation import ValidationError
from ui import context
from ui.tables import money_column

FOLLOW_UP_DAYS = 7
FIELDS = ("kind", "outcome", "note", "follow_up_on", "promise_cents", "promise_on")


def _k(where: str, client_id: int, name: str) -> str:
    return f"coll_{where}_{client_id}_{name}"


def forget_form(where: str, client_id: int) -> None:
    """Drop everything typed in (and the outcome of) one client's contact form."""
    prefix = _k(where, client_id, "")
    for k in [k for k in st.session_state if str(k).startswith(prefix)]:
        del st.session_state[k]


def contact_form(client_id: int, *, where: str, label: str = "Log contact") -> str | None:
    """The log-a-contact form for one client; in the run a contact was logged, what to tell
    the user (the form then shows that message and "Log another contact")."""
    done_key = _k(where, client_id, "done")
    if st.session_state.get(done_key):
        st.success(st.session_state[done_key])
        if st.button("Log another contact", key=_k(where, client_id, "again")):
            forget_form(where, client_id)
            st.rerun()
        return None
    today = practice_today()
    c1, c2, c3 = st.columns([1, 1, 1])
    kind = c1.radio(
        "Contact by",
        list(contacts.KIND_LABELS),
        format_func=contacts.KIND_LABELS.get,
        horizontal=True,
        key=_k(where, client_id, "kind"),
    )
    slots = {"kind": c1.empty()}
    outcome = c2.selectbox(
        "Outcome",
        list(contacts.OUTCOME_LABELS),
        index=list(contacts.OUTCOME_LABELS).index("no_answer"),
        format_func=contacts.OUTCOME_LABELS.get,
        key=_k(where, client_id, "outcome"),
    )
    slots["outcome"] = c2.empty()
    follow_up = c3.date_input(
        "Follow up on",
        value=today + timedelta(days=FOLLOW_UP_DAYS),
        min_value=today,
        format="MM/DD/YYYY",
        key=_k(where, client_id, "follow_up"),
        help="The client comes back on the worklist that day. Clear it for no follow-up.",
    )
    slots["follow_up_on"] = c3.empty()
    promise_text, promise_on = "", None
    if outcome == "promised":
        p1, p2 = st.columns(2)
        promise_text = p1.text_input(
            "Promised amount", placeholder="100.00", key=_k(where, client_id, "promise_amt")
        )
        slots["promise_cents"] = p1.empty()
        promise_on = p2.date_input(
            "Promised by",
            value=None,
            min_value=today,
            format="MM/DD/YYYY",
            key=_k(where, client_id, "promise_on"),
        )
        slots["promise_on"] = p2.empty()
    note = st.text_input("Note", key=_k(where, client_id, "note"))
    slots["note"] = st.empty()
    if not st.button(label, type="primary", key=_k(where, client_id, "save")):
        return None
    key_name = _k(where, client_id, "idem")
    if key_name not in st.session_state:
        st.session_state[key_name] = uuid.uuid4().hex
    promise_cents = None
    if promise_text.strip():
        try:
            promise_cents = parse_amount(promise_text)
        except MoneyError as exc:
            slots["promise_cents"].error(str(exc))
            return None
    try:
        write(
            context.engine(),
            lambda session: contacts.log_contact(
                session,
                actor=context.actor(),
                client_id=client_id,
                kind=kind,
                outcome=outcome,
                note=note,
                follow_up_on=follow_up,
                promise_cents=promise_cents,
                promise_on=promise_on,
                idempotency_key=st.session_state[key_name],
            ),
        )
    except ValidationError as exc:
        for field, message in exc.errors.items():
            slots.get(field, st).error(message)
        return None
    except PermissionDenied as exc:
        st.error(str(exc))
        return None
    message = f"{contacts.KIND_LABELS[kind]} logged: {contacts.OUTCOME_LABELS[outcome]}."
    if follow_up:
        message += f" Back on the worklist on {follow_up:%m/%d/%Y}."
    forget_form(where, client_id)
    st.session_state[done_key] = message
    return message


def contact_history(client_id: int) -> None:
    """The client's contacts, newest first (notes shown literally in the table)."""
    with read_session(context.engine()) as session:
        rows = contacts.contacts_of(session, actor=context.actor(), client_id=client_id)
    if not rows:
        st.caption("No collection contacts yet.")
        return
    tz = context.settings().practice_time_zone
    frame = pd.DataFrame(
        [
            {
                "When": local_text(c.contacted_at, tz, "%m/%d/%Y %I:%M %p"),
                "Contact": c.summary,
                "Promise": c.promise,
                "Follow up": c.follow_up_on,
                "Note": c.note,
                "By": c.by,
            }
            for c in rows
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={"Follow up": st.column_config.DateColumn(format="MM/DD/YYYY")},
    )


def plan_section(client_id: int) -> None:
    """The client's payment plan and its standing; start or end one."""
    actor = context.actor()
    with read_session(context.engine()) as session:
        plan = payment_plans.plan_of(session, actor=actor, client_id=client_id)
    if plan is not None:
        text = f"Payment plan since {plan.start_on:%m/%d/%Y}: {plan.summary}."
        text += f" Next instalment {plan.next_due_on:%m/%d/%Y}."
        (st.info if plan.on_track else st.warning)(text)
        if st.button("End the plan", key=f"coll_plan_end_{client_id}"):
            write(
                context.engine(),
                lambda s: payment_plans.end_plan(s, actor=actor, client_id=client_id),
            )
            st.rerun()
    with st.expander("Start a payment plan" if plan is None else "Replace the payment plan"):
        c1, c2, c3 = st.columns(3)
        amount = c1.text_input("Amount per instalment", key=f"coll_plan_amt_{client_id}")
        amount_slot = c1.empty()
        schedule = c2.selectbox(
            "Schedule",
            list(payment_plans.SCHEDULE_LABELS),
            format_func=payment_plans.SCHEDULE_LABELS.get,
            key=f"coll_plan_sched_{client_id}",
        )
        start = c3.date_input(
            "First instalment",
            value=practice_today(),
            format="MM/DD/YYYY",
            key=f"coll_plan_start_{client_id}",
        )
        if st.button("Start plan", key=f"coll_plan_go_{client_id}"):
            try:
                cents = parse_amount(amount)
                write(
                    context.engine(),
                    lambda s: payment_plans.start_plan(
                        s,
                        actor=actor,
                        client_id=client_id,
                        instalment_cents=cents,
                        schedule=schedule,
                        start_on=start,
                    ),
                )
            except MoneyError as exc:
                amount_slot.error(str(exc))
            except ValidationError as exc:
                for message in exc.errors.values():
                    amount_slot.error(message)
            else:
                for k in ("amt", "sched", "start"):
                    st.session_state.pop(f"coll_plan_{k}_{client_id}", None)
                st.rerun()


def billing_collections(client_id: int) -> None:
    """The Billing tab's collections part: log a contact, the plan, the contacts so far."""
    with st.expander("Collections: log a contact, payment plan", expanded=False):
        if contact_form(client_id, where="billing"):
            st.rerun()
        plan_section(client_id)
        contact_history(client_id)


def worklist_frame(found: collections_worklist.Worklist, tz: str) -> pd.DataFrame:
    """The worklist as shown on screen."""
    columns = [
        "Client #",
        "Name",
        "Owed",
        "Oldest unpaid",
        "Priority",
        "Why",
        "Last contact",
        "Promise",
        "Plan",
        "Last statement",
    ]
    return pd.DataFrame(
        [
            {
                "Client #": r.client_number,
                "Name": r.name,
                "Owed": r.owed_cents / 100,
                "Oldest unpaid": r.oldest_unpaid,
                "Priority": r.priority,
                "Why": r.reasons,
                "Last contact": (
                    f"{local_text(r.last_contact_at, tz, '%m/%d/%Y')} {r.last_contact}"
                    if r.last_contact_at
                    else ""
                ),
                "Promise": r.promise,
                "Plan": r.plan,
                "Last statement": (
                    local_text(r.last_statement_at, tz, "%m/%d/%Y") if r.last_statement_at else ""
                ),
            }
            for r in found.rows
        ],
        columns=columns,
    )


WORKLIST_CONFIG = {
    "Owed": money_column("Owed"),
    "Client #": st.column_config.NumberColumn("Client #", format="%d"),
    "Oldest unpaid": st.column_config.DateColumn("Oldest unpaid", format="MM/DD/YYYY"),
    "Priority": st.column_config.NumberColumn(
        "Priority", format="%d", help="Dollars owed × days since the oldest unpaid visit."
    ),
    "Name": st.column_config.TextColumn("Name", width="small"),
    "Why": st.column_config.TextColumn("Why", width="medium"),
    "Last contact": st.column_config.TextColumn("Last contact", width="medium"),
}


def owed_text(cents: int) -> str:
    return format_cents(cents)
