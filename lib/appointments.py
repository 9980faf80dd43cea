"""Appointments: the client header's upcoming list (C5). Scheduling comes with billing (B1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib import audit
from lib.config import load_settings
from lib.models import Appointment, Client, Clinician, Coverage, Service
from lib.policy import Actor, require_client_access
from lib.postings import post_charge
from lib.timeutil import as_utc, local_text, practice_day, utcnow
from lib.validation import ValidationError

STATUS_LABELS = {
    "scheduled": "Scheduled",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "no_show": "No-show",
}


@dataclass(frozen=True)
class AppointmentRow:
    appointment_id: int
    starts_at: datetime
    duration_minutes: int
    clinician: str
    service: str
    status: str
    where: str
    status_key: str = "scheduled"
    version: int = 1


def _row(a: Appointment, first: str, last: str, code: str, desc: str) -> AppointmentRow:
    return AppointmentRow(
        appointment_id=a.id,
        starts_at=as_utc(a.starts_at),
        duration_minutes=a.duration_minutes,
        clinician=f"{first} {last}",
        service=f"{code} {desc}",
        status=STATUS_LABELS[a.status],
        where="Telehealth" if a.telehealth else (a.location or "Office"),
        status_key=a.status,
        version=a.version,
    )


def upcoming(
    session: Session, *, actor: Actor, client_id: int, limit: int = 5, now: datetime | None = None
) -> list[AppointmentRow]:
    """The client's next scheduled appointments, soonest first."""
    client = session.get(Client, client_id)
    require_client_access(actor, "client.view", client.clinician_id if client else None)
    rows = session.execute(
        select(
            Appointment,
            Clinician.first_name,
            Clinician.last_name,
            Service.code,
            Service.description,
        )
        .join(Clinician, Clinician.id == Appointment.clinician_id)
        .join(Service, Service.id == Appointment.service_id)
        .where(
            Appointment.client_id == client_id,
            Appointment.status == "scheduled",
            Appointment.starts_at >= (now or utcnow()),
        )
        .order_by(Appointment.starts_at)
        .limit(limit)
    ).all()
    return [_row(a, first, last, code, desc) for a, first, last, code, desc in rows]


class AppointmentError(ValueError):
    """The appointment change is not allowed as asked; nothing was written."""


def schedule(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    starts_at: datetime,
    duration_minutes: int,
    clinician_id: int,
    service_id: int,
    telehealth: bool = False,
    location: str = "",
) -> int:
    """Book an appointment (B1). ``starts_at`` must be timezone-aware; it is stored in UTC."""
    client = session.get(Client, client_id)
    require_client_access(actor, "appointment.schedule", client.clinician_id if client else None)
    errors = {}
    if starts_at.tzinfo is None:
        raise ValueError("starts_at must be timezone-aware")
    if not 5 <= duration_minutes <= 480:
        errors["duration_minutes"] = "A session lasts between 5 minutes and 8 hours."
    clinician = session.get(Clinician, clinician_id)
    if clinician is None or not clinician.active:
        errors["clinician_id"] = "Choose a clinician from the list."
    service = session.get(Service, service_id)
    if service is None or not service.active:
        errors["service_id"] = "Choose a service from the list."
    if not telehealth and len(location.strip()) > 120:
        errors["location"] = "The location can be at most 120 characters."
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    appointment = Appointment(
        client_id=client_id,
        clinician_id=clinician_id,
        service_id=service_id,
        starts_at=starts_at.astimezone(UTC),
        duration_minutes=duration_minutes,
        status="scheduled",
        telehealth=telehealth,
        location="" if telehealth else location.strip(),
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(appointment)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="appointment.schedule",
        entity="appointment",
        entity_id=appointment.id,
        client_id=client_id,
        after={
            "starts_at": appointment.starts_at,
            "service_id": service_id,
            "clinician_id": clinician_id,
            "duration_minutes": duration_minutes,
        },
    )
    return appointment.id


def charge_split(
    session: Session, client: Client, fee_cents: int
) -> dict[str, tuple[int, int | None, str]]:
    """How a fee splits: {'client': (cents, None, ''), 'insurance': (cents, payer_id, name)}.

    Insured clients owe the primary coverage's copay (never more than the fee) and insurance
    is expected to pay the rest; self-pay clients owe everything. The insurance part names
    the primary coverage's payer: its id, or the typed name of a payer not in the list.
    """
    if client.billing_type == "insurance":
        primary = session.scalar(
            select(Coverage).where(
                Coverage.client_id == client.id, Coverage.active.is_(True), Coverage.rank == 1
            )
        )
        if primary is not None:
            copay = min(primary.copay_cents, fee_cents)
            return {
                "client": (copay, None, ""),
                "insurance": (
                    fee_cents - copay,
                    primary.payer_id,
                    "" if primary.payer_id else primary.payer_name,
                ),
            }
    return {"client": (fee_cents, None, ""), "insurance": (0, None, "")}


def set_status(
    session: Session,
    *,
    actor: Actor,
    appointment_id: int,
    status: str,
    expected_version: int,
    time_zone: str | None = None,
) -> int:
    """Mark an appointment completed, cancelled, no-show (or back to scheduled).

    Completing posts the service's charge, split between client and insurance, exactly once
    (idempotency keys per appointment). A completed appointment is billed and final: to undo
    it, reverse its charges on the Billing tab. The date of service is the appointment's date
    in ``time_zone`` (default: the practice's time zone), not in UTC.
    """
    if status not in STATUS_LABELS:
        raise AppointmentError("Choose a valid appointment status.")
    appointment = session.scalar(
        select(Appointment).where(Appointment.id == appointment_id).with_for_update()
    )
    if appointment is None:
        raise AppointmentError("There is no such appointment.")
    client = session.get(Client, appointment.client_id)
    require_client_access(actor, "appointment.schedule", client.clinician_id)
    if appointment.version != expected_version:
        raise AppointmentError("This appointment was changed by someone else; reload.")
    if appointment.status == "completed":
        raise AppointmentError(
            "This appointment is completed and billed. Reverse its charge on the Billing tab "
            "if it was completed by mistake."
        )
    starts_at = as_utc(appointment.starts_at)
    if status in ("completed", "no_show") and starts_at > utcnow():
        when = local_text(starts_at, time_zone or load_settings().practice_time_zone)
        raise AppointmentError(
            f"This appointment starts {when}: it can be marked "
            f"{STATUS_LABELS[status].lower()} once it has started."
        )
    before = appointment.status
    appointment.status = status
    appointment.version += 1
    appointment.updated_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action="appointment.status",
        entity="appointment",
        entity_id=appointment.id,
        client_id=client.id,
        before={"status": before},
        after={"status": status},
    )
    if status == "completed":
        service = session.get(Service, appointment.service_id)
        split = charge_split(session, client, service.fee_cents)
        service_day = practice_day(appointment.starts_at, time_zone)
        for responsibility, (cents, payer_id, payer_name) in split.items():
            if cents > 0:
                post_charge(
                    session,
                    actor=None,
                    client_id=client.id,
                    amount_cents=cents,
                    responsibility=responsibility,
                    service_date=service_day,
                    idempotency_key=f"appt-{appointment.id}-{responsibility}",
                    appointment_id=appointment.id,
                    service_id=service.id,
                    clinician_id=appointment.clinician_id,
                    payer_id=payer_id,
                    payer_name=payer_name,
                    memo=f"{service.code} {service.description}",
                )
    return appointment.version


def for_client(
    session: Session, *, actor: Actor, client_id: int, limit: int = 50
) -> list[AppointmentRow]:
    """Recent and upcoming appointments, newest first, for the client's schedule list."""
    client = session.get(Client, client_id)
    require_client_access(actor, "client.view", client.clinician_id if client else None)
    rows = session.execute(
        select(
            Appointment,
            Clinician.first_name,
            Clinician.last_name,
            Service.code,
            Service.description,
        )
        .join(Clinician, Clinician.id == Appointment.clinician_id)
        .join(Service, Service.id == Appointment.service_id)
        .where(Appointment.client_id == client_id)
        .order_by(Appointment.starts_at.desc())
        .limit(limit)
    ).all()
    return [_row(a, first, last, code, desc) for a, first, last, code, desc in rows]
