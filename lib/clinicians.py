"""Clinicians the practice schedules and bills for, managed by admins (spec A6).

A clinician is a person who sees clients; a staff account is how someone signs in. A clinician
account is linked to its clinician (``users.clinician_id``), so that person sees their own
clients. Clinicians are never deleted (appointments and ledger entries name them): they are
deactivated, which takes them off the pick lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lib import audit
from lib.edits import StaleEdit, last_change, refuse_if_stale
from lib.models import Clinician, Service, User
from lib.policy import CLINICIAN, Actor, require
from lib.validation import ValidationError, Validator, clean_email, clean_text

FIELDS = ("first_name", "last_name", "credentials", "email", "default_service_id", "active")


@dataclass(frozen=True)
class ClinicianRow:
    clinician_id: int
    first_name: str
    last_name: str
    credentials: str
    email: str
    default_service_id: int | None
    active: bool
    version: int
    username: str  # the linked staff account, "" when none

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def label(self) -> str:
        suffix = f", {self.credentials}" if self.credentials else ""
        return f"{self.name}{suffix}" + ("" if self.active else " (inactive)")


def list_clinicians(session: Session, *, include_inactive: bool = True) -> list[ClinicianRow]:
    """Practice reference data with each clinician's linked account (no client data)."""
    linked = {
        cid: name
        for cid, name in session.execute(
            select(User.clinician_id, User.username)
            .where(User.clinician_id.is_not(None))
            .order_by(User.id)
        )
    }
    query = select(Clinician).order_by(Clinician.last_name, Clinician.first_name, Clinician.id)
    if not include_inactive:
        query = query.where(Clinician.active.is_(True))
    return [
        ClinicianRow(
            c.id,
            c.first_name,
            c.last_name,
            c.credentials,
            c.email,
            c.default_service_id,
            c.active,
            c.version,
            linked.get(c.id, ""),
        )
        for c in session.scalars(query)
    ]


def _validate(session: Session, values: dict) -> dict:
    v = Validator()
    v.check(
        "first_name",
        clean_text,
        values.get("first_name"),
        label="first name",
        required=True,
        max_len=80,
    )
    v.check(
        "last_name",
        clean_text,
        values.get("last_name"),
        label="last name",
        required=True,
        max_len=80,
    )
    v.check("credentials", clean_text, values.get("credentials"), label="credentials", max_len=40)
    v.check("email", clean_email, values.get("email"))
    service_id = values.get("default_service_id")
    if service_id is not None and session.get(Service, service_id) is None:
        v.fail("default_service_id", "Choose a service from the list.")
    v.values["default_service_id"] = service_id
    v.values["active"] = bool(values.get("active", True))
    v.raise_if_errors()
    return v.values


def _refuse_same_name(session: Session, values: dict, clinician_id: int | None) -> None:
    """Two clinicians with one name could not be told apart (the import finds clinicians by
    name); it also makes a double-clicked "Add clinician" add one, not two."""
    same = session.scalar(
        select(Clinician.id).where(
            func.lower(Clinician.first_name) == values["first_name"].lower(),
            func.lower(Clinician.last_name) == values["last_name"].lower(),
            Clinician.id != (clinician_id or 0),
        )
    )
    if same is not None:
        raise ValidationError(
            {"last_name": "There is already a clinician with this name; edit that one instead."}
        )


def _link_account(
    session: Session, *, actor: Actor | None, clinician_id: int, username: str | None
) -> None:
    """Make ``username`` the clinician's staff account (None/"": no account). An account whose
    role is clinician cannot lose its link: it would no longer see any client."""
    current = list(session.scalars(select(User).where(User.clinician_id == clinician_id)))
    target = None
    if username:
        target = session.scalar(select(User).where(User.username == username))
        if target is None:
            raise ValidationError({"username": "There is no staff account with that username."})
        if target.clinician_id not in (None, clinician_id) and target.role == CLINICIAN:
            raise ValidationError(
                {"username": "That account is linked to another clinician; change it there first."}
            )
    for user in current:
        if target is not None and user.id == target.id:
            continue
        if user.role == CLINICIAN:
            raise ValidationError(
                {
                    "username": f"The clinician account {user.username!r} is linked here; give "
                    "it another clinician or role on Staff accounts first."
                }
            )
        before = {"clinician_id": user.clinician_id}
        user.clinician_id = None
        user.version += 1
        audit.record(
            session,
            actor=actor,
            action="user.link_clinician",
            entity="user",
            entity_id=user.id,
            before=before,
            after={"clinician_id": None},
        )
    if target is not None and target.clinician_id != clinician_id:
        before = {"clinician_id": target.clinician_id}
        target.clinician_id = clinician_id
        target.version += 1
        audit.record(
            session,
            actor=actor,
            action="user.link_clinician",
            entity="user",
            entity_id=target.id,
            before=before,
            after={"clinician_id": clinician_id},
        )
    session.flush()


def save_clinician(
    session: Session,
    *,
    actor: Actor | None,
    changes: dict,
    clinician_id: int | None = None,
    expected_version: int | None = None,
    tz_name: str | None = None,
) -> int:
    """Add a clinician (``clinician_id`` None) or change the fields in ``changes`` of one, at
    the version the user saw (else ``StaleEdit`` naming who and when). ``changes`` may hold
    any of ``FIELDS`` and ``username`` (the staff account to link; "" for none). ``actor`` None
    is the CLI. Returns the clinician's id."""
    if actor is not None:
        require(actor, "clinicians.manage")
    unknown = set(changes) - set(FIELDS) - {"username"}
    if unknown:
        raise ValueError(f"unknown clinician fields {sorted(unknown)}")
    if clinician_id is None:
        values = _validate(session, {"active": True, **changes})
        _refuse_same_name(session, values, None)
        clinician = Clinician(**values, version=1)
        session.add(clinician)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="clinician.create",
            entity="clinician",
            entity_id=clinician.id,
            after=values,
        )
        if changes.get("username"):
            _link_account(
                session, actor=actor, clinician_id=clinician.id, username=changes["username"]
            )
        return clinician.id
    current = session.get(Clinician, clinician_id)
    if current is None:
        raise ValidationError({"first_name": "This clinician no longer exists; reload the page."})
    if expected_version is None:
        raise ValueError("an edit needs the version the user saw")
    refuse_if_stale(
        session,
        current_version=current.version,
        expected_version=expected_version,
        entity="clinician",
        entity_id=clinician_id,
        tz_name=tz_name,
    )
    before_all = {f: getattr(current, f) for f in FIELDS}
    values = _validate(session, {**before_all, **{k: v for k, v in changes.items() if k in FIELDS}})
    new = {f: values[f] for f in FIELDS if f in changes}
    if "first_name" in new or "last_name" in new:
        _refuse_same_name(session, values, clinician_id)
    if "username" in changes:
        _link_account(session, actor=actor, clinician_id=clinician_id, username=changes["username"])
    result = session.execute(
        update(Clinician)
        .where(Clinician.id == clinician_id, Clinician.version == expected_version)
        .values(**new, version=Clinician.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StaleEdit(*last_change(session, entity="clinician", entity_id=clinician_id), tz_name)
    old, after = audit.changed_fields({f: before_all[f] for f in new}, new)
    if "username" in changes:
        after["username"] = changes["username"] or ""
    audit.record(
        session,
        actor=actor,
        action="clinician.update",
        entity="clinician",
        entity_id=clinician_id,
        before=old,
        after=after,
    )
    return clinician_id


def find_by_name(session: Session, name: str) -> int | None:
    """A clinician by "First Last" (or "Last, First"), ignoring case: the import's lookup."""
    text = " ".join((name or "").replace(",", " , ").split()).lower()
    if not text:
        return None
    for c in session.scalars(select(Clinician)):
        first, last = c.first_name.lower(), c.last_name.lower()
        if text in (f"{first} {last}", f"{last} , {first}", f"{last}, {first}"):
            return c.id
    return None


def count_active(session: Session) -> int:
    query = select(func.count()).select_from(Clinician).where(Clinician.active.is_(True))
    return int(session.scalar(query) or 0)
