"""Collection contacts: each call, email, letter or text about a balance, with its outcome.

Contacts are part of the client's record: every one is audited with the client. The newest
contact decides the follow-up: a follow-up date of today or earlier puts the client back on
the worklist; a later contact (with another date, or none) replaces it. A promise to pay has
an amount and a date. A contact carries an idempotency key, so a double click logs it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from lib import audit
from lib.models import CONTACT_KINDS, CONTACT_OUTCOMES, Client, CollectionContact, User
from lib.money import format_cents
from lib.policy import Actor, require_client_access
from lib.timeutil import as_utc, practice_today, utcnow
from lib.validation import FieldError, ValidationError, clean_text

KIND_LABELS = {"call": "Call", "email": "Email", "letter": "Letter", "text": "Text"}
OUTCOME_LABELS = {
    "reached": "Reached",
    "left_message": "Left a message",
    "no_answer": "No answer",
    "promised": "Promised to pay",
    "disputed": "Disputes the balance",
    "bad_contact": "Wrong number or address",
    "sent": "Sent",
}
assert tuple(KIND_LABELS) == CONTACT_KINDS and tuple(OUTCOME_LABELS) == CONTACT_OUTCOMES
NOTE_MAX = 1000
_LATER = aliased(CollectionContact, name="later_contact")  # made once: building one is slow


@dataclass(frozen=True)
class Contact:
    contact_id: int
    client_id: int
    kind: str
    outcome: str
    note: str
    follow_up_on: date | None
    promise_cents: int | None
    promise_on: date | None
    contacted_at: datetime
    by: str

    @property
    def summary(self) -> str:
        """E.g. "Call · Left a message" (no note: notes are shown literally, on their own)."""
        return f"{KIND_LABELS[self.kind]} · {OUTCOME_LABELS[self.outcome]}"

    @property
    def promise(self) -> str:
        if not self.promise_cents:
            return ""
        return f"{format_cents(self.promise_cents)} by {self.promise_on:%m/%d/%Y}"


def _row(c: CollectionContact, by: str) -> Contact:
    return Contact(
        c.id,
        c.client_id,
        c.kind,
        c.outcome,
        c.note,
        c.follow_up_on,
        c.promise_cents,
        c.promise_on,
        as_utc(c.contacted_at),
        by,
    )


def _clean(
    kind: str,
    outcome: str,
    note: str,
    follow_up_on: date | None,
    promise_cents: int | None,
    promise_on: date | None,
    today: date,
) -> str:
    errors: dict[str, str] = {}
    if kind not in CONTACT_KINDS:
        errors["kind"] = "Choose call, email, letter or text."
    if outcome not in CONTACT_OUTCOMES:
        errors["outcome"] = "Choose what came of it."
    try:
        note = clean_text(note, label="note", max_len=NOTE_MAX)
    except FieldError as exc:
        errors["note"] = str(exc)
    if follow_up_on is not None and follow_up_on < today:
        errors["follow_up_on"] = "A follow-up date cannot be in the past."
    if outcome == "promised":
        if not promise_cents or promise_cents <= 0:
            errors["promise_cents"] = "Enter the amount the client promised to pay."
        if promise_on is None:
            errors["promise_on"] = "Enter the date the client promised to pay by."
        elif promise_on < today:
            errors["promise_on"] = "The promised date cannot be in the past."
    elif promise_cents or promise_on:
        errors["promise_cents"] = 'A promise goes with the outcome "Promised to pay".'
    if errors:
        raise ValidationError(errors)
    return note


def log_contact(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    kind: str,
    outcome: str,
    idempotency_key: str,
    note: str = "",
    follow_up_on: date | None = None,
    promise_cents: int | None = None,
    promise_on: date | None = None,
) -> tuple[int, bool]:
    """Record one contact attempt and audit it; returns (contact id, duplicate). The same
    key again (a double click) returns the first contact and writes nothing."""
    client = session.get(Client, client_id)
    require_client_access(actor, "collections.work", client.clinician_id if client else None)
    if client is None:
        raise ValidationError({"client": "This client does not exist."})
    key = (idempotency_key or "").strip()
    if not key or len(key) > 80:
        raise ValueError("A contact needs an idempotency key of 1-80 characters.")
    previous = session.scalar(
        select(CollectionContact.id).where(CollectionContact.idempotency_key == key)
    )
    if previous is not None:
        return previous, True
    note = _clean(kind, outcome, note, follow_up_on, promise_cents, promise_on, practice_today())
    now = utcnow()
    contact = CollectionContact(
        client_id=client_id,
        kind=kind,
        outcome=outcome,
        note=note,
        follow_up_on=follow_up_on,
        promise_cents=promise_cents or None,
        promise_on=promise_on if outcome == "promised" else None,
        contacted_at=now,
        contacted_by=actor.user_id,
        idempotency_key=key,
    )
    session.add(contact)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="collections.contact",
        entity="collection_contact",
        entity_id=contact.id,
        client_id=client_id,
        after={
            "kind": kind,
            "outcome": outcome,
            "note": note,
            "follow_up_on": follow_up_on,
            "promise_cents": contact.promise_cents,
            "promise_on": contact.promise_on,
        },
        at=now,
    )
    return contact.id, False


def contacts_of(
    session: Session, *, actor: Actor, client_id: int, limit: int = 50
) -> list[Contact]:
    """The client's contacts, newest first (Billing tab)."""
    client = session.get(Client, client_id)
    require_client_access(actor, "collections.work", client.clinician_id if client else None)
    rows = session.execute(
        select(CollectionContact, User.display_name)
        .outerjoin(User, User.id == CollectionContact.contacted_by)
        .where(CollectionContact.client_id == client_id)
        .order_by(CollectionContact.id.desc())
        .limit(limit)
    ).all()
    return [_row(c, by or "") for c, by in rows]


def _latest_ids(client_ids: list[int]):
    return (
        select(func.max(CollectionContact.id))
        .where(CollectionContact.client_id.in_(client_ids))
        .group_by(CollectionContact.client_id)
    )


def latest_of(session: Session, client_ids: list[int]) -> dict[int, Contact]:
    """Each client's newest contact (callers check permissions)."""
    if not client_ids:
        return {}
    rows = session.execute(
        select(CollectionContact, User.display_name)
        .outerjoin(User, User.id == CollectionContact.contacted_by)
        .where(CollectionContact.id.in_(_latest_ids(client_ids)))
    ).all()
    return {c.client_id: _row(c, by or "") for c, by in rows}


def latest_promises(session: Session, client_ids: list[int]) -> dict[int, Contact]:
    """Each client's newest promise to pay (it may be older than their newest contact)."""
    if not client_ids:
        return {}
    newest = (
        select(func.max(CollectionContact.id))
        .where(
            CollectionContact.client_id.in_(client_ids),
            CollectionContact.outcome == "promised",
        )
        .group_by(CollectionContact.client_id)
    )
    rows = session.scalars(select(CollectionContact).where(CollectionContact.id.in_(newest)))
    return {c.client_id: _row(c, "") for c in rows}


def follow_ups_due(session: Session, *, today: date) -> dict[int, date]:
    """Clients whose newest contact asks for a follow-up today or earlier: client -> date."""
    later = _LATER
    rows = session.execute(
        select(CollectionContact.client_id, CollectionContact.follow_up_on).where(
            CollectionContact.follow_up_on <= today,
            ~select(later.id)
            .where(later.client_id == CollectionContact.client_id, later.id > CollectionContact.id)
            .exists(),
        )
    ).all()
    return {client_id: day for client_id, day in rows}
