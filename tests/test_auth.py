"""Staff accounts (spec A1): creation rules, bcrypt, lockout that lifts, revocable re-login."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import bcrypt
import pytest
from sqlalchemy import func, select

from lib import auth, sign_in
from lib.db import transaction
from lib.models import AuditEntry, PracticeSetting, SignInThrottle, User
from lib.policy import PermissionDenied
from lib.timeutil import as_utc, utcnow
from tests.factories import PASSWORD, make_clinician, make_user

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
IDLE = 15


def user_row(engine, username: str) -> User:
    with transaction(engine) as session:
        user = session.scalar(select(User).where(User.username == username))
        session.expunge(user)
        return user


def audit_actions(engine, username: str | None = None) -> list[str]:
    with transaction(engine) as session:
        query = select(AuditEntry.action).order_by(AuditEntry.id)
        if username is not None:
            user_id = session.scalar(select(User.id).where(User.username == username))
            query = query.where(AuditEntry.entity == "user", AuditEntry.entity_id == str(user_id))
        return list(session.scalars(query))


def audit_count(engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(AuditEntry))


def new_user(engine, role: str = "biller", username: str = "pat.biller", **kw) -> auth.Actor:
    with transaction(engine) as session:
        return make_user(session, role, username, **kw)


# --- creating accounts -------------------------------------------------------------------------


def _create(session, **overrides):
    args = {
        "actor": None,
        "username": "new.person",
        "display_name": "New Person",
        "role": "manager",
        "password": "a-long-enough-secret",
    }
    args.update(overrides)
    return auth.create_user(session, **args)


@pytest.mark.parametrize("username", ["ab", "has space", "-dash-first", "semi;colon", "x" * 65])
def test_create_user_refuses_a_malformed_username(engine, username):
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        _create(session, username=username)
    assert err.value.field == "username"


def test_create_user_refuses_an_unknown_role(engine):
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        _create(session, role="superuser")
    assert err.value.field == "role"


@pytest.mark.parametrize("password", ["short", "nine-char", " padded-password "])
def test_create_user_refuses_a_weak_password(engine, password):
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        _create(session, password=password)
    assert err.value.field == "password"


# Issue 12 item 4 (and issue 10 item 10): the rule, the same for creating, resetting and changing.
WEAK_PASSWORDS = [
    ("1234567890", "at least 12 characters"),
    ("password12", "at least 12 characters"),
    ("demo-admin-2026", "demo password"),  # published in the README
    ("demo-clinician-2026", "demo password"),
    ("password1234", "common or leaked"),
    ("qwertyuiop12", "too easy to guess"),
    ("Riverbend-counsel-9", "from a name"),  # the practice's name
    ("new.person-2026!x", "from a name"),  # the username
    ("PersonNew#20261", "from a name"),  # the person's name
    ("ü" * 40, "72 bytes"),  # 40 characters, 80 bytes: bcrypt refuses it
]


def _practice(session) -> None:
    session.add(
        PracticeSetting(key="practice_name", value="Riverbend Counseling Group", updated_at=T0)
    )


@pytest.mark.parametrize(("password", "says"), WEAK_PASSWORDS)
def test_creating_an_account_refuses_a_weak_common_named_demo_or_too_long_password(
    engine, password, says
):
    with transaction(engine) as session:
        _practice(session)
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        _create(session, password=password)
    assert err.value.field == "password"
    assert says in str(err.value)
    assert password not in str(err.value)
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize(("password", "says"), WEAK_PASSWORDS)
def test_a_reset_and_a_change_keep_the_same_rule(engine, password, says):
    with transaction(engine) as session:
        _practice(session)
    admin = new_user(engine, role="admin", username="boss")
    with transaction(engine) as session:
        _create(session, password="copper-lantern-meadow-41")
    me = auth.actor_for(user_row(engine, "new.person"))
    before = user_row(engine, "new.person").password_hash
    with transaction(engine) as session, pytest.raises(auth.AuthError) as reset:
        auth.set_password(session, actor=admin, username="new.person", new_password=password)
    with transaction(engine) as session, pytest.raises(auth.AuthError) as change:
        auth.change_own_password(
            session, actor=me, current_password="copper-lantern-meadow-41", new_password=password
        )
    assert says in str(reset.value) and says in str(change.value)
    assert (reset.value.field, change.value.field) == ("password", "new_password")
    assert user_row(engine, "new.person").password_hash == before


def test_a_long_uncommon_password_is_accepted(engine):
    with transaction(engine) as session:
        _practice(session)
        _create(session, password="copper-lantern-meadow-41")
    assert bcrypt.checkpw(
        b"copper-lantern-meadow-41", user_row(engine, "new.person").password_hash.encode()
    )


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com", "a@b"])
def test_staff_emails_are_validated(engine, email):
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        _create(session, email=email)
    assert err.value.field == "email"


def test_a_staff_email_is_stored_normalised(engine):
    with transaction(engine) as session:
        _create(session, email="  Jo.Smith@Example.COM ")
    assert user_row(engine, "new.person").email == "Jo.Smith@example.com"


def test_create_user_refuses_a_clinician_account_without_a_clinician(engine):
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        _create(session, role="clinician", clinician_id=None)
    assert err.value.field == "clinician_id"


def test_create_user_refuses_a_link_to_a_clinician_that_does_not_exist(engine):
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        _create(session, role="clinician", clinician_id=999)
    assert err.value.field == "clinician_id"


def test_create_user_refuses_a_taken_username_whatever_its_case(engine):
    new_user(engine, username="pat.biller")
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        _create(session, username="Pat.Biller")
    assert err.value.field == "username"
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_refused_accounts_are_not_stored(engine):
    with pytest.raises(auth.AuthError):
        with transaction(engine) as session:
            _create(session, password="short")
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0


def test_create_user_stores_a_bcrypt_hash_of_cost_12_or_more(engine):
    with transaction(engine) as session:
        clinician_id = make_clinician(session)
        created = _create(session, username="Dr.Who", role="clinician", clinician_id=clinician_id)
    assert created.username == "dr.who"
    stored = user_row(engine, "dr.who")
    match = re.fullmatch(r"\$2[aby]\$(\d\d)\$.{53}", stored.password_hash)
    assert match, "not a bcrypt hash"
    assert int(match.group(1)) >= 12
    assert bcrypt.checkpw(b"a-long-enough-secret", stored.password_hash.encode())
    assert stored.clinician_id == clinician_id


def test_a_non_admin_cannot_create_accounts(engine):
    manager = new_user(engine, role="manager", username="the.manager")
    with transaction(engine) as session, pytest.raises(PermissionDenied):
        _create(session, actor=manager)


def test_the_only_active_admin_cannot_be_demoted(engine):
    admin = new_user(engine, role="admin", username="boss")
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        auth.set_role(session, actor=admin, username="boss", role="manager")
    assert err.value.field == "role"
    assert user_row(engine, "boss").role == "admin"


def test_an_admin_can_be_demoted_while_another_admin_remains(engine):
    admin = new_user(engine, role="admin", username="boss")
    new_user(engine, role="admin", username="deputy")
    with transaction(engine) as session:
        auth.set_role(session, actor=admin, username="boss", role="manager")
    assert user_row(engine, "boss").role == "manager"


# --- login credentials -------------------------------------------------------------------------


def test_login_credentials_leave_disabled_accounts_out(engine):
    admin = new_user(engine, role="admin", username="boss")
    new_user(engine, username="gone.user")
    with transaction(engine) as session:
        auth.set_active(session, actor=admin, username="gone.user", active=False)
        credentials = auth.login_credentials(session)
    assert set(credentials["usernames"]) == {"boss"}


def test_login_credentials_give_a_locked_account_a_hash_its_password_cannot_match(engine):
    new_user(engine, username="locked.out")
    new_user(engine, username="still.fine")
    with transaction(engine) as session:
        for i in range(3):
            sign_in.record_login_failure(
                session,
                username="locked.out",
                max_attempts=3,
                lock_minutes=15,
                now=T0 + timedelta(minutes=i),
            )
    with transaction(engine) as session:
        during = auth.login_credentials(session, now=T0 + timedelta(minutes=5))
        after = auth.login_credentials(session, now=T0 + timedelta(minutes=30))
    real_hash = user_row(engine, "locked.out").password_hash

    locked = during["usernames"]["locked.out"]["password"]
    assert not bcrypt.checkpw(PASSWORD.encode(), locked.encode())
    assert (
        during["usernames"]["still.fine"]["password"]
        == user_row(engine, "still.fine").password_hash
    )
    assert after["usernames"]["locked.out"]["password"] == real_hash
    assert bcrypt.checkpw(PASSWORD.encode(), real_hash.encode())


def test_login_credentials_carry_name_role_and_a_fresh_attempt_counter(engine):
    new_user(engine, role="front_desk", username="desk")
    with transaction(engine) as session:
        entry = auth.login_credentials(session)["usernames"]["desk"]
    assert entry["roles"] == ["front_desk"]
    assert entry["name"] == "Test front_desk"
    assert entry["failed_login_attempts"] == 0


# --- lockout -----------------------------------------------------------------------------------


def fail(engine, username: str, at: datetime, max_attempts: int = 3, lock_minutes: int = 15):
    with transaction(engine) as session:
        return sign_in.record_login_failure(
            session,
            username=username,
            max_attempts=max_attempts,
            lock_minutes=lock_minutes,
            now=at,
        )


def test_wrong_passwords_lock_the_account_at_max_attempts(engine):
    new_user(engine, username="pat.biller")
    assert fail(engine, "pat.biller", T0) == sign_in.LoginFailure(None)
    assert fail(engine, "pat.biller", T0 + timedelta(minutes=1)) == sign_in.LoginFailure(None)
    third = T0 + timedelta(minutes=2)
    result = fail(engine, "pat.biller", third)

    assert result.locked_until == third + timedelta(minutes=15)
    user = user_row(engine, "pat.biller")
    assert user.failed_login_count == 3
    assert as_utc(user.locked_until) == third + timedelta(minutes=15)
    assert audit_actions(engine, "pat.biller") == [
        "user.create",
        "login.failed",
        "login.failed",
        "login.failed",
        "login.locked",
    ]


def test_failures_are_counted_per_account(engine):
    new_user(engine, username="first.one")
    new_user(engine, username="second.one")
    for i in range(2):
        fail(engine, "first.one", T0 + timedelta(seconds=i))
    assert fail(engine, "second.one", T0 + timedelta(seconds=5)).locked_until is None
    assert user_row(engine, "first.one").failed_login_count == 2
    assert user_row(engine, "second.one").failed_login_count == 1
    assert user_row(engine, "second.one").locked_until is None


def test_a_locked_account_is_refused_without_counting(engine):
    new_user(engine, username="pat.biller")
    for i in range(3):
        fail(engine, "pat.biller", T0 + timedelta(minutes=i))
    locked_until = T0 + timedelta(minutes=2 + 15)

    result = fail(engine, "pat.biller", T0 + timedelta(minutes=10))

    assert result.locked_until == locked_until
    user = user_row(engine, "pat.biller")
    assert user.failed_login_count == 3
    assert as_utc(user.locked_until) == locked_until, "a refused attempt must not extend the lock"
    assert audit_actions(engine, "pat.biller")[-1] == "login.refused_locked"


def test_the_lock_lifts_by_itself_and_the_next_failure_starts_a_new_count(engine):
    new_user(engine, username="pat.biller")
    for i in range(3):
        fail(engine, "pat.biller", T0 + timedelta(minutes=i))
    after_lock = T0 + timedelta(minutes=2 + 15, seconds=1)

    result = fail(engine, "pat.biller", after_lock)

    assert result.locked_until is None
    user = user_row(engine, "pat.biller")
    assert user.failed_login_count == 1
    assert user.locked_until is None
    assert audit_actions(engine, "pat.biller")[-1] == "login.failed"
    with transaction(engine) as session:
        entry = auth.login_credentials(session, now=after_lock)["usernames"]["pat.biller"]
    assert bcrypt.checkpw(PASSWORD.encode(), entry["password"].encode())


def attempt(engine, username: str, password: str, at: datetime, max_attempts: int = 3):
    with transaction(engine) as session:
        return sign_in.attempt(
            session,
            username=username,
            password=password,
            max_attempts=max_attempts,
            lock_minutes=15,
            now=at,
        )


def test_an_unknown_username_locks_after_the_same_tries_as_a_real_one(engine):
    """Issue 12 item 5: a lock that only real accounts get tells which usernames exist."""
    new_user(engine, username="pat.biller")
    real = [
        attempt(engine, "pat.biller", f"wrong-{i}", T0 + timedelta(seconds=i)) for i in range(4)
    ]
    unknown = [
        attempt(engine, "nobody.here", f"wrong-{i}", T0 + timedelta(seconds=i)) for i in range(4)
    ]

    assert [a.ok for a in real] == [a.ok for a in unknown] == [False] * 4
    assert [a.locked_until for a in real] == [a.locked_until for a in unknown]
    assert [a.locked_until is not None for a in unknown] == [False, False, True, True]
    # The lock of the unknown name is in the database (every replica sees it), and lifts.
    later = T0 + timedelta(minutes=20)
    assert attempt(engine, "Nobody.Here", "wrong-again", later).locked_until is None
    # The name itself is never stored: only a hash of it.
    with transaction(engine) as session:
        stored = " ".join(
            f"{t.name_hash} {t.failed_count}" for t in session.scalars(select(SignInThrottle))
        )
        details = " ".join(session.scalars(select(AuditEntry.detail)))
    assert stored and "nobody" not in stored and "nobody" not in details


def test_a_disabled_account_and_an_unknown_name_fail_the_same_way(engine):
    admin = new_user(engine, role="admin", username="boss")
    new_user(engine, username="gone.user")
    with transaction(engine) as session:
        auth.set_active(session, actor=admin, username="gone.user", active=False)
    gone = [attempt(engine, "gone.user", PASSWORD, T0 + timedelta(seconds=i)) for i in range(3)]
    nobody = [attempt(engine, "nobody.here", PASSWORD, T0 + timedelta(seconds=i)) for i in range(3)]
    assert [(a.ok, a.locked_until) for a in gone] == [(a.ok, a.locked_until) for a in nobody]


def test_every_attempt_costs_one_bcrypt_check_of_the_same_cost_whatever_the_name(
    engine, monkeypatch
):
    """Timing: a real, a locked, a disabled and an unknown name each cost exactly one bcrypt
    check of cost 12 (measuring time in a test would be flaky; this is what makes it equal)."""
    admin = new_user(engine, role="admin", username="boss")
    new_user(engine, username="pat.biller")
    new_user(engine, username="locked.out")
    new_user(engine, username="gone.user")
    with transaction(engine) as session:
        auth.set_active(session, actor=admin, username="gone.user", active=False)
    for i in range(3):
        attempt(engine, "locked.out", "wrong", T0 + timedelta(seconds=i))
    checks: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        checks.append(hashed)
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    for name in ("pat.biller", "locked.out", "gone.user", "nobody.here"):
        for password in ("wrong-password", "x" * 80):  # and one bcrypt refuses (over 72 bytes)
            checks.clear()
            assert not attempt(engine, name, password, T0 + timedelta(minutes=1)).ok
            assert len(checks) == 1, (name, len(password))
            assert checks[0].startswith(b"$2b$12$"), name
    checks.clear()
    assert attempt(engine, "pat.biller", PASSWORD, T0 + timedelta(minutes=1)).ok
    assert len(checks) == 1


def test_a_password_over_72_bytes_fails_like_any_wrong_password(engine):
    """Issue 10 item 10: bcrypt raises on it; sign-in must count it and say the usual words."""
    new_user(engine, username="pat.biller")
    too_long = "ü" * 40  # 80 bytes
    results = [attempt(engine, "pat.biller", too_long, T0 + timedelta(seconds=i)) for i in range(3)]
    assert [r.ok for r in results] == [False] * 3
    assert results[-1].locked_until is not None
    assert user_row(engine, "pat.biller").failed_login_count == 3


def test_a_successful_login_resets_the_failure_count(engine):
    new_user(engine, username="pat.biller")
    for i in range(2):
        fail(engine, "pat.biller", T0 + timedelta(minutes=i))
    with transaction(engine) as session:
        signed_in = auth.record_login_success(
            session, username="pat.biller", now=T0 + timedelta(minutes=3)
        )
    assert signed_in.username == "pat.biller"
    assert user_row(engine, "pat.biller").failed_login_count == 0
    # Two more failures do not lock: the count started again.
    for i in range(2):
        result = fail(engine, "pat.biller", T0 + timedelta(minutes=4 + i))
        assert result.locked_until is None
    assert audit_actions(engine, "pat.biller")[3] == "login"


# --- re-login cookies and sessions -------------------------------------------------------------


def signed_in(engine, username: str = "pat.biller", role: str = "biller") -> datetime:
    """Create the account, sign it in now; return the instant its cookie was issued."""
    new_user(engine, role=role, username=username)
    with transaction(engine) as session:
        auth.record_login_success(session, username=username)
    return utcnow()


def cookie_ok(engine, issued_at: datetime, username: str = "pat.biller", now=None) -> bool:
    with transaction(engine) as session:
        return auth.cookie_login_allowed(
            session, username=username, issued_at=issued_at, idle_minutes=IDLE, now=now
        )


def test_a_fresh_cookie_of_an_active_recently_seen_user_signs_in(engine):
    issued = signed_in(engine)
    assert cookie_ok(engine, issued)


def test_a_cookie_is_refused_after_logout(engine):
    issued = signed_in(engine)
    with transaction(engine) as session:
        me = auth.actor_for(session.scalar(select(User).where(User.username == "pat.biller")))
        auth.logout(session, actor=me)
    assert not cookie_ok(engine, issued)
    # Signing in again afterwards works: logout revokes old cookies, not the account.
    with transaction(engine) as session:
        auth.record_login_success(session, username="pat.biller")
    assert cookie_ok(engine, utcnow())


def test_a_cookie_is_refused_after_an_admin_resets_the_password(engine):
    issued = signed_in(engine)
    admin = new_user(engine, role="admin", username="boss")
    with transaction(engine) as session:
        auth.set_password(
            session, actor=admin, username="pat.biller", new_password="a-brand-new-secret"
        )
    assert not cookie_ok(engine, issued)


def test_a_cookie_is_refused_after_the_user_changes_their_password(engine):
    issued = signed_in(engine)
    me = auth.actor_for(user_row(engine, "pat.biller"))
    with transaction(engine) as session:
        valid_from = auth.change_own_password(
            session, actor=me, current_password=PASSWORD, new_password="a-brand-new-secret"
        )
    assert not cookie_ok(engine, issued)
    assert cookie_ok(engine, valid_from)


def test_a_cookie_is_refused_once_the_account_is_disabled(engine):
    issued = signed_in(engine)
    admin = new_user(engine, role="admin", username="boss")
    with transaction(engine) as session:
        auth.set_active(session, actor=admin, username="pat.biller", active=False)
    assert not cookie_ok(engine, issued)
    assert not cookie_ok(engine, utcnow() + timedelta(seconds=1))


def test_a_cookie_is_refused_when_the_account_has_been_idle_too_long(engine):
    new_user(engine, username="pat.biller")
    issued = utcnow()
    with transaction(engine) as session:
        auth.touch(session, username="pat.biller", now=issued)
    assert cookie_ok(engine, issued, now=issued + timedelta(minutes=IDLE - 1))
    assert not cookie_ok(engine, issued, now=issued + timedelta(minutes=IDLE + 1))


def test_a_cookie_of_a_never_seen_account_is_refused(engine):
    new_user(engine, username="pat.biller")
    assert not cookie_ok(engine, utcnow())


def test_a_cookie_for_an_unknown_username_is_refused(engine):
    signed_in(engine)
    assert not cookie_ok(engine, utcnow(), username="nobody.here")


def session_of(engine, *, signed_in_at, last_activity, now=None, username="pat.biller"):
    with transaction(engine) as session:
        return auth.session_actor(
            session,
            username=username,
            signed_in_at=signed_in_at,
            last_activity=last_activity,
            idle_minutes=IDLE,
            now=now,
        )


def test_a_running_session_keeps_its_actor(engine):
    start = signed_in(engine)
    me = session_of(engine, signed_in_at=start, last_activity=start)
    assert (me.username, me.role) == ("pat.biller", "biller")


def test_an_idle_session_ends(engine):
    start = signed_in(engine)
    with pytest.raises(auth.SessionEnded, match="idle"):
        session_of(
            engine,
            signed_in_at=start,
            last_activity=start,
            now=start + timedelta(minutes=IDLE + 1),
        )


def test_a_disabled_accounts_session_ends(engine):
    start = signed_in(engine)
    admin = new_user(engine, role="admin", username="boss")
    with transaction(engine) as session:
        auth.set_active(session, actor=admin, username="pat.biller", active=False)
    with pytest.raises(auth.SessionEnded, match="no longer active"):
        session_of(engine, signed_in_at=start, last_activity=utcnow())


def test_a_revoked_session_ends(engine):
    start = signed_in(engine)
    me = auth.actor_for(user_row(engine, "pat.biller"))
    with transaction(engine) as session:
        auth.logout(session, actor=me)
    with pytest.raises(auth.SessionEnded, match="Sign in again"):
        session_of(engine, signed_in_at=start, last_activity=utcnow())


def test_a_role_change_ends_sessions_so_new_rights_apply_at_next_sign_in(engine):
    start = signed_in(engine)
    admin = new_user(engine, role="admin", username="boss")
    with transaction(engine) as session:
        auth.set_role(session, actor=admin, username="pat.biller", role="manager")
    with pytest.raises(auth.SessionEnded):
        session_of(engine, signed_in_at=start, last_activity=utcnow())
    again = utcnow()
    assert session_of(engine, signed_in_at=again, last_activity=again).role == "manager"


# --- changing one's own password ---------------------------------------------------------------


def test_change_own_password_refuses_a_wrong_current_password(engine):
    signed_in(engine)
    me = auth.actor_for(user_row(engine, "pat.biller"))
    old_hash = user_row(engine, "pat.biller").password_hash
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        auth.change_own_password(
            session, actor=me, current_password="not-my-password", new_password="whatever-long"
        )
    assert err.value.field == "current_password"
    assert user_row(engine, "pat.biller").password_hash == old_hash


@pytest.mark.parametrize("new_password", [PASSWORD, "short"])
def test_change_own_password_refuses_a_same_or_weak_new_password(engine, new_password):
    signed_in(engine)
    me = auth.actor_for(user_row(engine, "pat.biller"))
    with transaction(engine) as session, pytest.raises(auth.AuthError) as err:
        auth.change_own_password(
            session, actor=me, current_password=PASSWORD, new_password=new_password
        )
    assert err.value.field == "new_password"


def test_change_own_password_keeps_the_changing_session_and_ends_the_others(engine):
    start = signed_in(engine)
    me = auth.actor_for(user_row(engine, "pat.biller"))
    with transaction(engine) as session:
        valid_from = auth.change_own_password(
            session, actor=me, current_password=PASSWORD, new_password="a-brand-new-secret"
        )
    assert valid_from >= start
    mine = session_of(engine, signed_in_at=valid_from, last_activity=utcnow())
    assert mine.username == "pat.biller"
    with pytest.raises(auth.SessionEnded):
        session_of(engine, signed_in_at=start, last_activity=utcnow())
    stored = user_row(engine, "pat.biller").password_hash
    assert bcrypt.checkpw(b"a-brand-new-secret", stored.encode())
    assert not bcrypt.checkpw(PASSWORD.encode(), stored.encode())
    assert audit_actions(engine, "pat.biller")[-1] == "user.change_password"
