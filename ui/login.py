"""Sign-in with streamlit-authenticator's form, with lockout and revocation kept in lib.

streamlit-authenticator draws the form, keeps the session and writes the re-login cookie. The
password check itself is ``lib.sign_in.attempt`` (put in place of the library's own check on
our instance): one bcrypt check per attempt whatever the name, counted towards the same lock
for unknown and real names, and no error for a password bcrypt refuses. The re-login cookie (a
JWT of username + expiry) is inspected here first and ignored unless it is well-formed, signed
with our key, and ``lib.auth.cookie_login_allowed`` says the account still accepts it.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import jwt
import streamlit as st
import streamlit_authenticator as stauth

from lib import auth, sign_in
from lib.config import ConfigurationError, Settings, cookie_key_for
from lib.db import read_session, transaction, write
from lib.demo import DEMO_LOGINS, is_demo_database
from lib.policy import Actor
from lib.timeutil import local_text, utcnow
from ui.context import ACTOR_KEY, engine
from ui.flash import flash

GENERIC_FAILURE = "The username or password is not right."
SIGNED_IN_AT = "cd_signed_in_at"
LAST_ACTIVITY = "cd_last_activity"
LAST_TOUCH = "cd_last_touch"
# Sign-in bookkeeping (``users.last_seen_at``) is written at most this often per session: the
# checks run on every rerun, in a read-only transaction; only the touch writes.
TOUCH_EVERY = timedelta(seconds=60)


def _cookie_key(s: Settings, *, demo_database: bool) -> str:
    if s.cookie_key:
        return cookie_key_for(s, demo_database=demo_database)
    try:
        secret = st.secrets.get("cookie_key")
    except Exception:  # no secrets.toml at all is normal
        secret = None
    if secret:
        from dataclasses import replace

        return cookie_key_for(replace(s, cookie_key=str(secret)), demo_database=demo_database)
    return cookie_key_for(s, demo_database=demo_database)


def _cookie_issued_at(token: str, key: str, max_hours: int) -> tuple[str, datetime] | None:
    """(username, issue time) of a valid, unexpired re-login cookie, else None."""
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"])
        username = str(payload["username"])
        expires = datetime.fromtimestamp(float(payload["exp_date"]), tz=UTC)
    except (jwt.PyJWTError, KeyError, TypeError, ValueError, OverflowError, OSError):
        return None
    if expires <= utcnow():
        return None
    return username, expires - timedelta(hours=max_hours)


def _end_session(authenticator, message: str) -> None:
    authenticator.logout(location="unrendered")
    for key in (ACTOR_KEY, SIGNED_IN_AT, LAST_ACTIVITY, LAST_TOUCH):
        st.session_state.pop(key, None)
    flash("info", message)  # shown above the sign-in form after the rerun


def sign_out(authenticator, actor: Actor) -> None:
    with transaction(engine()) as session:
        auth.logout(session, actor=actor)
    _end_session(authenticator, "You are signed out.")


def signed_in_actor(s: Settings):
    """Render the login form when needed; return (actor or None, authenticator).

    Raises ``ConfigurationError`` when no safe cookie key is configured.
    """
    now = utcnow()
    with read_session(engine()) as session:
        demo = is_demo_database(session)
        credentials = auth.login_credentials(session, now=now)
    key = _cookie_key(s, demo_database=demo)
    authenticator = stauth.Authenticate(
        credentials,
        cookie_name=s.cookie_name,
        cookie_key=key,
        cookie_expiry_days=s.cookie_max_hours / 24,
        auto_hash=False,
        login_sleep_time=0,
    )

    attempts: list[sign_in.SignInAttempt] = []

    def check(username: str, password: str) -> bool:
        with transaction(engine()) as session:
            outcome = sign_in.attempt(
                session,
                username=username,
                password=password,
                max_attempts=s.lockout_attempts,
                lock_minutes=s.lockout_minutes,
                now=now,
            )
        attempts.append(outcome)
        return outcome.ok

    # The library's own check is plain bcrypt (an error over 72 bytes, no lock, no decoy).
    authenticator.authentication_controller.authentication_model.check_credentials = check
    if s.secure_cookies or (st.context.url or "").startswith("https://"):
        # Behind TLS the re-login cookie is sent over HTTPS only. (It is written from
        # JavaScript by the library's cookie component, so it cannot be HttpOnly.)
        manager = authenticator.cookie_controller.cookie_model.cookie_manager
        manager.set = functools.partial(manager.set, secure=True, same_site="strict")

    already = bool(st.session_state.get("authentication_status")) and ACTOR_KEY in st.session_state
    cookie_login = None
    if not already:
        token = st.context.cookies.get(s.cookie_name)
        decoded = _cookie_issued_at(token, key, s.cookie_max_hours) if token else None
        if token and not decoded:
            # Garbled, unsigned (alg=none), foreign or expired: the library must not read it
            # (it raises on some of these); the sign-in form shows instead.
            st.session_state["logout"] = True
        if decoded:
            username, issued_at = decoded
            with read_session(engine()) as session:
                ok = auth.cookie_login_allowed(
                    session,
                    username=username,
                    issued_at=issued_at,
                    idle_minutes=s.idle_minutes,
                    now=now,
                )
            if ok:
                cookie_login = (username, issued_at)
            else:
                st.session_state["logout"] = True  # makes the library ignore this cookie

    if not already:
        try:
            authenticator.login(
                location="main",
                fields={"Form name": "Sign in to ClientDesk", "Login": "Sign in"},
                key="login_form",
            )
        except stauth.utilities.LoginError:
            st.error(GENERIC_FAILURE)
            return None, authenticator
        failed = next((a for a in attempts if not a.ok), None)
        if failed and failed.locked_until:
            # The same words for a real account and for a name that has none.
            st.error(locked_message(failed.locked_until, s.practice_time_zone))
        elif failed or st.session_state.get("authentication_status") is False:
            st.error(GENERIC_FAILURE)
        if not st.session_state.get("authentication_status"):
            if s.demo_mode and demo:
                _demo_logins()
            return None, authenticator
        username = st.session_state["username"]
        with transaction(engine()) as session:
            if cookie_login and cookie_login[0] == username:
                signed_in_at = cookie_login[1]
                auth.touch(session, username=username, now=now)
            else:
                auth.record_login_success(session, username=username, now=now)
                signed_in_at = now
        st.session_state[SIGNED_IN_AT] = signed_in_at
        st.session_state[LAST_ACTIVITY] = now
        st.session_state[LAST_TOUCH] = now

    try:
        # Idle timeout and revocation are checked on every rerun, without a write.
        with read_session(engine()) as session:
            actor = auth.session_actor(
                session,
                username=st.session_state["username"],
                signed_in_at=st.session_state[SIGNED_IN_AT],
                last_activity=st.session_state[LAST_ACTIVITY],
                idle_minutes=s.idle_minutes,
                now=now,
            )
    except auth.SessionEnded as ended:
        _end_session(authenticator, str(ended))
        st.rerun()
    if now - st.session_state.get(LAST_TOUCH, now) >= TOUCH_EVERY:
        write(engine(), lambda session: auth.touch(session, username=actor.username, now=now))
        st.session_state[LAST_TOUCH] = now
    st.session_state[LAST_ACTIVITY] = now
    st.session_state[ACTOR_KEY] = actor
    return actor, authenticator


def locked_message(until: datetime, time_zone: str) -> str:
    return (
        "Too many wrong passwords: signing in with this username is locked until "
        f"{local_text(until, time_zone, '%I:%M %p %Z')}. An administrator can lift the lock."
    )


def _demo_logins() -> None:
    with st.expander("Demo logins (demo data only)", expanded=True):
        st.dataframe(
            [{"Role": r, "Username": u, "Password": p} for r, u, p, _ in DEMO_LOGINS],
            hide_index=True,
        )


__all__ = ["ConfigurationError", "sign_out", "signed_in_actor"]
