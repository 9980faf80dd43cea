"""Clinicians managed in the app (spec A6, issue 14): lib on both engines, the CLI, the page."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lib import auth, clinicians
from lib.db import transaction
from lib.edits import StaleEdit
from lib.models import AuditEntry, Clinician, Service, User
from lib.policy import ADMIN, CLINICIAN, FRONT_DESK, PermissionDenied
from lib.validation import ValidationError
from tests import record_forms
from tests import test_pages_login as login_tests
from tests.factories import make_user
from tests.test_cli import cli, db_of
from tests.test_pages_clients import db
from tests.test_pages_login import sign_in

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app


def test_add_edit_deactivate_and_link_an_account(engine):
    with transaction(engine) as session:
        admin = make_user(session, ADMIN, "boss")
        session.add(Service(code="90834", description="Psychotherapy 45", fee_cents=15000))
        session.flush()
        service_id = session.scalar(select(Service.id))
        cid = clinicians.save_clinician(
            session,
            actor=admin,
            changes={
                "first_name": "Zoë",
                "last_name": "O'Brien-Núñez",
                "credentials": "LICSW",
                "email": "zoe@example.com",
                "default_service_id": service_id,
            },
        )
        helper = make_user(session, FRONT_DESK, "helper")
    with transaction(engine) as session:
        row = clinicians.list_clinicians(session)[0]
        assert (row.name, row.credentials, row.default_service_id, row.active) == (
            "Zoë O'Brien-Núñez",
            "LICSW",
            service_id,
            True,
        )
        clinicians.save_clinician(
            session,
            actor=admin,
            changes={"active": False, "username": "helper"},
            clinician_id=cid,
            expected_version=row.version,
        )
    with transaction(engine) as session:
        row = clinicians.list_clinicians(session)[0]
        assert not row.active and row.username == "helper" and row.version == 2
        assert session.get(User, helper.user_id).clinician_id == cid
        assert clinicians.list_clinicians(session, include_inactive=False) == []
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert {"clinician.create", "clinician.update", "user.link_clinician"} <= set(actions)


def test_a_stale_edit_is_refused_and_writes_nothing(engine):
    with transaction(engine) as session:
        admin = make_user(session, ADMIN, "boss")
        cid = clinicians.save_clinician(
            session, actor=admin, changes={"first_name": "Ana", "last_name": "Reyes"}
        )
        clinicians.save_clinician(
            session,
            actor=admin,
            changes={"email": "a@example.com"},
            clinician_id=cid,
            expected_version=1,
        )
    with pytest.raises(StaleEdit), transaction(engine) as session:
        clinicians.save_clinician(
            session,
            actor=admin,
            changes={"credentials": "PhD"},
            clinician_id=cid,
            expected_version=1,
        )
    with transaction(engine) as session:
        c = session.get(Clinician, cid)
        assert (c.credentials, c.email, c.version) == ("", "a@example.com", 2)


def test_bad_input_and_other_roles_are_refused(engine):
    with transaction(engine) as session:
        admin = make_user(session, ADMIN, "boss")
        desk = make_user(session, FRONT_DESK, "desk")
        with pytest.raises(ValidationError) as bad:
            clinicians.save_clinician(
                session, actor=admin, changes={"first_name": "", "last_name": "X", "email": "no"}
            )
        assert set(bad.value.errors) == {"first_name", "email"}
        with pytest.raises(PermissionDenied):
            clinicians.save_clinician(
                session, actor=desk, changes={"first_name": "A", "last_name": "B"}
            )
        clinicians.save_clinician(
            session, actor=admin, changes={"first_name": "A", "last_name": "B"}
        )
        with pytest.raises(ValidationError) as same:
            clinicians.save_clinician(
                session, actor=admin, changes={"first_name": "a", "last_name": "b"}
            )
        assert "already a clinician" in same.value.errors["last_name"]


def test_a_clinician_account_keeps_its_link(engine):
    with transaction(engine) as session:
        admin = make_user(session, ADMIN, "boss")
        doc = make_user(session, CLINICIAN, "doc")
        with pytest.raises(ValidationError) as refused:
            clinicians.save_clinician(
                session,
                actor=admin,
                changes={"username": ""},
                clinician_id=doc.clinician_id,
                expected_version=1,
            )
        assert "doc" in refused.value.errors["username"]


def test_staff_name_and_email_are_validated_and_stale_safe(engine):
    with transaction(engine) as session:
        admin = make_user(session, ADMIN, "boss")
        make_user(session, FRONT_DESK, "desk")
    with transaction(engine) as session:
        version = session.scalar(select(User.version).where(User.username == "desk"))
        with pytest.raises(auth.AuthError) as bad:
            auth.set_name_email(
                session,
                actor=admin,
                username="desk",
                changes={"email": "not an address"},
                expected_version=version,
            )
        assert bad.value.field == "email"
        auth.set_name_email(
            session,
            actor=admin,
            username="desk",
            changes={"display_name": "Dana Desk", "email": "Dana@Example.com"},
            expected_version=version,
        )
    with pytest.raises(StaleEdit), transaction(engine) as session:
        auth.set_name_email(
            session,
            actor=admin,
            username="desk",
            changes={"display_name": "Old"},
            expected_version=version,
        )
    with transaction(engine) as session:
        user = session.scalars(select(User).where(User.username == "desk")).one()
        assert (user.display_name, user.email) == ("Dana Desk", "Dana@example.com")


def test_create_clinician_on_the_command_line(tmp_path):
    assert cli(tmp_path, "migrate").returncode == 0
    done = cli(
        tmp_path,
        "create-clinician",
        "--first",
        "Maya",
        "--last",
        "Lindqvist",
        "--credentials",
        "PsyD",
        "--email",
        "maya@example.com",
    )
    assert done.returncode == 0, done.stderr
    assert "Created clinician Maya Lindqvist" in done.stdout
    again = cli(tmp_path, "create-clinician", "--first", "Maya", "--last", "Lindqvist")
    assert again.returncode == 2 and "already a clinician" in again.stderr
    bad = cli(tmp_path, "create-clinician", "--first", "X", "--last", "Y", "--email", "nope")
    assert bad.returncode == 2 and "valid email" in bad.stderr
    with transaction(db_of(tmp_path)) as session:
        rows = session.scalars(select(Clinician)).all()
        assert [(c.first_name, c.credentials, c.email) for c in rows] == [
            ("Maya", "PsyD", "maya@example.com")
        ]


def _clinician_count(url: str) -> int:
    with db(url) as engine, transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Clinician))


def test_the_clinicians_page_adds_once_even_on_a_double_click(demo_app):
    before = _clinician_count(demo_app)
    at = sign_in("admin")
    at.switch_page("pages/clinicians.py").run()
    assert not at.exception, at.exception
    for field, value in (("first_name", "Noor"), ("last_name", "Haddad"), ("email", "x@y")):
        at.text_input(key=record_forms.key(at, "clinician", 0, field)).input(value)
    submit = record_forms.submit(at, "clinician", 0, "Add clinician")
    at.button(key=submit).click().run()
    assert [e.value for e in at.error if "valid email" in e.value]  # beside the field
    assert _clinician_count(demo_app) == before

    at.text_input(key=record_forms.key(at, "clinician", 0, "email")).input("noor@example.com")
    # The first click commits; its run is cut short by the second click, which submits the
    # same form again.
    with db(demo_app) as engine, transaction(engine) as session:
        admin = auth.actor_for(session.scalars(select(User).where(User.username == "admin")).one())
        clinicians.save_clinician(
            session,
            actor=admin,
            changes={"first_name": "Noor", "last_name": "Haddad", "email": "noor@example.com"},
        )
    at.button(key=submit).click().run()
    assert not at.exception
    assert _clinician_count(demo_app) == before + 1

    # Deactivate it from the page.
    cid = read_id(demo_app, "Haddad")
    at.selectbox(key="clinician_choice").set_value(cid).run()
    at.checkbox(key=record_forms.key(at, "clinician", cid, "active")).uncheck()
    at.button(key=record_forms.submit(at, "clinician", cid, "Save clinician")).click().run()
    assert not at.exception
    assert any("Clinician saved: active." in s.value for s in at.success)
    with db(demo_app) as engine, transaction(engine) as session:
        assert session.get(Clinician, cid).active is False


def read_id(url: str, last: str) -> int:
    with db(url) as engine, transaction(engine) as session:
        return session.scalar(select(Clinician.id).where(Clinician.last_name == last))


def test_staff_account_confirmation_stays_until_the_next_action(demo_app):
    at = sign_in("admin")
    at.switch_page("pages/users.py").run()
    at.selectbox(key="users_target").set_value("biller").run()
    uid = _user_id(demo_app, "biller")
    at.text_input(key=record_forms.key(at, "staff_account", uid, "email")).input("bad@")
    save = record_forms.submit(at, "staff_account", uid, "Save name and email", part="details_form")
    at.button(key=save).click().run()
    assert any("valid email" in e.value for e in at.error)
    at.text_input(key=record_forms.key(at, "staff_account", uid, "email")).input(
        "billing@riverbend.example"
    )
    at.text_input(key=record_forms.key(at, "staff_account", uid, "display_name")).input("Bo Biller")
    at.button(
        key=record_forms.submit(
            at, "staff_account", uid, "Save name and email", part="details_form"
        )
    ).click().run()
    done = "Changed for 'biller': name and email."
    assert [s.value for s in at.success] == [done]
    at.run()
    at.selectbox(key="users_target").set_value("frontdesk").run()
    assert [s.value for s in at.success] == [done]  # still there
    with db(demo_app) as engine, transaction(engine) as session:
        user = session.get(User, uid)
        assert (user.display_name, user.email) == ("Bo Biller", "billing@riverbend.example")
    fid = _user_id(demo_app, "frontdesk")
    at.button(key=record_forms.prefix(at, "staff_account", fid) + "disable").click().run()
    assert [s.value for s in at.success] == ["Account 'frontdesk' disabled."]


def _user_id(url: str, username: str) -> int:
    with db(url) as engine, transaction(engine) as session:
        return session.scalar(select(User.id).where(User.username == username))
