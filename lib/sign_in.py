"""Signing in: one password check per attempt, and a lock after N wrong tries (spec A1).

Nobody may learn from the sign-in form which usernames exist. So every attempt, whatever name
was typed, costs exactly one bcrypt check of the same cost (against the account's hash, or a
decoy hash when there is no active account or it is locked), gets the same words, and counts
towards the same lock: an unknown name "locks" after ``max_attempts`` wrong tries just as a
real account does, and lifts by itself after the same minutes.

The count of a real account lives on its row (admins see it and can lift it on Staff
accounts). The count of a name without an account lives in ``sign_in_throttles``, keyed by a
hash of the name (people type passwords into the username field), in the database so every
replica shares it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lib import audit
from lib.auth import check_password, decoy_hash, normalise_username
from lib.models import SignInThrottle, User
from lib.timeutil import as_utc, utcnow

# Throttle rows of names nobody has tried for this long are dropped (their locks lifted long ago).
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class LoginFailure:
    locked_until: datetime | None  # set when the name is (now) locked


@dataclass(frozen=True)
class SignInAttempt:
    ok: bool
    locked_until: datetime | None = None  # set when the name is locked: say until when


def name_hash(username: str) -> str:
    return hashlib.sha256(f"clientdesk-sign-in:{normalise_username(username)}".encode()).hexdigest()


def _account(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == normalise_username(username)))


def _locked_until(session: Session, username: str, now: datetime) -> datetime | None:
    user = _account(session, username)
    if user is not None:
        locked = as_utc(user.locked_until)
    else:
        row = session.get(SignInThrottle, name_hash(username))
        locked = as_utc(row.locked_until) if row else None
    return locked if locked and locked > now else None


def attempt(
    session: Session,
    *,
    username: str,
    password: str,
    max_attempts: int,
    lock_minutes: int,
    now: datetime | None = None,
) -> SignInAttempt:
    """Check one sign-in attempt, counting it when it fails. The caller commits."""
    now = now or utcnow()
    user = _account(session, username)
    usable = user is not None and user.active and _locked_until(session, username, now) is None
    matches = check_password(password, user.password_hash if usable else decoy_hash())
    if usable and matches:
        return SignInAttempt(ok=True)
    failure = record_login_failure(
        session, username=username, max_attempts=max_attempts, lock_minutes=lock_minutes, now=now
    )
    return SignInAttempt(ok=False, locked_until=failure.locked_until)


def record_login_failure(
    session: Session,
    *,
    username: str,
    max_attempts: int,
    lock_minutes: int,
    now: datetime | None = None,
) -> LoginFailure:
    """Count a wrong password for this name; lock it at ``max_attempts``.

    A locked name is refused without counting (the lock is not extended); once the lock has
    lifted, the next failure starts a new count.
    """
    now = now or utcnow()
    # Locked and re-read: two replicas counting the same name at once must not lose a count.
    user = session.scalar(
        select(User)
        .where(User.username == normalise_username(username))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is not None:
        counter = user
        entity, entity_id, who = "user", user.id, f"username={user.username}"
    else:
        counter = _throttle(session, username, now)
        entity, entity_id, who = "sign_in", "", "unknown username"
    locked = as_utc(counter.locked_until)

    def note(action: str, detail: str) -> None:
        audit.record(
            session,
            actor=None,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail=f"{who} {detail}".strip(),
            at=now,
        )

    if locked and locked > now:
        note("login.refused_locked", "")
        return LoginFailure(locked_until=locked)
    # A lock that has lifted starts a new count.
    count = 1 if locked else _count(counter) + 1
    _set_count(counter, count, now)
    counter.locked_until = None
    note("login.failed", f"attempt={count}")
    if count >= max_attempts:
        counter.locked_until = now + timedelta(minutes=lock_minutes)
        note("login.locked", f"until={counter.locked_until.isoformat()}")
        return LoginFailure(locked_until=counter.locked_until)
    return LoginFailure(locked_until=None)


def _count(counter: User | SignInThrottle) -> int:
    return counter.failed_login_count if isinstance(counter, User) else counter.failed_count


def _set_count(counter: User | SignInThrottle, value: int, now: datetime) -> None:
    if isinstance(counter, User):
        counter.failed_login_count = value
    else:
        counter.failed_count = value
        counter.updated_at = now


def _throttle(session: Session, username: str, now: datetime) -> SignInThrottle:
    """The counter row of a name without an account, created on its first failure."""
    key = name_hash(username)
    row = session.get(SignInThrottle, key, with_for_update=True)
    if row is not None:
        return row
    session.execute(delete(SignInThrottle).where(SignInThrottle.updated_at < now - FORGET_AFTER))
    try:
        with session.begin_nested():
            row = SignInThrottle(name_hash=key, failed_count=0, locked_until=None, updated_at=now)
            session.add(row)
    except IntegrityError:  # another replica counted the same name at the same moment
        row = session.get(SignInThrottle, key, with_for_update=True, populate_existing=True)
    return row
