"""Intake screens through app.py in AppTest (spec I1–I3): the public intake page (no sign-in,
bad input, the rate limits), the admin's question builder, the review queue and the Other
Information tab. Each test runs on a fresh copy of the demo practice on both engines."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from streamlit.runtime.context import ContextProxy
from streamlit.testing.v1 import AppTest

from lib import intake, intake_limits
from lib.db import make_engine, transaction
from lib.models import AuditEntry, Client, IntakeAnswer, IntakeQuestion, IntakeSubmission
from lib.timeutil import utcnow
from tests import record_forms
from tests import test_pages_login as login_tests
from tests.test_pages_login import NO_ACCESS, client_names, open_app, screen_text, sign_in, titles
from ui.intake_tab import literal

SAVE_OTHER = "Save other information"

# The sign-in tests' fixtures: a fresh demo practice in demo mode, and a clean Streamlit.
demo_app = login_tests.demo_app
_fresh_streamlit = login_tests._fresh_streamlit

PUBLIC = "pages/intake_public.py"
THANKS = "Thank you. Your information was sent to the practice"
ROSA = {"first_name": "Rosa", "last_name": "Quintero", "email": "rosa.q@example.com"}


def db(url: str):
    return make_engine(url)


def questions(url: str) -> dict[str, intake.Question]:
    """The demo practice's active questions by type (it has one of each)."""
    engine = db(url)
    try:
        with transaction(engine) as session:
            return {q.qtype: q for q in intake.list_questions(session, active_only=True)}
    finally:
        engine.dispose()


def submissions(url: str) -> list[IntakeSubmission]:
    engine = db(url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(IntakeSubmission).order_by(IntakeSubmission.id)))
    finally:
        engine.dispose()


def open_public() -> AppTest:
    at = open_app()
    at.switch_page(PUBLIC)
    at.run()
    assert not at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def fill_public(at: AppTest, url: str, generation: int = 0, **person) -> None:
    """Fill the public form as a prospective client would, answering every demo question."""
    qs = questions(url)
    fields = {**ROSA, "phone": "", **person}

    def key(name: str) -> str:
        return f"pi{generation}_{name}"

    at.text_input(key=key("first_name")).input(fields["first_name"])
    at.text_input(key=key("last_name")).input(fields["last_name"])
    at.date_input(key=key("dob")).set_value(fields.get("dob", date(1990, 4, 12)))
    at.text_input(key=key("email")).input(fields["email"])
    at.text_input(key=key("phone")).input(fields["phone"])
    at.text_area(key=key(f"q{qs['long_text'].question_id}")).input("Trouble sleeping")
    at.radio(key=key(f"q{qs['yes_no'].question_id}")).set_value("No")
    at.radio(key=key(f"q{qs['single_choice'].question_id}")).set_value(
        qs["single_choice"].options[1]
    )
    at.multiselect(key=key(f"q{qs['multiple_choice'].question_id}")).set_value(
        list(qs["multiple_choice"].options[:2])
    )
    at.text_input(key=key(f"q{qs['number'].question_id}")).input(fields.get("number", "6"))
    at.date_input(key=key(f"q{qs['date'].question_id}")).set_value(date(2025, 1, 15))
    at.text_input(key=key(f"q{qs['short_text'].question_id}")).input("None")


def send(at: AppTest, generation: int = 0) -> None:
    at.button(key=f"FormSubmitter:public_intake_{generation}-Send to the practice").click()
    at.run()
    assert not at.exception


def thanked(at: AppTest) -> bool:
    return any(THANKS in s.value for s in at.success)


# --- the public page -----------------------------------------------------------------------


def test_the_public_page_needs_no_sign_in_and_shows_no_client_data(demo_app):
    at = open_public()

    assert "New client intake" in titles(at)
    assert not [t for t in at.text_input if t.label == "Username"]
    text = screen_text(at)
    assert not [n for n in client_names(demo_app).values() if n in text]
    assert not at.dataframe and not at.metric
    assert "Sign out" not in screen_text(at)
    labels = {w.label for w in (*at.text_area, *at.radio, *at.multiselect)}
    assert "What brings you to therapy at this time? *" in labels


def test_a_prospective_client_sends_the_form_and_is_thanked(demo_app):
    at = open_public()
    fill_public(at, demo_app)
    send(at)

    assert thanked(at), errors(at)
    assert not at.text_input  # the form is gone; nothing typed is shown back
    (sub,) = submissions(demo_app)
    assert (sub.first_name, sub.last_name, sub.status) == ("Rosa", "Quintero", "pending")
    qs = questions(demo_app)
    answers = json.loads(sub.answers_json)
    assert answers[str(qs["number"].question_id)] == 6
    assert answers[str(qs["yes_no"].question_id)] is False
    assert answers[str(qs["date"].question_id)] == "2025-01-15"


def test_bad_input_gets_messages_next_to_the_fields_and_nothing_is_sent(demo_app):
    at = open_public()
    send(at)
    shown = errors(at)
    for message in (
        "Enter the first name.",
        "Enter the last name.",
        "Enter the date of birth.",
        "Enter an email address or a phone number so the practice can reach you.",
        "Please answer this question.",
    ):
        assert message in shown, shown
    assert shown.count("Please answer this question.") == 2  # the two required demo questions

    fill_public(at, demo_app, email="rosa@", phone="555", number="six")
    send(at)
    shown = errors(at)
    assert any("not a valid email address" in e for e in shown), shown
    assert any("phone number" in e for e in shown), shown
    assert any("Enter a number" in e for e in shown), shown
    assert not thanked(at)
    assert submissions(demo_app) == []


def test_an_existing_client_is_thanked_exactly_like_a_new_person(demo_app):
    engine = db(demo_app)
    try:
        with Session(engine) as session:
            client = session.scalars(select(Client).where(Client.email != "").limit(1)).one()
            known = {
                "first_name": client.first_name,
                "last_name": client.last_name,
                "dob": client.dob,
                "email": client.email,
            }
            clients_before = session.scalar(select(func.count()).select_from(Client))
    finally:
        engine.dispose()
    existing, stranger = open_public(), open_public()
    fill_public(existing, demo_app, **known)
    fill_public(stranger, demo_app)
    send(existing)
    send(stranger)

    assert thanked(existing) and thanked(stranger)
    assert [s.value for s in existing.success] == [s.value for s in stranger.success]
    assert len(submissions(demo_app)) == 2
    assert sum(1 for _ in client_names(demo_app)) == clients_before


def from_address(monkeypatch, address: str | None) -> None:
    """What ``st.context.ip_address`` says for the visitor (AppTest has no connection)."""
    monkeypatch.setattr(ContextProxy, "ip_address", property(lambda self: address))


def test_one_address_may_send_only_a_few_forms_even_after_reloading(demo_app, monkeypatch):
    from_address(monkeypatch, "203.0.113.7")
    for _ in range(intake_limits.ADDRESS_PER_HOUR):
        at = open_public()  # a reload, or a new browser: a fresh session each time
        fill_public(at, demo_app)
        send(at)
        assert thanked(at)

    at = open_public()
    fill_public(at, demo_app)
    send(at)
    assert not thanked(at)
    assert any("already sent several times from your internet connection" in e for e in errors(at))
    assert len(submissions(demo_app)) == intake_limits.ADDRESS_PER_HOUR
    # What the person typed is still in the form.
    assert at.text_input(key="pi0_first_name").value == "Rosa"

    from_address(monkeypatch, "198.51.100.23")  # someone else, at the same time
    at = open_public()
    fill_public(at, demo_app)
    send(at)
    assert thanked(at)


def test_the_practice_wide_limit_per_minute_holds_for_a_new_address(demo_app, monkeypatch):
    qs = questions(demo_app)
    engine = db(demo_app)
    try:
        for n in range(intake_limits.PRACTICE_PER_MINUTE):
            with transaction(engine) as session:  # as if sent from many addresses and replicas
                intake.submit_intake(
                    session,
                    first_name="Bot",
                    last_name="Sender",
                    dob=date(1980, 1, 1),
                    email="bot@example.com",
                    phone="",
                    answers={qs["long_text"].question_id: "x", qs["yes_no"].question_id: "Yes"},
                    client_address=f"192.0.2.{n + 1}",
                    now=utcnow() - timedelta(seconds=5),
                )
    finally:
        engine.dispose()
    from_address(monkeypatch, "198.51.100.23")
    at = open_public()
    fill_public(at, demo_app)
    send(at)

    assert not thanked(at)
    assert any("received many forms in the last minute" in e for e in errors(at))
    assert len(submissions(demo_app)) == intake_limits.PRACTICE_PER_MINUTE


def test_a_form_filling_program_is_thanked_but_lands_under_spam(demo_app):
    at = open_public()
    trap = at.text_input(key="pi0_website")
    assert trap.label == "Leave this field empty"  # what a screen reader says
    fill_public(at, demo_app)
    trap.input("https://cheap-pills.example")
    send(at)

    assert thanked(at)  # exactly as a person is thanked
    (submission,) = submissions(demo_app)
    assert (submission.status, submission.reject_reason) == ("spam", intake.HONEYPOT_REASON)

    review = sign_in("manager")
    review.switch_page("pages/intake_review.py").run()
    assert "Quintero, Rosa" not in screen_text(review)  # not in the queue
    review.radio(key="ir_status").set_value("spam").run()
    assert "Quintero, Rosa" in screen_text(review)


# --- the question builder ------------------------------------------------------------------


def open_builder(username: str = "admin") -> AppTest:
    at = sign_in(username)
    at.switch_page("pages/intake_questions.py")
    at.run()
    assert not at.exception
    return at


def stored_questions(url: str) -> list[IntakeQuestion]:
    engine = db(url)
    try:
        with Session(engine) as session:
            return list(
                session.scalars(
                    select(IntakeQuestion).order_by(IntakeQuestion.position, IntakeQuestion.id)
                )
            )
    finally:
        engine.dispose()


def test_only_admins_open_the_builder(demo_app):
    at = open_builder("manager")
    assert NO_ACCESS in errors(at)
    assert "Intake questions" not in titles(at)

    at = open_builder("admin")
    assert "Intake questions" in titles(at)
    assert [c.value for c in at.code] == ["/intake"]  # AppTest has no browser URL
    assert "What brings you to therapy at this time?" in screen_text(at)


def test_the_admin_adds_a_choice_question_and_bad_input_is_refused(demo_app):
    at = open_builder()
    before = stored_questions(demo_app)

    def key(field: str) -> str:
        return record_forms.key(at, "intake_question", 0, field)

    at.text_input(key=key("label")).input("Preferred **session** :red[format]")
    at.selectbox(key=key("qtype")).set_value("single_choice")
    at.text_area(key=key("options")).input("In person")
    at.button(key=record_forms.submit(at, "intake_question", 0, "Add question")).click()
    at.run()
    assert "Give at least two options, one per line." in errors(at)
    assert len(stored_questions(demo_app)) == len(before)

    at.text_area(key=key("options")).input("In person\nTelehealth\n")
    at.checkbox(key=key("required")).check()
    at.button(key=record_forms.submit(at, "intake_question", 0, "Add question")).click()
    at.run()
    assert not at.exception and not errors(at)
    assert "Question added." in [s.value for s in at.success]
    added = stored_questions(demo_app)[-1]
    assert (added.label, added.qtype, added.required) == (
        "Preferred **session** :red[format]",
        "single_choice",
        True,
    )
    assert json.loads(added.options_json) == ["In person", "Telehealth"]

    # The public page shows the label exactly as typed (Markdown escaped), with its options.
    public = open_public()
    radio = public.radio(key=f"pi0_q{added.id}")
    assert radio.label == "Preferred \\*\\*session\\*\\* \\:red\\[format\\] *"
    assert radio.options == ["In person", "Telehealth"]


def test_the_admin_moves_edits_and_retires_questions(demo_app):
    at = open_builder()
    first, second, *_ = stored_questions(demo_app)
    at.button(key=f"iq_down_{first.id}").click()
    at.run()
    assert [q.id for q in stored_questions(demo_app)[:2]] == [second.id, first.id]

    at.button(key=f"iq_edit_{first.id}").click()
    at.run()
    label_key = record_forms.key(at, "intake_question", first.id, "label")
    assert f".v{first.version}." in label_key  # keyed by the question and its version
    assert at.text_input(key=label_key).value == first.label
    at.text_input(key=label_key).input("What brings you here today?")
    at.button(key=record_forms.submit(at, "intake_question", first.id, "Save question")).click()
    at.run()
    assert not errors(at)
    edited = next(q for q in stored_questions(demo_app) if q.id == first.id)
    assert (edited.label, edited.version) == ("What brings you here today?", first.version + 1)

    at.button(key=f"iq_active_{second.id}").click()
    at.run()
    assert not next(q for q in stored_questions(demo_app) if q.id == second.id).active
    assert at.button(key=f"iq_active_{second.id}").label == "Restore"
    public = open_public()
    assert f"pi0_q{second.id}" not in [w.key for w in public.radio]
    engine = db(demo_app)
    try:
        with Session(engine) as session:  # every answer to the retired question is kept
            kept = session.scalar(
                select(func.count())
                .select_from(IntakeAnswer)
                .where(IntakeAnswer.question_id == second.id)
            )
    finally:
        engine.dispose()
    assert kept > 0


# --- the review queue and the Other Information tab ----------------------------------------


def test_the_manager_accepts_a_submission_and_rejects_another(demo_app):
    for person in (ROSA, {**ROSA, "first_name": "Spam", "last_name": "Bot"}):
        at = open_public()
        fill_public(at, demo_app, **person)
        send(at)
        assert thanked(at)

    at = sign_in("manager")
    at.switch_page("pages/intake_review.py")
    at.run()
    assert "Intake review" in titles(at)
    rosa, spam = submissions(demo_app)
    assert "Quintero, Rosa" in screen_text(at)
    at.button(key=f"ir_accept_{rosa.id}").click()
    at.run()
    assert not at.exception
    assert any("Accepted as a new Prospective client" in s.value for s in at.success)

    at.text_input(key=f"ir_reason_{spam.id}").input("Not a real person")
    at.button(key=f"ir_reject_{spam.id}").click()
    at.run()
    assert any("rejected" in s.value for s in at.success)
    rosa, spam = submissions(demo_app)
    assert (rosa.status, spam.status, spam.reject_reason) == (
        "accepted",
        "rejected",
        "Not a real person",
    )
    engine = db(demo_app)
    try:
        with Session(engine) as session:
            client = session.get(Client, rosa.client_id)
            answers = session.scalar(
                select(func.count())
                .select_from(IntakeAnswer)
                .where(IntakeAnswer.client_id == client.id)
            )
    finally:
        engine.dispose()
    assert client.status == "prospective"
    assert answers == 7

    at.radio(key="ir_status").set_value("rejected")
    at.run()
    assert "Not a real person" in screen_text(at)


def test_the_manager_rejects_or_marks_as_spam_many_submissions_at_once(demo_app):
    for n in range(4):
        at = open_public()
        fill_public(at, demo_app, first_name=f"Bot{n}")
        send(at)
    at = sign_in("manager")
    at.switch_page("pages/intake_review.py").run()

    at.session_state["ir_table_pending_0"] = {"selection": {"rows": [0, 1, 2], "columns": []}}
    at.run()
    assert "3 selected" in screen_text(at)
    at.button(key="ir_bulk_spam").click().run()
    assert not at.exception
    assert any("Marked as spam: 3 submission(s)." in s.value for s in at.success)
    assert [s.status for s in submissions(demo_app)] == ["spam", "spam", "spam", "pending"]

    at.session_state["ir_table_pending_1"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    at.button(key="ir_bulk_reject").click().run()  # no reason yet
    assert any("reason" in e.lower() for e in errors(at))
    assert submissions(demo_app)[3].status == "pending"
    at.text_input(key="ir_bulk_reason").input("Test submissions")
    at.button(key="ir_bulk_reject").click().run()
    assert any("Rejected: 1 submission(s)." in s.value for s in at.success)
    assert [(s.status, s.reject_reason) for s in submissions(demo_app)][3] == (
        "rejected",
        "Test submissions",
    )

    at.radio(key="ir_status").set_value("spam").run()
    at.session_state["ir_table_spam_2"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    at.button(key="ir_bulk_not_spam").click().run()
    assert any("Moved back to Pending: 1 submission(s)." in s.value for s in at.success)
    assert sorted(s.status for s in submissions(demo_app)) == [
        "pending",
        "rejected",
        "spam",
        "spam",
    ]
    engine = db(demo_app)
    try:
        with Session(engine) as session:
            bulk = session.scalars(
                select(AuditEntry.action).where(AuditEntry.detail.like("bulk of %"))
            ).all()
    finally:
        engine.dispose()
    assert sorted(bulk) == ["intake.not_spam", "intake.reject"] + ["intake.spam"] * 3


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_staff_edit_an_answer_on_the_other_information_tab(demo_app):
    qs = questions(demo_app)
    engine = db(demo_app)
    try:
        with Session(engine) as session:
            number = session.scalars(select(Client.client_number).limit(1)).one()
            client_id = session.scalars(
                select(Client.id).where(Client.client_number == number)
            ).one()
    finally:
        engine.dispose()
    at = sign_in("manager")
    at.switch_page("pages/client.py")
    at.query_params["client"] = str(number)
    at.run()
    assert not at.exception
    field_name = f"q{qs['number'].question_id}"
    field = at.text_input(key=record_forms.key(at, "client_intake", client_id, field_name))
    field.input("lots")
    at.button(key=record_forms.submit(at, "client_intake", client_id, SAVE_OTHER)).click()
    at.run()
    assert "Enter a number, like 7 or 7.5." in errors(at)

    at.text_input(key=record_forms.key(at, "client_intake", client_id, field_name)).input("3")
    at.button(
        key=record_forms.submit(at, "client_intake", client_id, "Save other information")
    ).click()
    at.run()
    assert not at.exception and not errors(at)
    engine = db(demo_app)
    try:
        with Session(engine) as session:
            answer = session.scalars(
                select(IntakeAnswer).where(
                    IntakeAnswer.client_id == client_id,
                    IntakeAnswer.question_id == qs["number"].question_id,
                )
            ).one()
    finally:
        engine.dispose()
    assert (json.loads(answer.value_json), answer.source) == (3, "staff")


@pytest.mark.parametrize(
    ("typed", "label"),
    [
        ("What brings you here? (optional)", "What brings you here? (optional)"),
        ("Time: 5pm or 10:30", "Time: 5pm or 10:30"),
        ("**Bold** _it_ `code` [x](y) :red[z] $x$ <b>", None),
        ("# Heading", "\\# Heading"),
        ("1. Listed", "1\\. Listed"),
        ("- Bullet", "\\- Bullet"),
        ("&amp; entity", "\\&amp; entity"),
    ],
)
def test_question_labels_escape_only_what_markdown_would_change(typed, label):
    """Screen readers read the label as passed (the aria-label), so plain punctuation stays."""
    escaped = literal(typed)
    if label is not None:
        assert escaped == label
    else:
        for mark in ("*", "_", "`", "[", "]", "$", "<"):
            assert f"\\{mark}" in escaped
        assert "\\:red" in escaped
        assert escaped.replace("\\", "") == typed
