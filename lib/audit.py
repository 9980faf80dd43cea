"""The one audit writer (spec A2).

Every write through lib calls ``record`` in the same transaction as the write, so the change
and its audit row land together. Opens of a client record and exports are recorded too.
The table is append-only at the database (see the initial migration's triggers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lib.models import AuditEntry
from lib.policy import Actor, require
from lib.timeutil import utcnow


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def to_json(values: dict[str, Any] | None) -> str | None:
    if values is None:
        return None
    return json.dumps({k: _jsonable(v) for k, v in values.items()}, sort_keys=True)


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    entity: str,
    entity_id: object = "",
    client_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str = "",
    at: datetime | None = None,
) -> None:
    """Append one audit row. ``actor`` None means the system (CLI, signup page)."""
    session.add(
        AuditEntry(
            at=at or utcnow(),
            actor_user_id=actor.user_id if actor else None,
            actor_username=actor.username if actor else "system",
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            client_id=client_id,
            before_json=to_json(before),
            after_json=to_json(after),
            detail=detail[:500],
        )
    )


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict, dict]:
    """Only the fields that differ, so an audit row shows what really changed."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    actor_username: str
    action: str
    entity: str
    entity_id: str
    client_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str


def row_of(entry: AuditEntry) -> AuditRow:
    return AuditRow(
        at=entry.at,
        actor_username=entry.actor_username,
        action=entry.action,
        entity=entry.entity,
        entity_id=entry.entity_id,
        client_id=entry.client_id,
        before=json.loads(entry.before_json) if entry.before_json else None,
        after=json.loads(entry.after_json) if entry.after_json else None,
        detail=entry.detail,
    )


def list_entries(
    session: Session,
    *,
    actor: Actor,
    action: str | None = None,
    username: str | None = None,
    client_id: int | None = None,
    since: datetime | None = None,
    limit: int = 500,
) -> list[AuditRow]:
    """Newest first, filtered (admins only)."""
    require(actor, "audit.view")
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    if username:
        query = query.where(func.lower(AuditEntry.actor_username) == username.lower())
    if client_id is not None:
        query = query.where(AuditEntry.client_id == client_id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return [row_of(e) for e in session.scalars(query)]


def distinct_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
