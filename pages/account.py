"""My account: who I am, and changing my own password (which signs out my other sessions)."""

import streamlit as st

from lib import auth, digest, passwords
from lib.db import read_session, transaction, write
from lib.policy import ROLE_LABELS, allowed
from ui import context
from ui.login import SIGNED_IN_AT

actor = context.actor()
st.title("My account")
st.text(f"{actor.display_name} ({actor.username}) · {ROLE_LABELS[actor.role]}")

if allowed(actor, "digest.receive"):
    st.subheader("Weekly A/R digest")
    with read_session(context.engine()) as session:
        subscribed = digest.is_subscribed(session, actor=actor)
        problem = digest.address_problem(session, actor=actor)
    wanted = st.toggle(
        "Email me the weekly A/R digest",
        value=subscribed,
        key=f"digest_{subscribed}",
        help="Once a week: net A/R, its change over the week, days in A/R and how many "
        "clients are on the collections worklist. No client names. Sent to the email "
        "address on your staff account.",
    )
    if problem:
        st.warning(problem)
    if wanted != subscribed:
        write(
            context.engine(),
            lambda session: digest.set_subscribed(session, actor=actor, on=wanted),
        )
        st.rerun()

st.subheader("Change password")
with st.form("change_password", clear_on_submit=False):
    current = st.text_input("Current password", type="password", key="pw_current")
    current_error = st.empty()
    new = st.text_input(
        "New password",
        type="password",
        key="pw_new",
        help=passwords.RULE,
    )
    new_error = st.empty()
    repeat = st.text_input("Repeat new password", type="password", key="pw_repeat")
    repeat_error = st.empty()
    submitted = st.form_submit_button("Change password")

if submitted:
    if new != repeat:
        repeat_error.error("The two new passwords are not the same.")
    else:
        try:
            with transaction(context.engine()) as session:
                valid_from = auth.change_own_password(
                    session, actor=actor, current_password=current, new_password=new
                )
        except auth.AuthError as exc:
            target = current_error if exc.field == "current_password" else new_error
            target.error(str(exc))
        else:
            st.session_state[SIGNED_IN_AT] = valid_from
            st.success("Password changed. Other browsers signed in as you are now signed out.")
