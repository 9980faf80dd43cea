"""Intake (spec I1–I3): the question builder with versions and retiring, answers validated by
type on the Other Information tab and on the public page, the rate limits, and the review queue
(accept as a new client, attach to an existing one, reject). Every test runs on both engines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from lib import clients, intake, intake_limits
from lib.client_record import StaleEdit
from lib.db import transaction
from lib.models import (
    AuditEntry,
    Client,
    IntakeAnswer,
    IntakeQuestion,
    IntakeQuestionSetVersion,
    IntakeSubmission,
)
from lib.policy import Actor, PermissionDenied
from lib.timeutil import utcnow
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user

OPTIONS = {
    "single_choice": ["Mornings", "Afternoons", "Evenings"],
    "multiple_choice": ["A", "B", "C"],
}


@dataclass(frozen=True)
class Staff:
    admin: Actor
    manager: Actor
    front_desk: Actor
    biller: Actor
    clinician: Actor
    clinician_id: int


@pytest.fixture
def staff(engine) -> Staff:
    with transaction(engine) as session:
        clinician_id = make_clinician(session, "Ana", "Abara")
        return Staff(
            admin=make_user(session, "admin"),
            manager=make_user(session, "manager"),
            front_desk=make_user(session, "front_desk"),
            biller=make_user(session, "biller"),
            clinician=make_user(session, "clinician", clinician_id=clinician_id),
            clinician_id=clinician_id,
        )


def add_question(engine, actor: Actor, label: str, qtype: str, **kwargs) -> intake.Question:
    kwargs.setdefault("options", OPTIONS.get(qtype, []))
    with transaction(engine) as session:
        return intake.save_question(session, actor=actor, label=label, qtype=qtype, **kwargs)


def new_client(engine, **kwargs) -> int:
    with transaction(engine) as session:
        return make_client(session, **kwargs)


def save_answers(engine, actor: Actor, client_id: int, answers: dict, versions=None) -> dict:
    with transaction(engine) as session:
        return intake.save_answers(
            session,
            actor=actor,
            client_id=client_id,
            answers=answers,
            expected_versions=versions if versions is not None else {q: 0 for q in answers},
        )


def answers_of(engine, actor: Actor, client_id: int) -> dict[str, intake.AnswerRow]:
    with transaction(engine) as session:
        rows = intake.answers_for_client(session, actor=actor, client_id=client_id)
    return {r.label: r for r in rows}


def count(engine, model, *where) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def audit_actions(engine) -> list[str]:
    with transaction(engine) as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


PERSON = {
    "first_name": "Rosa",
    "last_name": "Quintero",
    "dob": date(1990, 4, 12),
    "email": "rosa.q@example.com",
    "phone": "617 555 0199",
}


def submit(engine, answers: dict | None = None, **kwargs) -> int:
    fields = {**PERSON, "answers": answers or {}, **kwargs}
    with transaction(engine) as session:
        return intake.submit_intake(session, **fields)


# --- validation by type --------------------------------------------------------------------

# qtype -> (valid: [(from the form, stored, shown)], invalid: [(from the form, message)])
CASES: dict[str, tuple[list[tuple[Any, Any, str]], list[tuple[Any, str]]]] = {
    "short_text": (
        [("  Sertraline 50 mg ", "Sertraline 50 mg", "Sertraline 50 mg")],
        [("x" * 301, "at most 300 characters"), ("tab\tinside", "control characters")],
    ),
    "long_text": (
        [("Trouble sleeping.\r\nWorry at work.", "Trouble sleeping.\nWorry at work.", "")],
        [("y" * 4001, "at most 4,000 characters"), ("bell\x07", "control characters")],
    ),
    "number": (
        [("7", 7, "7"), (" -2.5 ", -2.5, "-2.5"), (8, 8, "8")],
        [
            ("seven", "Enter a number"),
            ("1e5", "Enter a number"),
            ("nan", "Enter a number"),
            (True, "Enter a number"),
            ("1000000000000", "too large"),
        ],
    ),
    "date": (
        [(date(2024, 3, 7), "2024-03-07", "03/07/2024"), ("4/1/2024", "2024-04-01", "04/01/2024")],
        [
            ("2024-02-30", "Enter a date"),
            ("someday", "Enter a date"),
            (date(1899, 12, 31), "between 1900 and 2100"),
        ],
    ),
    "yes_no": ([("Yes", True, "Yes"), (False, False, "No")], [("maybe", "Answer yes or no")]),
    "single_choice": (
        [("Evenings", "Evenings", "Evenings")],
        [("Nights", "Choose one of the options"), (["Mornings"], "Choose one of the options")],
    ),
    "multiple_choice": (
        [(["C", "A"], ["A", "C"], "A, C")],
        [(["A", "Z"], "Choose from the options"), ("A", "Choose from the options")],
    ),
}


@pytest.mark.parametrize("qtype", sorted(CASES))
def test_answers_are_checked_by_type_and_stored_in_one_form(engine, staff, qtype):
    valid, invalid = CASES[qtype]
    q = add_question(engine, staff.admin, "The question", qtype)
    field = f"q{q.question_id}"
    client_id = new_client(engine)
    before = audit_actions(engine)

    for raw, message in invalid:
        with pytest.raises(ValidationError) as refused:
            save_answers(engine, staff.manager, client_id, {q.question_id: raw})
        assert message in refused.value.errors[field], raw
        if isinstance(raw, str) and len(raw) > 3:
            assert raw not in str(refused.value)  # what was typed is never echoed
        with pytest.raises(ValidationError) as refused:  # the public page: the same rules
            submit(engine, {q.question_id: raw})
        assert message in refused.value.errors[field], raw
    assert count(engine, IntakeAnswer) == 0
    assert count(engine, IntakeSubmission) == 0
    assert audit_actions(engine) == before

    for raw, stored, shown in valid:
        version = answers_of(engine, staff.manager, client_id)["The question"].version
        save_answers(
            engine, staff.manager, client_id, {q.question_id: raw}, {q.question_id: version}
        )
        with transaction(engine) as session:
            answer = session.scalars(select(IntakeAnswer)).one()
        value = json.loads(answer.value_json)
        assert value == stored and type(value) is type(stored), raw
        assert (answer.source, answer.answered_by) == ("staff", staff.manager.user_id)
        row = answers_of(engine, staff.manager, client_id)["The question"]
        assert row.answer_text == (shown or stored)
        assert (row.source, row.answered_by) == ("Staff", "Test manager")
    sid = submit(engine, {q.question_id: valid[0][0]})
    with transaction(engine) as session:
        submitted = json.loads(session.get(IntakeSubmission, sid).answers_json)
    assert submitted == {str(q.question_id): valid[0][1]}


def test_required_questions_must_be_answered_on_the_public_page_only(engine, staff):
    required = add_question(engine, staff.admin, "Reason for visit", "long_text", required=True)
    optional = add_question(engine, staff.admin, "Medications", "short_text")
    with pytest.raises(ValidationError) as refused:
        submit(engine, {required.question_id: "   ", optional.question_id: ""})
    assert refused.value.errors == {f"q{required.question_id}": "Please answer this question."}

    # Staff may fill in one answer without the others...
    client_id = new_client(engine)
    save_answers(engine, staff.manager, client_id, {optional.question_id: "None"})
    save_answers(engine, staff.manager, client_id, {required.question_id: "Grief"})
    versions = {
        r.question_id: r.version for r in answers_of(engine, staff.manager, client_id).values()
    }
    # ...and may empty an optional answer, but not a required one.
    save_answers(engine, staff.manager, client_id, {optional.question_id: ""}, versions)
    with pytest.raises(ValidationError) as emptied:
        save_answers(engine, staff.manager, client_id, {required.question_id: ""}, versions)
    assert "required" in emptied.value.errors[f"q{required.question_id}"]
    rows = answers_of(engine, staff.manager, client_id)
    assert rows["Reason for visit"].answer_text == "Grief"
    assert rows["Medications"].answer_text == "" and rows["Medications"].source == "Staff"


def test_unchanged_answers_are_not_rewritten(engine, staff):
    q = add_question(engine, staff.admin, "Stress 1-10", "number")
    client_id = new_client(engine)
    save_answers(engine, staff.manager, client_id, {q.question_id: "4"})
    before = audit_actions(engine)
    assert (
        save_answers(engine, staff.manager, client_id, {q.question_id: "4"}, {q.question_id: 1})
        == {}
    )
    assert audit_actions(engine) == before


def test_the_public_page_needs_names_a_past_birth_date_and_a_way_to_reach_the_person(engine, staff):
    cases = [
        ({"first_name": " "}, "first_name", "Enter the first name."),
        ({"last_name": ""}, "last_name", "Enter the last name."),
        ({"dob": None}, "dob", "Enter the date of birth."),
        ({"dob": date.today() + timedelta(days=1)}, "dob", "cannot be in the future"),
        ({"email": "rosa@"}, "email", "not a valid email"),
        ({"phone": "555"}, "phone", "phone number"),
        ({"email": "", "phone": ""}, "email", "email address or a phone number"),
    ]
    for change, field, message in cases:
        with pytest.raises(ValidationError) as refused:
            submit(engine, **change)
        assert message in refused.value.errors[field], change
    assert count(engine, IntakeSubmission) == 0
    assert submit(engine, email="") > 0  # a phone number alone is enough


# --- the question builder: versions, order, retiring ----------------------------------------


def test_each_saved_change_makes_a_new_version_of_the_question_set(engine, staff):
    first = add_question(engine, staff.admin, "First question", "short_text")
    second = add_question(engine, staff.admin, "Second question", "yes_no", required=True)
    assert count(engine, IntakeQuestionSetVersion) == 2
    assert (first.position, second.position) == (0, 1)

    with transaction(engine) as session:
        edited = intake.save_question(
            session,
            actor=staff.admin,
            question_id=first.question_id,
            expected_version=first.version,
            label="First question, reworded",
            qtype="short_text",
            help_text="Shown under the question",
        )
        intake.move_question(
            session, actor=staff.admin, question_id=second.question_id, direction=-1
        )
    assert edited.version == 2
    with transaction(engine) as session:
        newest = intake.current_set_version(session)
        snapshot = json.loads(
            session.get(IntakeQuestionSetVersion, newest.set_version_id).snapshot_json
        )
        assert [q.label for q in intake.list_questions(session)] == [
            "Second question",
            "First question, reworded",
        ]
    assert count(engine, IntakeQuestionSetVersion) == 4
    assert newest.saved_by == "Test admin" and newest.active_questions == 2
    assert [(q["label"], q["position"]) for q in snapshot] == [
        ("Second question", 0),
        ("First question, reworded", 1),
    ]
    assert snapshot[1]["help_text"] == "Shown under the question"
    actions = audit_actions(engine)
    assert actions.count("intake.question_create") == 2
    assert "intake.question_update" in actions and "intake.question_move" in actions

    # Answers remember the set version they were given under.
    client_id = new_client(engine)
    save_answers(engine, staff.manager, client_id, {first.question_id: "x"})
    with transaction(engine) as session:
        assert session.scalars(select(IntakeAnswer.set_version_id)).one() == newest.set_version_id


def test_moving_past_either_end_changes_nothing(engine, staff):
    top = add_question(engine, staff.admin, "Top", "short_text")
    bottom = add_question(engine, staff.admin, "Bottom", "short_text")
    with transaction(engine) as session:
        assert not intake.move_question(
            session, actor=staff.admin, question_id=top.question_id, direction=-1
        )
        assert not intake.move_question(
            session, actor=staff.admin, question_id=bottom.question_id, direction=1
        )
        assert intake.move_question(
            session, actor=staff.admin, question_id=top.question_id, direction=1
        )
    assert count(engine, IntakeQuestionSetVersion) == 3


def test_an_edit_against_an_old_version_is_refused(engine, staff):
    q = add_question(engine, staff.admin, "Medications", "short_text")
    with transaction(engine) as session:
        intake.save_question(
            session,
            actor=staff.admin,
            question_id=q.question_id,
            expected_version=1,
            label="Current medications",
            qtype="short_text",
        )
    with pytest.raises(StaleEdit), transaction(engine) as session:
        intake.save_question(
            session,
            actor=staff.admin,
            question_id=q.question_id,
            expected_version=1,
            label="Medications and dose",
            qtype="short_text",
        )
    with transaction(engine) as session:
        assert session.get(IntakeQuestion, q.question_id).label == "Current medications"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"label": "  "}, "label", "Enter the question."),
        ({"label": "q" * 301}, "label", "at most 300"),
        ({"qtype": "essay"}, "qtype", "Choose a question type"),
        ({"qtype": "single_choice", "options": ["Only one"]}, "options", "at least two options"),
        ({"qtype": "multiple_choice", "options": ["A", "a", "B"]}, "options", "only once"),
        ({"label": "Existing question"}, "label", "already asks this"),
    ],
)
def test_question_validation(engine, staff, change, field, message):
    add_question(engine, staff.admin, "Existing question", "short_text")
    fields = {"label": "New question", "qtype": "short_text", "options": [], **change}
    with pytest.raises(ValidationError) as refused, transaction(engine) as session:
        intake.save_question(session, actor=staff.admin, **fields)
    assert message in refused.value.errors[field]
    assert count(engine, IntakeQuestion) == 1
    assert count(engine, IntakeQuestionSetVersion) == 1


def test_options_are_kept_only_for_choice_questions(engine, staff):
    q = add_question(engine, staff.admin, "Notes", "short_text", options=["left", "over"])
    assert q.options == ()
    choice = add_question(engine, staff.admin, "When", "single_choice", options=[" Am ", "", "Pm"])
    assert choice.options == ("Am", "Pm")


def test_the_type_of_an_answered_question_cannot_change(engine, staff):
    q = add_question(engine, staff.admin, "Age", "short_text")
    with transaction(engine) as session:  # not answered yet: the admin may fix the type
        q = intake.save_question(
            session,
            actor=staff.admin,
            question_id=q.question_id,
            expected_version=q.version,
            label="Age",
            qtype="number",
        )
    submit(engine, {q.question_id: "41"})  # an answer waiting in the review queue counts
    with pytest.raises(ValidationError) as refused, transaction(engine) as session:
        intake.save_question(
            session,
            actor=staff.admin,
            question_id=q.question_id,
            expected_version=q.version,
            label="Age",
            qtype="short_text",
        )
    assert "Retire it" in refused.value.errors["qtype"]


def test_retiring_hides_a_question_from_new_intakes_and_keeps_its_answers(engine, staff):
    kept = add_question(engine, staff.admin, "Kept", "short_text")
    retired = add_question(engine, staff.admin, "Retired", "yes_no", required=True)
    unanswered = add_question(engine, staff.admin, "Never answered", "short_text")
    answered = new_client(engine)
    save_answers(
        engine, staff.manager, answered, {kept.question_id: "k", retired.question_id: "Yes"}
    )

    with transaction(engine) as session:
        for q in (retired, unanswered):
            intake.set_question_active(
                session,
                actor=staff.admin,
                question_id=q.question_id,
                active=False,
                expected_version=q.version,
            )
        public = intake.public_form(session)
    assert [q.label for q in public.questions] == ["Kept"]
    assert count(engine, IntakeQuestionSetVersion) == 5
    assert count(engine, IntakeAnswer) == 2
    rows = answers_of(engine, staff.manager, answered)
    assert set(rows) == {"Kept", "Retired"}  # a retired question shows only where answered
    assert rows["Retired"].answer_text == "Yes" and not rows["Retired"].active
    assert set(answers_of(engine, staff.manager, new_client(engine, first_name="Al"))) == {"Kept"}
    # The retired required question no longer blocks a signup, and its answer is ignored.
    sid = submit(engine, {kept.question_id: "k", retired.question_id: "No"})
    with transaction(engine) as session:
        assert json.loads(session.get(IntakeSubmission, sid).answers_json) == {
            str(kept.question_id): "k"
        }
        intake.set_question_active(
            session,
            actor=staff.admin,
            question_id=retired.question_id,
            active=True,
            expected_version=retired.version + 1,
        )
        assert len(intake.public_form(session).questions) == 2
    assert "intake.question_retire" in audit_actions(engine)
    assert "intake.question_restore" in audit_actions(engine)


# --- who may do what -----------------------------------------------------------------------


def test_only_admins_build_questions_and_only_clinical_staff_see_answers(engine, staff):
    q = add_question(engine, staff.admin, "Q", "short_text")
    for actor in (staff.manager, staff.front_desk, staff.clinician):
        with pytest.raises(PermissionDenied), transaction(engine) as session:
            intake.save_question(session, actor=actor, label="Other", qtype="short_text")
        with pytest.raises(PermissionDenied), transaction(engine) as session:
            intake.move_question(session, actor=actor, question_id=q.question_id, direction=1)
    own = new_client(engine, clinician_id=staff.clinician_id)
    other = new_client(engine, first_name="Olga")
    for actor in (staff.front_desk, staff.biller):
        with pytest.raises(PermissionDenied):
            answers_of(engine, actor, own)
        with pytest.raises(PermissionDenied):
            save_answers(engine, actor, own, {q.question_id: "x"})
    save_answers(engine, staff.clinician, own, {q.question_id: "mine"})
    assert answers_of(engine, staff.clinician, own)["Q"].answer_text == "mine"
    with pytest.raises(PermissionDenied):
        answers_of(engine, staff.clinician, other)
    with pytest.raises(PermissionDenied):
        save_answers(engine, staff.clinician, other, {q.question_id: "x"})
    sid = submit(engine)
    for actor in (staff.front_desk, staff.biller, staff.clinician):
        with pytest.raises(PermissionDenied), transaction(engine) as session:
            intake.list_submissions(session, actor=actor)
        with pytest.raises(PermissionDenied), transaction(engine) as session:
            intake.accept_submission(session, actor=actor, submission_id=sid)
        with pytest.raises(PermissionDenied), transaction(engine) as session:
            intake.reject_submission(session, actor=actor, submission_id=sid, reason="no")


def test_two_staff_editing_the_same_answer_the_second_is_refused(engine, staff):
    q = add_question(engine, staff.admin, "Medications", "short_text")
    client_id = new_client(engine)
    save_answers(engine, staff.manager, client_id, {q.question_id: "none"})
    shown = {q.question_id: 1}  # both forms were shown with version 1

    save_answers(engine, staff.manager, client_id, {q.question_id: "Sertraline 50 mg"}, shown)
    with pytest.raises(StaleEdit) as stale:
        save_answers(engine, staff.admin, client_id, {q.question_id: "Lisinopril"}, shown)

    assert "Test manager" in str(stale.value)
    assert (
        answers_of(engine, staff.manager, client_id)["Medications"].answer_text
        == "Sertraline 50 mg"
    )
    # A first answer typed by two people at once: the second finds one already there.
    other_q = add_question(engine, staff.admin, "Allergies", "short_text")
    save_answers(engine, staff.manager, client_id, {other_q.question_id: "None"}, {})
    with pytest.raises(StaleEdit):
        save_answers(engine, staff.admin, client_id, {other_q.question_id: "Peanuts"}, {})


# --- the public page: rate limits ----------------------------------------------------------


def test_the_practice_wide_limit_per_minute_is_counted_in_the_database(engine, staff):
    """From many addresses: each may send a few, together at most the practice's ceiling."""
    now = utcnow()
    ceiling = intake_limits.PRACTICE_PER_MINUTE

    def address(n: int) -> str:
        return f"198.51.100.{n}"

    submit(engine, now=now - timedelta(minutes=5), client_address=address(0))  # does not count
    for n in range(1, ceiling + 1):
        submit(engine, now=now - timedelta(seconds=50), client_address=address(n))
    with pytest.raises(intake.RateLimited, match="many forms in the last minute"):
        submit(engine, now=now, client_address=address(ceiling + 1))
    assert count(engine, IntakeSubmission) == ceiling + 1
    submit(engine, now=now + timedelta(seconds=11), client_address=address(ceiling + 1))
    assert audit_actions(engine).count("intake.submit") == ceiling + 2


def test_signing_up_as_an_existing_client_looks_the_same_and_changes_no_client(engine, staff):
    new_client(
        engine, first_name="Rosa", last_name="Quintero", dob=PERSON["dob"], email=PERSON["email"]
    )
    before = count(engine, Client)
    sid = submit(engine)
    assert isinstance(sid, int)
    assert count(engine, Client) == before
    with transaction(engine) as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "intake.submit"))
    assert entry.actor_username == "system" and entry.after_json is None  # no PHI in the audit


# --- the review queue ----------------------------------------------------------------------


def setup_questions(engine, staff) -> dict[str, intake.Question]:
    return {
        "reason": add_question(
            engine, staff.admin, "What brings you here?", "long_text", required=True
        ),
        "before": add_question(engine, staff.admin, "Therapy before?", "yes_no"),
        "times": add_question(engine, staff.admin, "Best times", "multiple_choice"),
    }


def test_accepting_makes_a_prospective_client_with_the_answers(engine, staff):
    qs = setup_questions(engine, staff)
    submitted_at = utcnow() - timedelta(hours=2)
    sid = submit(
        engine,
        {
            qs["reason"].question_id: "Anxiety",
            qs["before"].question_id: "No",
            qs["times"].question_id: ["C", "A"],
        },
        now=submitted_at,
    )
    with transaction(engine) as session:
        (pending,) = intake.list_submissions(session, actor=staff.manager)
        assert pending.name == "Quintero, Rosa" and pending.phone == "(617) 555-0199"
        detail = intake.get_submission(session, actor=staff.manager, submission_id=sid)
        assert intake.submission_duplicates(session, actor=staff.manager, submission_id=sid) == []
        result = intake.accept_submission(
            session, actor=staff.manager, submission_id=sid, clinician_id=staff.clinician_id
        )
    assert [(a.label, a.answer_text) for a in detail.answers] == [
        ("What brings you here?", "Anxiety"),
        ("Therapy before?", "No"),
        ("Best times", "A, C"),
    ]
    assert result.created and result.answers_copied == 3
    with transaction(engine) as session:
        client = session.get(Client, result.client_id)
        assert (client.first_name, client.last_name, client.status) == (
            "Rosa",
            "Quintero",
            "prospective",
        )
        assert client.dob == PERSON["dob"] and client.email == PERSON["email"]
        assert client.clinician_id == staff.clinician_id
        submission = session.get(IntakeSubmission, sid)
        assert submission.status == "accepted" and submission.client_id == result.client_id
        assert submission.reviewed_by == staff.manager.user_id
        set_versions = set(session.scalars(select(IntakeAnswer.set_version_id)))
        assert set_versions == {submission.set_version_id}
        assert intake.list_submissions(session, actor=staff.manager) == []
        (accepted,) = intake.list_submissions(session, actor=staff.manager, status="accepted")
        assert accepted.client_number == result.client_number
    rows = answers_of(engine, staff.manager, result.client_id)
    assert {label: r.answer_text for label, r in rows.items()} == {
        "What brings you here?": "Anxiety",
        "Therapy before?": "No",
        "Best times": "A, C",
    }
    assert {r.source for r in rows.values()} == {"Anonymous signup"}
    assert {r.answered_at for r in rows.values()} == {submitted_at}
    assert {r.answered_by for r in rows.values()} == {""}
    actions = audit_actions(engine)
    assert actions[-5:] == [
        "client.create",
        "intake.answer",
        "intake.answer",
        "intake.answer",
        "intake.accept",
    ]
    with pytest.raises(intake.AlreadyReviewed) as again, transaction(engine) as session:
        intake.reject_submission(session, actor=staff.admin, submission_id=sid, reason="dup")
    assert "Test manager already accepted" in str(again.value)


def test_a_likely_duplicate_is_offered_first_and_can_be_attached_to(engine, staff):
    qs = setup_questions(engine, staff)
    existing = new_client(engine, first_name="Rosa", last_name="Quintero", dob=PERSON["dob"])
    save_answers(
        engine,
        staff.manager,
        existing,
        {qs["reason"].question_id: "Old reason", qs["before"].question_id: "Yes"},
    )
    sid = submit(engine, {qs["reason"].question_id: "New reason", qs["times"].question_id: ["B"]})
    clients_before = count(engine, Client)

    with transaction(engine) as session:
        (match,) = intake.submission_duplicates(session, actor=staff.manager, submission_id=sid)
    assert match.client_id == existing
    with pytest.raises(clients.PossibleDuplicates), transaction(engine) as session:
        intake.accept_submission(session, actor=staff.manager, submission_id=sid)
    assert count(engine, Client) == clients_before  # nothing written
    with transaction(engine) as session:
        assert session.get(IntakeSubmission, sid).status == "pending"

    with transaction(engine) as session:
        result = intake.accept_submission(
            session,
            actor=staff.manager,
            submission_id=sid,
            attach_to_client_number=match.client_number,
        )
    assert (result.client_id, result.created, result.answers_copied) == (existing, False, 2)
    assert count(engine, Client) == clients_before
    rows = answers_of(engine, staff.manager, existing)
    assert rows["What brings you here?"].answer_text == "New reason"
    assert rows["What brings you here?"].source == "Anonymous signup"
    assert rows["What brings you here?"].version == 2
    assert rows["Therapy before?"].answer_text == "Yes"  # not in the submission: kept
    assert rows["Therapy before?"].source == "Staff"
    assert rows["Best times"].answer_text == "B"
    with transaction(engine) as session:
        assert session.get(Client, existing).status == "active"
        reason_audit = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "intake.answer")
            .order_by(AuditEntry.id.desc())
        ).first()
    assert reason_audit.client_id == existing


def test_accepting_as_new_despite_a_duplicate_needs_it_acknowledged(engine, staff):
    existing = new_client(engine, first_name="Rosa", last_name="Quintero", dob=PERSON["dob"])
    sid = submit(engine)
    with transaction(engine) as session:
        result = intake.accept_submission(
            session, actor=staff.admin, submission_id=sid, acknowledged_duplicates=(existing,)
        )
    assert result.created and result.client_id != existing
    with transaction(engine) as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "client.create"))
    assert "possible duplicates" in entry.detail


def test_attaching_to_an_unknown_client_number_is_refused(engine, staff):
    sid = submit(engine)
    with pytest.raises(ValidationError) as refused, transaction(engine) as session:
        intake.accept_submission(
            session, actor=staff.manager, submission_id=sid, attach_to_client_number=99
        )
    assert "no client with that number" in refused.value.errors["attach"]


def test_a_rejected_submission_is_kept_with_its_reason(engine, staff):
    qs = setup_questions(engine, staff)
    sid = submit(engine, {qs["reason"].question_id: "Spam?"})
    with pytest.raises(ValidationError), transaction(engine) as session:
        intake.reject_submission(session, actor=staff.manager, submission_id=sid, reason=" ")
    with transaction(engine) as session:
        intake.reject_submission(
            session, actor=staff.manager, submission_id=sid, reason="Test entry"
        )
    with transaction(engine) as session:
        assert intake.list_submissions(session, actor=staff.admin) == []
        (row,) = intake.list_submissions(session, actor=staff.admin, status="rejected")
        detail = intake.get_submission(session, actor=staff.admin, submission_id=sid)
    assert (row.reject_reason, row.reviewed_by, row.client_id) == (
        "Test entry",
        "Test manager",
        None,
    )
    assert (row.first_name, row.email) == ("Rosa", "rosa.q@example.com")
    assert [a.answer_text for a in detail.answers] == ["Spam?"]
    assert count(engine, IntakeAnswer) == 0 and count(engine, Client) == 0
    with pytest.raises(intake.AlreadyReviewed), transaction(engine) as session:
        intake.accept_submission(session, actor=staff.admin, submission_id=sid)
    assert audit_actions(engine)[-1] == "intake.reject"


def test_a_reviewed_submission_shows_the_questions_as_they_were_asked(engine, staff):
    q = add_question(engine, staff.admin, "Old wording", "short_text")
    sid = submit(engine, {q.question_id: "An answer"})
    with transaction(engine) as session:
        intake.save_question(
            session,
            actor=staff.admin,
            question_id=q.question_id,
            expected_version=1,
            label="New wording",
            qtype="short_text",
        )
        intake.set_question_active(
            session, actor=staff.admin, question_id=q.question_id, active=False, expected_version=2
        )
        (answer,) = intake.get_submission(session, actor=staff.manager, submission_id=sid).answers
        result = intake.accept_submission(session, actor=staff.manager, submission_id=sid)
    assert (answer.label, answer.retired) == ("Old wording", True)
    rows = answers_of(engine, staff.manager, result.client_id)
    assert rows["New wording"].answer_text == "An answer" and not rows["New wording"].active


def test_the_demo_practice_questions_work_with_signup_and_review(demo_engine):
    with transaction(demo_engine) as session:
        manager = make_user(session, "manager")
        form = intake.public_form(session)
    by_type = {q.qtype: q for q in form.questions}
    answers: dict[int, Any] = {
        by_type["long_text"].question_id: "Low mood",
        by_type["yes_no"].question_id: "No",
        by_type["multiple_choice"].question_id: [by_type["multiple_choice"].options[0]],
    }
    sid = submit(
        demo_engine,
        answers,
        first_name="Zed",
        last_name="Newperson",
        dob=date(2001, 1, 2),
        email="zed@example.com",
        phone="",
    )
    with transaction(demo_engine) as session:
        detail = intake.get_submission(session, actor=manager, submission_id=sid)
        result = intake.accept_submission(session, actor=manager, submission_id=sid)
        rows = intake.answers_for_client(session, actor=manager, client_id=result.client_id)
    assert detail.answers[0].label == "What brings you to therapy at this time?"
    assert sum(1 for r in rows if r.source == "Anonymous signup") == 3
    with transaction(demo_engine) as session:
        answered = session.scalars(select(IntakeAnswer.client_id).limit(1)).first()
        demo_rows = intake.answers_for_client(session, actor=manager, client_id=answered)
    assert any(r.answer_text for r in demo_rows)
