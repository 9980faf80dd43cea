"""Appointment reminders (R3): the worker queues them every minute (``python -m lib.cli
worker``); ``python -m lib.cli send-reminders [--now ISO]`` does one round by hand.

Each scheduled appointment gets one reminder per channel that is effective for its client
(the same resolution the Reminders & Portal tab shows), once it is within the lead time.
Every reminder goes into the outbox (``lib.outbox``): the worker sends emails (with retries,
never inside a transaction); text and voice messages wait there until a provider is
configured, and their log rows say so. The unique key of ``reminder_sends`` (appointment,
channel) is the "once": each reminder claims it in its own transaction, so a second run, or
two runs at the same time, queue nothing twice. When an email finally failed, a run at least
``RETRY_FAILED_AFTER`` later queues it again while the appointment is still ahead.

What a reminder says is deliberately thin: the client's first name, the practice's name, the
date and time, and whether it is a video visit. Never the service, the clinician's specialty,
the location's name or anything else a shared inbox or lock screen should not show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lib import audit, mail, outbox
from lib.db import read_session, transaction
from lib.models import Appointment, Client, ReminderSend, ReminderSetting
from lib.portal import greeting_name, practice_name
from lib.reminders import BUILT_IN, SettingsView, settings_for_client, voice_number
from lib.timeutil import as_utc, utcnow

SKIPPED_STATUSES = ("discharged",)  # clients who left the practice get no reminders
RETRY_FAILED_AFTER = timedelta(hours=1)  # the outbox already retried for hours before "failed"


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
    queued_email: int = 0
    queued_sms: int = 0
    queued_voice: int = 0
    failed: int = 0
    already_sent: int = 0
    appointments_due: int = 0

    def summary(self) -> str:
        """Counts only: the command's output goes to cron mail and logs, so no names."""
        return (
            f"Appointments due a reminder: {self.appointments_due}. "
            f"Emails queued: {self.queued_email}. Texts queued: {self.queued_sms}. "
            f"Voice calls queued: {self.queued_voice}. Not queued (no valid address): "
            f"{self.failed}. Already sent or queued earlier: {self.already_sent}."
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


def _claim(
    session: Session, appointment_id: int, channel: str, now: datetime
) -> ReminderSend | None:
    """This run's right to queue: a new row, or one that finally failed long enough ago,
    taken back. None: sent, queued or tried recently."""
    claim = ReminderSend(
        appointment_id=appointment_id, channel=channel, sent_at=now, status="queued"
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
    if (
        existing is not None
        and existing.status == "failed"
        and as_utc(existing.sent_at) <= now - RETRY_FAILED_AFTER
    ):
        existing.status = "queued"
        existing.sent_at = now
        return existing
    return None


def _queue_one(
    session: Session, item: _Due, mail_settings: mail.MailSettings, now: datetime
) -> str | None:
    """Claim and queue one reminder, logged. Returns "queued" or "failed" (no valid
    address), or None when it was queued before (or the appointment is no longer
    scheduled)."""
    appointment = session.get(Appointment, item.appointment_id)
    if appointment is None or appointment.status != "scheduled":
        return None
    claim = _claim(session, item.appointment_id, item.channel, now)
    if claim is None:
        return None
    if item.channel == "email":
        try:
            message = mail.build_message(
                mail_settings, to=item.recipient, subject=item.text.subject, body=item.text.body
            )
        except mail.MailError as exc:
            queued = outbox.log_not_sent(
                session,
                actor=None,
                client_id=item.client_id,
                kind="reminder",
                what="Appointment reminder",
                recipient=item.recipient,
                error=str(exc),
                now=now,
            )
        else:
            queued = outbox.queue_email(
                session,
                actor=None,
                client_id=item.client_id,
                kind="reminder",
                what="Appointment reminder",
                message=message,
                ref_id=claim.id,
                send_before=as_utc(appointment.starts_at),
                now=now,
            )
    else:
        queued = outbox.queue_waiting(
            session,
            client_id=item.client_id,
            channel=item.channel,
            recipient=item.recipient,
            body=item.text.body,
            kind="reminder",
            what="Appointment reminder",
            ref_id=claim.id,
            now=now,
        )
    claim.status = queued.status
    claim.sent_at = now
    audit.record(
        session,
        actor=None,
        action="reminder.send",
        entity="appointment",
        entity_id=item.appointment_id,
        client_id=item.client_id,
        detail=f"channel={item.channel} status={queued.status}",
        at=now,
    )
    return queued.status


def queue_due_reminders(
    engine: Engine,
    *,
    now: datetime | None = None,
    mail_settings: mail.MailSettings,
    practice_tz: str = "America/New_York",
) -> ReminderRun:
    """Queue every due reminder, one transaction per reminder (the worker, as system).

    Takes an engine, not a session: each reminder commits on its own, so a crash half-way
    keeps what was already queued recorded. Nothing here talks to a mail server.
    """
    now = (now or utcnow()).astimezone(UTC)
    with read_session(engine) as session:
        due, appointments_due = _due_reminders(session, now=now, practice_tz=practice_tz)
    counts = {"email": 0, "sms": 0, "voice": 0, "failed": 0, "skipped": 0}
    for item in due:
        with transaction(engine) as session:
            status = _queue_one(session, item, mail_settings, now)
        if status is None:
            counts["skipped"] += 1
        elif status == "failed":
            counts["failed"] += 1
        else:
            counts[item.channel] += 1
    return ReminderRun(
        queued_email=counts["email"],
        queued_sms=counts["sms"],
        queued_voice=counts["voice"],
        failed=counts["failed"],
        already_sent=counts["skipped"],
        appointments_due=appointments_due,
    )


# --- what the worker asks ------------------------------------------------------------------


def reminder_not_wanted(session: Session, *, reminder_send_id: int, now: datetime) -> str:
    """Why a queued reminder email should not go out any more ("" when it should)."""
    claim = session.get(ReminderSend, reminder_send_id)
    appointment = session.get(Appointment, claim.appointment_id) if claim else None
    if appointment is None or appointment.status != "scheduled":
        return "Not sent: the appointment is no longer scheduled."
    if as_utc(appointment.starts_at) <= now:
        return "Not sent: the appointment had started before the reminder could go out."
    return ""


def record_reminder_outcome(
    session: Session, *, reminder_send_id: int, status: str, now: datetime
) -> None:
    """The worker's final word on a reminder email: "sent" or "failed"."""
    session.execute(
        update(ReminderSend)
        .where(ReminderSend.id == reminder_send_id)
        .values(status=status, sent_at=now)
        .execution_options(synchronize_session=False)
    )
