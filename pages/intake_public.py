"""New client intake (public, no sign-in, served at /intake): a prospective client's name, date
of birth, contact and answers to the practice's active questions (spec I3).

It shows nothing stored about anyone and thanks every sender the same way, so it cannot tell
whether someone is already a client. Submissions are limited per client address and
practice-wide (``lib.intake_limits``, counted in the database). A field people do not see (a
honeypot, labelled "leave this field empty" for screen readers) catches form-filling programs:
what they send is thanked like anything else and lands under Spam in the review queue.
"""

from datetime import date

import streamlit as st

from lib import intake
from lib.db import read_session, transaction
from lib.timeutil import practice_today
from lib.validation import ValidationError
from ui import context
from ui.intake_tab import literal, question_input

DONE = "pi_done"
GENERATION = "pi_generation"  # a new number gives a blank form

st.set_page_config(page_title="New client intake", layout="centered")
engine = context.engine()
with read_session(engine) as session:
    form = intake.public_form(session)

if form.practice_name:
    st.subheader(literal(form.practice_name), anchor=False)
st.title("New client intake", anchor=False)

if st.session_state.get(DONE):
    st.success(
        "Thank you. Your information was sent to the practice, and someone will contact you "
        "soon to talk about next steps."
    )
    if st.button("Fill in another form", key="pi_again"):
        st.session_state.pop(DONE, None)
        st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1
        st.rerun()
    st.stop()

st.write(
    "Tell us a little about yourself and the practice will get back to you. "
    "Questions marked with \\* need an answer."
)
st.info(
    "This form is not for emergencies. If you are in crisis, call or text 988 (Suicide & Crisis "
    "Lifeline) or call 911.",
    icon=":material/emergency:",
)

generation = st.session_state.get(GENERATION, 0)
st.html(
    "<style>[class*='st-key-pi_hp_']{position:absolute!important;left:-10000px!important;"
    "top:auto!important;width:1px!important;height:1px!important;overflow:hidden!important}"
    "</style>"
)


def key(name: str) -> str:
    return f"pi{generation}_{name}"


slots = {}
answers = {}
with st.form(f"public_intake_{generation}", border=False):
    st.subheader("About you")
    c1, c2 = st.columns(2)
    first_name = c1.text_input("First name *", key=key("first_name"))
    slots["first_name"] = c1.empty()
    last_name = c2.text_input("Last name *", key=key("last_name"))
    slots["last_name"] = c2.empty()
    dob = st.date_input(
        "Date of birth *",
        value=None,
        min_value=date(1900, 1, 1),
        max_value=practice_today(),
        format="MM/DD/YYYY",
        key=key("dob"),
    )
    slots["dob"] = st.empty()
    email = st.text_input("Email", key=key("email"))
    slots["email"] = st.empty()
    phone = st.text_input("Phone", key=key("phone"))
    slots["phone"] = st.empty()
    st.caption("Give an email address, a phone number, or both, so the practice can reach you.")
    if form.questions:
        st.subheader("A few questions")
    for question in form.questions:
        field = f"q{question.question_id}"
        answers[question.question_id] = question_input(question, key=key(field))
        slots[field] = st.empty()
    # The honeypot: moved off-screen (programs skip fields that are not displayed at all).
    with st.container(key=f"pi_hp_{generation}"):
        honeypot = st.text_input(
            "Leave this field empty",
            key=key("website"),
            autocomplete="off",
            help="This field is not for people. Please leave it empty.",
        )
    problem = st.container()
    submitted = st.form_submit_button("Send to the practice", type="primary", width="stretch")

if submitted:
    try:
        with transaction(engine) as session:
            intake.submit_intake(
                session,
                first_name=first_name,
                last_name=last_name,
                dob=dob,
                email=email,
                phone=phone,
                answers=answers,
                client_address=st.context.ip_address,
                honeypot=honeypot or "",
            )
    except ValidationError as exc:
        for field, message in exc.errors.items():
            slots.get(field, problem).error(message)
        problem.error("Nothing was sent yet: please correct the fields marked above.")
    except intake.RateLimited as exc:
        problem.error(str(exc))
    else:
        st.session_state[DONE] = True
        st.rerun()
