"""Staff accounts: password hashes, lockout, session validity (spec A1).

streamlit-authenticator renders the login form and checks the password against the hashes we
hand it (``login_credentials``). Everything it does not do safely lives here, in the database:
the per-account lockout that lifts by itself, and revocation of re-login cookies on logout,
password change and disabling (its cookie is a JWT of username + expiry that it never revokes).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import bcrypt
from sqlalchemy import select
from sqlalchemy.orm import Session

from lib import audit, passwords
from lib.edits import refuse_if_stale
from lib.models import Clinician, PracticeSetting, User
from lib.policy import ADMIN, ALL_ROLES, CLINICIAN, Actor, require
from lib.timeutil import as_utc, utcnow
from lib.validation import FieldError, clean_email

BCRYPT_ROUNDS = 12
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")


@cache
def decoy_hash() -> str:
    """A hash no password matches in practice, of the same cost as real ones.

    Checked instead of a real hash when there is no usable account (unknown, disabled, locked),
    so the response time does not tell which usernames exist or are locked.
    """
    return bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


class AuthError(ValueError):
    """A user-facing problem with an account operation; ``field`` names the form field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class SessionEnded(Exception):
    """The signed-in session must end; the message is safe to show."""


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def check_password(password: str, password_hash: str) -> bool:
    """One bcrypt check, whatever the input: a password bcrypt refuses (over 72 bytes) is a
    wrong password, checked at the same cost."""
    data = password.encode()
    if len(data) > passwords.MAX_BYTES:
        data, password_hash = secrets.token_urlsafe(32).encode(), decoy_hash()
    try:
        return bcrypt.checkpw(data, password_hash.encode())
    except ValueError:
        return False


def practice_name(session: Session) -> str:
    setting = session.get(PracticeSetting, "practice_name")
    return setting.value if setting else ""


def validate_password(password: str, *, names: tuple[str, ...] = ()) -> None:
    """The one password rule (``lib.passwords``); ``names`` are the person's and practice's."""
    try:
        passwords.check(password, names=names)
    except passwords.PasswordRefused as exc:
        raise AuthError(str(exc), "password") from None


def _names(session: Session, user: User) -> tuple[str, ...]:
    return (practice_name(session), user.username, user.display_name, user.email)


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()


def _get(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == normalise_username(username)))


def _require_user(session: Session, username: str) -> User:
    user = _get(session, username)
    if user is None:
        raise AuthError(f"There is no staff account named {username!r}.", "username")
    return user


def actor_for(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        clinician_id=user.clinician_id,
    )


def _public(user: User) -> dict:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role,
        "active": user.active,
        "clinician_id": user.clinician_id,
    }


# --- accounts ------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    actor: Actor | None,
    username: str,
    display_name: str,
    role: str,
    password: str,
    email: str = "",
    clinician_id: int | None = None,
    password_hash: str | None = None,
) -> Actor:
    """Create a staff account. ``actor`` None is the CLI bootstrapping the first admin.

    ``password_hash`` lets the demo seeder reuse one hash per password (bcrypt cost 12 is slow
    on purpose); it must be a bcrypt hash of at least that cost.
    """
    if actor is not None:
        require(actor, "users.manage")
    name = normalise_username(username)
    if not USERNAME_RE.match(name):
        raise AuthError(
            "Usernames are 3-64 characters: letters, digits, dot, dash or underscore.",
            "username",
        )
    if role not in ALL_ROLES:
        raise AuthError(f"Role must be one of: {', '.join(ALL_ROLES)}.", "role")
    if not display_name.strip():
        raise AuthError("Enter the person's name.", "display_name")
    if role == CLINICIAN and clinician_id is None:
        raise AuthError("A clinician account must be linked to a clinician.", "clinician_id")
    # Checked here, not left to the foreign key: the CLI takes the id as typed.
    if clinician_id is not None and session.get(Clinician, clinician_id) is None:
        raise AuthError(f"There is no clinician with id {clinician_id}.", "clinician_id")
    try:
        email = clean_email(email)
    except FieldError as exc:
        raise AuthError(str(exc), "email") from None
    if _get(session, name) is not None:
        raise AuthError("That username is taken.", "username")
    if password_hash is None:
        validate_password(password, names=(practice_name(session), name, display_name, email))
        password_hash = hash_password(password)
    now = utcnow()
    user = User(
        username=name,
        display_name=display_name.strip(),
        email=email,
        role=role,
        password_hash=password_hash,
        active=True,
        clinician_id=clinician_id,
        failed_login_count=0,
        sessions_valid_after=now,
        password_changed_at=now,
        created_at=now,
        version=1,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        entity="user",
        entity_id=user.id,
        after=_public(user),
    )
    return actor_for(user)


@dataclass(frozen=True)
class StaffAccount:
    username: str
    display_name: str
    email: str
    role: str
    active: bool
    locked_until: datetime | None
    failed_login_count: int
    last_seen_at: datetime | None
    user_id: int = 0
    version: int = 0


def _refuse_if_stale(session: Session, user: User, expected_version: int | None) -> None:
    """An admin's change applies only to the account as their screen showed it."""
    if expected_version is not None:
        refuse_if_stale(
            session,
            current_version=user.version,
            expected_version=expected_version,
            entity="user",
            entity_id=user.id,
        )


def list_users(
    session: Session, *, actor: Actor, now: datetime | None = None
) -> list[StaffAccount]:
    require(actor, "users.manage")
    now = now or utcnow()
    rows = []
    for u in session.scalars(select(User).order_by(User.username)):
        locked = as_utc(u.locked_until)
        rows.append(
            StaffAccount(
                username=u.username,
                display_name=u.display_name,
                email=u.email,
                role=u.role,
                active=u.active,
                locked_until=locked if locked and locked > now else None,
                failed_login_count=u.failed_login_count,
                last_seen_at=as_utc(u.last_seen_at),
                user_id=u.id,
                version=u.version,
            )
        )
    return rows


def set_password(
    session: Session,
    *,
    actor: Actor | None,
    username: str,
    new_password: str,
    expected_version: int | None = None,
) -> None:
    """Admin or CLI reset. Ends every existing session of that account."""
    if actor is not None:
        require(actor, "users.manage")
    user = _require_user(session, username)
    _refuse_if_stale(session, user, expected_version)
    validate_password(new_password, names=_names(session, user))
    now = utcnow()
    user.password_hash = hash_password(new_password)
    user.password_changed_at = now
    user.sessions_valid_after = now
    user.failed_login_count = 0
    user.locked_until = None
    user.version += 1
    audit.record(
        session, actor=actor, action="user.reset_password", entity="user", entity_id=user.id
    )


def change_own_password(
    session: Session, *, actor: Actor, current_password: str, new_password: str
) -> datetime:
    """A user changing their own password; old re-login cookies stop working.

    Returns the instant from which sessions are valid, so the caller's own session survives.
    """
    user = _require_user(session, actor.username)
    if not check_password(current_password, user.password_hash):
        raise AuthError("The current password is not right.", "current_password")
    if new_password == current_password:
        raise AuthError("Choose a password different from the current one.", "new_password")
    try:
        validate_password(new_password, names=_names(session, user))
    except AuthError as exc:
        raise AuthError(str(exc), "new_password") from None
    now = utcnow()
    user.password_hash = hash_password(new_password)
    user.password_changed_at = now
    user.sessions_valid_after = now
    user.version += 1
    audit.record(
        session, actor=actor, action="user.change_password", entity="user", entity_id=user.id
    )
    return now


def set_active(
    session: Session,
    *,
    actor: Actor,
    username: str,
    active: bool,
    expected_version: int | None = None,
) -> None:
    require(actor, "users.manage")
    user = _require_user(session, username)
    _refuse_if_stale(session, user, expected_version)
    if user.id == actor.user_id and not active:
        raise AuthError("You cannot disable your own account.", "username")
    before = _public(user)
    user.active = active
    if not active:
        user.sessions_valid_after = utcnow()
    user.version += 1
    audit.record(
        session,
        actor=actor,
        action="user.enable" if active else "user.disable",
        entity="user",
        entity_id=user.id,
        before=before,
        after=_public(user),
    )


def set_role(
    session: Session,
    *,
    actor: Actor,
    username: str,
    role: str,
    expected_version: int | None = None,
) -> None:
    require(actor, "users.manage")
    if role not in ALL_ROLES:
        raise AuthError(f"Role must be one of: {', '.join(ALL_ROLES)}.", "role")
    user = _require_user(session, username)
    _refuse_if_stale(session, user, expected_version)
    if role == CLINICIAN and user.clinician_id is None:
        raise AuthError("Link the account to a clinician before giving it that role.", "role")
    if user.role == ADMIN and role != ADMIN and user.active and count_admins(session) <= 1:
        # Only an admin can manage accounts: demoting the last one would lock everyone out.
        raise AuthError("This is the only active administrator; make another one first.", "role")
    before = _public(user)
    user.role = role
    user.sessions_valid_after = utcnow()  # new rights take effect at the next sign-in
    user.version += 1
    audit.record(
        session,
        actor=actor,
        action="user.change_role",
        entity="user",
        entity_id=user.id,
        before=before,
        after=_public(user),
    )


def set_name_email(
    session: Session,
    *,
    actor: Actor,
    username: str,
    changes: dict,
    expected_version: int | None = None,
) -> None:
    """Change an account's name and/or email (``changes`` holds ``display_name``, ``email``),
    at the version the admin saw. The email must be a valid address (or blank)."""
    require(actor, "users.manage")
    unknown = set(changes) - {"display_name", "email"}
    if unknown:
        raise ValueError(f"unknown account fields {sorted(unknown)}")
    user = _require_user(session, username)
    _refuse_if_stale(session, user, expected_version)
    before = _public(user)
    if "display_name" in changes:
        name = (changes["display_name"] or "").strip()
        if not name:
            raise AuthError("Enter the person's name.", "display_name")
        if len(name) > 120:
            raise AuthError(
                f"The name can be at most 120 characters; this one has {len(name)}.",
                "display_name",
            )
        user.display_name = name
    if "email" in changes:
        try:
            user.email = clean_email(changes["email"])
        except FieldError as exc:
            raise AuthError(str(exc), "email") from None
    user.version += 1
    old, new = audit.changed_fields(before, _public(user))
    audit.record(
        session,
        actor=actor,
        action="user.update",
        entity="user",
        entity_id=user.id,
        before=old,
        after=new,
    )


def unlock(session: Session, *, actor: Actor, username: str) -> None:
    require(actor, "users.manage")
    user = _require_user(session, username)
    user.failed_login_count = 0
    user.locked_until = None
    audit.record(session, actor=actor, action="user.unlock", entity="user", entity_id=user.id)


# --- login ---------------------------------------------------------------------------------


def login_credentials(session: Session, *, now: datetime | None = None) -> dict:
    """The credentials dict streamlit-authenticator expects, built from the database.

    Disabled accounts are left out (they look exactly like unknown usernames); locked accounts
    get a hash nothing matches. ``failed_login_attempts`` starts at 0 on every run so the app
    can see which account the form just failed for (the library increments it in place).
    """
    now = now or utcnow()
    users = {}
    for u in session.scalars(select(User).where(User.active.is_(True))):
        locked = as_utc(u.locked_until)
        users[u.username] = {
            "name": u.display_name,
            "email": u.email or f"{u.username}@invalid",
            "password": decoy_hash() if locked and locked > now else u.password_hash,
            "roles": [u.role],
            "failed_login_attempts": 0,
            "logged_in": False,
        }
    return {"usernames": users}


def record_login_success(session: Session, *, username: str, now: datetime | None = None) -> Actor:
    now = now or utcnow()
    user = _require_user(session, username)
    user.failed_login_count = 0
    user.locked_until = None
    user.last_seen_at = now
    audit.record(
        session, actor=actor_for(user), action="login", entity="user", entity_id=user.id, at=now
    )
    return actor_for(user)


def cookie_login_allowed(
    session: Session,
    *,
    username: str,
    issued_at: datetime,
    idle_minutes: int,
    now: datetime | None = None,
) -> bool:
    """May a re-login cookie issued at ``issued_at`` sign this user in again?

    No when the account is disabled, when the user logged out, changed password or was changed
    by an admin after the cookie was issued, or when the account has been idle too long.
    """
    now = now or utcnow()
    user = _get(session, username)
    if user is None or not user.active:
        return False
    if issued_at < as_utc(user.sessions_valid_after):
        return False
    last_seen = as_utc(user.last_seen_at)
    return last_seen is not None and now - last_seen <= timedelta(minutes=idle_minutes)


def session_actor(
    session: Session,
    *,
    username: str,
    signed_in_at: datetime,
    last_activity: datetime,
    idle_minutes: int,
    now: datetime | None = None,
) -> Actor:
    """The actor for a running session, or ``SessionEnded`` with the reason to show."""
    now = now or utcnow()
    if now - last_activity > timedelta(minutes=idle_minutes):
        raise SessionEnded(f"You were signed out after {idle_minutes} idle minutes.")
    user = _get(session, username)
    if user is None or not user.active:
        raise SessionEnded("This account is no longer active.")
    if signed_in_at < as_utc(user.sessions_valid_after):
        raise SessionEnded(
            "This session has ended (signed out or password changed). Sign in again."
        )
    return actor_for(user)


def touch(session: Session, *, username: str, now: datetime | None = None) -> None:
    """Remember activity, so a re-login cookie is refused once the account has been idle."""
    user = _get(session, username)
    if user is not None:
        user.last_seen_at = now or utcnow()


def logout(session: Session, *, actor: Actor, now: datetime | None = None) -> None:
    """Sign out: every re-login cookie issued until now becomes useless."""
    user = _require_user(session, actor.username)
    user.sessions_valid_after = now or utcnow()
    audit.record(session, actor=actor, action="logout", entity="user", entity_id=user.id)


def count_admins(session: Session) -> int:
    return len(
        session.scalars(select(User.id).where(User.role == "admin", User.active.is_(True))).all()
    )
