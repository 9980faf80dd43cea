"""How every edit form saves (spec: "Conventions that keep writes trustworthy", C7).

A form shows a record at one version. When the user saves, only the fields they changed go to
lib (``user_changes`` compares what they submitted with what the form showed), and lib writes
them only if the record is still at that version. Otherwise ``StaleEdit`` names who saved
last and when, and nothing is written: a colleague's value is never overwritten by a form that
did not show it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib.config import load_settings
from lib.models import AuditEntry, User
from lib.timeutil import as_utc, local_text


class StaleEdit(Exception):
    """Someone else saved this record after the form was shown. The message is for the user."""

    def __init__(self, changed_by: str, changed_at: datetime | None, tz_name: str | None = None):
        zone = tz_name or load_settings().practice_time_zone
        when = local_text(changed_at, zone) if changed_at else "an unknown time"
        super().__init__(f"Changed by {changed_by} at {when} — reload to see their change.")
        self.changed_by = changed_by
        self.changed_at = changed_at


def _same(shown: Any, submitted: Any) -> bool:
    """Equal as a user sees them: blank is blank, and surrounding spaces are not an edit."""
    if isinstance(shown, str) or isinstance(submitted, str):
        return str(shown or "").strip() == str(submitted or "").strip()
    if shown in (None, [], ()) and submitted in (None, [], ()):
        return True
    return shown == submitted


def user_changes(shown: Mapping[str, Any], submitted: Mapping[str, Any]) -> dict[str, Any]:
    """The fields whose submitted value differs from the value the form showed."""
    return {k: v for k, v in submitted.items() if not _same(shown.get(k), v)}


def check_fields(changes: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """A programming error, not a user one: a form sent a field this record does not have."""
    unknown = set(changes) - set(allowed)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")


def last_change(
    session: Session, *, entity: str, entity_id: object, actions: Iterable[str] | None = None
) -> tuple[str, datetime | None]:
    """Who last saved this record, and when (from the audit log)."""
    query = (
        select(AuditEntry.actor_user_id, AuditEntry.actor_username, AuditEntry.at)
        .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if actions is not None:
        query = query.where(AuditEntry.action.in_(list(actions)))
    row = session.execute(query).first()
    if row is None:
        return "another user", None
    name = row.actor_username
    if row.actor_user_id is not None:
        user = session.get(User, row.actor_user_id)
        name = user.display_name if user else name
    return name, as_utc(row.at)


def refuse_if_stale(
    session: Session,
    *,
    current_version: int,
    expected_version: int,
    entity: str,
    entity_id: object,
    actions: Iterable[str] | None = None,
    tz_name: str | None = None,
) -> None:
    """Raise ``StaleEdit`` (naming who and when) unless the record is at the version shown."""
    if current_version != expected_version:
        who, when = last_change(session, entity=entity, entity_id=entity_id, actions=actions)
        raise StaleEdit(who, when, tz_name)
