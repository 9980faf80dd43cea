"""Sign-in, lockout and role-aware navigation, through app.py in Streamlit's AppTest (spec A1).

Each test runs the real app against a fresh copy of the demo practice (SQLite and PostgreSQL),
signs in through streamlit-authenticator's form and checks what the screen shows and what the
database recorded.

Two things AppTest does differently from a browser, and how these tests deal with them:

- extra_streamlit_components' CookieManager is a custom component. AppTest has no frontend, so
  it records the component as an ``UnknownElement`` and its value is always the default: no
  cookie is ever written, and the password form is the only way in. The component is still
  called, so the sign-in and sign-out code paths run unchanged. (``st.context.cookies`` is
  backed by a mock here: every name is "present" with a mock value, which ui/login.py, like
  the library, rejects as an invalid token. The re-login cookie is tested in tests/e2e.)
- In a browser, the CookieManager reports its value after a sign-in, which reruns the script once
  more; here ``at.run()`` does that rerun explicitly where a test looks at the settled screen.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamlit
import streamlit.testing.v1.app_test as app_test_module
import time_machine
from sqlalchemy import event, select
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.orm import Session
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from lib import auth
from lib.db import make_engine
from lib.demo import DEMO_LOGINS
from lib.models import AuditEntry, Client, User
from lib.timeutil import utcnow

APP = Path(__file__).resolve().parent.parent / "app.py"
SIGN_IN_BUTTON = "FormSubmitter:login_form-Sign in"
NO_ACCESS = "Your role does not give access to this page."
BALANCE_COLUMNS = {"Client due", "Insurance pending", "Unapplied credit"}
ADMIN_LINKS = {"Staff accounts", "Audit log"}
DOLLARS = re.compile(r"\$\s?\d")
PASSWORDS = {username: password for _, username, password, _ in DEMO_LOGINS}


class _NavigationOnlyPagesManager(PagesManager):
    """Keeps AppTest out of Streamlit's pre-``st.navigation`` mode, as a running server is.

    Streamlit 1.67's AppTest resets ``PagesManager.uses_pages_directory`` before every run and
    lets the constructor look for a ``pages/`` folder next to the script. Ours has one, so every
    run after the first would execute the last page's script directly, without app.py (no
    sidebar, no role check; ``ui.context.actor()`` finds the signed-in actor and carries on). A
    server makes that check once per process, and app.py's ``st.navigation`` turns the mode off
    for good; the first deep link before that is covered by the e2e tests.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def _fresh_streamlit(monkeypatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("CLIENTDESK_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationOnlyPagesManager)
    streamlit.cache_resource.clear()
    streamlit.cache_data.clear()
    yield
    streamlit.cache_resource.clear()
    streamlit.cache_data.clear()


@pytest.fixture
def demo_app(demo_url, monkeypatch) -> str:
    """app.py pointed at a fresh demo practice, in demo mode."""
    monkeypatch.setenv("DATABASE_URL", demo_url)
    monkeypatch.setenv("CLIENTDESK_DEMO", "1")
    return demo_url


# --- helpers -------------------------------------------------------------------------------


def open_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception
    return at


def _text_input(at: AppTest, label: str):
    matches = [t for t in at.text_input if t.label == label]
    assert len(matches) == 1, f"expected one {label!r} field, found {len(matches)}"
    return matches[0]


def submit_login(at: AppTest, username: str, password: str) -> AppTest:
    _text_input(at, "Username").input(username)
    _text_input(at, "Password").input(password)
    at.button(key=SIGN_IN_BUTTON).click()
    at.run()
    assert not at.exception
    return at


def sign_in(username: str) -> AppTest:
    at = submit_login(open_app(), username, PASSWORDS[username])
    assert not at.error, [e.value for e in at.error]
    at.run()  # the rerun the browser's CookieManager triggers after a sign-in
    assert not at.exception
    return at


def login_form_shown(at: AppTest) -> bool:
    labels = {t.label for t in at.text_input}
    return {"Username", "Password"} <= labels and any(b.key == SIGN_IN_BUTTON for b in at.button)


def _nodes(block) -> Iterator:
    yield block
    for child in getattr(block, "children", {}).values():
        yield from _nodes(child)


def screen_text(at: AppTest) -> str:
    """Everything the screen says, tables included, as one string."""
    parts = []
    for root in (at.main, at.sidebar):
        for node in _nodes(root):
            if type(node).__name__ == "Dataframe":
                parts.append(node.value.to_csv(index=False))
            elif hasattr(node, "proto"):
                parts.append(str(node.proto))
    return "\n".join(parts)


def sidebar_links(at: AppTest) -> set[str]:
    return {node.proto.label for node in _nodes(at.sidebar) if type(node).__name__ == "PageLink"}


def client_table(at: AppTest):
    frames = [df.value for df in at.dataframe if "Name" in df.value.columns]
    assert len(frames) == 1, "expected one client table"
    return frames[0]


def client_names(url: str) -> dict[int, str]:
    """client number -> "Last, First" for every client in the database."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return {
                c.client_number: f"{c.last_name}, {c.first_name}"
                for c in session.scalars(select(Client))
            }
    finally:
        engine.dispose()


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


# --- before sign-in ------------------------------------------------------------------------


def test_before_sign_in_only_the_login_form_shows(demo_app):
    at = open_app()

    assert login_form_shown(at)
    text = screen_text(at)
    names = client_names(demo_app)
    assert names
    assert not [n for n in names.values() if n in text], "client names shown before sign-in"
    assert not DOLLARS.search(text)
    assert "Clients" not in titles(at)
    assert not at.metric
    assert not sidebar_links(at)
    assert not [b for b in at.button if b.key == "sign_out"]


# --- signing in ----------------------------------------------------------------------------


def test_manager_signs_in_and_sees_clients_with_balances(demo_app):
    at = submit_login(open_app(), "manager", "demo-manager-2026")
    assert not at.error
    assert "Clients" in titles(at)

    at.run()
    assert not login_form_shown(at)
    assert "Clients" in titles(at)
    table = client_table(at)
    names = client_names(demo_app)
    assert len(table) > 0
    shown = [str(n) for n in table["Name"]]
    assert all(any(n.startswith(real) for real in names.values()) for n in shown), shown
    assert set(table.columns) >= BALANCE_COLUMNS
    money = [m.value for m in at.metric if DOLLARS.search(m.value)]
    assert len(money) >= 3, [(m.label, m.value) for m in at.metric]
    assert "Morgan Manager" in screen_text(at)


def test_wrong_password_and_unknown_username_give_the_same_answer(demo_app):
    wrong_password = submit_login(open_app(), "manager", "not-the-password")
    unknown_user = submit_login(open_app(), "nobody-here", "not-the-password")

    wrong_errors = [e.value for e in wrong_password.error]
    unknown_errors = [e.value for e in unknown_user.error]
    assert wrong_errors == unknown_errors
    assert len(wrong_errors) == 1
    assert "locked" not in wrong_errors[0]
    for at in (wrong_password, unknown_user):
        assert login_form_shown(at)
        assert "Clients" not in titles(at)


def _cpu_seconds_of_refusal(username: str) -> float:
    """CPU time the app spends refusing a sign-in (CPU, not wall time: other load on the
    machine does not stretch it, and bcrypt is pure CPU)."""
    at = open_app()
    _text_input(at, "Username").input(username)
    _text_input(at, "Password").input("not-the-password")
    at.button(key=SIGN_IN_BUTTON).click()
    started = time.process_time()
    at.run()
    spent = time.process_time() - started
    assert at.error and not at.exception
    return spent


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_an_unknown_username_costs_a_bcrypt_check_like_a_known_one(demo_app):
    """Otherwise the response time tells which usernames exist (the library runs bcrypt only
    for usernames it knows)."""
    real_hash = auth.hash_password("a-password-of-someone")

    def one_bcrypt_check() -> float:
        started = time.process_time()
        auth.check_password("not-the-password", real_hash)
        return time.process_time() - started

    _cpu_seconds_of_refusal("nobody-here")  # warm-up: the first refusal may do one-off setup
    unknown = min(_cpu_seconds_of_refusal("nobody-here") for _ in range(3))
    bcrypt_cost = min(one_bcrypt_check() for _ in range(3))
    assert unknown > bcrypt_cost / 2, (unknown, bcrypt_cost)


def test_five_wrong_passwords_lock_the_account(demo_app):
    at = open_app()
    for attempt in range(1, 5):
        submit_login(at, "manager", f"wrong-password-{attempt}")
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "locked until" not in errors[0], (attempt, errors)

    submit_login(at, "manager", "wrong-password-5")
    assert any("locked until" in e.value for e in at.error)

    # Even the right password is refused while the lock lasts.
    again = submit_login(open_app(), "manager", "demo-manager-2026")
    assert any("locked until" in e.value for e in again.error)
    assert "Clients" not in titles(again)
    assert login_form_shown(again)

    engine = make_engine(demo_app)
    try:
        with Session(engine) as session:
            user = session.scalars(select(User).where(User.username == "manager")).one()
            assert user.locked_until is not None
            assert user.failed_login_count >= 5
            locks = session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "login.locked", AuditEntry.entity_id == str(user.id)
                )
            ).all()
            assert len(locks) == 1
            other = session.scalars(select(User).where(User.username == "biller")).one()
            assert other.locked_until is None
    finally:
        engine.dispose()


# --- what each role sees -------------------------------------------------------------------


def test_front_desk_sees_no_balances_and_no_admin_links(demo_app):
    at = sign_in("frontdesk")

    assert "Clients" in titles(at)
    table = client_table(at)
    assert len(table) > 0
    assert not BALANCE_COLUMNS & set(table.columns)
    assert not [c for c in table.columns if "balance" in c.lower() or "due" in c.lower()]
    assert not [m for m in at.metric if DOLLARS.search(m.value)]
    assert not DOLLARS.search(screen_text(at))
    links = sidebar_links(at)
    assert "Clients" in links
    assert not links & ADMIN_LINKS


def test_manager_has_no_admin_links_and_admin_has_them(demo_app):
    manager = sign_in("manager")
    manager_links = sidebar_links(manager)
    assert "Clients" in manager_links
    assert not manager_links & ADMIN_LINKS

    admin = sign_in("admin")
    assert sidebar_links(admin) >= ADMIN_LINKS


def test_clinician_sees_only_their_own_clients(demo_app):
    engine = make_engine(demo_app)
    try:
        with Session(engine) as session:
            clinician_id = session.scalars(
                select(User.clinician_id).where(User.username == "okafor")
            ).one()
            own = {
                c.client_number
                for c in session.scalars(select(Client).where(Client.clinician_id == clinician_id))
            }
            others_active = session.scalars(
                select(Client.client_number).where(
                    Client.clinician_id != clinician_id, Client.status == "active"
                )
            ).all()
    finally:
        engine.dispose()
    assert own and others_active  # the demo practice has clients of other clinicians too

    at = sign_in("okafor")
    table = client_table(at)
    shown = {int(n) for n in table["Client #"]}
    assert shown
    assert shown <= own
    assert not shown & set(others_active)
    assert not BALANCE_COLUMNS & set(table.columns)


def test_admin_only_page_is_refused_to_the_manager(demo_app):
    at = sign_in("manager")
    at.switch_page("pages/users.py")
    at.run()

    assert not at.exception
    assert NO_ACCESS in [e.value for e in at.error]
    assert "Staff accounts" not in titles(at)
    assert "admin" not in [str(v) for df in at.dataframe for v in df.value.get("Username", [])]


def test_admin_opens_the_staff_accounts_page(demo_app):
    at = sign_in("admin")
    at.switch_page("pages/users.py")
    at.run()

    assert not at.exception
    assert NO_ACCESS not in [e.value for e in at.error]
    assert "Staff accounts" in titles(at)


def test_signing_out_shows_the_login_form_again(demo_app):
    at = sign_in("manager")
    at.button(key="sign_out").click()
    at.run()

    assert not at.exception
    assert login_form_shown(at)
    assert "Clients" not in titles(at)
    assert "You are signed out." in [i.value for i in at.info]
    engine = make_engine(demo_app)
    try:
        with Session(engine) as session:
            actions = session.scalars(select(AuditEntry.action)).all()
    finally:
        engine.dispose()
    assert "logout" in actions


# --- sign-in bookkeeping: checked on every rerun, written at most once a minute ------------


class WriteCounter:
    """Counts, on every engine in the process (the app's own included), the transactions that
    are not read-only and the INSERT/UPDATE/DELETE statements."""

    def __init__(self):
        self.write_transactions = 0
        self.changes: list[str] = []

    def _begin(self, conn) -> None:
        if not conn.get_execution_options().get("clientdesk_read_only"):
            self.write_transactions += 1

    def _statement(self, conn, cursor, statement, params, context, executemany) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            self.changes.append(" ".join(statement.split()[:3]))

    def __enter__(self) -> WriteCounter:
        event.listen(SAEngine, "begin", self._begin)
        event.listen(SAEngine, "before_cursor_execute", self._statement)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(SAEngine, "begin", self._begin)
        event.remove(SAEngine, "before_cursor_execute", self._statement)


def last_seen(url: str, username: str) -> datetime:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            seen = session.scalar(select(User.last_seen_at).where(User.username == username))
    finally:
        engine.dispose()
    return seen.replace(tzinfo=UTC) if seen.tzinfo is None else seen


def test_reruns_within_a_minute_write_nothing_and_the_next_minute_writes_once(demo_app):
    with time_machine.travel(utcnow(), tick=True) as clock:
        at = sign_in("manager")
        signed_in_seen = last_seen(demo_app, "manager")
        with WriteCounter() as counted:
            for _ in range(5):
                at.run()
                assert "Clients" in titles(at)
        assert (counted.write_transactions, counted.changes) == (0, [])
        assert last_seen(demo_app, "manager") == signed_in_seen

        clock.shift(timedelta(seconds=61))
        with WriteCounter() as counted:
            for _ in range(3):
                at.run()
                assert "Clients" in titles(at)
        assert counted.write_transactions == 1
        assert counted.changes == ["UPDATE users SET"]
        assert last_seen(demo_app, "manager") >= signed_in_seen + timedelta(seconds=61)


def test_an_idle_session_still_times_out_on_the_next_rerun(demo_app):
    with time_machine.travel(utcnow(), tick=True) as clock:
        at = sign_in("manager")
        clock.shift(timedelta(minutes=16))
        at.run()

    assert not at.exception
    assert login_form_shown(at)
    assert "You were signed out after 15 idle minutes." in [i.value for i in at.info]


def test_a_sign_in_ended_elsewhere_is_refused_on_the_very_next_rerun(demo_app):
    at = sign_in("manager")
    at.run()  # within the minute: no bookkeeping write is due
    engine = make_engine(demo_app)
    try:
        with Session(engine) as session, session.begin():
            manager = auth.actor_for(session.scalar(select(User).where(User.username == "manager")))
            auth.logout(session, actor=manager)  # e.g. "sign out" in another browser
    finally:
        engine.dispose()

    at.run()

    assert not at.exception
    assert login_form_shown(at)
    assert "Clients" not in titles(at)


# --- start-up problems ---------------------------------------------------------------------


def test_unmigrated_database_shows_not_ready_without_a_traceback(tmp_path, monkeypatch):
    empty = tmp_path / "empty.db"
    empty.touch()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{empty}")
    monkeypatch.setenv("CLIENTDESK_DEMO", "1")
    monkeypatch.setenv("CLIENTDESK_AUTO_MIGRATE", "0")

    at = open_app()

    assert not at.exception
    assert any("not ready" in t for t in titles(at))
    assert at.error
    assert not login_form_shown(at)


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_outside_demo_mode_a_cookie_key_is_required(demo_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", demo_url)
    monkeypatch.setenv("CLIENTDESK_DEMO", "0")

    at = open_app()

    assert not at.exception
    assert any("not configured" in t for t in titles(at))
    assert any("CLIENTDESK_COOKIE_KEY" in e.value for e in at.error)
    assert not login_form_shown(at)


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_outside_demo_mode_with_a_cookie_key_the_login_form_shows(demo_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", demo_url)
    monkeypatch.setenv("CLIENTDESK_DEMO", "0")
    monkeypatch.setenv("CLIENTDESK_COOKIE_KEY", "k" * 40)

    at = open_app()

    assert not at.exception
    assert login_form_shown(at)
    assert "demo-manager-2026" not in screen_text(at)  # demo logins only in demo mode
