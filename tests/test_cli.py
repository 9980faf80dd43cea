"""The command line (spec A4), run the way an operator runs it: ``python -m lib.cli ...``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from lib.config import DEMO_COOKIE_KEY
from lib.db import make_engine, transaction
from lib.demo import is_demo_database
from lib.models import Client, User

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BOSS_PASSWORD = "copper-lantern-meadow-41"


def cli(
    data_dir: Path,
    *args: str,
    stdin: str | None = None,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    settings = {
        k: v
        for k, v in os.environ.items()
        if not (k == "DATABASE_URL" or k.startswith("CLIENTDESK_"))
    }
    settings["CLIENTDESK_DATA_DIR"] = str(data_dir)
    settings.update(env or {})
    if database_url:
        settings["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "lib.cli", *args],
        cwd=PROJECT_ROOT,
        env=settings,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def db_of(data_dir: Path) -> Engine:
    return make_engine(f"sqlite:///{data_dir / 'clientdesk.db'}")


def users(engine: Engine) -> dict[str, User]:
    with transaction(engine) as session:
        found = {}
        for user in session.scalars(select(User)):
            session.expunge(user)
            found[user.username] = user
        return found


def client_count(engine: Engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Client))


@pytest.fixture
def migrated(tmp_path) -> Path:
    done = cli(tmp_path, "migrate")
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_migrate_then_check_says_ready(tmp_path):
    migrate = cli(tmp_path, "migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert (tmp_path / "clientdesk.db").exists()
    check = cli(tmp_path, "check")
    assert check.returncode == 0, check.stderr
    assert "migrated" in check.stdout


def test_check_on_an_unmigrated_data_dir_fails_and_says_to_migrate(tmp_path):
    check = cli(tmp_path, "check")
    assert check.returncode == 1
    assert "migrate" in check.stderr
    assert "Traceback" not in check.stderr


def test_seed_demo_loads_once_and_if_empty_keeps_what_is_there(migrated):
    first = cli(migrated, "seed-demo", "--clients", "20")
    assert first.returncode == 0, first.stderr
    engine = db_of(migrated)
    try:
        assert client_count(engine) == 20
        assert "admin" in users(engine)

        again = cli(migrated, "seed-demo", "--if-empty", "--clients", "30")
        assert again.returncode == 0, again.stderr
        assert client_count(engine) == 20

        refused = cli(migrated, "seed-demo", "--clients", "30")
        assert refused.returncode == 1
        assert "already" in refused.stderr
        assert client_count(engine) == 20
    finally:
        engine.dispose()


def test_seed_demo_if_empty_refuses_a_real_practice_with_staff_and_no_clients(migrated):
    """Issue 12 item 2: `make run` on a real practice (staff, no clients yet) loaded 300 fake
    clients and the 7 accounts whose passwords the README publishes."""
    assert create_boss(migrated).returncode == 0

    done = cli(migrated, "seed-demo", "--if-empty", "--clients", "20")

    assert done.returncode == 1
    assert "staff accounts" in done.stderr and "CLIENTDESK_DEMO=0" in done.stderr
    assert "Traceback" not in done.stderr
    engine = db_of(migrated)
    try:
        assert client_count(engine) == 0
        assert set(users(engine)) == {"boss"}
        with transaction(engine) as session:
            assert not is_demo_database(session)
    finally:
        engine.dispose()


def test_a_fresh_data_dir_becomes_a_demo_that_says_so(migrated):
    """`make run` on a fresh checkout still gives the demo in one command."""
    done = cli(migrated, "seed-demo", "--if-empty", "--clients", "5")
    assert done.returncode == 0, done.stderr
    engine = db_of(migrated)
    try:
        with transaction(engine) as session:
            assert is_demo_database(session)
    finally:
        engine.dispose()
    check = cli(migrated, "check", env={"CLIENTDESK_DEMO": "1"})
    assert check.returncode == 0, check.stderr
    assert "demo" in check.stdout


def test_check_refuses_the_demo_cookie_key_on_a_real_practice(migrated):
    assert create_boss(migrated).returncode == 0
    for env in ({"CLIENTDESK_DEMO": "1"}, {"CLIENTDESK_COOKIE_KEY": DEMO_COOKIE_KEY}):
        done = cli(migrated, "check", env=env)
        assert done.returncode == 1, env
        assert "demo cookie key" in done.stderr
        assert "Traceback" not in done.stderr


def test_seed_demo_on_an_unmigrated_data_dir_fails_and_says_to_migrate(tmp_path):
    done = cli(tmp_path, "seed-demo", "--clients", "5")
    assert done.returncode == 1
    assert "migrate" in done.stderr
    assert "Traceback" not in done.stderr


def create_boss(data_dir: Path, password: str = BOSS_PASSWORD, **kw):
    return cli(
        data_dir,
        "create-user",
        "--role",
        "admin",
        "--username",
        "boss",
        "--name",
        "The Boss",
        "--password-stdin",
        stdin=password + "\n",
        **kw,
    )


def test_create_user_makes_the_first_admin_from_a_password_on_stdin(migrated):
    done = create_boss(migrated)
    assert done.returncode == 0, done.stderr
    assert BOSS_PASSWORD not in done.stdout + done.stderr
    engine = db_of(migrated)
    try:
        boss = users(engine)["boss"]
    finally:
        engine.dispose()
    assert (boss.role, boss.display_name, boss.active) == ("admin", "The Boss", True)
    assert bcrypt.checkpw(BOSS_PASSWORD.encode(), boss.password_hash.encode())


def test_create_user_with_a_short_password_exits_2_and_creates_nothing(migrated):
    done = create_boss(migrated, password="short")
    assert done.returncode == 2
    assert "characters" in done.stderr
    assert "Traceback" not in done.stderr
    engine = db_of(migrated)
    try:
        assert users(engine) == {}
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("1234567890", "12 characters"),
        ("demo-admin-2026", "demo password"),
        ("password1234", "common or leaked"),
        ("boss-lantern-meadow", "from a name"),
        ("ü" * 40, "72 bytes"),  # issue 10 item 10: bcrypt raised, a traceback
    ],
)
def test_create_user_and_reset_password_keep_the_password_rule(migrated, password, says):
    created = create_boss(migrated, password=password)
    assert created.returncode == 2
    assert says in created.stderr and "Traceback" not in created.stderr
    assert create_boss(migrated).returncode == 0
    reset = cli(
        migrated,
        "reset-password",
        "--username",
        "boss",
        "--password-stdin",
        stdin=password + "\n",
    )
    assert reset.returncode == 2
    assert says in reset.stderr and "Traceback" not in reset.stderr
    engine = db_of(migrated)
    try:
        stored = users(engine)["boss"].password_hash
    finally:
        engine.dispose()
    assert bcrypt.checkpw(BOSS_PASSWORD.encode(), stored.encode())


def test_create_user_linked_to_an_unknown_clinician_exits_2_without_a_traceback(migrated):
    done = cli(
        migrated,
        "create-user",
        "--role",
        "clinician",
        "--username",
        "dr.nobody",
        "--name",
        "Dr. Nobody",
        "--clinician-id",
        "99",
        "--password-stdin",
        stdin=BOSS_PASSWORD + "\n",
    )
    assert done.returncode == 2
    assert "clinician" in done.stderr
    assert "Traceback" not in done.stderr


def test_create_user_refuses_a_taken_username(migrated):
    assert create_boss(migrated).returncode == 0
    again = create_boss(migrated, password="another-password-2")
    assert again.returncode == 2
    assert "taken" in again.stderr


def test_reset_password_replaces_the_password(migrated):
    assert create_boss(migrated).returncode == 0
    done = cli(
        migrated,
        "reset-password",
        "--username",
        "boss",
        "--password-stdin",
        stdin="quiet-harbor-violet-73\n",
    )
    assert done.returncode == 0, done.stderr
    engine = db_of(migrated)
    try:
        stored = users(engine)["boss"].password_hash
    finally:
        engine.dispose()
    assert bcrypt.checkpw(b"quiet-harbor-violet-73", stored.encode())
    assert not bcrypt.checkpw(BOSS_PASSWORD.encode(), stored.encode())


def test_reset_password_of_an_unknown_account_exits_2(migrated):
    done = cli(
        migrated, "reset-password", "--username", "nobody", "--password-stdin", stdin="x" * 12
    )
    assert done.returncode == 2
    assert "nobody" in done.stderr


@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_create_user_writes_to_postgresql_when_database_url_is_set(tmp_path, db_url):
    done = create_boss(tmp_path, database_url=db_url)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "clientdesk.db").exists()
    engine = make_engine(db_url)
    try:
        boss = users(engine)["boss"]
    finally:
        engine.dispose()
    assert boss.role == "admin"
    assert bcrypt.checkpw(BOSS_PASSWORD.encode(), boss.password_hash.encode())
