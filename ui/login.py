"""Sign-in with streamlit-authenticator's form, with lockout and revocation kept in lib.auth.

streamlit-authenticator checks the password against the hashes ``lib.auth.login_credentials``
hands it. Its re-login cookie (a JWT of username + expiry) is inspected here first and ignored
unless ``lib.auth.cookie_login_allowed`` says the account still accepts it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt
import streamlit as st
import streamlit_authenticator as stauth

from lib import auth
from lib.config import ConfigurationError, Settings, cookie_key_for
from lib.db import transaction
from lib.demo import DEMO_LOGINS
from lib.policy import Actor
from lib.timeutil import local_text, utcnow
from ui.context import ACTOR_KEY, engine

GENERIC_FAILURE = "The username or password is not right."
SIGNED_IN_AT = "cd_signed_in_at"
LAST_ACTIVITY = "cd_last_activity"
LAST_TOUCH = "cd_last_touch"
FLASH = "cd_flash"


def _cookie_key(s: Settings) -> str:
    if s.cookie_key:
        return cookie_key_for(s)
    try:
        secret = st.secrets.get("cookie_key")
    except Exception:  # no secrets.toml at all is normal
        secret = None
    if secret:
        from dataclasses import replace

        return cookie_key_for(replace(s, cookie_key=str(secret)))
    return cookie_key_for(s)


@st.cache_resource(show_spinner=False)
def _decoy_hash() -> str:
    """A hash of the same bcrypt cost as real ones, that no password matches in practice."""
    return auth.hash_password(secrets.token_urlsafe(32))


def _cookie_issued_at(token: str, key: str, max_hours: int) -> tuple[str, datetime] | None:
    """(username, issue time) of a valid, unexpired re-login cookie, else None."""
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"])
        exp = float(payload["exp_date"])
        username = str(payload["username"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None
    expires = datetime.fromtimestamp(exp, tz=UTC)
    if expires <= utcnow():
        return None
    return username, expires - timedelta(hours=max_hours)


def _end_session(authenticator, message: str) -> None:
    authenticator.logout(location="unrendered")
    for key in (ACTOR_KEY, SIGNED_IN_AT, LAST_ACTIVITY, LAST_TOUCH):
        st.session_state.pop(key, None)
    st.session_state[FLASH] = message


def sign_out(authenticator, actor: Actor) -> None:
    with transaction(engine()) as session:
        auth.logout(session, actor=actor)
    _end_session(authenticator, "You are signed out.")


def signed_in_actor(s: Settings):
    """Render the login form when needed; return (actor or None, authenticator).

    Raises ``ConfigurationError`` when no safe cookie key is configured.
    """
    key = _cookie_key(s)
    now = utcnow()
    with transaction(engine()) as session:
        credentials = auth.login_credentials(session, now=now)
    authenticator = stauth.Authenticate(
        credentials,
        cookie_name=s.cookie_name,
        cookie_key=key,
        cookie_expiry_days=s.cookie_max_hours / 24,
        auto_hash=False,
        login_sleep_time=0,
    )

    already = bool(st.session_state.get("authentication_status")) and ACTOR_KEY in st.session_state
    cookie_login = None
    if not already:
        token = st.context.cookies.get(s.cookie_name)
        decoded = _cookie_issued_at(token, key, s.cookie_max_hours) if token else None
        if decoded:
            username, issued_at = decoded
            with transaction(engine()) as session:
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
        flash = st.session_state.pop(FLASH, None)
        if flash:
            st.info(flash)
        try:
            authenticator.login(
                location="main",
                fields={"Form name": "Sign in to ClientDesk", "Login": "Sign in"},
                key="login_form",
            )
        except stauth.utilities.LoginError:
            st.error(GENERIC_FAILURE)
            return None, authenticator
        failed = [u for u, c in credentials["usernames"].items() if c["failed_login_attempts"]]
        if failed:
            with transaction(engine()) as session:
                outcome = auth.record_login_failure(
                    session,
                    username=failed[0],
                    max_attempts=s.lockout_attempts,
                    lock_minutes=s.lockout_minutes,
                    now=now,
                )
            if outcome.locked_until:
                st.error(
                    "Too many wrong passwords: this account is locked until "
                    f"{local_text(outcome.locked_until, s.practice_time_zone, '%I:%M %p %Z')}."
                )
            else:
                st.error(GENERIC_FAILURE)
        elif st.session_state.get("authentication_status") is False:
            # An unknown or disabled username skips bcrypt inside the library: spend the same
            # time here, so the response time does not tell which usernames exist.
            auth.check_password(secrets.token_urlsafe(16), _decoy_hash())
            st.error(GENERIC_FAILURE)
        if not st.session_state.get("authentication_status"):
            if s.demo_mode:
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
        with transaction(engine()) as session:
            actor = auth.session_actor(
                session,
                username=st.session_state["username"],
                signed_in_at=st.session_state[SIGNED_IN_AT],
                last_activity=st.session_state[LAST_ACTIVITY],
                idle_minutes=s.idle_minutes,
                now=now,
            )
            if now - st.session_state.get(LAST_TOUCH, now) >= timedelta(seconds=60):
                auth.touch(session, username=actor.username, now=now)
                st.session_state[LAST_TOUCH] = now
    except auth.SessionEnded as ended:
        _end_session(authenticator, str(ended))
        st.rerun()
    st.session_state[LAST_ACTIVITY] = now
    st.session_state[ACTOR_KEY] = actor
    return actor, authenticator


def _demo_logins() -> None:
    with st.expander("Demo logins (demo data only)", expanded=True):
        st.dataframe(
            [{"Role": r, "Username": u, "Password": p} for r, u, p, _ in DEMO_LOGINS],
            hide_index=True,
        )


__all__ = ["ConfigurationError", "sign_out", "signed_in_actor"]
