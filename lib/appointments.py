"""Appointments: the client header's upcoming list (C5). Scheduling comes with billing (B1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib.models import Appointment, Client, Clinician, Service
from lib.policy import Actor, require_client_access
from lib.timeutil import as_utc, utcnow

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
    return [
        AppointmentRow(
            appointment_id=a.id,
            starts_at=as_utc(a.starts_at),
            duration_minutes=a.duration_minutes,
            clinician=f"{first} {last}",
            service=f"{code} {desc}",
            status=STATUS_LABELS[a.status],
            where="Telehealth" if a.telehealth else (a.location or "Office"),
        )
        for a, first, last, code, desc in rows
    ]
