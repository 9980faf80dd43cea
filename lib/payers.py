"""The practice's payer list (insurance companies), managed by admins in Settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lib import audit
from lib.edits import StaleEdit, last_change, refuse_if_stale
from lib.models import Payer
from lib.policy import Actor, require
from lib.validation import (
    ValidationError,
    Validator,
    clean_choice,
    clean_phone,
    clean_text,
)

PAYER_KINDS = ("electronic", "paper")


@dataclass(frozen=True)
class PayerRow:
    payer_id: int
    name: str
    payer_code: str
    kind: str
    address: str
    phone: str
    active: bool
    version: int

    @property
    def label(self) -> str:
        """How a payer is shown in pickers: name, electronic/paper and payer ID."""
        code = f", payer ID {self.payer_code}" if self.payer_code else ""
        return f"{self.name} ({self.kind}{code})"


def _row(p: Payer) -> PayerRow:
    return PayerRow(p.id, p.name, p.payer_code, p.kind, p.address, p.phone, p.active, p.version)


def list_payers(session: Session, *, include_inactive: bool = False) -> list[PayerRow]:
    """Payer names are practice reference data, not client data: any signed-in user may read."""
    query = select(Payer).order_by(func.lower(Payer.name))
    if not include_inactive:
        query = query.where(Payer.active.is_(True))
    return [_row(p) for p in session.scalars(query)]


def _validate(values: dict) -> dict:
    v = Validator()
    v.check("name", clean_text, values.get("name"), label="payer name", required=True)
    v.check("payer_code", clean_text, values.get("payer_code"), label="payer ID", max_len=20)
    v.check(
        "kind", clean_choice, values.get("kind"), PAYER_KINDS, label="claim type", allow_blank=False
    )
    v.check("address", clean_text, values.get("address"), label="address", max_len=300)
    v.check("phone", clean_phone, values.get("phone"))
    if not v.errors and v.values["kind"] == "electronic" and not v.values["payer_code"]:
        v.fail("payer_code", "Electronic payers need their payer ID.")
    v.raise_if_errors()
    return v.values


def save_payer(
    session: Session,
    *,
    actor: Actor,
    values: dict,
    payer_id: int | None = None,
    expected_version: int | None = None,
    active: bool = True,
    tz_name: str | None = None,
) -> int:
    """Create (``payer_id`` None) or update a payer; returns its id. Payers are never deleted:
    set ``active`` False to retire one (coverages that use it keep it). An update is refused
    with ``StaleEdit`` (naming who and when) unless the payer is at ``expected_version``."""
    require(actor, "settings.manage")
    clean = _validate(values)
    duplicate = session.scalar(
        select(Payer.id).where(func.lower(Payer.name) == clean["name"].lower())
    )
    if duplicate is not None and duplicate != payer_id:
        raise ValidationError({"name": "A payer with this name is already in the list."})
    if payer_id is None:
        payer = Payer(**clean, active=active, version=1)
        session.add(payer)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="payer.create",
            entity="payer",
            entity_id=payer.id,
            after=clean,
        )
        return payer.id
    payer = session.get(Payer, payer_id)
    if payer is None:
        raise ValidationError({"name": "This payer no longer exists; reload the page."})
    refuse_if_stale(
        session,
        current_version=payer.version,
        expected_version=expected_version,
        entity="payer",
        entity_id=payer_id,
        tz_name=tz_name,
    )
    before = {k: getattr(payer, k) for k in (*clean, "active")}
    result = session.execute(
        update(Payer)
        .where(Payer.id == payer_id, Payer.version == expected_version)
        .values(**clean, active=active, version=Payer.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StaleEdit(*last_change(session, entity="payer", entity_id=payer_id), tz_name)
    old, new = audit.changed_fields(before, {**clean, "active": active})
    audit.record(
        session,
        actor=actor,
        action="payer.update",
        entity="payer",
        entity_id=payer_id,
        before=old,
        after=new,
    )
    return payer_id
