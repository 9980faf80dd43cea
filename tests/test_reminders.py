"""Reminder settings and reminder sending (spec R1, R3) on SQLite and PostgreSQL.

Which setting applies to a client is resolved built-in → practice → clinician → client, and a
channel works only with the client's consent; ``send-reminders`` sends each appointment's
reminder once per channel, inside the effective lead time, however often it runs. Reminders are
queued in the outbox and sent by the worker (``lib.worker``): ``run`` below is one worker round.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from lib import mail, outbox, reminders, worker
from lib.client_record import StaleEdit
from lib.db import transaction
from lib.models import (
    Appointment,
    AuditEntry,
    Client,
    DocumentLogEntry,
    MessageOutbox,
    PracticeSetting,
    ReminderSend,
    ReminderSetting,
    Service,
)
from lib.policy import Actor, PermissionDenied
from lib.reminder_sender import (
    RETRY_FAILED_AFTER,
    parse_instant,
    queue_due_reminders,
    reminder_text,
)
from lib.timeutil import utcnow
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Tomorrow at 14:00 UTC: the worker sends with the real clock and fails a reminder whose
# appointment has already started, so the test's "now" must lie ahead of the real one.
NOW = (utcnow() + timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)
PRACTICE_NAME = "Riverside Therapy"


@dataclass(frozen=True)
class Practice:
    admin: Actor
    manager: Actor
    front_desk: Actor
    biller: Actor
    clinician: Actor  # Ana Abara's login
    ana: int  # clinician ids
    ben: int
    service_id: int


def build_practice(engine) -> Practice:
    """Two clinicians, a service, the practice's name and one user of each role."""
    with transaction(engine) as session:
        ana = make_clinician(session, "Ana", "Abara")
        ben = make_clinician(session, "Ben", "Brook")
        service = Service(
            code="90837",
            description="Psychotherapy, 60 minutes",
            fee_cents=16500,
            default_minutes=60,
            active=True,
            version=1,
        )
        session.add(service)
        session.add(PracticeSetting(key="practice_name", value=PRACTICE_NAME, updated_at=NOW))
        session.flush()
        return Practice(
            admin=make_user(session, "admin"),
            manager=make_user(session, "manager"),
            front_desk=make_user(session, "front_desk"),
            biller=make_user(session, "biller"),
            clinician=make_user(session, "clinician", clinician_id=ana),
            ana=ana,
            ben=ben,
            service_id=service.id,
        )


@pytest.fixture
def practice(engine) -> Practice:
    return build_practice(engine)


def add_client(engine, practice: Practice, **fields) -> int:
    """A client of Ana's who consented to everything, unless told otherwise."""
    contact = {
        "email_ok": fields.pop("email_ok", True),
        "text_ok": fields.pop("text_ok", True),
        "voicemail_ok": fields.pop("voicemail_ok", True),
        "time_zone": fields.pop("time_zone", ""),
        "phone_home": fields.pop("phone_home", ""),
    }
    defaults = {
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane.doe@example.com",
        "phone_mobile": "(617) 555-0142",
        "clinician_id": practice.ana,
    }
    defaults.update(fields)
    with transaction(engine) as session:
        client_id = make_client(session, **defaults)
        session.execute(update(Client).where(Client.id == client_id).values(**contact))
    return client_id


def set_level(engine, actor: Actor, scope: str, scope_id: int, **values) -> None:
    """Set settings of a level the way the screens do: expecting what is stored now."""
    with transaction(engine) as session:
        row = session.scalar(
            select(ReminderSetting).where(
                ReminderSetting.scope == scope, ReminderSetting.scope_id == scope_id
            )
        )
        expected = {k: getattr(row, k) if row else None for k in values}
        reminders.save_overrides(
            session,
            actor=actor,
            scope=scope,
            scope_id=scope_id,
            changes=values,
            expected=expected,
        )


def view_of(engine, actor: Actor, client_id: int) -> reminders.SettingsView:
    with transaction(engine) as session:
        return reminders.client_settings(session, actor=actor, client_id=client_id)


def count(engine, model, *where) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


# --- which setting applies (R1) --------------------------------------------------------------


def test_without_any_settings_the_built_in_defaults_apply(engine, practice):
    client_id = add_client(engine, practice)
    view = view_of(engine, practice.front_desk, client_id)
    assert [s.key for s in view.settings] == list(reminders.SETTINGS)
    for s in view.settings:
        assert (s.default_value, s.default_source, s.override) == (
            reminders.BUILT_IN[s.key],
            "built-in",
            None,
        ), s.key
        assert s.effective == reminders.BUILT_IN[s.key], s.key
    assert view.reminder_channels == ("email",)
    assert view.version == 0


def test_practice_then_clinician_then_client_each_override_the_level_above(engine, practice):
    anas_client = add_client(engine, practice)
    bens_client = add_client(engine, practice, first_name="Ola", clinician_id=practice.ben)
    set_level(engine, practice.admin, "practice", 0, lead_hours=48, channel_sms=True)
    set_level(engine, practice.admin, "clinician", practice.ana, lead_hours=12)

    ana = view_of(engine, practice.manager, anas_client)
    ben = view_of(engine, practice.manager, bens_client)
    lead = ana.get("lead_hours")
    assert (lead.default_value, lead.default_source, lead.override, lead.effective) == (
        12,
        "clinician",
        None,
        12,
    )
    assert lead.default_source_label == "Clinician: Ana Abara"
    sms = ana.get("channel_sms")
    assert (sms.default_value, sms.default_source, sms.effective) == (True, "practice", True)
    assert ana.get("portal_enabled").default_source == "built-in"
    # Ben has no overrides: his client gets the practice's value.
    assert (ben.get("lead_hours").default_value, ben.get("lead_hours").default_source) == (
        48,
        "practice",
    )

    set_level(engine, practice.front_desk, "client", anas_client, lead_hours=2, channel_sms=False)
    ana = view_of(engine, practice.manager, anas_client)
    lead = ana.get("lead_hours")
    assert (lead.default_value, lead.default_source, lead.override, lead.effective) == (
        12,
        "clinician",
        2,
        2,
    )
    sms = ana.get("channel_sms")
    assert (sms.default_value, sms.override, sms.effective) == (True, False, False)
    assert ana.reminder_channels == ("email",)
    assert view_of(engine, practice.manager, bens_client).get("lead_hours").effective == 48


def test_reset_to_default_per_field_and_for_all(engine, practice):
    client_id = add_client(engine, practice)
    set_level(engine, practice.admin, "practice", 0, lead_hours=48)
    set_level(
        engine,
        practice.front_desk,
        "client",
        client_id,
        lead_hours=6,
        portal_enabled=False,
        self_scheduling=True,
    )
    set_level(engine, practice.front_desk, "client", client_id, lead_hours=None)
    view = view_of(engine, practice.front_desk, client_id)
    assert (view.get("lead_hours").override, view.get("lead_hours").effective) == (None, 48)
    assert view.get("portal_enabled").override is False

    set_level(
        engine,
        practice.front_desk,
        "client",
        client_id,
        **dict.fromkeys(reminders.SETTINGS),
    )
    view = view_of(engine, practice.front_desk, client_id)
    assert all(s.override is None for s in view.settings)
    assert view.get("portal_enabled").effective is True
    assert view.get("self_scheduling").effective is False
    assert view.version == 3


@pytest.mark.parametrize(
    ("contact", "channel", "reason"),
    [
        ({"email_ok": False}, "email", "no email consent"),
        ({"email": "", "email_ok": False}, "email", "no email address"),
        ({"text_ok": False}, "sms", "no consent to text messages"),
        (
            {"phone_mobile": "", "phone_home": "(617) 555-0100", "text_ok": False},
            "sms",
            "no mobile number",
        ),
        ({"voicemail_ok": False}, "voice", "no consent to voicemail"),
        ({"phone_mobile": "", "voicemail_ok": True}, "voice", "no phone number"),
    ],
)
def test_a_channel_without_consent_is_not_effective_and_the_tab_says_so(
    engine, practice, contact, channel, reason
):
    set_level(engine, practice.admin, "practice", 0, channel_sms=True, channel_voice=True)
    consenting = add_client(engine, practice, first_name="Ada")
    client_id = add_client(engine, practice, **contact)

    assert view_of(engine, practice.manager, consenting).reminder_channels == (
        "email",
        "sms",
        "voice",
    )
    view = view_of(engine, practice.manager, client_id)
    setting = view.get(f"channel_{channel}")
    assert setting.default_value is True and setting.override is None
    assert setting.effective is False
    assert reason in setting.note
    assert channel not in view.reminder_channels
    (note,) = [n for n in view.consent_notes if reason in n]
    assert "will be sent" in note
    if "phone_mobile" not in contact:  # (without any phone, texts cannot go either)
        assert set(view.reminder_channels) == {"email", "sms", "voice"} - {channel}
        assert len(view.consent_notes) == 1


def test_with_reminders_off_no_channel_is_effective_and_consent_is_not_nagged(engine, practice):
    client_id = add_client(engine, practice, email_ok=False)
    set_level(engine, practice.admin, "clinician", practice.ana, reminders_enabled=False)
    view = view_of(engine, practice.manager, client_id)
    assert view.get("reminders_enabled").effective is False
    assert view.get("channel_email").effective is False
    assert view.get("channel_email").note == "appointment reminders are off"
    assert view.consent_notes == []
    assert view.summary.startswith("No appointment reminders will be sent")


def test_the_summary_says_what_will_be_sent(engine, practice):
    client_id = add_client(engine, practice)
    set_level(engine, practice.admin, "practice", 0, channel_sms=True, lead_hours=36)
    assert view_of(engine, practice.manager, client_id).summary == (
        "Appointment reminders go out 36 hours before each appointment by email and text message."
    )


BAD_VALUES = [
    ("lead_hours", 0, "between 1 and 168"),
    ("lead_hours", 500, "between 1 and 168"),
    ("lead_hours", "24", "whole number"),
    ("lead_hours", True, "whole number"),
    ("cancellation_window_hours", -1, "between 0 and 168"),
    ("channel_email", "yes", "on, off or use default"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_VALUES)
def test_a_bad_value_names_the_field_and_writes_nothing(engine, practice, key, value, message):
    client_id = add_client(engine, practice)
    with pytest.raises(ValidationError) as refused:
        set_level(engine, practice.front_desk, "client", client_id, **{key: value})
    assert list(refused.value.errors) == [key]
    assert message in refused.value.errors[key]
    assert count(engine, ReminderSetting) == 0
    assert count(engine, AuditEntry, AuditEntry.action == "reminders.update") == 0


def test_every_change_is_audited_with_before_and_after(engine, practice):
    client_id = add_client(engine, practice)
    set_level(engine, practice.front_desk, "client", client_id, lead_hours=6)
    set_level(engine, practice.front_desk, "client", client_id, lead_hours=None)
    set_level(engine, practice.front_desk, "client", client_id, lead_hours=None)  # no change
    with transaction(engine) as session:
        rows = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "reminders.update")
                .order_by(AuditEntry.id)
            )
        )
    assert [(r.client_id, r.actor_user_id) for r in rows] == [
        (client_id, practice.front_desk.user_id)
    ] * 2
    assert '"lead_hours": 6' in rows[0].after_json
    assert '"lead_hours": null' in rows[0].before_json
    assert '"lead_hours": null' in rows[1].after_json


def test_a_setting_changed_by_someone_else_is_not_overwritten(engine, practice):
    client_id = add_client(engine, practice)
    with transaction(engine) as session:
        reminders.save_overrides(
            session,
            actor=practice.manager,
            scope="client",
            scope_id=client_id,
            changes={"lead_hours": 48},
            expected={"lead_hours": None},
        )
    # The front desk still sees "use default" and sets 12 hours: refused, naming the manager.
    with (
        pytest.raises(StaleEdit, match=practice.manager.display_name),
        transaction(engine) as session,
    ):
        reminders.save_overrides(
            session,
            actor=practice.front_desk,
            scope="client",
            scope_id=client_id,
            changes={"lead_hours": 12},
            expected={"lead_hours": None},
        )
    # A different setting of the same client is no conflict.
    with transaction(engine) as session:
        reminders.save_overrides(
            session,
            actor=practice.front_desk,
            scope="client",
            scope_id=client_id,
            changes={"channel_sms": True},
            expected={"channel_sms": None},
        )
    view = view_of(engine, practice.manager, client_id)
    assert view.get("lead_hours").override == 48
    assert view.get("channel_sms").override is True


@pytest.mark.parametrize("role", ["biller", "clinician"])
def test_roles_without_reminders_edit_cannot_change_a_clients_settings(engine, practice, role):
    client_id = add_client(engine, practice)
    with pytest.raises(PermissionDenied):
        set_level(engine, getattr(practice, role), "client", client_id, lead_hours=6)
    assert count(engine, ReminderSetting) == 0
    # ...but a clinician sees the settings of their own client.
    assert view_of(engine, practice.clinician, client_id).get("lead_hours").effective == 24


def test_only_admins_change_practice_and_clinician_levels(engine, practice):
    for actor in (practice.manager, practice.front_desk):
        with pytest.raises(PermissionDenied):
            set_level(engine, actor, "practice", 0, lead_hours=6)
        with pytest.raises(PermissionDenied):
            set_level(engine, actor, "clinician", practice.ana, lead_hours=6)
    set_level(engine, practice.admin, "clinician", practice.ana, lead_hours=6)
    with transaction(engine) as session:
        view = reminders.level_settings(
            session, actor=practice.admin, scope="clinician", scope_id=practice.ana
        )
        table = reminders.overview(session, actor=practice.admin)
    assert (view.get("lead_hours").override, view.get("lead_hours").default_source) == (
        6,
        "built-in",
    )
    lead = next(r for r in table if r.label == reminders.SETTINGS["lead_hours"])
    assert lead.practice == "24 hours"
    assert lead.clinicians == {"Ana Abara": "6 hours", "Ben Brook": "—"}


def test_a_clinician_cannot_see_another_clinicians_clients_settings(engine, practice):
    bens_client = add_client(engine, practice, clinician_id=practice.ben)
    with pytest.raises(PermissionDenied):
        view_of(engine, practice.clinician, bens_client)


# --- sending (R3) ----------------------------------------------------------------------------


def add_appointment(
    engine, practice: Practice, client_id: int, starts_at: datetime, status: str = "scheduled"
) -> int:
    with transaction(engine) as session:
        appointment = Appointment(
            client_id=client_id,
            clinician_id=practice.ana,
            service_id=practice.service_id,
            starts_at=starts_at,
            duration_minutes=60,
            status=status,
            telehealth=False,
            location="Main office",
            created_at=NOW - timedelta(days=7),
            updated_at=NOW - timedelta(days=7),
            version=1,
        )
        session.add(appointment)
        session.flush()
        return appointment.id


def outbox_settings(tmp_path) -> mail.MailSettings:
    return mail.mail_settings(tmp_path, env={})


def unreachable_smtp(tmp_path) -> mail.MailSettings:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    env = {
        "CLIENTDESK_SMTP_HOST": "127.0.0.1",
        "CLIENTDESK_SMTP_PORT": str(port),
        "CLIENTDESK_SMTP_SECURITY": "none",
    }
    return mail.mail_settings(tmp_path, env=env)


def run(engine, tmp_path, *, now: datetime = NOW, settings: mail.MailSettings | None = None):
    """One worker round: queue due reminders as of ``now``, then send the outbox."""
    return worker.run_round(
        engine,
        now=now,
        mail_settings=settings or outbox_settings(tmp_path),
        practice_tz="America/New_York",
    )


def sends(engine) -> set[tuple[int, str, str]]:
    with transaction(engine) as session:
        return {
            (r.appointment_id, r.channel, r.status) for r in session.scalars(select(ReminderSend))
        }


def reminder_log(engine) -> list[DocumentLogEntry]:
    with transaction(engine) as session:
        return list(
            session.scalars(
                select(DocumentLogEntry)
                .where(DocumentLogEntry.kind == "reminder")
                .order_by(DocumentLogEntry.id)
            )
        )


def eml_files(tmp_path) -> list[Path]:
    return sorted((tmp_path / "outbox").glob("*.eml"))


def test_reminders_go_once_per_channel_inside_the_lead_time(engine, practice, tmp_path):
    set_level(engine, practice.admin, "practice", 0, channel_sms=True, channel_voice=True)
    client_id = add_client(engine, practice)
    soon = add_appointment(engine, practice, client_id, NOW + timedelta(hours=10))
    later = add_appointment(engine, practice, client_id, NOW + timedelta(hours=30))
    add_appointment(engine, practice, client_id, NOW + timedelta(hours=5), status="cancelled")
    add_appointment(engine, practice, client_id, NOW - timedelta(hours=1))

    first = run(engine, tmp_path)

    queued = first.reminders
    assert (queued.queued_email, queued.queued_sms, queued.queued_voice, queued.failed) == (
        1,
        1,
        1,
        0,
    )
    assert queued.appointments_due == 1
    assert first.delivery == worker.Delivery(sent=1)
    assert sends(engine) == {
        (soon, "email", "sent"),
        (soon, "sms", "queued"),
        (soon, "voice", "queued"),
    }
    assert len(eml_files(tmp_path)) == 1
    log = reminder_log(engine)
    assert [(e.client_id, e.channel, e.status) for e in log] == [
        (client_id, "email", "sent"),
        (client_id, "sms", "queued"),
        (client_id, "voice", "queued"),
    ]
    assert log[0].recipient == "jane.doe@example.com"
    assert log[1].recipient == "(617) 555-0142"
    assert log[1].error == outbox.WAITING_FOR_PROVIDER["sms"]
    with transaction(engine) as session:
        waiting = list(
            session.scalars(
                select(MessageOutbox)
                .where(MessageOutbox.channel != "email")
                .order_by(MessageOutbox.id)
            )
        )
    assert [(m.channel, m.recipient, m.status) for m in waiting] == [
        ("sms", "(617) 555-0142", "queued"),
        ("voice", "(617) 555-0142", "queued"),
    ]
    assert "Doe" not in waiting[0].body and "Jane" in waiting[0].body
    assert count(engine, AuditEntry, AuditEntry.action == "reminder.send") == 3

    second = run(engine, tmp_path).reminders
    assert (second.queued_email, second.queued_sms, second.queued_voice) == (0, 0, 0)
    assert second.already_sent == 3
    assert len(eml_files(tmp_path)) == 1
    assert len(reminder_log(engine)) == 3
    assert count(engine, MessageOutbox) == 3

    # Seven hours later the second appointment is 23 hours away: inside the 24-hour lead.
    third = run(engine, tmp_path, now=NOW + timedelta(hours=7)).reminders
    assert (third.queued_email, third.queued_sms, third.queued_voice) == (1, 1, 1)
    assert {s for s in sends(engine) if s[0] == later} == {
        (later, "email", "sent"),
        (later, "sms", "queued"),
        (later, "voice", "queued"),
    }


def test_the_effective_settings_decide_lead_time_and_channels(engine, practice, tmp_path):
    """The same resolution as the tab: clinician level, client override and consent."""
    set_level(engine, practice.admin, "practice", 0, channel_sms=True)
    set_level(engine, practice.admin, "clinician", practice.ben, reminders_enabled=False)
    long_lead = add_client(engine, practice, first_name="Lea")
    no_texts = add_client(engine, practice, first_name="Noa", text_ok=False)
    bens = add_client(engine, practice, first_name="Bea", clinician_id=practice.ben)
    set_level(engine, practice.front_desk, "client", long_lead, lead_hours=72)
    in_two_days = NOW + timedelta(hours=48)
    lea_appt = add_appointment(engine, practice, long_lead, in_two_days)
    add_appointment(engine, practice, no_texts, in_two_days)
    noa_appt = add_appointment(engine, practice, no_texts, NOW + timedelta(hours=3))
    add_appointment(engine, practice, bens, NOW + timedelta(hours=3))

    done = run(engine, tmp_path)

    assert sends(engine) == {
        (lea_appt, "email", "sent"),
        (lea_appt, "sms", "queued"),
        (noa_appt, "email", "sent"),
    }
    assert done.reminders.appointments_due == 2


def test_a_failed_email_is_logged_and_queued_again_an_hour_later(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    appointment = add_appointment(engine, practice, client_id, NOW + timedelta(hours=2))
    with transaction(engine) as session:  # an address no email can be built for
        session.execute(update(Client).values(email="jane.doe@invalid"))

    failed = run(engine, tmp_path)
    assert (failed.reminders.queued_email, failed.reminders.failed) == (0, 1)
    assert sends(engine) == {(appointment, "email", "failed")}
    (entry,) = reminder_log(engine)
    assert entry.status == "failed"
    assert entry.error

    with transaction(engine) as session:
        session.execute(update(Client).values(email="jane.doe@example.com"))
    assert run(engine, tmp_path).reminders.queued_email == 0  # not every minute
    retried = run(engine, tmp_path, now=NOW + RETRY_FAILED_AFTER)
    assert (retried.reminders.queued_email, retried.delivery.sent) == (1, 1)
    assert sends(engine) == {(appointment, "email", "sent")}
    assert [e.status for e in reminder_log(engine)] == ["failed", "sent"]
    again = run(engine, tmp_path, now=NOW + RETRY_FAILED_AFTER * 2)
    assert again.reminders.queued_email == 0
    assert len(eml_files(tmp_path)) == 1


def test_a_reminder_for_an_appointment_cancelled_meanwhile_is_not_sent(engine, practice, tmp_path):
    client_id = add_client(engine, practice)
    appointment = add_appointment(engine, practice, client_id, NOW + timedelta(hours=2))
    queued = queue_due_reminders(engine, now=NOW, mail_settings=outbox_settings(tmp_path))
    assert queued.queued_email == 1
    with transaction(engine) as session:
        session.execute(
            update(Appointment).where(Appointment.id == appointment).values(status="cancelled")
        )

    assert worker.deliver_due(engine, mail_settings=outbox_settings(tmp_path)) == (
        worker.Delivery()
    )
    assert eml_files(tmp_path) == []
    (entry,) = reminder_log(engine)
    assert (entry.status, entry.error) == (
        "failed",
        "Not sent: the appointment is no longer scheduled.",
    )
    assert sends(engine) == {(appointment, "email", "failed")}


@pytest.mark.committed  # two threads, two connections
def test_two_runs_at_the_same_time_send_each_reminder_once(engine, practice, tmp_path):
    set_level(engine, practice.admin, "practice", 0, channel_sms=True)
    for n in range(6):
        client_id = add_client(engine, practice, first_name=f"C{n}", email=f"c{n}@example.com")
        add_appointment(engine, practice, client_id, NOW + timedelta(hours=n + 1))
    results = []
    barrier = threading.Barrier(2)

    def one_round():
        barrier.wait()
        results.append(run(engine, tmp_path))

    threads = [threading.Thread(target=one_round) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2
    assert sum(r.reminders.queued_email for r in results) == 6
    assert sum(r.reminders.queued_sms for r in results) == 6
    assert sum(r.delivery.sent for r in results) == 6
    assert count(engine, ReminderSend) == 12
    assert len(eml_files(tmp_path)) == 6
    assert count(engine, MessageOutbox) == 12


def test_a_reminder_says_when_in_the_clients_time_zone_and_nothing_clinical():
    text = reminder_text(
        channel="email",
        practice=PRACTICE_NAME,
        first_name="Jane",
        starts_at=datetime(2026, 12, 2, 20, 30, tzinfo=UTC),
        tz_name="America/Los_Angeles",
        telehealth=True,
        cancellation_hours=24,
    )
    assert text.subject == f"Appointment reminder from {PRACTICE_NAME}"
    assert "Wednesday, December 2, 2026 at 12:30 PM PST" in text.body
    assert "video (telehealth)" in text.body
    assert "24 hours" in text.body
    sms = reminder_text(
        channel="sms",
        practice=PRACTICE_NAME,
        first_name="Jane",
        starts_at=datetime(2026, 12, 2, 20, 30, tzinfo=UTC),
        tz_name="America/New_York",
        telehealth=True,
        cancellation_hours=0,
    )
    assert "Wed Dec 2 at 3:30 PM EST (video visit)" in sms.body
    assert len(sms.body.replace(PRACTICE_NAME, "Riverbend Counseling Group")) <= 160


def test_now_without_an_offset_is_read_in_the_practice_time_zone():
    at = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert parse_instant("2026-12-01T09:00", "America/New_York") == at
    assert parse_instant("2026-12-01T14:00+00:00", "America/Chicago") == at
    with pytest.raises(ValueError):
        parse_instant("tomorrow", "America/New_York")


def test_the_send_reminders_command_sends_once_and_says_how_many(
    db_url, engine, practice, tmp_path
):
    client_id = add_client(engine, practice, dob=date(1980, 1, 2))
    add_appointment(engine, practice, client_id, NOW + timedelta(hours=20))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTDESK_")}
    env.update(DATABASE_URL=db_url, CLIENTDESK_DATA_DIR=str(tmp_path))

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lib.cli", "send-reminders", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = command("--now", NOW.isoformat())
    assert first.returncode == 0, first.stderr
    assert "Emails queued: 1." in first.stdout and "Emails sent: 1." in first.stdout
    assert "Jane" not in first.stdout and "Doe" not in first.stdout
    second = command("--now", NOW.isoformat())
    assert second.returncode == 0, second.stderr
    assert "Emails queued: 0." in second.stdout
    assert "Already sent or queued earlier: 1." in second.stdout
    assert len(eml_files(tmp_path)) == 1
    bad = command("--now", "next tuesday")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
