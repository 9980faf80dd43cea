"""The doors issue 12 found, tried through app.py in AppTest (items 2, 3, 5; issue 10 item 10).

Demo doors: the public demo cookie key on a database that is not a demo. Cookies: a re-login
cookie that is garbled or unsigned (alg=none) gets the sign-in form, never an error page.
Lockout: an unknown username "locks" after the same wrong tries, with the same words, as a real
one. Passwords over 72 bytes: refused with a message, and a wrong password at sign-in.

AppTest has no browser, so a cookie is put where the app reads it: ``st.context.cookies``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit.runtime.context import ContextProxy, StreamlitCookies

from lib import auth
from lib.config import DEMO_COOKIE_KEY
from lib.db import make_engine, transaction
from lib.models import User
from tests import record_forms
from tests import test_pages_login as login_tests
from tests.test_pages_login import login_form_shown, open_app, sign_in, submit_login, titles

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app

COOKIE = "clientdesk_auth"
CLOCK = re.compile(r"\d\d:\d\d [AP]M")
REAL_ADMIN_PASSWORD = "copper-lantern-meadow-41"


@pytest.fixture
def browser_cookies(monkeypatch) -> dict[str, str]:
    """The cookies the "browser" sends; tests fill it before opening the app."""
    jar: dict[str, str] = {}
    monkeypatch.setattr(ContextProxy, "cookies", property(lambda self: StreamlitCookies(jar)))
    return jar


@pytest.fixture
def real_practice(db_url, monkeypatch) -> Iterator[str]:
    """A real practice's database (an admin who signed in a minute ago, no clients), served
    the way `make run` serves: in demo mode, with no cookie key of its own."""
    engine = make_engine(db_url)
    with transaction(engine) as session:
        auth.create_user(
            session,
            actor=None,
            username="jsmith",
            display_name="Jo Smith",
            role="admin",
            password=REAL_ADMIN_PASSWORD,
        )
        auth.record_login_success(session, username="jsmith")
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CLIENTDESK_DEMO", "1")
    yield db_url


def _demo_key_cookie(username: str) -> str:
    expires = time.time() + 3600
    return jwt.encode({"username": username, "exp_date": expires}, DEMO_COOKIE_KEY, "HS256")


def _signed_in(at) -> bool:
    return any(b.key == "sign_out" for b in at.button)


# --- item 2: demo doors ----------------------------------------------------------------------


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_the_demo_cookie_key_cannot_sign_in_to_a_real_practice(real_practice, browser_cookies):
    browser_cookies[COOKIE] = _demo_key_cookie("jsmith")  # anyone can make this cookie

    at = open_app()

    assert not at.exception
    assert not _signed_in(at)
    assert "Clients" not in titles(at)
    assert any("not configured" in t for t in titles(at))
    assert any("demo cookie key" in e.value for e in at.error)


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_a_real_practice_never_shows_the_demo_logins(real_practice, monkeypatch):
    monkeypatch.setenv("CLIENTDESK_COOKIE_KEY", "k" * 40)
    at = open_app()
    assert login_form_shown(at)
    assert "demo-manager-2026" not in login_tests.screen_text(at)


# --- item 3: cookies that are not ours ---------------------------------------------------------


def _unsigned(username: str) -> str:
    return jwt.encode({"username": username, "exp_date": time.time() + 3600}, None, "none")


GARBLED = {
    "alg=none": lambda: _unsigned("admin"),
    "HS512 with the right key": lambda: jwt.encode(
        {"username": "admin", "exp_date": time.time() + 3600}, DEMO_COOKIE_KEY, "HS512"
    ),
    "another key": lambda: jwt.encode(
        {"username": "admin", "exp_date": time.time() + 3600}, "x" * 40, "HS256"
    ),
    "not a token": lambda: "garbage",
    "three dots": lambda: "a.b.c",
    "bad base64": lambda: "eyJhbGciOi.!!!.???",
    "no expiry": lambda: jwt.encode({"username": "admin"}, DEMO_COOKIE_KEY, "HS256"),
    "huge expiry": lambda: jwt.encode(
        {"username": "admin", "exp_date": 1e308}, DEMO_COOKIE_KEY, "HS256"
    ),
}


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", list(GARBLED))
def test_a_garbled_or_unsigned_cookie_shows_the_sign_in_form(demo_app, browser_cookies, kind):
    browser_cookies[COOKIE] = GARBLED[kind]()

    at = open_app()

    assert not at.exception
    assert login_form_shown(at)
    assert not _signed_in(at)
    assert not at.error


# --- item 5: an unknown name locks like a real one -------------------------------------------


def _errors_of_five_tries(username: str) -> list[list[str]]:
    at = open_app()
    seen = []
    for attempt in range(1, 7):
        submit_login(at, username, f"wrong-password-{attempt}")
        # The two runs are seconds apart: the minute of "locked until" may differ.
        seen.append([CLOCK.sub("HH:MM", e.value) for e in at.error])
    return seen


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_an_unknown_username_locks_after_five_tries_with_the_same_words(demo_app):
    real = _errors_of_five_tries("biller")
    unknown = _errors_of_five_tries("no.such.person")

    assert real == unknown
    assert ["locked until" in e[0] for e in real] == [False] * 4 + [True] * 2
    assert "An administrator can lift the lock." in real[-1][0]


# --- issue 10 item 10: passwords over 72 bytes ---------------------------------------------


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_signing_in_with_a_password_over_72_bytes_fails_like_a_wrong_one(demo_app):
    too_long = "demo-biller-2026" + "x" * 60
    at = open_app()
    for _ in range(5):
        submit_login(at, "biller", too_long)
        assert not at.exception
        assert login_form_shown(at)
    assert any("locked until" in e.value for e in at.error)
    engine = make_engine(demo_app)
    try:
        with Session(engine) as session:
            biller = session.scalars(select(User).where(User.username == "biller")).one()
            assert biller.failed_login_count == 5
    finally:
        engine.dispose()


def _add_account(at, password: str):
    for field, value in (
        ("username", "new.biller"),
        ("display_name", "Nia Biller"),
        ("email", "nia@riverbend.example"),
        ("password", password),
    ):
        at.text_input(key=record_forms.key(at, "new_staff", 0, field)).input(value)
    at.button(key=record_forms.submit(at, "new_staff", 0, "Add account")).click()
    return at.run()


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("ü" * 40, "at most 72 bytes"),
        ("demo-admin-2026", "demo password"),
        ("password1234", "common or leaked"),
    ],
)
def test_the_staff_page_refuses_a_bad_password_with_a_message(demo_app, password, says):
    at = sign_in("admin")
    at.switch_page("pages/users.py").run()

    _add_account(at, password)

    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(says in e for e in errors), errors
    assert not any("Something went wrong" in e for e in errors)
    engine = make_engine(demo_app)
    try:
        with Session(engine) as session:
            assert session.scalar(select(User).where(User.username == "new.biller")) is None
    finally:
        engine.dispose()
