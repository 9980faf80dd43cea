"""The audit log (spec A2): every account write is recorded, atomically, and cannot be edited."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from lib import audit, auth, sign_in
from lib.db import transaction
from lib.models import AuditEntry, User
from tests.factories import make_clinician, make_user, password_hash


class Boom(Exception):
    pass


@pytest.fixture
def admin(engine) -> auth.Actor:
    with transaction(engine) as session:
        return make_user(session, "admin", "boss")


def entries(engine, admin: auth.Actor, action: str) -> list[audit.AuditRow]:
    with transaction(engine) as session:
        return audit.list_entries(session, actor=admin, action=action)


def user_id(engine, username: str) -> str:
    with transaction(engine) as session:
        return str(session.scalar(select(User.id).where(User.username == username)))


def all_audit_text(engine) -> str:
    with transaction(engine) as session:
        rows = session.scalars(select(AuditEntry)).all()
        return " ".join(f"{r.before_json} {r.after_json} {r.detail}" for r in rows)


def test_creating_an_account_is_audited_with_who_and_the_new_values(engine, admin):
    with transaction(engine) as session:
        auth.create_user(
            session,
            actor=admin,
            username="new.biller",
            display_name="New Biller",
            role="biller",
            password="",
            email="nb@example.org",
            password_hash=password_hash(),
        )
    [row] = [r for r in entries(engine, admin, "user.create") if r.actor_username != "system"]
    assert row.actor_username == "boss"
    assert (row.entity, row.entity_id) == ("user", user_id(engine, "new.biller"))
    assert row.before is None
    assert row.after["username"] == "new.biller"
    assert row.after["role"] == "biller"
    assert row.after["active"] is True
    assert row.after["email"] == "nb@example.org"


def test_an_account_created_from_the_command_line_is_audited_as_system(engine):
    with transaction(engine) as session:
        make_user(session, "manager", "first.manager")
        boss = make_user(session, "admin", "boss")
    created = [
        r for r in entries(engine, boss, "user.create") if r.after["username"] == "first.manager"
    ]
    assert [r.actor_username for r in created] == ["system"]


def test_disabling_and_enabling_an_account_are_audited_with_before_and_after(engine, admin):
    with transaction(engine) as session:
        make_user(session, "front_desk", "desk")
    with transaction(engine) as session:
        auth.set_active(session, actor=admin, username="desk", active=False)
    with transaction(engine) as session:
        auth.set_active(session, actor=admin, username="desk", active=True)

    [disabled] = entries(engine, admin, "user.disable")
    assert disabled.actor_username == "boss"
    assert (disabled.entity, disabled.entity_id) == ("user", user_id(engine, "desk"))
    assert (disabled.before["active"], disabled.after["active"]) == (True, False)
    [enabled] = entries(engine, admin, "user.enable")
    assert (enabled.before["active"], enabled.after["active"]) == (False, True)


def test_changing_a_role_is_audited_with_the_old_and_new_role(engine, admin):
    with transaction(engine) as session:
        make_user(session, "front_desk", "desk")
    with transaction(engine) as session:
        auth.set_role(session, actor=admin, username="desk", role="biller")
    [row] = entries(engine, admin, "user.change_role")
    assert row.actor_username == "boss"
    assert row.entity_id == user_id(engine, "desk")
    assert (row.before["role"], row.after["role"]) == ("front_desk", "biller")


def test_a_password_reset_is_audited_without_any_password_material(engine, admin):
    with transaction(engine) as session:
        make_user(session, "biller", "pat.biller")
    with transaction(engine) as session:
        auth.set_password(
            session, actor=admin, username="pat.biller", new_password="a-brand-new-secret"
        )
    [row] = entries(engine, admin, "user.reset_password")
    assert row.actor_username == "boss"
    assert (row.entity, row.entity_id) == ("user", user_id(engine, "pat.biller"))
    everything = all_audit_text(engine)
    with transaction(engine) as session:
        stored_hash = session.scalar(
            select(User.password_hash).where(User.username == "pat.biller")
        )
    assert "a-brand-new-secret" not in everything
    assert stored_hash not in everything
    assert "$2b$" not in everything


def test_unlocking_an_account_is_audited(engine, admin):
    with transaction(engine) as session:
        make_user(session, "biller", "pat.biller")
        sign_in.record_login_failure(
            session, username="pat.biller", max_attempts=1, lock_minutes=15
        )
    with transaction(engine) as session:
        auth.unlock(session, actor=admin, username="pat.biller")
    [row] = entries(engine, admin, "user.unlock")
    assert row.actor_username == "boss"
    assert (row.entity, row.entity_id) == ("user", user_id(engine, "pat.biller"))
    with transaction(engine) as session:
        user = session.scalar(select(User).where(User.username == "pat.biller"))
        assert (user.failed_login_count, user.locked_until) == (0, None)


def test_a_refused_change_leaves_no_audit_row(engine, admin):
    with transaction(engine) as session:
        before = session.scalar(select(func.count()).select_from(AuditEntry))
    with pytest.raises(auth.AuthError):
        with transaction(engine) as session:
            auth.set_role(session, actor=admin, username="boss", role="nonsense")
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == before


# --- atomic with the write ---------------------------------------------------------------------


def test_a_committed_write_keeps_its_audit_row(engine, admin):
    with transaction(engine) as session:
        clinician_id = make_clinician(session)
        make_user(session, "clinician", "dr.okafor", clinician_id=clinician_id)
    with transaction(engine) as session:
        assert session.scalar(select(User).where(User.username == "dr.okafor")) is not None
    assert [r.after["username"] for r in entries(engine, admin, "user.create")].count(
        "dr.okafor"
    ) == 1


def test_a_rolled_back_write_takes_its_audit_row_with_it(engine, admin):
    with pytest.raises(Boom):
        with transaction(engine) as session:
            make_user(session, "biller", "pat.biller")
            auth.set_active(session, actor=admin, username="pat.biller", active=False)
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(AuditEntry)
                    .where(AuditEntry.action.in_(("user.create", "user.disable")))
                )
                == 3
            )  # boss's creation, plus the two rows of this transaction
            raise Boom
    with transaction(engine) as session:
        assert session.scalar(select(User).where(User.username == "pat.biller")) is None
    assert [r.after["username"] for r in entries(engine, admin, "user.create")] == ["boss"]
    assert entries(engine, admin, "user.disable") == []


# --- append-only, through the ORM --------------------------------------------------------------
# SQLite's triggers refuse; on PostgreSQL the app's role has no UPDATE or DELETE right at all.
APPEND_ONLY = r"append-only|permission denied"


def test_an_audit_row_cannot_be_edited_through_the_orm(engine, admin):
    with pytest.raises(DBAPIError, match=APPEND_ONLY):
        with transaction(engine) as session:
            row = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).first()
            row.actor_username = "someone.else"
            session.flush()
    with transaction(engine) as session:
        first = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).first()
        assert first.actor_username == "system"


def test_an_audit_row_cannot_be_deleted_through_the_orm(engine, admin):
    with transaction(engine) as session:
        count = session.scalar(select(func.count()).select_from(AuditEntry))
    with pytest.raises(DBAPIError, match=APPEND_ONLY):
        with transaction(engine) as session:
            session.delete(session.scalars(select(AuditEntry)).first())
            session.flush()
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == count
