"""Reminder and portal settings: practice defaults, clinician and client overrides (R1).

Settings resolve through four levels: ClientDesk's built-in values, the practice defaults, the
assigned clinician's overrides and the client's own overrides. A NULL column at a level means
"use the level above". Users of other products cannot tell which setting applies to a client,
so ``client_settings`` returns, for every setting, the default that applies and where it comes
from, the client's override and the value that takes effect — and a reminder channel takes
effect only when the client consented to it on the Contact tab. ``lib.reminder_sender`` uses
the very same resolution, so what the tab shows is what the send command does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lib import audit
from lib.client_record import ClientNotFound
from lib.edits import StaleEdit
from lib.models import AuditEntry, Client, Clinician, ReminderSetting, User
from lib.policy import Actor, require, require_client_access
from lib.timeutil import as_utc, utcnow
from lib.validation import ValidationError

SETTINGS = {
    "reminders_enabled": "Appointment reminders",
    "channel_email": "Remind by email",
    "channel_sms": "Remind by text (SMS)",
    "channel_voice": "Remind by voice call",
    "lead_hours": "Reminder lead time",
    "portal_enabled": "Client portal",
    "self_scheduling": "Self-scheduling",
    "cancellation_window_hours": "Cancellation window",
}
BUILT_IN: dict[str, bool | int] = {
    "reminders_enabled": True,
    "channel_email": True,
    "channel_sms": False,
    "channel_voice": False,
    "lead_hours": 24,
    "portal_enabled": True,
    "self_scheduling": False,
    "cancellation_window_hours": 24,
}
# Hour settings and their allowed range (inclusive); every other setting is on/off.
HOURS: dict[str, tuple[int, int]] = {
    "lead_hours": (1, 168),
    "cancellation_window_hours": (0, 168),
}
CHANNELS = ("email", "sms", "voice")
CHANNEL_LABELS = {"email": "email", "sms": "text message", "voice": "voice call"}
SCOPES = ("practice", "clinician", "client")
SOURCE_BUILT_IN = "built-in"
ENTITY = "reminder_setting"
REMINDERS_OFF = "appointment reminders are off"


@dataclass(frozen=True)
class EffectiveSetting:
    key: str
    label: str
    is_hours: bool
    default_value: bool | int
    default_source: str  # "built-in", "practice" or "clinician"
    default_source_label: str  # e.g. "Practice default", "Clinician: Maya Okafor"
    override: bool | int | None  # None = use default
    effective: bool | int
    note: str = ""  # why the effective value differs from the setting (consent, reminders off)


@dataclass(frozen=True)
class SettingsView:
    """The settings of one level (practice, a clinician or a client), resolved."""

    scope: str
    scope_id: int
    settings: list[EffectiveSetting]
    version: int  # 0 when this level has no row yet
    consent_notes: list[str]  # client level: channels that are on but lack consent
    summary: str  # client level: what will actually be sent, in one sentence

    def get(self, key: str) -> EffectiveSetting:
        return next(s for s in self.settings if s.key == key)

    @property
    def reminder_channels(self) -> tuple[str, ...]:
        """The channels reminders really go out by (client level)."""
        return tuple(c for c in CHANNELS if self.get(f"channel_{c}").effective)


def format_value(key: str, value: bool | int | None) -> str:
    """One way to show a setting's value everywhere (tab, settings page, overview)."""
    if value is None:
        return "Use default"
    if key in HOURS:
        return f"{value} hour" if value == 1 else f"{value} hours"
    return "On" if value else "Off"


def _source_label(source: str, clinician_name: str) -> str:
    if source == "clinician":
        return f"Clinician: {clinician_name}"
    if source == "practice":
        return "Practice default"
    return "ClientDesk default"


def _values(row: ReminderSetting | None) -> dict[str, Any]:
    return {k: (getattr(row, k) if row is not None else None) for k in SETTINGS}


def _row(session: Session, scope: str, scope_id: int) -> ReminderSetting | None:
    return session.scalar(
        select(ReminderSetting).where(
            ReminderSetting.scope == scope, ReminderSetting.scope_id == scope_id
        )
    )


def _client(session: Session, client_id: int) -> Client:
    client = session.get(Client, client_id)
    if client is None:
        raise ClientNotFound("There is no client with that number.")
    return client


def _clinician_name(session: Session, clinician_id: int | None) -> str:
    clinician = session.get(Clinician, clinician_id) if clinician_id else None
    return f"{clinician.first_name} {clinician.last_name}" if clinician else ""


@dataclass(frozen=True)
class Consent:
    """What the Contact tab allows, per channel: (allowed, reason when not)."""

    email: tuple[bool, str]
    sms: tuple[bool, str]
    voice: tuple[bool, str]


def voice_number(client: Client) -> str:
    """The number a voice reminder calls: the preferred phone, else any phone on file."""
    preferred = getattr(client, f"phone_{client.preferred_phone}", "") or ""
    return preferred or client.phone_mobile or client.phone_home or client.phone_work or ""


def consent_of(client: Client) -> Consent:
    """Consent and contact details per channel. Labels name the Contact tab's fields."""
    if not client.email:
        email = (False, "no email address on the Contact tab")
    elif not client.email_ok:
        email = (False, 'no email consent ("Email OK" on the Contact tab)')
    else:
        email = (True, "")
    if not client.phone_mobile:
        sms = (False, "no mobile number on the Contact tab")
    elif not client.text_ok:
        sms = (False, 'no consent to text messages ("Text messages OK" on the Contact tab)')
    else:
        sms = (True, "")
    if not voice_number(client):
        voice = (False, "no phone number on the Contact tab")
    elif not client.voicemail_ok:
        voice = (False, 'no consent to voicemail ("Voicemail OK" on the Contact tab)')
    else:
        voice = (True, "")
    return Consent(email=email, sms=sms, voice=voice)


def resolve(
    *,
    practice: dict[str, Any],
    clinician: dict[str, Any] | None,
    own: dict[str, Any],
    clinician_name: str = "",
    consent: Consent | None = None,
) -> list[EffectiveSetting]:
    """The pure resolution rule, shared by the screens and the send command.

    ``own`` is the level being shown (practice, clinician or client); the levels above it
    are passed as ``practice``/``clinician`` (empty dicts/None when they do not apply).
    ``consent`` is given for clients only: a channel without consent is effectively off.
    """
    rows = []
    for key, label in SETTINGS.items():
        default, source = BUILT_IN[key], SOURCE_BUILT_IN
        if practice.get(key) is not None:
            default, source = practice[key], "practice"
        if clinician is not None and clinician.get(key) is not None:
            default, source = clinician[key], "clinician"
        override = own.get(key)
        value = default if override is None else override
        rows.append(
            EffectiveSetting(
                key=key,
                label=label,
                is_hours=key in HOURS,
                default_value=default,
                default_source=source,
                default_source_label=_source_label(source, clinician_name),
                override=override,
                effective=value,
            )
        )
    if consent is None:
        return rows
    enabled = next(r.effective for r in rows if r.key == "reminders_enabled")
    result = []
    for r in rows:
        if r.key.startswith("channel_") and r.effective:
            allowed, reason = getattr(consent, r.key.removeprefix("channel_"))
            if not enabled:
                r = replace(r, effective=False, note=REMINDERS_OFF)
            elif not allowed:
                r = replace(r, effective=False, note=reason)
        result.append(r)
    return result


def _consent_notes(settings: list[EffectiveSetting]) -> list[str]:
    notes = []
    for s in settings:
        if s.key.startswith("channel_") and s.note and s.note != REMINDERS_OFF:
            channel = CHANNEL_LABELS[s.key.removeprefix("channel_")]
            notes.append(
                f"Reminders by {channel} are on, but this client has {s.note}: "
                f"no {channel} reminders will be sent."
            )
    return notes


def _summary(settings: list[EffectiveSetting]) -> str:
    by_key = {s.key: s for s in settings}
    if not by_key["reminders_enabled"].effective:
        return "No appointment reminders will be sent: reminders are off for this client."
    channels = [CHANNEL_LABELS[c] for c in CHANNELS if by_key[f"channel_{c}"].effective]
    if not channels:
        return (
            "No appointment reminders will be sent: no reminder channel is both on and "
            "consented to."
        )
    lead = format_value("lead_hours", by_key["lead_hours"].effective)
    joined = (
        channels[0] if len(channels) == 1 else ", ".join(channels[:-1]) + f" and {channels[-1]}"
    )
    return f"Appointment reminders go out {lead} before each appointment by {joined}."


def client_settings(session: Session, *, actor: Actor, client_id: int) -> SettingsView:
    """The Reminders & Portal tab: default, override and effective value of every setting.

    The clinician level is the client's assigned clinician's.
    """
    client = _client(session, client_id)
    require_client_access(actor, "client.view", client.clinician_id)
    return settings_for_client(session, client)


def settings_for_client(session: Session, client: Client) -> SettingsView:
    """Resolution for one client, without a permission check: for lib callers that already
    checked (the tab, portal invitations) and for the send command (run as the system)."""
    clinician = _row(session, "clinician", client.clinician_id) if client.clinician_id else None
    own = _row(session, "client", client.id)
    settings = resolve(
        practice=_values(_row(session, "practice", 0)),
        clinician=_values(clinician) if client.clinician_id else None,
        own=_values(own),
        clinician_name=_clinician_name(session, client.clinician_id),
        consent=consent_of(client),
    )
    return SettingsView(
        scope="client",
        scope_id=client.id,
        settings=settings,
        version=own.version if own else 0,
        consent_notes=_consent_notes(settings),
        summary=_summary(settings),
    )


def level_settings(session: Session, *, actor: Actor, scope: str, scope_id: int) -> SettingsView:
    """The practice defaults (scope 'practice', id 0) or one clinician's overrides (admins)."""
    require(actor, "settings.manage")
    if scope == "practice":
        own = _row(session, "practice", 0)
        settings = resolve(practice={}, clinician=None, own=_values(own))
    elif scope == "clinician":
        if session.get(Clinician, scope_id) is None:
            raise ValueError("unknown clinician")
        own = _row(session, "clinician", scope_id)
        settings = resolve(
            practice=_values(_row(session, "practice", 0)), clinician=None, own=_values(own)
        )
    else:
        raise ValueError(f"unknown scope {scope!r}")
    return SettingsView(
        scope=scope,
        scope_id=scope_id if scope == "clinician" else 0,
        settings=settings,
        version=own.version if own else 0,
        consent_notes=[],
        summary="",
    )


@dataclass(frozen=True)
class OverviewRow:
    label: str
    practice: str
    clinicians: dict[str, str]  # clinician name -> value, "—" when it follows the practice


def overview(session: Session, *, actor: Actor) -> list[OverviewRow]:
    """Every setting at the practice and at each active clinician, for the settings page."""
    require(actor, "settings.manage")
    practice = _values(_row(session, "practice", 0))
    clinicians = list(
        session.scalars(
            select(Clinician).where(Clinician.active.is_(True)).order_by(Clinician.last_name)
        )
    )
    rows_by_clinician = {
        r.scope_id: _values(r)
        for r in session.scalars(
            select(ReminderSetting).where(ReminderSetting.scope == "clinician")
        )
    }
    result = []
    for key, label in SETTINGS.items():
        value = practice[key] if practice[key] is not None else BUILT_IN[key]
        result.append(
            OverviewRow(
                label=label,
                practice=format_value(key, value),
                clinicians={
                    f"{c.first_name} {c.last_name}": (
                        format_value(key, rows_by_clinician[c.id][key])
                        if c.id in rows_by_clinician and rows_by_clinician[c.id][key] is not None
                        else "—"
                    )
                    for c in clinicians
                },
            )
        )
    return result


# --- saving ------------------------------------------------------------------------------


def _validate(changes: dict[str, Any]) -> dict[str, Any]:
    errors, clean = {}, {}
    for key, value in changes.items():
        if key not in SETTINGS:
            raise ValueError(f"unknown setting {key!r}")
        if value is None:
            clean[key] = None
        elif key in HOURS:
            low, high = HOURS[key]
            if isinstance(value, bool) or not isinstance(value, int):
                errors[key] = "Enter a whole number of hours."
            elif not low <= value <= high:
                errors[key] = f"Enter between {low} and {high} hours."
            else:
                clean[key] = value
        elif isinstance(value, bool):
            clean[key] = value
        else:
            errors[key] = "Choose on, off or use default."
    if errors:
        raise ValidationError(errors)
    return clean


def _last_change(session: Session, row_id: int) -> tuple[str, datetime | None]:
    entry = session.execute(
        select(AuditEntry.actor_user_id, AuditEntry.actor_username, AuditEntry.at)
        .where(AuditEntry.entity == ENTITY, AuditEntry.entity_id == str(row_id))
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).first()
    if entry is None:
        return "another user", None
    name = entry.actor_username
    if entry.actor_user_id is not None:
        user = session.get(User, entry.actor_user_id)
        name = user.display_name if user else name
    return name, as_utc(entry.at)


def save_overrides(
    session: Session,
    *,
    actor: Actor,
    scope: str,
    scope_id: int,
    changes: dict[str, bool | int | None],
    expected: dict[str, bool | int | None],
    tz_name: str = "America/New_York",
) -> int:
    """Set some settings of one level; ``None`` means "use default" (reset to default).

    ``expected`` holds, for every changed setting, the value the user saw. A setting someone
    else changed since is not overwritten: ``StaleEdit`` names who and when, nothing is
    written. Checking per setting (not per row) lets two people change different settings of
    the same client at once. Client overrides need ``reminders.edit`` (and, for clinicians,
    their own client); practice and clinician levels need ``settings.manage``. Returns the
    level's new version. Raises ``ValidationError`` (nothing written) on a bad value.
    """
    client_id = None
    if scope == "client":
        client = _client(session, scope_id)
        require_client_access(actor, "reminders.edit", client.clinician_id)
        client_id = scope_id
    elif scope in ("practice", "clinician"):
        require(actor, "settings.manage")
        if scope == "practice":
            scope_id = 0
        elif session.get(Clinician, scope_id) is None:
            raise ValueError("unknown clinician")
    else:
        raise ValueError(f"unknown scope {scope!r}")
    clean = _validate(changes)
    row = session.scalar(
        select(ReminderSetting)
        .where(ReminderSetting.scope == scope, ReminderSetting.scope_id == scope_id)
        .with_for_update()
    )
    current = _values(row)
    stale = [k for k in clean if expected.get(k) != current[k]]
    if stale and row is not None:
        raise StaleEdit(*_last_change(session, row.id), tz_name)
    if stale:  # no row yet, so nothing can have been set: the caller's expectation is wrong
        raise StaleEdit("another user", None, tz_name)
    before, after = audit.changed_fields(current, {**current, **clean})
    if not after:
        return row.version if row is not None else 0
    now = utcnow()
    if row is None:
        row = ReminderSetting(scope=scope, scope_id=scope_id, updated_at=now, version=1, **clean)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:  # someone created this level's row at the same moment
            raise StaleEdit("another user", None, tz_name) from None
    else:
        for key, value in clean.items():
            setattr(row, key, value)
        row.version += 1
        row.updated_at = now
        session.flush()
    audit.record(
        session,
        actor=actor,
        action="reminders.update",
        entity=ENTITY,
        entity_id=row.id,
        client_id=client_id,
        before={"level": f"{scope}:{scope_id}", **before},
        after={"level": f"{scope}:{scope_id}", **after},
        at=now,
    )
    return row.version
