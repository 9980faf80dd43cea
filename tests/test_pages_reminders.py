"""The Reminders & Portal tab, the header's invite action, the admin settings page and the public
invitation page, through app.py in Streamlit's AppTest (spec R1, R2), on a fresh demo practice
(SQLite and PostgreSQL). Each test drives the screen and checks the database too.

The demo practice's defaults: reminders on, by email and text, 24 hours ahead; portal on.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from lib import auth, mail, portal, reminders, worker
from lib.db import make_engine, transaction
from lib.models import (
    AuditEntry,
    Client,
    Clinician,
    DocumentLogEntry,
    PortalInvitation,
    ReminderSetting,
    User,
)
from lib.policy import Actor
from lib.timeutil import utcnow
from tests import test_pages_login as login_tests
from tests.test_pages_login import NO_ACCESS, open_app, sign_in

# The sign-in tests' fixtures: a fresh Streamlit per test, app.py on a fresh demo practice.
_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app

TOKEN_IN_LINK = re.compile(r"/portal\?token=([A-Za-z0-9_-]+)")


@contextmanager
def db(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def actor_of(url: str, username: str) -> Actor:
    with db(url) as engine, transaction(engine) as session:
        return auth.actor_for(session.scalars(select(User).where(User.username == username)).one())


@pytest.fixture
def outbox(demo_app, tmp_path, monkeypatch) -> Path:
    """No SMTP configured: mail lands in <data dir>/outbox as .eml files."""
    monkeypatch.setenv("CLIENTDESK_DATA_DIR", str(tmp_path))
    return tmp_path / "outbox"


@pytest.fixture
def client(demo_app) -> tuple[int, int]:
    """(id, number) of an active demo client of Dr. Okafor's, with email, DOB, mobile and
    every consent, and no overrides."""
    with db(demo_app) as engine, transaction(engine) as session:
        okafor = session.scalars(select(Clinician.id).where(Clinician.last_name == "Okafor")).one()
        row = session.scalars(
            select(Client)
            .where(
                Client.status == "active",
                Client.clinician_id == okafor,
                Client.email != "",
                Client.phone_mobile != "",
            )
            .order_by(Client.client_number)
            .limit(1)
        ).one()
        row.email_ok = row.text_ok = row.voicemail_ok = True
        return row.id, row.client_number


def change_client(url: str, client_id: int, **values) -> None:
    with db(url) as engine, transaction(engine) as session:
        session.execute(update(Client).where(Client.id == client_id).values(**values))


def set_override(url: str, username: str, scope: str, scope_id: int, **values) -> None:
    actor = actor_of(url, username)
    with db(url) as engine, transaction(engine) as session:
        row = session.scalar(
            select(ReminderSetting).where(
                ReminderSetting.scope == scope, ReminderSetting.scope_id == scope_id
            )
        )
        reminders.save_overrides(
            session,
            actor=actor,
            scope=scope,
            scope_id=scope_id,
            changes=values,
            expected={k: getattr(row, k) if row else None for k in values},
        )


def overrides(url: str, scope: str, scope_id: int) -> dict:
    with db(url) as engine, transaction(engine) as session:
        row = session.scalar(
            select(ReminderSetting).where(
                ReminderSetting.scope == scope, ReminderSetting.scope_id == scope_id
            )
        )
        return {k: getattr(row, k) if row else None for k in reminders.SETTINGS}


def deliver(url: str, outbox: Path) -> worker.Delivery:
    """The worker's turn: send what the outbox holds (to .eml files)."""
    with db(url) as engine:
        return worker.deliver_due(engine, mail_settings=mail.mail_settings(outbox.parent))


def open_client(username: str, number: int) -> AppTest:
    at = sign_in(username)
    at.switch_page("pages/client.py")
    at.query_params["client"] = str(number)
    at.run()
    assert not at.exception
    return at


def setting(at: AppTest, scope: str, scope_id: int, key: str):
    """The override widget of one setting in the grid (its key carries a generation)."""
    pattern = re.compile(rf"rem_{scope}_{scope_id}_g\d+_{key}")
    (widget,) = [w for w in (*at.number_input, *at.selectbox) if pattern.fullmatch(w.key)]
    return widget


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def row_texts(at: AppTest, label: str) -> list[str]:
    """The Default and Effective cells of the grid row labelled ``label``."""
    values = texts(at)
    i = values.index(label)
    return values[i + 1 : i + 3]


# --- the tab (R1) ------------------------------------------------------------------------------


def test_the_tab_shows_default_override_and_effective_side_by_side(demo_app, client):
    client_id, number = client
    with db(demo_app) as engine, transaction(engine) as session:
        okafor = session.get(Client, client_id).clinician_id
    set_override(demo_app, "admin", "clinician", okafor, channel_voice=True)
    set_override(demo_app, "manager", "client", client_id, lead_hours=48)

    at = open_client("frontdesk", number)

    columns = ["**Setting**", "**Default**", "**This client**", "**Effective**"]
    assert [m.value for m in at.markdown if m.value in columns] == columns
    assert row_texts(at, "Reminder lead time") == ["24 hours · Practice default", "48 hours"]
    assert setting(at, "client", client_id, "lead_hours").value == 48
    assert row_texts(at, "Remind by voice call") == ["On · Clinician: Maya Okafor", "On"]
    assert setting(at, "client", client_id, "channel_voice").value == "Use default"
    assert row_texts(at, "Remind by text (SMS)") == ["On · Practice default", "On"]
    assert (
        "Appointment reminders go out 48 hours before each appointment by email, text message "
        "and voice call." in texts(at)
    )
    assert not at.warning


def test_reset_to_default_per_field_and_for_all(demo_app, client):
    client_id, number = client
    set_override(demo_app, "manager", "client", client_id, lead_hours=48, self_scheduling=True)
    at = open_client("frontdesk", number)
    assert row_texts(at, "Reminder lead time")[1] == "48 hours"

    at.button(key=f"rem_client_{client_id}_reset_lead_hours").click().run()

    assert not at.exception
    assert overrides(demo_app, "client", client_id)["lead_hours"] is None
    assert overrides(demo_app, "client", client_id)["self_scheduling"] is True
    assert setting(at, "client", client_id, "lead_hours").value is None
    assert row_texts(at, "Reminder lead time")[1] == "24 hours"
    assert "Reset to the default." in [s.value for s in at.success]

    at.button(key=f"rem_client_{client_id}_reset_all").click().run()

    assert overrides(demo_app, "client", client_id) == dict.fromkeys(reminders.SETTINGS)
    assert setting(at, "client", client_id, "self_scheduling").value == "Use default"
    assert row_texts(at, "Self-scheduling") == ["Off · Practice default", "Off"]
    assert at.button(key=f"rem_client_{client_id}_reset_all").disabled
    with db(demo_app) as engine, transaction(engine) as session:
        actors = session.scalars(
            select(AuditEntry.actor_username).where(
                AuditEntry.action == "reminders.update", AuditEntry.client_id == client_id
            )
        ).all()
    assert actors == ["manager", "frontdesk", "frontdesk"]


def test_changing_an_override_saves_it_at_once(demo_app, client):
    client_id, number = client
    at = open_client("manager", number)

    setting(at, "client", client_id, "channel_sms").select("Off").run()
    setting(at, "client", client_id, "lead_hours").set_value(6).run()

    assert not at.exception
    saved = overrides(demo_app, "client", client_id)
    assert (saved["channel_sms"], saved["lead_hours"]) == (False, 6)
    assert row_texts(at, "Remind by text (SMS)") == ["On · Practice default", "Off"]
    assert row_texts(at, "Reminder lead time") == ["24 hours · Practice default", "6 hours"]


def test_a_setting_someone_else_changed_meanwhile_is_not_overwritten(demo_app, client):
    client_id, number = client
    at = open_client("frontdesk", number)
    set_override(demo_app, "manager", "client", client_id, lead_hours=48)  # in another browser

    setting(at, "client", client_id, "lead_hours").set_value(12).run()

    assert not at.exception
    (message,) = [e.value for e in at.error]
    assert "nothing was saved" in message
    assert any(t.startswith("Changed by Morgan Manager at ") for t in texts(at))
    assert overrides(demo_app, "client", client_id)["lead_hours"] == 48
    assert setting(at, "client", client_id, "lead_hours").value == 48
    assert row_texts(at, "Reminder lead time")[1] == "48 hours"


def test_the_tab_says_when_consent_is_missing(demo_app, client):
    client_id, number = client
    change_client(demo_app, client_id, email_ok=False)

    at = open_client("manager", number)

    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1
    assert "no email consent" in warnings[0] and "no email reminders will be sent" in warnings[0]
    default, effective = row_texts(at, "Remind by email")
    assert default == "On · Practice default"
    assert effective.startswith("Off — no email consent")
    assert "by text message." in " ".join(texts(at))


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_roles_without_reminders_edit_see_the_settings_but_cannot_change_them(demo_app, client):
    client_id, number = client
    at = open_client("biller", number)
    assert setting(at, "client", client_id, "lead_hours").disabled
    assert setting(at, "client", client_id, "channel_email").disabled
    assert not [b for b in at.button if b.key in ("head_invite", "tab_invite", "tab_revoke")]


# --- inviting to the portal (R2) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"email": "", "email_ok": False}, "To invite this client, add an email address"),
        ({"dob": None}, "To invite this client, add a date of birth"),
    ],
)
def test_the_invite_button_says_what_is_missing(demo_app, client, outbox, values, says):
    client_id, number = client
    change_client(demo_app, client_id, **values)

    at = open_client("frontdesk", number)

    button = at.button(key="head_invite")
    assert button.disabled
    assert any(c.value.startswith(says) for c in at.caption)
    assert any(i.value.startswith(says) for i in at.info)  # and the tab says it too
    assert at.button(key="tab_invite").disabled


def test_invite_resend_and_revoke_from_the_client_screen(demo_app, client, outbox):
    client_id, number = client
    at = open_client("frontdesk", number)
    assert "Not invited to the portal." in texts(at)

    at.button(key="head_invite").click().run()

    assert not at.exception
    assert any("Portal invitation queued" in s.value for s in at.success)
    assert any(t.startswith("Invitation queued ") for t in texts(at))
    assert not outbox.exists()  # the worker sends it
    assert at.button(key="tab_invite").disabled  # one at a time
    assert not at.button(key="tab_revoke").disabled

    assert deliver(demo_app, outbox) == worker.Delivery(sent=1)
    at.run()
    assert any(t.startswith("Invited ") and "link valid until" in t for t in texts(at))
    assert len(list(outbox.glob("*.eml"))) == 1
    assert at.button(key="tab_invite").label == "Resend invitation"

    at.button(key="tab_invite").click().run()
    deliver(demo_app, outbox)
    at.run()
    at.button(key="tab_revoke").click().run()

    assert not at.exception
    assert any(t.startswith("Invitation revoked ") for t in texts(at))
    (table,) = [d.value for d in at.dataframe if "Link valid until" in d.value.columns]
    assert list(table["Status"]) == ["Revoked", "Replaced"]
    with db(demo_app) as engine, transaction(engine) as session:
        log = session.scalars(
            select(DocumentLogEntry.status).where(
                DocumentLogEntry.client_id == client_id, DocumentLogEntry.kind == "invitation"
            )
        ).all()
        assert log == ["sent", "sent"]
        assert all(i.revoked_at for i in session.scalars(select(PortalInvitation)))


def test_the_public_page_accepts_a_token_once(demo_app, client, outbox):
    client_id, _ = client
    front_desk = actor_of(demo_app, "frontdesk")
    with db(demo_app) as engine, transaction(engine) as session:
        portal.send_invitation(
            session,
            actor=front_desk,
            client_id=client_id,
            mail_settings=mail.mail_settings(outbox.parent),
            settings=portal.portal_settings(),
        )
    deliver(demo_app, outbox)
    (eml,) = outbox.glob("*.eml")
    body = email.message_from_bytes(eml.read_bytes(), policy=policy.default).get_content()
    (token,) = TOKEN_IN_LINK.findall(body)

    def visit(token: str) -> AppTest:
        at = open_app()  # nobody signed in
        at.switch_page("pages/portal_accept.py")
        at.query_params["token"] = token
        at.run()
        at.button(key="portal_accept").click().run()
        assert not at.exception
        return at

    first = visit(token)
    assert any("your invitation is accepted" in s.value for s in first.success)
    assert not first.error
    for again in (visit(token), visit("forged-" + token[7:])):
        assert [e.value for e in again.error] == [portal.INVALID_LINK]
        assert not again.success
    with db(demo_app) as engine, transaction(engine) as session:
        (invitation,) = session.scalars(select(PortalInvitation))
        assert invitation.accepted_at is not None


# --- the admin page ------------------------------------------------------------------------------


def test_admin_sets_practice_defaults_and_clinician_overrides(demo_app, client):
    client_id, number = client
    at = sign_in("admin")
    at.switch_page("pages/reminder_settings.py").run()
    assert not at.exception
    assert "Reminders & portal" in [t.value for t in at.title]

    setting(at, "practice", 0, "lead_hours").set_value(36).run()
    assert overrides(demo_app, "practice", 0)["lead_hours"] == 36

    with db(demo_app) as engine, transaction(engine) as session:
        okafor = session.get(Client, client_id).clinician_id
    at.selectbox(key="reminder_level").select(okafor).run()
    setting(at, "clinician", okafor, "reminders_enabled").select("Off").run()
    assert not at.exception
    assert overrides(demo_app, "clinician", okafor)["reminders_enabled"] is False
    assert row_texts(at, "Appointment reminders") == ["On · Practice default", "Off"]
    (table,) = [d.value for d in at.dataframe]
    lead = table[table["Setting"] == "Reminder lead time"].iloc[0]
    assert lead["Practice"] == "36 hours" and lead["Maya Okafor"] == "—"

    tab = open_client("manager", number)
    assert row_texts(tab, "Appointment reminders") == ["Off · Clinician: Maya Okafor", "Off"]
    assert row_texts(tab, "Reminder lead time") == ["36 hours · Practice default", "36 hours"]


def test_admins_see_when_the_worker_last_ran_and_a_silent_worker_is_flagged(demo_app):
    at = sign_in("admin")
    at.switch_page("pages/reminder_settings.py").run()
    assert not at.exception
    assert any("worker has never run" in e.value for e in at.error)

    with db(demo_app) as engine:
        started = utcnow() - timedelta(hours=1)
        worker.beat(engine, name="desk-pc", started_at=started, summary="started")
    at.run()
    assert not at.error
    (ok,) = [s.value for s in at.success if "worker last ran" in s.value]
    assert "(0 min ago, on desk-pc)" in ok

    with db(demo_app) as engine:  # its last heartbeat, 11 minutes ago
        worker.beat(
            engine,
            name="desk-pc",
            started_at=started,
            summary="started",
            now=utcnow() - timedelta(minutes=11),
        )
    at.run()
    (flag,) = [e.value for e in at.error]
    assert flag.startswith("The email and reminder worker has not run for 11 minutes")
    assert "python -m lib.cli worker" in flag


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_the_settings_page_is_for_admins_only(demo_app):
    at = sign_in("manager")
    at.switch_page("pages/reminder_settings.py").run()
    assert NO_ACCESS in [e.value for e in at.error]
    assert not at.number_input
