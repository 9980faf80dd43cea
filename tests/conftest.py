"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

Migrations run once per engine per test run into a template (a file for SQLite, a template
database for PostgreSQL); each test gets a copy, so tests never see each other's rows and the
append-only tables need no cleaning. On PostgreSQL, where a copy costs a CREATE and a DROP
DATABASE (seconds on a busy machine), ``TEST_DB_ROLLBACK=1`` makes ``engine`` run the test in
one transaction rolled back at its end (tests/rolled_back.py) unless the test's commits must be
seen elsewhere (marker ``committed``, or the test also asks for ``db_url``). PostgreSQL comes from
TEST_DATABASE_URL, defaulting to the local server; every database this creates is dropped at
the end.

On PostgreSQL the setup is the one the README recommends for production: the databases belong to
an owner role that runs the migrations, and the tests connect as the app's role, which may only
INSERT and SELECT the audit log and the ledger (``lib.migrate.grant_app_access``). Roles are
cluster-wide: both are created if missing (safely when parallel runs race) and never dropped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from lib.config import driver_url, setting
from lib.db import make_engine, upgrade
from lib.demo import seed_demo
from lib.migrate import grant_app_access
from tests import hypothesis_runs
from tests.downloads import downloads  # noqa: F401  (fixture: click a download in AppTest)
from tests.rolled_back import RolledBack

# `make test` runs the small Hypothesis profile, `make test-all` the full one (tests/
# hypothesis_runs.py); pytest's --hypothesis-profile, read after this, still has the last word.
hypothesis_runs.register()
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", hypothesis_runs.FAST))

DEMO_CLIENTS = 60
PG_OWNER_ROLE = "clientdesk_test_owner"  # owns the tables, runs migrations and restores
PG_APP_ROLE = "clientdesk_test_app"  # what the app (and every PostgreSQL lib test) runs as


def _pg_admin_url() -> str:
    return driver_url(setting("TEST_DATABASE_URL"))


def _pg_admin() -> Engine:
    return create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")


def _pg_url(dbname: str, role: str = PG_APP_ROLE) -> str:
    return (
        make_url(_pg_admin_url())
        .set(database=dbname, username=role)
        .render_as_string(hide_password=False)
    )


def as_owner(url: str) -> str:
    """The same PostgreSQL database, connected as the owner role (migrations, restore)."""
    return make_url(url).set(username=PG_OWNER_ROLE).render_as_string(hide_password=False)


def ensure_pg_roles() -> None:
    """Create the owner and app roles unless they exist; a parallel run may create them
    between our check and our CREATE, which is fine."""
    password = make_url(_pg_admin_url()).password
    with _pg_admin().connect() as conn:
        for role in (PG_OWNER_ROLE, PG_APP_ROLE):
            exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
            if not exists:
                try:
                    conn.execute(
                        text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
                    )
                except DBAPIError:
                    if not conn.scalar(
                        text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
                    ):
                        raise
            if password:  # the server checks passwords: the roles use the admin's
                literal = str(password).replace("'", "''")
                conn.execute(text(f"ALTER ROLE \"{role}\" PASSWORD '{literal}'"))


class Templates:
    """Migrated (and optionally demo-seeded) templates, built lazily once per run."""

    def __init__(self, tmp: Path, worker: str):
        self.tmp = tmp
        self.worker = worker
        self.built: dict[tuple[str, bool], str] = {}
        self.created_pg: list[str] = []
        self.scratches: dict[str, str] = {}

    def template(self, kind: str, demo: bool) -> str:
        key = (kind, demo)
        if key not in self.built:
            name = f"cdtpl_{self.worker}_{'demo' if demo else 'empty'}_{uuid.uuid4().hex[:6]}"
            if kind == "sqlite":
                url = f"sqlite:///{self.tmp / (name + '.db')}"
            else:
                ensure_pg_roles()
                with _pg_admin().connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{PG_OWNER_ROLE}"'))
                self.created_pg.append(name)
                url = _pg_url(name, PG_OWNER_ROLE)
            engine = make_engine(url)
            upgrade(engine)
            if kind != "sqlite":
                grant_app_access(engine, app_role=PG_APP_ROLE)
            if demo:
                seed_demo(engine, clients=DEMO_CLIENTS, seed=7)
            engine.dispose()
            self.built[key] = name
        return self.built[key]

    def copy(self, kind: str, demo: bool) -> str:
        name = self.template(kind, demo)
        copy_name = f"cdtest_{self.worker}_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            src = self.tmp / (name + ".db")
            dst = self.tmp / (copy_name + ".db")
            shutil.copyfile(src, dst)
            return f"sqlite:///{dst}"
        with _pg_admin().connect() as conn:
            conn.execute(
                text(f'CREATE DATABASE "{copy_name}" TEMPLATE "{name}" OWNER "{PG_OWNER_ROLE}"')
            )
        self.created_pg.append(copy_name)
        return _pg_url(copy_name)

    def scratch(self, kind: str) -> str:
        """A migrated, empty database kept for the whole run (one per worker), for tests that
        roll everything back; on PostgreSQL the URL connects as the app role."""
        if kind not in self.scratches:
            self.scratches[kind] = self.copy(kind, demo=False)
        return self.scratches[kind]

    def empty_pg(self) -> str:
        """A new PostgreSQL database with no tables at all (owned by the owner role); the URL
        connects as the app role."""
        ensure_pg_roles()
        name = f"cdtest_{self.worker}_{uuid.uuid4().hex[:10]}"
        with _pg_admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{PG_OWNER_ROLE}"'))
        self.created_pg.append(name)
        return _pg_url(name)

    def drop(self, url: str) -> None:
        if url.startswith("sqlite"):
            Path(url.split("///", 1)[1]).unlink(missing_ok=True)
            return
        name = make_url(url).database
        with _pg_admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created_pg:
            self.created_pg.remove(name)

    def cleanup(self) -> None:
        if not self.created_pg:
            return
        with _pg_admin().connect() as conn:
            for name in reversed(self.created_pg):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def templates(tmp_path_factory, worker_id) -> Iterator[Templates]:
    t = Templates(tmp_path_factory.mktemp("db"), worker_id)
    yield t
    t.cleanup()


@pytest.fixture(scope="session")
def worker_id(request) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def db_kind(request) -> str:
    return request.param


@pytest.fixture
def db_url(templates, db_kind) -> Iterator[str]:
    """URL of a fresh, migrated, empty database (one test, one engine); on PostgreSQL it
    connects as the app role."""
    url = templates.copy(db_kind, demo=False)
    yield url
    templates.drop(url)


# Fixtures that connect to the test's database some other way than through ``engine``: with any
# of them, ``engine``'s commits must really land.
CONNECTS_ELSEWHERE = frozenset({"db_url", "owner_engine"})


def needs_commits(request) -> bool:
    """True when the test's commits must be seen by other connections (a thread, a subprocess,
    AppTest's own engine, a migration): then it gets a database copy of its own."""
    return (
        # Opt-in for now: main's read sessions now begin with SET TRANSACTION READ ONLY, which
        # cannot run inside the rolled-back transaction (see tests/rolled_back.py).
        os.environ.get("TEST_DB_ROLLBACK") != "1"
        or request.node.get_closest_marker("committed") is not None
        or bool(CONNECTS_ELSEWHERE & set(request.fixturenames))
    )


@pytest.fixture
def engine(request, templates, db_kind) -> Iterator[Engine]:
    """An engine on a fresh, migrated, empty database (one test, one engine).

    On PostgreSQL, where a database copy costs a CREATE and a DROP DATABASE, the test runs in
    one transaction that is rolled back at its end (tests/rolled_back.py), on a database
    migrated once per worker; a test marked ``committed``, or that also connects another way,
    gets a copy instead. SQLite copies a file, which costs next to nothing: always a copy.
    """
    if db_kind == "postgresql" and not needs_commits(request):
        rolled_back = RolledBack(templates.scratch(db_kind))
        yield rolled_back.engine
        rolled_back.close()
        return
    eng = make_engine(request.getfixturevalue("db_url"))
    yield eng
    eng.dispose()


@pytest.fixture
def owner_engine(db_url) -> Iterator[Engine]:
    """The ``engine`` fixture's database as the owner role (PostgreSQL), for tests that run
    migrations themselves; on SQLite the same database."""
    eng = make_engine(db_url if db_url.startswith("sqlite") else as_owner(db_url))
    yield eng
    eng.dispose()


@pytest.fixture
def demo_url(templates, db_kind) -> Iterator[str]:
    """URL of a fresh copy of a small demo practice (60 clients, demo logins)."""
    url = templates.copy(db_kind, demo=True)
    yield url
    templates.drop(url)


@pytest.fixture
def demo_engine(demo_url) -> Iterator[Engine]:
    eng = make_engine(demo_url)
    yield eng
    eng.dispose()


# "Today" is the practice's day. At 23:30 in New York, UTC is already on the next day: a test
# that runs at this clock catches any use of the server's (UTC) date.
PRACTICE_TZ = "America/New_York"


def next_late_evening(now: datetime | None = None) -> datetime:
    """The next 23:30 in New York from now. Forward, never back: the test databases were made
    at the real time, and a clock before that would end every session they hold."""
    now = (now or datetime.now(UTC)).astimezone(ZoneInfo(PRACTICE_TZ))
    evening = now.replace(hour=23, minute=30, second=0, microsecond=0)
    return evening if evening > now else evening + timedelta(days=1)


@pytest.fixture
def late_evening(monkeypatch) -> Iterator[datetime]:
    """The clock at the next 23:30 practice time (04:30 UTC the next day), ticking.

    The destination is given in UTC: time-machine would otherwise also move the process's
    local time zone to New York, and the server's own date would look right by accident.
    """
    monkeypatch.setenv("CLIENTDESK_TIME_ZONE", PRACTICE_TZ)
    evening = next_late_evening()
    with time_machine.travel(evening.astimezone(UTC), tick=True):
        yield evening
