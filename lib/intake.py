"""Intake: custom questions and each client's answers ("Other Information", spec I1–I3)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib.models import Client, IntakeAnswer, IntakeQuestion
from lib.policy import Actor, require_client_access
from lib.timeutil import as_utc

SOURCE_LABELS = {"staff": "Staff", "anonymous_signup": "Anonymous signup"}


@dataclass(frozen=True)
class AnswerRow:
    question_id: int
    label: str
    qtype: str
    active: bool
    answer_text: str  # the answer as a person reads it
    source: str
    answered_at: datetime | None


def answer_text(qtype: str, value) -> str:
    """An answer as text: lists joined, yes/no spelled out, dates as typed."""
    if value is None or value == "":
        return ""
    if qtype == "yes_no":
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def answers_for_client(session: Session, *, actor: Actor, client_id: int) -> list[AnswerRow]:
    """Active questions (answered or not) and retired questions that were answered."""
    client = session.get(Client, client_id)
    require_client_access(actor, "intake.view", client.clinician_id if client else None)
    answers = {
        a.question_id: a
        for a in session.scalars(select(IntakeAnswer).where(IntakeAnswer.client_id == client_id))
    }
    rows = []
    for q in session.scalars(select(IntakeQuestion).order_by(IntakeQuestion.position)):
        a = answers.get(q.id)
        if not q.active and a is None:
            continue
        rows.append(
            AnswerRow(
                question_id=q.id,
                label=q.label,
                qtype=q.qtype,
                active=q.active,
                answer_text=answer_text(q.qtype, json.loads(a.value_json)) if a else "",
                source=SOURCE_LABELS.get(a.source, a.source) if a else "",
                answered_at=as_utc(a.answered_at) if a else None,
            )
        )
    return rows
