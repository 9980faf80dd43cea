"""Reminder and portal settings: practice defaults, clinician and client overrides (R1).

A NULL setting at a level means "use the level above"; ``effective_settings`` shows, for each
setting, the default that applies (and where it comes from), the client's override and the
value that takes effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib.models import Client, ReminderSetting
from lib.policy import Actor, require_client_access

SETTINGS = {
    "reminders_enabled": "Appointment reminders",
    "channel_email": "Remind by email",
    "channel_sms": "Remind by text (SMS)",
    "channel_voice": "Remind by voice call",
    "lead_hours": "Reminder lead time (hours)",
    "portal_enabled": "Client portal",
    "self_scheduling": "Self-scheduling",
    "cancellation_window_hours": "Cancellation window (hours)",
}
BUILT_IN = {
    "reminders_enabled": True,
    "channel_email": True,
    "channel_sms": False,
    "channel_voice": False,
    "lead_hours": 24,
    "portal_enabled": True,
    "self_scheduling": False,
    "cancellation_window_hours": 24,
}


@dataclass(frozen=True)
class EffectiveSetting:
    key: str
    label: str
    default_value: object
    default_source: str  # "practice", "clinician" or "built-in"
    override: object  # None = use default
    effective: object


def _row(session: Session, scope: str, scope_id: int) -> ReminderSetting | None:
    return session.scalar(
        select(ReminderSetting).where(
            ReminderSetting.scope == scope, ReminderSetting.scope_id == scope_id
        )
    )


def effective_settings(session: Session, *, actor: Actor, client_id: int) -> list[EffectiveSetting]:
    client = session.get(Client, client_id)
    require_client_access(actor, "client.view", client.clinician_id if client else None)
    practice = _row(session, "practice", 0)
    clinician = _row(session, "clinician", client.clinician_id) if client.clinician_id else None
    own = _row(session, "client", client_id)
    result = []
    for key, label in SETTINGS.items():
        default, source = BUILT_IN[key], "built-in"
        if practice is not None and getattr(practice, key) is not None:
            default, source = getattr(practice, key), "practice"
        if clinician is not None and getattr(clinician, key) is not None:
            default, source = getattr(clinician, key), "clinician"
        override = getattr(own, key) if own is not None else None
        result.append(
            EffectiveSetting(
                key=key,
                label=label,
                default_value=default,
                default_source=source,
                override=override,
                effective=default if override is None else override,
            )
        )
    return result
