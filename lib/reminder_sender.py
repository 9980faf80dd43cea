"""Sending appointment reminders (R3): ``python -m lib.cli send-reminders [--now ISO]``.

Each scheduled appointment gets one reminder per channel that is effective for its client
(the same resolution the Reminders & Portal tab shows), once it is within the lead time.
Email goes through ``lib.mail``; text and voice messages wait in ``message_outbox`` until a
provider is configured. The unique key of ``reminder_sends`` (appointment, channel) is the
"once": each send claims it in its own transaction, so a second run, or two runs at the same
time, send nothing twice. A failed email is retried by the next run while still in time.

What a reminder says is deliberately thin: the client's first name, the practice's name, the
date and time, and whether it is a video visit. Never the service, the clinician's specialty,
the location's name or anything else a shared inbox or lock screen should not show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lib import audit, mail
from lib.db import read_session, transaction
from lib.models import (
    Appointment,
    Client,
    DocumentLogEntry,
    MessageOutbox,
    ReminderSend,
    ReminderSetting,
)
from lib.portal import greeting_name, practice_name
from lib.reminders import BUILT_IN, SettingsView, settings_for_client, voice_number
from lib.timeutil import as_utc, utcnow

SKIPPED_STATUSES = ("discharged",)  # clients who left the practice get no reminders


def parse_instant(text: str, tz_name: str) -> datetime:
    """``--now``: an ISO date and time; without an offset it is read in ``tz_name``."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz_name))
    return value.astimezone(UTC)


@dataclass(frozen=True)
class ReminderText:
    subject: str
    body: str


def reminder_text(
    *,
    channel: str,
    practice: str,
    first_name: str,
    starts_at: datetime,
    tz_name: str,
    telehealth: bool,
    cancellation_hours: int,
) -> ReminderText:
    """The words of a reminder. Only the first name, the practice, the time and the kind of
    visit: no last name, date of birth, service, clinician or place."""
    local = as_utc(starts_at).astimezone(ZoneInfo(tz_name))
    clock = f"{local.hour % 12 or 12}:{local:%M %p %Z}"
    when = f"{local:%A, %B} {local.day}, {local.year} at {clock}"
    short = f"{local:%a %b} {local.day} at {clock}"
    video = " It is a video (telehealth) visit." if telehealth else ""
    cancel = (
        f" If you need to cancel or reschedule, please let us know at least "
        f"{cancellation_hours} hours ahead."
        if cancellation_hours
        else " If you need to cancel or reschedule, please let us know."
    )
    if channel == "sms":
        return ReminderText(  # one SMS segment (160 characters) for a usual practice name
            "",
            f"{practice}: Hi {first_name}, reminder of your appointment on {short}"
            f"{' (video visit)' if telehealth else ''}. To cancel or reschedule, please call us.",
        )
    if channel == "voice":
        return ReminderText(
            "",
            f"Hello {first_name}, this is {practice} with a reminder of your appointment on "
            f"{when}.{video}{cancel} Thank you.",
        )
    return ReminderText(
        f"Appointment reminder from {practice}",
        f"Hello {first_name},\n\n"
        f"This is a reminder of your appointment with {practice} on {when}.{video}\n\n"
        f"{cancel.strip()}\n\n"
        f"{practice}\n",
    )


@dataclass(frozen=True)
class ReminderRun:
    emailed: int = 0
    queued_sms: int = 0
    queued_voice: int = 0
    failed: int = 0
    already_sent: int = 0
    appointments_due: int = 0

    def summary(self) -> str:
        """Counts only: the command's output goes to cron mail and logs, so no names."""
        return (
            f"Appointments due a reminder: {self.appointments_due}. "
            f"Emailed: {self.emailed}. Texts queued: {self.queued_sms}. "
            f"Voice calls queued: {self.queued_voice}. Failed: {self.failed}. "
            f"Already sent earlier: {self.already_sent}."
        )


@dataclass(frozen=True)
class _Due:
    appointment_id: int
    client_id: int
    channel: str
    recipient: str
    text: ReminderText


def _candidates(session: Session, now: datetime) -> list[tuple[Appointment, Client]]:
    longest = max(
        BUILT_IN["lead_hours"],
        session.scalar(select(func.max(ReminderSetting.lead_hours))) or 0,
    )
    rows = session.execute(
        select(Appointment, Client)
        .join(Client, Client.id == Appointment.client_id)
        .where(
            Appointment.status == "scheduled",
            Appointment.starts_at > now,
            Appointment.starts_at <= now + timedelta(hours=longest),
            Client.status.not_in(SKIPPED_STATUSES),
        )
        .order_by(Appointment.starts_at, Appointment.id)
    ).all()
    return [(appointment, client) for appointment, client in rows]


def _due_reminders(session: Session, *, now: datetime, practice_tz: str) -> tuple[list[_Due], int]:
    """Every (appointment, channel) whose reminder is due at ``now``, and how many
    appointments that is. Already-sent ones are included; sending skips them."""
    now = now.astimezone(UTC)
    practice = practice_name(session)
    views: dict[int, SettingsView] = {}
    due: list[_Due] = []
    appointments = set()
    for appointment, client in _candidates(session, now):
        if client.id not in views:
            views[client.id] = settings_for_client(session, client)
        view = views[client.id]
        lead = view.get("lead_hours").effective
        if as_utc(appointment.starts_at) - now > timedelta(hours=lead):
            continue
        for channel in view.reminder_channels:
            recipient = {
                "email": client.email,
                "sms": client.phone_mobile,
                "voice": voice_number(client),
            }[channel]
            text = reminder_text(
                channel=channel,
                practice=practice,
                first_name=greeting_name(client),
                starts_at=appointment.starts_at,
                tz_name=client.time_zone or practice_tz,
                telehealth=appointment.telehealth,
                cancellation_hours=view.get("cancellation_window_hours").effective,
            )
            due.append(_Due(appointment.id, client.id, channel, recipient, text))
            appointments.add(appointment.id)
    return due, len(appointments)


def _claim(session: Session, appointment_id: int, channel: str) -> ReminderSend | None:
    """This run's right to send: a new row, or a failed one taken back. None: sent before."""
    claim = ReminderSend(
        appointment_id=appointment_id, channel=channel, sent_at=utcnow(), status="sending"
    )
    try:
        with session.begin_nested():
            session.add(claim)
            session.flush()
        return claim
    except IntegrityError:
        pass
    existing = session.scalar(
        select(ReminderSend)
        .where(ReminderSend.appointment_id == appointment_id, ReminderSend.channel == channel)
        .with_for_update()
    )
    if existing is not None and existing.status == "failed":
        existing.status = "sending"
        return existing
    return None


def _send_one(session: Session, item: _Due, mail_settings: mail.MailSettings) -> str | None:
    """Claim, send, log. Returns the status, or None when it was sent before (or the
    appointment is no longer scheduled)."""
    appointment = session.get(Appointment, item.appointment_id)
    if appointment is None or appointment.status != "scheduled":
        return None
    claim = _claim(session, item.appointment_id, item.channel)
    if claim is None:
        return None
    now = utcnow()
    error = ""
    if item.channel == "email":
        try:
            message = mail.build_message(
                mail_settings, to=item.recipient, subject=item.text.subject, body=item.text.body
            )
        except mail.MailError as exc:
            status, error = "failed", str(exc)
        else:
            result = mail.send(mail_settings, message)
            status, error = result.status, result.error
    else:
        session.add(
            MessageOutbox(
                client_id=item.client_id,
                channel=item.channel,
                recipient=item.recipient,
                body=item.text.body,
                created_at=now,
                status="queued",
            )
        )
        status = "queued"
    claim.status = status
    claim.sent_at = now
    session.add(
        DocumentLogEntry(
            client_id=item.client_id,
            kind="reminder",
            sent_at=now,
            sender_user_id=None,
            recipient=item.recipient,
            form_names="Appointment reminder",
            attachment_names="",
            channel=item.channel,
            status=status,
            error=error[:500],
        )
    )
    audit.record(
        session,
        actor=None,
        action="reminder.send",
        entity="appointment",
        entity_id=item.appointment_id,
        client_id=item.client_id,
        detail=f"channel={item.channel} status={status}",
        at=now,
    )
    return status


def send_due_reminders(
    engine: Engine,
    *,
    now: datetime | None = None,
    mail_settings: mail.MailSettings,
    practice_tz: str = "America/New_York",
) -> ReminderRun:
    """Send every due reminder, one transaction per message (the command line, as system).

    Takes an engine, not a session: each message commits on its own, so a failure or a
    crash half-way keeps what was already sent recorded.
    """
    now = (now or utcnow()).astimezone(UTC)
    with read_session(engine) as session:
        due, appointments_due = _due_reminders(session, now=now, practice_tz=practice_tz)
    counts = {"sent": 0, "sms": 0, "voice": 0, "failed": 0, "skipped": 0}
    for item in due:
        with transaction(engine) as session:
            status = _send_one(session, item, mail_settings)
        if status is None:
            counts["skipped"] += 1
        elif status == "failed":
            counts["failed"] += 1
        elif item.channel == "email":
            counts["sent"] += 1
        else:
            counts[item.channel] += 1
    return ReminderRun(
        emailed=counts["sent"],
        queued_sms=counts["sms"],
        queued_voice=counts["voice"],
        failed=counts["failed"],
        already_sent=counts["skipped"],
        appointments_due=appointments_due,
    )
