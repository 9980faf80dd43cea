"""Services the practice bills for (code, description, default fee), managed by admins (B1)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lib import audit
from lib.edits import StaleEdit, last_change, refuse_if_stale
from lib.models import Service
from lib.policy import Actor, require
from lib.validation import ValidationError, Validator, clean_text


@dataclass(frozen=True)
class ServiceRow:
    service_id: int
    code: str
    description: str
    fee_cents: int
    default_minutes: int
    active: bool
    version: int

    @property
    def label(self) -> str:
        return f"{self.code} {self.description}"


def list_services(session: Session, *, include_inactive: bool = False) -> list[ServiceRow]:
    """Practice reference data (no client data): any signed-in user may read it."""
    query = select(Service).order_by(Service.code)
    if not include_inactive:
        query = query.where(Service.active.is_(True))
    return [
        ServiceRow(s.id, s.code, s.description, s.fee_cents, s.default_minutes, s.active, s.version)
        for s in session.scalars(query)
    ]


def save_service(
    session: Session,
    *,
    actor: Actor,
    code: str,
    description: str,
    fee_cents: int,
    default_minutes: int,
    active: bool = True,
    service_id: int | None = None,
    expected_version: int | None = None,
    tz_name: str | None = None,
) -> int:
    """Create or update a service (an update only at ``expected_version``, else StaleEdit).
    Fees apply to appointments completed after the change;
    charges already posted keep their amounts (the ledger is append-only)."""
    require(actor, "settings.manage")
    v = Validator()
    v.check("code", clean_text, code, label="code", required=True, max_len=20)
    v.check("description", clean_text, description, label="description", required=True, max_len=200)
    if not 0 < fee_cents <= 10_000_00:
        v.fail("fee_cents", "The fee must be more than $0 and at most $10,000.")
    if not 5 <= default_minutes <= 480:
        v.fail("default_minutes", "Minutes must be between 5 and 480.")
    v.raise_if_errors()
    clash = session.scalar(
        select(Service.id).where(func.lower(Service.code) == v.values["code"].lower())
    )
    if clash is not None and clash != service_id:
        raise ValidationError({"code": "Another service already uses this code."})
    values = {
        **v.values,
        "fee_cents": fee_cents,
        "default_minutes": default_minutes,
        "active": active,
    }
    if service_id is None:
        service = Service(**values, version=1)
        session.add(service)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="service.create",
            entity="service",
            entity_id=service.id,
            after=values,
        )
        return service.id
    current = session.get(Service, service_id)
    if current is None:
        raise ValidationError({"code": "This service no longer exists; reload the page."})
    refuse_if_stale(
        session,
        current_version=current.version,
        expected_version=expected_version,
        entity="service",
        entity_id=service_id,
        tz_name=tz_name,
    )
    before = {k: getattr(current, k) for k in values}
    result = session.execute(
        update(Service)
        .where(Service.id == service_id, Service.version == expected_version)
        .values(**values, version=Service.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StaleEdit(*last_change(session, entity="service", entity_id=service_id), tz_name)
    old, new = audit.changed_fields(before, values)
    audit.record(
        session,
        actor=actor,
        action="service.update",
        entity="service",
        entity_id=service_id,
        before=old,
        after=new,
    )
    return service_id
