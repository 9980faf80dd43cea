"""One client's record: open it (audited), edit it tab by tab without lost edits (C5–C8).

Each tab saves the fields the user changed against the version of that tab its form showed
(``lib.edits``). Of two people saving the same tab only the first wins; the second gets
``StaleEdit`` naming who saved and when, and nothing of either edit is lost: the winner's
values are in the database, the loser's are listed on their screen to apply again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lib import audit, client_totals, edits
from lib.clients import (
    CLIENT_TYPES,
    STATUS_LABELS,
    display_name,
    search_columns,
)
from lib.edits import StaleEdit, check_fields, refuse_if_stale
from lib.ledger import insurance_credits_of
from lib.models import (
    AuditEntry,
    Client,
    ClientStatusChange,
    Clinician,
    User,
)
from lib.policy import Actor, allowed, require, require_client_access, sees_only_own_clients
from lib.timeutil import as_utc, practice_today, utcnow
from lib.validation import (
    ValidationError,
    Validator,
    clean_choice,
    clean_dob,
    clean_email,
    clean_phone,
    clean_state,
    clean_text,
    clean_time_zone,
    clean_zip,
)

PERSONAL_FIELDS = (
    "first_name",
    "middle_name",
    "last_name",
    "preferred_name",
    "pronouns",
    "dob",
    "sex",
    "gender_identity",
    "marital_status",
    "client_type",
    "status",
    "clinician_id",
    "client_since",
    "referral_source",
    "language",
)
CONTACT_FIELDS = (
    "address_line1",
    "address_line2",
    "city",
    "state",
    "zip_code",
    "phone_mobile",
    "phone_home",
    "phone_work",
    "preferred_phone",
    "text_ok",
    "voicemail_ok",
    "email",
    "email_ok",
    "emergency_name",
    "emergency_relationship",
    "emergency_phone",
    "guardian_name",
    "guardian_relationship",
    "guardian_phone",
    "time_zone",
)
SEXES = ("F", "M", "X", "U")
SEX_LABELS = {"": "—", "F": "Female", "M": "Male", "X": "X / non-binary", "U": "Unknown"}
MARITAL_STATUSES = ("Single", "Married", "Partnered", "Divorced", "Separated", "Widowed")
PHONE_KINDS = ("mobile", "home", "work")
SECTIONS = ("personal", "contact", "insurance")
# Fields that feed the search columns (names, email, phones).
SEARCHED_FIELDS = frozenset(
    {
        "first_name",
        "middle_name",
        "last_name",
        "preferred_name",
        "email",
        "phone_mobile",
        "phone_home",
        "phone_work",
    }
)


class ClientNotFound(LookupError):
    """No client with that id or number (or not one this user may open)."""


@dataclass(frozen=True)
class ClientRecord:
    client_id: int
    client_number: int
    name: str
    status: str
    status_label: str
    clinician_id: int | None
    clinician_name: str
    values: dict[str, Any]  # every Personal and Contact field, plus billing_type
    versions: dict[str, int]  # section -> version captured now
    balance_cents: int | None  # None when the role may not see balances
    client_due_cents: int | None = None
    unapplied_credit_cents: int | None = None
    # Insurance credit (what a payer paid beyond its own charges) per payer: (payer, cents).
    insurance_credits: list[tuple[str, int]] = field(default_factory=list)
    age: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _load(session: Session, *, client_id: int | None, client_number: int | None) -> Client:
    if client_id is not None:
        client = session.get(Client, client_id)
    else:
        client = session.scalar(select(Client).where(Client.client_number == client_number))
    if client is None:
        raise ClientNotFound("There is no client with that number.")
    return client


def _age(dob: date | None, today: date) -> int | None:
    if dob is None:
        return None
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def open_record(
    session: Session,
    *,
    actor: Actor,
    client_id: int | None = None,
    client_number: int | None = None,
    audit_open: bool = True,
) -> ClientRecord:
    """Read a client's record for the detail screen. Each open is audited (who, when)."""
    client = _load(session, client_id=client_id, client_number=client_number)
    require_client_access(actor, "client.view", client.clinician_id)
    clinician = session.get(Clinician, client.clinician_id) if client.clinician_id else None
    balance = None
    due = credit = None
    insurance_credits = []
    if allowed(actor, "balance.view"):
        balance = client.total_cents
        due = client.client_due_cents
        credit = client.unapplied_credit_cents
        if client.insurance_credit_cents:
            insurance_credits = insurance_credits_of(session, client.id)
    if audit_open:
        audit.record(
            session,
            actor=actor,
            action="client.open",
            entity="client",
            entity_id=client.id,
            client_id=client.id,
        )
    values = {f: getattr(client, f) for f in (*PERSONAL_FIELDS, *CONTACT_FIELDS)}
    values["billing_type"] = client.billing_type
    return ClientRecord(
        client_id=client.id,
        client_number=client.client_number,
        name=display_name(client.last_name, client.first_name, client.preferred_name),
        status=client.status,
        status_label=STATUS_LABELS.get(client.status, client.status),
        clinician_id=client.clinician_id,
        clinician_name=f"{clinician.first_name} {clinician.last_name}" if clinician else "",
        values=values,
        versions={
            "personal": client.personal_version,
            "contact": client.contact_version,
            "insurance": client.insurance_version,
        },
        balance_cents=balance,
        client_due_cents=due,
        unapplied_credit_cents=credit,
        insurance_credits=insurance_credits,
        age=_age(client.dob, practice_today()),
    )


def validate_personal(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    v = Validator()
    for name, label, required in (
        ("first_name", "first name", True),
        ("middle_name", "middle name", False),
        ("last_name", "last name", True),
        ("preferred_name", "preferred name", False),
        ("pronouns", "pronouns", False),
        ("gender_identity", "gender identity", False),
        ("referral_source", "referral source", False),
        ("language", "language", False),
    ):
        v.check(name, clean_text, values.get(name), label=label, required=required, max_len=80)
    v.check("dob", clean_dob, values.get("dob"))
    v.check("sex", clean_choice, values.get("sex"), SEXES, label="sex")
    v.check(
        "marital_status",
        clean_choice,
        values.get("marital_status"),
        MARITAL_STATUSES,
        label="marital status",
    )
    v.check(
        "client_type",
        clean_choice,
        values.get("client_type"),
        CLIENT_TYPES,
        label="client type",
        allow_blank=False,
    )
    v.check(
        "status",
        clean_choice,
        values.get("status"),
        STATUS_LABELS,
        label="status",
        allow_blank=False,
    )
    since = values.get("client_since")
    if since is not None and since > practice_today():
        v.fail("client_since", "'Client since' cannot be in the future.")
    v.values["client_since"] = since
    clinician_id = values.get("clinician_id")
    if clinician_id is not None and session.get(Clinician, clinician_id) is None:
        v.fail("clinician_id", "Choose a clinician from the list.")
    v.values["clinician_id"] = clinician_id
    v.raise_if_errors()
    return v.values


def validate_contact(values: dict[str, Any]) -> dict[str, Any]:
    v = Validator()
    for name, label, max_len in (
        ("address_line1", "address", 120),
        ("address_line2", "address line 2", 120),
        ("city", "city", 80),
        ("emergency_name", "emergency contact name", 120),
        ("emergency_relationship", "relationship", 40),
        ("guardian_name", "guardian name", 120),
        ("guardian_relationship", "guardian relationship", 40),
    ):
        v.check(name, clean_text, values.get(name), label=label, max_len=max_len)
    v.check("state", clean_state, values.get("state"))
    v.check("zip_code", clean_zip, values.get("zip_code"))
    for name in ("phone_mobile", "phone_home", "phone_work", "emergency_phone", "guardian_phone"):
        v.check(name, clean_phone, values.get(name))
    v.check("email", clean_email, values.get("email"))
    v.check(
        "preferred_phone",
        clean_choice,
        values.get("preferred_phone") or "mobile",
        PHONE_KINDS,
        label="preferred phone",
        allow_blank=False,
    )
    v.check("time_zone", clean_time_zone, values.get("time_zone"))
    for flag in ("text_ok", "voicemail_ok", "email_ok"):
        v.values[flag] = bool(values.get(flag))
    if not v.errors:
        preferred = v.values["preferred_phone"]
        if not v.values[f"phone_{preferred}"] and any(v.values[f"phone_{k}"] for k in PHONE_KINDS):
            v.fail("preferred_phone", f"There is no {preferred} number to prefer.")
        if v.values["email_ok"] and not v.values["email"]:
            v.fail("email_ok", "Email consent needs an email address.")
        if v.values["text_ok"] and not v.values["phone_mobile"]:
            v.fail("text_ok", "Text messages need a mobile number.")
    v.raise_if_errors()
    return v.values


def last_change(session: Session, client_id: int, section: str) -> tuple[str, datetime | None]:
    """Who last saved this tab of this client, and when (from the audit log)."""
    return edits.last_change(
        session, entity="client", entity_id=client_id, actions=[f"client.update_{section}"]
    )


def save_section(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    section: str,
    changes: dict[str, Any],
    expected_version: int,
    status_reason: str = "",
    tz_name: str | None = None,
) -> int:
    """Save what the user changed on the Personal or Contact tab; returns the tab's version.

    ``changes`` holds only the fields the user edited (``lib.edits.user_changes``); every other
    field keeps its stored value, so a save never puts back a value the form merely showed.
    A status change needs a reason. Raises ``ValidationError`` (nothing written),
    ``StaleEdit`` (the tab was saved by someone else since ``expected_version``; nothing
    written) or ``PermissionDenied``.
    """
    if section not in ("personal", "contact"):
        raise ValueError(f"unknown section {section!r}")
    fields = PERSONAL_FIELDS if section == "personal" else CONTACT_FIELDS
    check_fields(changes, fields)
    # Locked, so a payment posted meanwhile cannot change the balances moved below.
    client = session.scalar(select(Client).where(Client.id == client_id).with_for_update())
    if client is None:
        raise ClientNotFound("There is no client with that number.")
    require_client_access(actor, "client.edit", client.clinician_id)
    version_column = getattr(Client, f"{section}_version")
    refuse_if_stale(
        session,
        current_version=getattr(client, f"{section}_version"),
        expected_version=expected_version,
        entity="client",
        entity_id=client_id,
        actions=[f"client.update_{section}"],
        tz_name=tz_name,
    )
    before = {f: getattr(client, f) for f in fields}
    merged = {**before, **changes}
    clean = (
        validate_personal(session, merged) if section == "personal" else validate_contact(merged)
    )
    old_v, new_v = audit.changed_fields(before, {f: clean[f] for f in changes})
    reason = (status_reason or "").strip()
    if "status" in new_v:
        require(actor, "client.change_status")
        if not reason:
            raise ValidationError({"status_reason": "Say why the status changes."})
        if len(reason) > 300:
            message = f"The reason can be at most 300 characters (it has {len(reason):,})."
            raise ValidationError({"status_reason": message})
    if "clinician_id" in new_v and sees_only_own_clients(actor):
        require(actor, "client.change_status")  # reassigning is a manager's decision
    if not new_v:
        return expected_version
    now = utcnow()
    after = {**before, **new_v}
    changes_to_write = dict(new_v)
    if set(new_v) & SEARCHED_FIELDS:
        contact = {f: getattr(client, f) for f in CONTACT_FIELDS}
        personal = {f: getattr(client, f) for f in PERSONAL_FIELDS}
        now_values = {**personal, **contact, **new_v}
        changes_to_write.update(
            search_columns(
                first_name=now_values["first_name"],
                middle_name=now_values["middle_name"],
                last_name=now_values["last_name"],
                preferred_name=now_values["preferred_name"],
                email=now_values["email"],
                phones=(
                    now_values["phone_mobile"],
                    now_values["phone_home"],
                    now_values["phone_work"],
                ),
            )
        )
    result = session.execute(
        update(Client)
        .where(Client.id == client_id, version_column == expected_version)
        .values(
            **changes_to_write,
            updated_at=now,
            updated_by=actor.user_id,
            version=Client.version + 1,
            **{f"{section}_version": version_column + 1},
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StaleEdit(*last_change(session, client_id, section), tz_name)
    if "status" in new_v or "clinician_id" in new_v:
        client_totals.move(
            session,
            old=(before["status"], before["clinician_id"]),
            new=(after["status"], after["clinician_id"]),
            balances={k: getattr(client, k) for k in client_totals.SUMS},
        )
    session.expire(client)
    audit.record(
        session,
        actor=actor,
        action=f"client.update_{section}",
        entity="client",
        entity_id=client_id,
        client_id=client_id,
        before=old_v,
        after=new_v,
        at=now,
    )
    if "status" in new_v:
        session.add(
            ClientStatusChange(
                client_id=client_id,
                old_status=old_v["status"],
                new_status=new_v["status"],
                reason=reason,
                changed_at=now,
                changed_by=actor.user_id,
            )
        )
        audit.record(
            session,
            actor=actor,
            action="client.status_change",
            entity="client",
            entity_id=client_id,
            client_id=client_id,
            before={"status": old_v["status"]},
            after={"status": new_v["status"]},
            detail=reason,
            at=now,
        )
    return expected_version + 1


@dataclass(frozen=True)
class StatusChangeRow:
    changed_at: datetime
    old_status: str
    new_status: str
    reason: str
    changed_by: str


def status_history(session: Session, *, actor: Actor, client_id: int) -> list[StatusChangeRow]:
    client = _load(session, client_id=client_id, client_number=None)
    require_client_access(actor, "client.view", client.clinician_id)
    rows = session.execute(
        select(ClientStatusChange, User.display_name)
        .outerjoin(User, User.id == ClientStatusChange.changed_by)
        .where(ClientStatusChange.client_id == client_id)
        .order_by(ClientStatusChange.id.desc())
    ).all()
    return [
        StatusChangeRow(
            changed_at=as_utc(c.changed_at),
            old_status=STATUS_LABELS.get(c.old_status or "", c.old_status or ""),
            new_status=STATUS_LABELS.get(c.new_status, c.new_status),
            reason=c.reason,
            changed_by=name or "system",
        )
        for c, name in rows
    ]


def history(
    session: Session, *, actor: Actor, client_id: int, limit: int = 500
) -> list[audit.AuditRow]:
    """The audit trail of this client, newest first (managers and admins)."""
    client = _load(session, client_id=client_id, client_number=None)
    require_client_access(actor, "client.history", client.clinician_id)
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.client_id == client_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    return [audit.row_of(e) for e in rows]


def change_status(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    new_status: str,
    reason: str,
    expected_version: int,
    tz_name: str | None = None,
) -> int:
    """The header's "Change status" action: the Personal tab's save with only the status
    changed (same permission, reason, history row, audit and concurrency check)."""
    return save_section(
        session,
        actor=actor,
        client_id=client_id,
        section="personal",
        changes={"status": new_status},
        expected_version=expected_version,
        status_reason=reason,
        tz_name=tz_name,
    )
