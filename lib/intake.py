"""Intake: custom questions, each client's answers ("Other Information") and anonymous signup
through the public intake page with its review queue (spec I1–I3).

Answer values are stored as JSON in one canonical form per question type: text as a string,
number as an int or float, date as "YYYY-MM-DD", yes/no as a bool, single choice as the option,
multiple choice as a list of options in the question's order, and ``null`` for "not answered".
``clean_answer`` turns whatever a form hands over into that form, or says what is wrong.

Every saved change to the questions writes a snapshot of the whole set
(``IntakeQuestionSetVersion``); answers and submissions remember the snapshot they were given
under, so a later rewording never changes what a person was asked.

The public page is limited per client address and practice-wide (``lib.intake_limits``) and
has a honeypot: a field people do not see. A submission that fills it in is thanked like any
other but lands under Spam, not in the review queue (a reviewer can move it back: a browser's
autofill may fill in a field a person cannot see). Reviewers reject or mark as spam many
submissions at once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lib import audit, clients, intake_limits
from lib.client_record import ClientNotFound
from lib.edits import StaleEdit, last_change, refuse_if_stale
from lib.models import (
    QUESTION_TYPES,
    Client,
    IntakeAnswer,
    IntakeQuestion,
    IntakeQuestionSetVersion,
    IntakeSubmission,
    PracticeSetting,
    User,
)
from lib.policy import Actor, require, require_client_access
from lib.timeutil import as_utc, utcnow
from lib.validation import (
    FieldError,
    ValidationError,
    Validator,
    clean_dob,
    clean_email,
    clean_phone,
    clean_text,
)

TYPE_LABELS = {
    "short_text": "Short text",
    "long_text": "Long text",
    "number": "Number",
    "date": "Date",
    "yes_no": "Yes / no",
    "single_choice": "Single choice",
    "multiple_choice": "Multiple choice",
}
CHOICE_TYPES = ("single_choice", "multiple_choice")
SOURCE_LABELS = {"staff": "Staff", "anonymous_signup": "Anonymous signup"}
STATUS_LABELS = {
    "pending": "Pending",
    "accepted": "Accepted",
    "rejected": "Rejected",
    "spam": "Spam",
}

LABEL_MAX = 300
HELP_MAX = 500
OPTION_MAX = 120
MAX_OPTIONS = 30
SHORT_TEXT_MAX = 300
LONG_TEXT_MAX = 4000
NUMBER_LIMIT = Decimal("1e12")
DATE_MIN, DATE_MAX = date(1900, 1, 1), date(2100, 12, 31)
REASON_MAX = 300

HONEYPOT_REASON = "Automatic: the form's hidden field was filled in, as programs do."
SPAM_REASON = "Marked as spam"
BULK_LIMIT = 500  # submissions one bulk action may review (the queue shows at most 500)

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


RateLimited = intake_limits.RateLimited


class SubmissionNotFound(LookupError):
    """No intake submission with that id."""


class AlreadyReviewed(Exception):
    """Someone reviewed this submission first. The message says who and the outcome."""


# --- questions (I1) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    question_id: int
    label: str
    help_text: str
    qtype: str
    options: tuple[str, ...]
    required: bool
    position: int
    active: bool
    version: int

    @property
    def type_label(self) -> str:
        return TYPE_LABELS.get(self.qtype, self.qtype)


def _question(q: IntakeQuestion) -> Question:
    return Question(
        question_id=q.id,
        label=q.label,
        help_text=q.help_text or "",
        qtype=q.qtype,
        options=tuple(json.loads(q.options_json or "[]")),
        required=bool(q.required),
        position=q.position,
        active=bool(q.active),
        version=q.version,
    )


def _ordered(session: Session) -> list[IntakeQuestion]:
    return list(
        session.scalars(select(IntakeQuestion).order_by(IntakeQuestion.position, IntakeQuestion.id))
    )


def list_questions(session: Session, *, active_only: bool = False) -> list[Question]:
    """The questions in the order clients see them.

    Questions are practice configuration, not client data: the public page reads them without
    a signed-in user, as the builder does with one.
    """
    return [_question(q) for q in _ordered(session) if q.active or not active_only]


@dataclass(frozen=True)
class SetVersion:
    set_version_id: int
    saved_at: datetime
    saved_by: str
    active_questions: int


def current_set_version(session: Session) -> SetVersion | None:
    """The newest snapshot of the question set (None before any question exists)."""
    row = session.scalar(
        select(IntakeQuestionSetVersion).order_by(IntakeQuestionSetVersion.id.desc()).limit(1)
    )
    if row is None:
        return None
    user = session.get(User, row.created_by) if row.created_by else None
    active = [q for q in json.loads(row.snapshot_json) if q.get("active", True)]
    return SetVersion(
        set_version_id=row.id,
        saved_at=as_utc(row.created_at),
        saved_by=user.display_name if user else "system",
        active_questions=len(active),
    )


def _current_set_version_id(session: Session) -> int | None:
    return session.scalar(select(func.max(IntakeQuestionSetVersion.id)))


def _snapshot(session: Session, *, actor: Actor, now: datetime) -> int:
    session.flush()
    questions = [
        {
            "id": q.id,
            "label": q.label,
            "help_text": q.help_text,
            "qtype": q.qtype,
            "options": json.loads(q.options_json or "[]"),
            "required": bool(q.required),
            "position": q.position,
            "active": bool(q.active),
            "version": q.version,
        }
        for q in _ordered(session)
    ]
    row = IntakeQuestionSetVersion(
        snapshot_json=json.dumps(questions), created_at=now, created_by=actor.user_id
    )
    session.add(row)
    session.flush()
    return row.id


def _snapshot_questions(session: Session, set_version_id: int | None) -> dict[int, dict]:
    """Question id -> the question as it was in that snapshot (label, type, options)."""
    if set_version_id is None:
        return {}
    row = session.get(IntakeQuestionSetVersion, set_version_id)
    if row is None:
        return {}
    out = {}
    for q in json.loads(row.snapshot_json):
        options = q.get("options")
        if options is None:  # the demo data stores the question rows as they were inserted
            options = json.loads(q.get("options_json") or "[]")
        out[int(q["id"])] = {**q, "options": options}
    return out


def _clean_options(qtype: str, options: Iterable[str]) -> list[str]:
    if qtype not in CHOICE_TYPES:
        return []  # only choice questions have options; others ignore what was typed
    cleaned: list[str] = []
    for raw in options:
        option = clean_text(raw, label="option", max_len=OPTION_MAX)
        if option and option.lower() not in {o.lower() for o in cleaned}:
            cleaned.append(option)
        elif option:
            raise FieldError("Each option can appear only once.")
    if len(cleaned) < 2:
        raise FieldError("Give at least two options, one per line.")
    if len(cleaned) > MAX_OPTIONS:
        raise FieldError(f"A question can have at most {MAX_OPTIONS} options.")
    return cleaned


def _has_been_answered(session: Session, question_id: int) -> bool:
    if session.scalar(
        select(func.count())
        .select_from(IntakeAnswer)
        .where(IntakeAnswer.question_id == question_id)
    ):
        return True
    # Submission answers are a JSON object keyed by the question id; a key is `"<id>":`, which
    # cannot occur inside a JSON string value (its quotes would be escaped).
    return bool(
        session.scalar(
            select(func.count())
            .select_from(IntakeSubmission)
            .where(IntakeSubmission.answers_json.contains(f'"{question_id}":'))
        )
    )


def save_question(
    session: Session,
    *,
    actor: Actor,
    label: str,
    qtype: str,
    help_text: str = "",
    options: Sequence[str] = (),
    required: bool = False,
    question_id: int | None = None,
    expected_version: int | None = None,
) -> Question:
    """Add a question (``question_id`` None, placed last) or change one (admins).

    Raises ``ValidationError`` (field messages: label, help_text, qtype, options; nothing
    written) or ``StaleEdit`` when another admin saved the question since ``expected_version``.
    The type of a question that has answers cannot change: retire it and add a new one.
    """
    require(actor, "intake.questions")
    v = Validator()
    v.check("label", clean_text, label, label="question", required=True, max_len=LABEL_MAX)
    v.check("help_text", clean_text, help_text, label="help text", max_len=HELP_MAX)
    if qtype not in QUESTION_TYPES:
        v.fail("qtype", "Choose a question type from the list.")
    else:
        v.check("options", _clean_options, qtype, options)
    current = session.get(IntakeQuestion, question_id) if question_id is not None else None
    if question_id is not None and current is None:
        raise ValidationError({"label": "This question no longer exists; reload the page."})
    if current is not None:
        refuse_if_stale(
            session,
            current_version=current.version,
            expected_version=expected_version,
            entity="intake_question",
            entity_id=current.id,
        )
    if not v.errors:
        same_label = session.scalar(
            select(IntakeQuestion.id).where(
                func.lower(IntakeQuestion.label) == v.values["label"].lower(),
                IntakeQuestion.active.is_(True),
                IntakeQuestion.id != (question_id or 0),
            )
        )
        if same_label is not None:
            v.fail("label", "An active question already asks this.")
        if (
            current is not None
            and qtype != current.qtype
            and _has_been_answered(session, current.id)
        ):
            v.fail(
                "qtype",
                "This question already has answers, so its type cannot change. "
                "Retire it and add a new question instead.",
            )
    v.raise_if_errors()
    now = utcnow()
    values = {
        "label": v.values["label"],
        "help_text": v.values["help_text"],
        "qtype": qtype,
        "options_json": json.dumps(v.values["options"]),
        "required": bool(required),
    }
    if current is None:
        last = session.scalar(select(func.max(IntakeQuestion.position)))
        question = IntakeQuestion(
            **values, position=(last + 1) if last is not None else 0, active=True, version=1
        )
        session.add(question)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="intake.question_create",
            entity="intake_question",
            entity_id=question.id,
            after=values,
            at=now,
        )
    else:
        before = {k: getattr(current, k) for k in values}
        old, new = audit.changed_fields(before, values)
        if not new:
            return _question(current)
        result = session.execute(
            update(IntakeQuestion)
            .where(IntakeQuestion.id == current.id, IntakeQuestion.version == expected_version)
            .values(**values, version=IntakeQuestion.version + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise StaleEdit(*last_change(session, entity="intake_question", entity_id=current.id))
        session.expire(current)
        question = current
        audit.record(
            session,
            actor=actor,
            action="intake.question_update",
            entity="intake_question",
            entity_id=current.id,
            before=old,
            after=new,
            at=now,
        )
    _snapshot(session, actor=actor, now=now)
    return _question(question)


def set_question_active(
    session: Session, *, actor: Actor, question_id: int, active: bool, expected_version: int
) -> Question:
    """Retire a question (hidden from new intakes, every answer kept) or bring it back."""
    require(actor, "intake.questions")
    question = session.get(IntakeQuestion, question_id)
    if question is None:
        raise ValidationError({"label": "This question no longer exists; reload the page."})
    if bool(question.active) == active:
        return _question(question)
    if active:
        clash = session.scalar(
            select(IntakeQuestion.id).where(
                func.lower(IntakeQuestion.label) == question.label.lower(),
                IntakeQuestion.active.is_(True),
            )
        )
        if clash is not None:
            raise ValidationError({"label": "An active question already asks this."})
    result = session.execute(
        update(IntakeQuestion)
        .where(IntakeQuestion.id == question_id, IntakeQuestion.version == expected_version)
        .values(active=active, version=IntakeQuestion.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StaleEdit(*last_change(session, entity="intake_question", entity_id=question_id))
    session.expire(question)
    now = utcnow()
    audit.record(
        session,
        actor=actor,
        action="intake.question_restore" if active else "intake.question_retire",
        entity="intake_question",
        entity_id=question_id,
        before={"active": not active},
        after={"active": active},
        at=now,
    )
    _snapshot(session, actor=actor, now=now)
    return _question(question)


def move_question(session: Session, *, actor: Actor, question_id: int, direction: int) -> bool:
    """Move a question one place up (-1) or down (+1). False when it is already at that end."""
    require(actor, "intake.questions")
    if direction not in (-1, 1):
        raise ValueError("direction is -1 (up) or +1 (down)")
    ordered = _ordered(session)
    index = next((i for i, q in enumerate(ordered) if q.id == question_id), None)
    if index is None:
        raise ValidationError({"label": "This question no longer exists; reload the page."})
    other = index + direction
    if not 0 <= other < len(ordered):
        return False
    ordered[index], ordered[other] = ordered[other], ordered[index]
    for position, q in enumerate(ordered):  # positions become 0..n-1 whatever they were
        q.position = position
    now = utcnow()
    audit.record(
        session,
        actor=actor,
        action="intake.question_move",
        entity="intake_question",
        entity_id=question_id,
        before={"position": index},
        after={"position": other},
        at=now,
    )
    _snapshot(session, actor=actor, now=now)
    return True


# --- answers: validation by type ------------------------------------------------------------


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _clean_long_text(value: str) -> str:
    text_value = value.replace("\r\n", "\n").strip()
    if len(text_value) > LONG_TEXT_MAX:
        raise FieldError(
            f"The answer can be at most {LONG_TEXT_MAX:,} characters; this one has "
            f"{len(text_value):,}. Shorten it, then send again."
        )
    if any(ord(c) < 32 and c not in "\n\t" for c in text_value):
        raise FieldError("The answer cannot contain control characters.")
    return text_value


def _clean_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise FieldError("Enter a number, like 7 or 7.5.")
    raw = value if isinstance(value, (int, float)) else str(value).strip()
    if isinstance(raw, str) and not _NUMBER.fullmatch(raw):
        raise FieldError("Enter a number, like 7 or 7.5.")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise FieldError("Enter a number, like 7 or 7.5.")
    try:
        number = Decimal(str(raw))
    except InvalidOperation:
        raise FieldError("Enter a number, like 7 or 7.5.") from None
    if abs(number) >= NUMBER_LIMIT:
        raise FieldError("This number is too large.")
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def _clean_date(value: Any) -> str:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        parsed = clients.parse_date_query(value)
        if parsed is None:
            raise FieldError("Enter a date like 03/07/2024.")
        value = parsed
    if not isinstance(value, date):
        raise FieldError("Enter a date like 03/07/2024.")
    if not DATE_MIN <= value <= DATE_MAX:
        raise FieldError("Enter a date between 1900 and 2100.")
    return value.isoformat()


def _clean_yes_no(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("yes", "y", "true"):
        return True
    if word in ("no", "n", "false"):
        return False
    raise FieldError("Answer yes or no.")


def clean_answer(question: Question, value: Any) -> Any:
    """The canonical stored form of ``value`` for this question, None when unanswered.

    Raises ``FieldError`` with a message for the person filling in the form (never echoing
    what they typed). ``required`` is checked here too.
    """
    if _is_empty(value):
        if question.required:
            raise FieldError("Please answer this question.")
        return None
    qtype = question.qtype
    if qtype == "short_text":
        return clean_text(str(value), label="answer", max_len=SHORT_TEXT_MAX)
    if qtype == "long_text":
        return _clean_long_text(str(value))
    if qtype == "number":
        return _clean_number(value)
    if qtype == "date":
        return _clean_date(value)
    if qtype == "yes_no":
        return _clean_yes_no(value)
    if qtype == "single_choice":
        if not isinstance(value, str) or value not in question.options:
            raise FieldError("Choose one of the options.")
        return value
    if qtype == "multiple_choice":
        if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
            raise FieldError("Choose from the options.")
        chosen = set(value)
        if not chosen <= set(question.options):
            raise FieldError("Choose from the options.")
        return [o for o in question.options if o in chosen]
    raise FieldError("This question cannot be answered.")


def answer_text(qtype: str, value: Any) -> str:
    """An answer as a person reads it: lists joined, yes/no spelled out, dates as 03/07/2024."""
    if value is None or value == "" or value == []:
        return ""
    if qtype == "yes_no":
        return "Yes" if value else "No"
    if qtype == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%m/%d/%Y")
        except ValueError:
            return value
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


# --- the Other Information tab (I2) ---------------------------------------------------------


@dataclass(frozen=True)
class AnswerRow:
    question_id: int
    label: str
    help_text: str
    qtype: str
    options: tuple[str, ...]
    required: bool
    active: bool
    value: Any  # canonical stored value, None when not answered
    answer_text: str  # the answer as a person reads it
    source: str  # "Staff", "Anonymous signup" or "" when never answered
    answered_at: datetime | None
    answered_by: str  # the staff member's name; "" for anonymous signup
    version: int  # of the answer row; 0 when there is none yet

    @property
    def question(self) -> Question:
        return Question(
            self.question_id,
            self.label,
            self.help_text,
            self.qtype,
            self.options,
            self.required,
            0,
            self.active,
            0,
        )


def _client_for(session: Session, client_id: int) -> Client:
    client = session.get(Client, client_id)
    if client is None:
        raise ClientNotFound("There is no client with that number.")
    return client


def answers_for_client(session: Session, *, actor: Actor, client_id: int) -> list[AnswerRow]:
    """Active questions (answered or not) and retired questions that were answered."""
    client = _client_for(session, client_id)
    require_client_access(actor, "intake.view", client.clinician_id)
    answers = {
        a.question_id: a
        for a in session.scalars(select(IntakeAnswer).where(IntakeAnswer.client_id == client_id))
    }
    names = dict(
        session.execute(
            select(User.id, User.display_name).where(
                User.id.in_(sorted({a.answered_by for a in answers.values() if a.answered_by}))
            )
        ).all()
    )
    rows = []
    for q in _ordered(session):
        a = answers.get(q.id)
        if not q.active and a is None:
            continue
        value = json.loads(a.value_json) if a else None
        question = _question(q)
        rows.append(
            AnswerRow(
                question_id=q.id,
                label=q.label,
                help_text=question.help_text,
                qtype=q.qtype,
                options=question.options,
                required=question.required,
                active=question.active,
                value=value,
                answer_text=answer_text(q.qtype, value),
                source=SOURCE_LABELS.get(a.source, a.source) if a else "",
                answered_at=as_utc(a.answered_at) if a else None,
                answered_by=names.get(a.answered_by, "") if a else "",
                version=a.version if a else 0,
            )
        )
    return rows


def _who_answered(session: Session, answer: IntakeAnswer | None) -> tuple[str, datetime | None]:
    if answer is None:
        return "another user", None
    if answer.source == "anonymous_signup":
        return "an accepted intake submission", as_utc(answer.answered_at)
    user = session.get(User, answer.answered_by) if answer.answered_by else None
    return (user.display_name if user else "another user"), as_utc(answer.answered_at)


def _write_answer(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    question_id: int,
    existing: IntakeAnswer | None,
    value: Any,
    source: str,
    answered_at: datetime,
    answered_by: int | None,
    set_version_id: int | None,
    expected_version: int | None,
    tz_name: str,
) -> int:
    """Insert or update one answer (conditionally on its version when one is expected) and
    audit it. Returns the answer's new version."""
    fields = {
        "value_json": json.dumps(value),
        "source": source,
        "answered_at": answered_at,
        "answered_by": answered_by,
        "set_version_id": set_version_id,
    }
    before = json.loads(existing.value_json) if existing else None
    if existing is None:
        answer = IntakeAnswer(client_id=client_id, question_id=question_id, version=1, **fields)
        try:
            with session.begin_nested():
                session.add(answer)
                session.flush()
        except IntegrityError:  # someone answered it at the same moment
            raise StaleEdit("another user", None, tz_name) from None
        answer_id, new_version = answer.id, 1
    else:
        condition = [IntakeAnswer.id == existing.id]
        if expected_version is not None:
            condition.append(IntakeAnswer.version == expected_version)
        result = session.execute(
            update(IntakeAnswer)
            .where(*condition)
            .values(**fields, version=IntakeAnswer.version + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            session.expire(existing)
            raise StaleEdit(*_who_answered(session, existing), tz_name)
        answer_id, new_version = existing.id, existing.version + 1
        session.expire(existing)
    audit.record(
        session,
        actor=actor,
        action="intake.answer",
        entity="intake_answer",
        entity_id=answer_id,
        client_id=client_id,
        before={"question_id": question_id, "value": before} if existing else None,
        after={"question_id": question_id, "value": value, "source": source},
        at=answered_at if source == "staff" else None,
    )
    return new_version


def save_answers(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    answers: dict[int, Any],
    expected_versions: dict[int, int],
    tz_name: str = "America/New_York",
) -> dict[int, int]:
    """Save staff edits to a client's answers; returns question id -> new answer version.

    ``answers`` maps question id to the value from the form (only changed ones need be sent);
    ``expected_versions`` the answer versions the form showed (0: no answer) — give every
    answer shown, and a save is refused if any of them changed since. Values are
    checked by type; an answered required question cannot be emptied, but staff need not fill
    every required question at once. Raises ``ValidationError`` (keys ``q<id>``),
    ``StaleEdit`` (someone changed one of these answers since; nothing written) or
    ``PermissionDenied``.
    """
    client = _client_for(session, client_id)
    require_client_access(actor, "intake.edit", client.clinician_id)
    questions = {q.id: q for q in _ordered(session)}
    existing = {
        a.question_id: a
        for a in session.scalars(
            select(IntakeAnswer).where(IntakeAnswer.client_id == client_id).with_for_update()
        )
    }
    errors: dict[str, str] = {}
    changes: dict[int, Any] = {}
    for question_id, raw in answers.items():
        row = questions.get(question_id)
        current = existing.get(question_id)
        if row is None or (not row.active and current is None):
            errors[f"q{question_id}"] = "This question is no longer asked."
            continue
        question = _question(row)
        stored = json.loads(current.value_json) if current else None
        try:
            # "required" is checked below, and only against emptying an answer.
            value = clean_answer(replace(question, required=False), raw)
        except FieldError as exc:
            errors[f"q{question_id}"] = str(exc)
            continue
        if value is None and question.required and stored is not None:
            errors[f"q{question_id}"] = "This question is required; it cannot be emptied."
            continue
        if value != stored:
            changes[question_id] = value
    if errors:
        raise ValidationError(errors)
    # The tab as a whole was shown at these versions: any answer saved since refuses the save.
    for question_id in set(changes) | set(expected_versions):
        current = existing.get(question_id)
        if (current.version if current else 0) != expected_versions.get(question_id, 0):
            raise StaleEdit(*_who_answered(session, current), tz_name)
    now = utcnow()
    set_version_id = _current_set_version_id(session)
    return {
        question_id: _write_answer(
            session,
            actor=actor,
            client_id=client_id,
            question_id=question_id,
            existing=existing.get(question_id),
            value=value,
            source="staff",
            answered_at=now,
            answered_by=actor.user_id,
            set_version_id=set_version_id,
            expected_version=expected_versions.get(question_id, 0),
            tz_name=tz_name,
        )
        for question_id, value in changes.items()
    }


# --- the public intake page (I3) -------------------------------------------------------------


@dataclass(frozen=True)
class PublicForm:
    practice_name: str
    questions: list[Question]


def public_form(session: Session) -> PublicForm:
    """What the public page may show: the practice's name and the active questions only."""
    practice = session.get(PracticeSetting, "practice_name")
    return PublicForm(
        practice_name=practice.value if practice else "",
        questions=list_questions(session, active_only=True),
    )


def validate_submission(
    *,
    first_name: str,
    last_name: str,
    dob: date | None,
    email: str,
    phone: str,
    answers: dict[int, Any],
    questions: list[Question],
    today: date | None = None,
) -> dict[str, Any]:
    """Clean the public form or raise ``ValidationError`` (keys: first_name, last_name, dob,
    email, phone, and ``q<id>`` per question)."""
    v = Validator()
    v.check("first_name", clean_text, first_name, label="first name", required=True, max_len=80)
    v.check("last_name", clean_text, last_name, label="last name", required=True, max_len=80)
    v.check("dob", clean_dob, dob, today=today)
    v.check("email", clean_email, email)
    v.check("phone", clean_phone, phone)
    if "email" in v.values and "phone" in v.values and not v.values["email"] + v.values["phone"]:
        v.fail("email", "Enter an email address or a phone number so the practice can reach you.")
    cleaned = {}
    for question in questions:
        value = v.check(
            f"q{question.question_id}", clean_answer, question, answers.get(question.question_id)
        )
        if value is not None:
            cleaned[question.question_id] = value
    v.raise_if_errors()
    return {**v.values, "answers": cleaned}


def submit_intake(
    session: Session,
    *,
    first_name: str,
    last_name: str,
    dob: date | None,
    email: str,
    phone: str,
    answers: dict[int, Any],
    client_address: str | None = None,
    honeypot: str = "",
    now: datetime | None = None,
    today: date | None = None,
) -> int:
    """Store an anonymous signup for review; returns its id (never shown to the person).

    Nothing is looked up about the person, so the outcome and its timing are the same whether
    or not they are already a client. Raises ``ValidationError`` or ``RateLimited`` (too
    many from ``client_address``, or practice-wide: ``lib.intake_limits``); nothing is
    written then. A filled-in ``honeypot`` is accepted the same way but stored as spam.
    """
    questions = list_questions(session, active_only=True)
    clean = validate_submission(
        first_name=first_name,
        last_name=last_name,
        dob=dob,
        email=email,
        phone=phone,
        answers=answers,
        questions=questions,
        today=today,
    )
    now = now or utcnow()
    intake_limits.count_submission(session, address=client_address, now=now)
    spam = bool((honeypot or "").strip())
    submission = IntakeSubmission(
        submitted_at=now,
        first_name=clean["first_name"],
        last_name=clean["last_name"],
        dob=clean["dob"],
        email=clean["email"],
        phone=clean["phone"],
        answers_json=json.dumps({str(k): v for k, v in clean["answers"].items()}),
        set_version_id=_current_set_version_id(session),
        status="spam" if spam else "pending",
        reviewed_at=now if spam else None,
        reject_reason=HONEYPOT_REASON if spam else "",
    )
    session.add(submission)
    session.flush()
    audit.record(
        session,
        actor=None,
        action="intake.submit",
        entity="intake_submission",
        entity_id=submission.id,
        detail="public intake page" + ("; hidden field filled in: spam" if spam else ""),
        at=now,
    )
    return submission.id


# --- the review queue ------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionRow:
    submission_id: int
    submitted_at: datetime
    first_name: str
    last_name: str
    dob: date | None
    email: str
    phone: str
    status: str
    status_label: str
    reviewed_at: datetime | None
    reviewed_by: str
    reject_reason: str
    client_id: int | None
    client_number: int | None

    @property
    def name(self) -> str:
        return clients.display_name(self.last_name, self.first_name)


@dataclass(frozen=True)
class SubmittedAnswer:
    question_id: int
    label: str  # as the person saw it
    answer_text: str
    retired: bool  # the question is no longer asked


@dataclass(frozen=True)
class SubmissionDetail:
    row: SubmissionRow
    answers: list[SubmittedAnswer]


def _submission_rows(session: Session, subs: list[IntakeSubmission]) -> list[SubmissionRow]:
    user_ids = {s.reviewed_by for s in subs if s.reviewed_by}
    client_ids = {s.client_id for s in subs if s.client_id}
    names = dict(
        session.execute(
            select(User.id, User.display_name).where(User.id.in_(sorted(user_ids)))
        ).all()
    )
    numbers = dict(
        session.execute(
            select(Client.id, Client.client_number).where(Client.id.in_(sorted(client_ids)))
        ).all()
    )
    return [
        SubmissionRow(
            submission_id=s.id,
            submitted_at=as_utc(s.submitted_at),
            first_name=s.first_name,
            last_name=s.last_name,
            dob=s.dob,
            email=s.email,
            phone=s.phone,
            status=s.status,
            status_label=STATUS_LABELS.get(s.status, s.status),
            reviewed_at=as_utc(s.reviewed_at),
            reviewed_by=names.get(s.reviewed_by, "") if s.reviewed_by else "",
            reject_reason=s.reject_reason or "",
            client_id=s.client_id,
            client_number=numbers.get(s.client_id) if s.client_id else None,
        )
        for s in subs
    ]


def list_submissions(
    session: Session, *, actor: Actor, status: str = "pending", limit: int = 500
) -> list[SubmissionRow]:
    """Submissions with this status: the pending queue oldest first, reviewed ones newest
    first. Rejected submissions are kept for good and stay listed here."""
    require(actor, "intake.review")
    if status not in STATUS_LABELS:
        raise ValueError(f"unknown status {status!r}")
    order = IntakeSubmission.id.asc() if status == "pending" else IntakeSubmission.id.desc()
    subs = list(
        session.scalars(
            select(IntakeSubmission)
            .where(IntakeSubmission.status == status)
            .order_by(order)
            .limit(limit)
        )
    )
    return _submission_rows(session, subs)


def pending_count(session: Session, *, actor: Actor) -> int:
    require(actor, "intake.review")
    return int(
        session.scalar(
            select(func.count())
            .select_from(IntakeSubmission)
            .where(IntakeSubmission.status == "pending")
        )
    )


def _load_submission(session: Session, submission_id: int, *, lock: bool = False):
    query = select(IntakeSubmission).where(IntakeSubmission.id == submission_id)
    if lock:
        query = query.with_for_update()
    submission = session.scalar(query)
    if submission is None:
        raise SubmissionNotFound("There is no such intake submission.")
    return submission


def get_submission(session: Session, *, actor: Actor, submission_id: int) -> SubmissionDetail:
    """One submission with its answers, labelled as the person saw the questions."""
    require(actor, "intake.review")
    submission = _load_submission(session, submission_id)
    seen = _snapshot_questions(session, submission.set_version_id)
    now = {q.id: q for q in _ordered(session)}
    answers = []
    for key, value in json.loads(submission.answers_json or "{}").items():
        question_id = int(key)
        asked = seen.get(question_id)
        current = now.get(question_id)
        label = asked["label"] if asked else (current.label if current else "(deleted question)")
        qtype = asked["qtype"] if asked else (current.qtype if current else "short_text")
        position = current.position if current else 10**6
        answers.append(
            (
                position,
                question_id,
                SubmittedAnswer(
                    question_id=question_id,
                    label=label,
                    answer_text=answer_text(qtype, value),
                    retired=current is None or not current.active,
                ),
            )
        )
    answers.sort(key=lambda a: (a[0], a[1]))
    return SubmissionDetail(
        row=_submission_rows(session, [submission])[0], answers=[a for _, _, a in answers]
    )


def submission_duplicates(
    session: Session, *, actor: Actor, submission_id: int
) -> list[clients.DuplicateMatch]:
    """Existing clients that look like the person who signed up (the add-client check)."""
    require(actor, "intake.review")
    submission = _load_submission(session, submission_id)
    return clients.find_duplicates(
        session,
        actor=actor,
        first_name=submission.first_name,
        last_name=submission.last_name,
        dob=submission.dob,
        email=submission.email,
        phone=submission.phone,
    )


def _refuse_if_reviewed(session: Session, submission: IntakeSubmission) -> None:
    if submission.status == "pending":
        return
    user = session.get(User, submission.reviewed_by) if submission.reviewed_by else None
    done = {
        "accepted": "accepted this submission",
        "rejected": "rejected this submission",
        "spam": "marked this submission as spam",
    }
    who = (
        user.display_name if user else ("ClientDesk" if submission.status == "spam" else "Someone")
    )
    raise AlreadyReviewed(f"{who} already {done.get(submission.status, 'reviewed it')}.")


@dataclass(frozen=True)
class Accepted:
    client_id: int
    client_number: int
    created: bool  # False when attached to an existing client
    answers_copied: int


def accept_submission(
    session: Session,
    *,
    actor: Actor,
    submission_id: int,
    attach_to_client_number: int | None = None,
    clinician_id: int | None = None,
    acknowledged_duplicates: tuple[int, ...] = (),
    tz_name: str = "America/New_York",
) -> Accepted:
    """Accept a pending submission: as a new Prospective client (through the add-client
    validation and duplicate check, so ``clients.PossibleDuplicates`` may be raised and nothing
    written), or attached to an existing client by number. Its answers are copied into the
    client's Other Information with source "anonymous signup" and the time they were given,
    replacing that client's earlier answers to the same questions.

    Needs ``intake.review`` and, for a new client, ``client.create``. Raises
    ``AlreadyReviewed`` if someone reviewed it first.
    """
    require(actor, "intake.review")
    submission = _load_submission(session, submission_id, lock=True)
    _refuse_if_reviewed(session, submission)
    if attach_to_client_number is not None:
        client = session.scalar(
            select(Client).where(Client.client_number == attach_to_client_number)
        )
        if client is None:
            raise ValidationError({"attach": "There is no client with that number."})
        require_client_access(actor, "intake.edit", client.clinician_id)
        target = clients.NewClient(client_id=client.id, client_number=client.client_number)
    else:
        target = clients.create_client(
            session,
            actor=actor,
            first_name=submission.first_name,
            last_name=submission.last_name,
            dob=submission.dob,
            email=submission.email,
            phone_mobile=submission.phone,
            clinician_id=clinician_id,
            status="prospective",
            acknowledged_duplicates=acknowledged_duplicates,
        )
    existing = {
        a.question_id: a
        for a in session.scalars(
            select(IntakeAnswer).where(IntakeAnswer.client_id == target.client_id)
        )
    }
    known = {q.id for q in _ordered(session)}
    copied = 0
    for key, value in json.loads(submission.answers_json or "{}").items():
        question_id = int(key)
        if question_id not in known or value is None:
            continue
        _write_answer(
            session,
            actor=actor,
            client_id=target.client_id,
            question_id=question_id,
            existing=existing.get(question_id),
            value=value,
            source="anonymous_signup",
            answered_at=as_utc(submission.submitted_at),
            answered_by=None,
            set_version_id=submission.set_version_id,
            expected_version=None,
            tz_name=tz_name,
        )
        copied += 1
    now = utcnow()
    submission.status = "accepted"
    submission.reviewed_at = now
    submission.reviewed_by = actor.user_id
    submission.client_id = target.client_id
    audit.record(
        session,
        actor=actor,
        action="intake.accept",
        entity="intake_submission",
        entity_id=submission.id,
        client_id=target.client_id,
        after={
            "status": "accepted",
            "client_number": target.client_number,
            "new_client": attach_to_client_number is None,
            "answers_copied": copied,
        },
        at=now,
    )
    return Accepted(
        client_id=target.client_id,
        client_number=target.client_number,
        created=attach_to_client_number is None,
        answers_copied=copied,
    )


def reject_submission(session: Session, *, actor: Actor, submission_id: int, reason: str) -> None:
    """Reject a pending submission with a reason. It is kept, with everything in it."""
    require(actor, "intake.review")
    v = Validator()
    v.check("reason", clean_text, reason, label="reason", required=True, max_len=REASON_MAX)
    v.raise_if_errors()
    submission = _load_submission(session, submission_id, lock=True)
    _refuse_if_reviewed(session, submission)
    now = utcnow()
    submission.status = "rejected"
    submission.reviewed_at = now
    submission.reviewed_by = actor.user_id
    submission.reject_reason = v.values["reason"]
    audit.record(
        session,
        actor=actor,
        action="intake.reject",
        entity="intake_submission",
        entity_id=submission.id,
        before={"status": "pending"},
        after={"status": "rejected", "reason": v.values["reason"]},
        at=now,
    )


@dataclass(frozen=True)
class BulkReviewed:
    done: int
    skipped: int  # someone reviewed them first (or they were not there)


BULK_ACTIONS = {"reject": "rejected", "spam": "spam", "not_spam": "pending"}


def review_many(
    session: Session,
    *,
    actor: Actor,
    submission_ids: Sequence[int],
    action: str,
    reason: str = "",
) -> BulkReviewed:
    """Reject (with a reason), mark as spam, or — for spam — move back to the queue many
    submissions at once; each is audited. Submissions someone else reviewed meanwhile are
    left as they are and counted as skipped."""
    require(actor, "intake.review")
    if action not in BULK_ACTIONS:
        raise ValueError(f"unknown bulk action {action!r}")
    ids = list(dict.fromkeys(int(i) for i in submission_ids))
    v = Validator()
    if not ids:
        v.fail("submissions", "Choose at least one submission.")
    elif len(ids) > BULK_LIMIT:
        v.fail("submissions", f"Choose at most {BULK_LIMIT} submissions at a time.")
    if action == "reject":
        v.check("reason", clean_text, reason, label="reason", required=True, max_len=REASON_MAX)
    elif action == "spam":
        v.check("reason", clean_text, reason, label="reason", max_len=REASON_MAX)
    v.raise_if_errors()
    was = "spam" if action == "not_spam" else "pending"
    status = BULK_ACTIONS[action]
    now = utcnow()
    done = 0
    for submission_id in ids:
        submission = session.scalar(
            select(IntakeSubmission).where(IntakeSubmission.id == submission_id).with_for_update()
        )
        if submission is None or submission.status != was:
            continue
        before = {"status": submission.status, "reason": submission.reject_reason}
        submission.status = status
        if action == "not_spam":
            submission.reviewed_at, submission.reviewed_by, submission.reject_reason = (
                None,
                None,
                "",
            )
        else:
            submission.reviewed_at, submission.reviewed_by = now, actor.user_id
            submission.reject_reason = v.values.get("reason") or SPAM_REASON
        audit.record(
            session,
            actor=actor,
            action=f"intake.{action}",
            entity="intake_submission",
            entity_id=submission.id,
            before=before,
            after={"status": status, "reason": submission.reject_reason},
            detail=f"bulk of {len(ids)}",
            at=now,
        )
        done += 1
    return BulkReviewed(done=done, skipped=len(ids) - done)
