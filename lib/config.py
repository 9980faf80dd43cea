"""Every setting ClientDesk has, declared once as data, and the one reader of the environment.

``SETTINGS`` is the table: name, type, default and meaning of each environment variable. The
README's Configuration table is this table (``python -m lib.config`` prints it;
tests/test_config.py checks they agree), and nothing outside this module reads ``os.environ``
(tests/test_conventions.py checks that). Code asks for a typed value with ``setting(name)``;
``load_settings`` bundles the ones the app uses on every page.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The key used to sign re-login cookies in demo mode only. Outside demo mode the app refuses it.
DEMO_COOKIE_KEY = "clientdesk-demo-cookie-key-not-for-production"
PG_LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Setting:
    """One environment variable. ``default`` is the typed value used when it is unset or empty
    (None: no value); ``shown_default`` words a default that depends on something else."""

    name: str
    type: type
    default: object
    meaning: str
    shown_default: str = ""

    @property
    def default_text(self) -> str:
        """The default as the README's table shows it."""
        if self.shown_default:
            return self.shown_default
        if self.default is None:
            return "none"
        if self.type is bool:
            return "`1`" if self.default else "`0`"
        value = self.default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return f"`{value}`"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        str,
        None,
        "`postgresql://user:pass@host:5432/db` switches to PostgreSQL (psycopg 3).",
        "SQLite at `data/clientdesk.db`",
    ),
    Setting(
        "CLIENTDESK_DATA_DIR",
        Path,
        None,
        "Folder for the SQLite file, the email outbox and uploads.",
        "`data/`",
    ),
    Setting(
        "CLIENTDESK_DEMO",
        bool,
        False,
        "Demo mode: `make run` loads the demo into an empty database; on a database created as "
        "a demo it shows the demo logins and allows the built-in cookie key. On any other "
        "database the built-in key is refused.",
        "`1` under `make run`, else `0`",
    ),
    Setting(
        "CLIENTDESK_COOKIE_KEY",
        str,
        None,
        "Signs the re-login cookie; at least 32 characters. Or `cookie_key` in "
        "`.streamlit/secrets.toml`. Outside demo mode the app refuses to start without one.",
    ),
    Setting("CLIENTDESK_COOKIE_NAME", str, "clientdesk_auth", "Name of the re-login cookie."),
    Setting(
        "CLIENTDESK_COOKIE_MAX_HOURS",
        int,
        8,
        "A re-login cookie is never accepted after this many hours (and never after the idle "
        "limit).",
    ),
    Setting(
        "CLIENTDESK_SECURE_COOKIES",
        bool,
        False,
        "`1` marks the cookies Secure (sent over HTTPS only). Automatic when the browser's "
        "address is `https://`.",
    ),
    Setting(
        "CLIENTDESK_DOWNLOAD_SECONDS",
        int,
        60,
        "How long a downloaded file answers the browser that clicked for it (at most 60).",
    ),
    Setting("CLIENTDESK_IDLE_MINUTES", int, 15, "Sessions end after this many idle minutes."),
    Setting(
        "CLIENTDESK_LOCKOUT_ATTEMPTS",
        int,
        5,
        "Wrong passwords in a row that lock a username (whether or not it has an account).",
    ),
    Setting(
        "CLIENTDESK_LOCKOUT_MINUTES",
        int,
        15,
        "How long a lock lasts; it lifts by itself, or an admin lifts it.",
    ),
    Setting(
        "CLIENTDESK_TIME_ZONE",
        str,
        "America/New_York",
        "The practice's time zone for displayed times (stored times are UTC).",
    ),
    Setting(
        "CLIENTDESK_AUTO_MIGRATE",
        bool,
        True,
        "The app applies pending migrations at start; with `0` it shows what to run instead.",
    ),
    Setting(
        "CLIENTDESK_MIGRATION_DATABASE_URL",
        str,
        None,
        "PostgreSQL: the same database as `DATABASE_URL`, as the role that owns the tables. "
        "Migrations (`make migrate`, the app's auto-migrate) and `restore` use it; the app "
        "itself then runs with `DATABASE_URL`'s restricted role (see below).",
    ),
    Setting(
        "CLIENTDESK_DB_POOL_SIZE",
        int,
        10,
        "Database connections each app process keeps open.",
    ),
    Setting(
        "CLIENTDESK_DB_MAX_OVERFLOW",
        int,
        30,
        "Extra connections opened under load (Streamlit runs every session on its own thread: "
        "pool size + overflow should cover the sessions busy at the same moment). Saves may "
        "use at most half of all connections, so pages always have the rest.",
    ),
    Setting(
        "CLIENTDESK_DB_POOL_TIMEOUT",
        float,
        10.0,
        "Seconds a page waits for a free connection before it says the database is busy "
        "(nothing is lost; try again).",
    ),
    Setting(
        "CLIENTDESK_DB_WRITE_TIMEOUT",
        float,
        10.0,
        "Seconds a save may wait for colleagues' saves (SQLite's write lock, PostgreSQL row "
        "locks, deadlock retries) before it says the database is busy and saves nothing.",
    ),
    Setting(
        "CLIENTDESK_SMTP_HOST",
        str,
        None,
        "Mail server; without it the worker writes every email as an .eml file to `data/outbox/`.",
    ),
    Setting("CLIENTDESK_SMTP_PORT", int, None, "Port (by security mode).", "587 / 465 / 25"),
    Setting("CLIENTDESK_SMTP_SECURITY", str, "starttls", "`starttls`, `tls` or `none`."),
    Setting("CLIENTDESK_SMTP_USERNAME", str, None, "Mail server login."),
    Setting("CLIENTDESK_SMTP_PASSWORD", str, None, "Mail server password."),
    Setting(
        "CLIENTDESK_MAIL_FROM", str, "no-reply@clientdesk.invalid", "Sender address of every email."
    ),
    Setting("CLIENTDESK_MAIL_FROM_NAME", str, "ClientDesk", "Sender name of every email."),
    Setting(
        "CLIENTDESK_BASE_URL",
        str,
        "http://localhost:8501",
        "Address used in portal invitation links.",
    ),
    Setting("CLIENTDESK_PORTAL_INVITE_HOURS", int, 72, "How long a portal invitation link works."),
    Setting("CLIENTDESK_MAX_UPLOAD_MB", float, 10.0, "Largest form attachment accepted."),
    Setting("PORT", int, 8501, "Port for `make run` (read by the Makefile)."),
    Setting(
        "ADDRESS",
        str,
        "127.0.0.1",
        "Address `make run` listens on; `0.0.0.0` only behind a TLS proxy on another machine "
        "(read by the Makefile).",
    ),
    Setting("TEST_DATABASE_URL", str, PG_LOCAL, "PostgreSQL server used by `make test`."),
    Setting(
        "BENCH_DATABASE_URL",
        str,
        PG_LOCAL,
        "PostgreSQL server on which `bench/run.py` and `bench/load.py` create their databases.",
    ),
    Setting(
        "FORWARDED_ALLOW_IPS",
        str,
        "127.0.0.1,::1",
        "uvicorn's trusted proxies, whose `X-Forwarded-For` gives the visitor's address (see "
        '"The public intake page"; read by uvicorn).',
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}
_WORDS = {int: "a whole number", float: "a number", bool: "1 or 0"}


def setting(name: str, env: Mapping[str, str] | None = None):
    """The typed value of setting ``name`` from ``env`` (defaults to the process environment).

    Unset or empty gives the table's default. A value of the wrong type raises
    ``ConfigurationError``, whose message names the variable but never repeats the value (it
    may be a password).
    """
    spec = _BY_NAME[name]  # a KeyError here means the setting is missing from the table
    raw = (os.environ if env is None else env).get(name) or ""
    if not raw.strip():
        return spec.default
    if spec.type is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if spec.type in (int, float):
        try:
            return spec.type(raw.strip())
        except ValueError:
            raise ConfigurationError(f"{name} must be {_WORDS[spec.type]}.") from None
    if spec.type is Path:
        return Path(raw)
    return raw


def default_of(name: str):
    """The table's default for ``name`` (what a value that makes no sense falls back to)."""
    return _BY_NAME[name].default


def process_environment() -> dict[str, str]:
    """A copy of the environment for a child process (pg_dump, pg_restore) to inherit."""
    return dict(os.environ)


def markdown_table() -> str:
    """The README's Configuration table, generated from ``SETTINGS``."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    lines += [f"| `{s.name}` | {s.default_text} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(lines)


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    demo_mode: bool
    cookie_key: str | None
    cookie_name: str
    idle_minutes: int
    cookie_max_hours: int
    lockout_attempts: int
    lockout_minutes: int
    practice_time_zone: str
    auto_migrate: bool
    download_seconds: int
    secure_cookies: bool
    # Migrations and restore run as the tables' owner when this is set; the app itself then
    # connects (DATABASE_URL) as a role that may only INSERT and SELECT the append-only tables.
    migration_database_url: str | None
    db_pool_size: int  # connections an app process keeps open
    db_max_overflow: int  # more, opened under load
    db_pool_timeout_seconds: float  # waiting for a free connection
    db_write_timeout_seconds: float  # a save waiting for colleagues' locks, retries included

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings every page uses, from ``env`` (defaults to the process environment)."""

    def get(name: str):
        return setting(name, env)

    data_dir = get("CLIENTDESK_DATA_DIR") or PROJECT_ROOT / "data"
    url = driver_url(get("DATABASE_URL") or f"sqlite:///{data_dir / 'clientdesk.db'}")
    migration_url = get("CLIENTDESK_MIGRATION_DATABASE_URL")
    return Settings(
        database_url=url,
        data_dir=data_dir,
        demo_mode=get("CLIENTDESK_DEMO"),
        cookie_key=get("CLIENTDESK_COOKIE_KEY"),
        cookie_name=get("CLIENTDESK_COOKIE_NAME"),
        idle_minutes=get("CLIENTDESK_IDLE_MINUTES"),
        cookie_max_hours=get("CLIENTDESK_COOKIE_MAX_HOURS"),
        lockout_attempts=get("CLIENTDESK_LOCKOUT_ATTEMPTS"),
        lockout_minutes=get("CLIENTDESK_LOCKOUT_MINUTES"),
        practice_time_zone=get("CLIENTDESK_TIME_ZONE"),
        auto_migrate=get("CLIENTDESK_AUTO_MIGRATE"),
        # A downloaded file answers its browser for at most a minute after the click.
        download_seconds=max(1, min(60, get("CLIENTDESK_DOWNLOAD_SECONDS"))),
        secure_cookies=get("CLIENTDESK_SECURE_COOKIES"),
        migration_database_url=driver_url(migration_url) if migration_url else None,
        db_pool_size=get("CLIENTDESK_DB_POOL_SIZE"),
        db_max_overflow=get("CLIENTDESK_DB_MAX_OVERFLOW"),
        db_pool_timeout_seconds=get("CLIENTDESK_DB_POOL_TIMEOUT"),
        db_write_timeout_seconds=get("CLIENTDESK_DB_WRITE_TIMEOUT"),
    )


def driver_url(url: str) -> str:
    """``postgresql://`` as SQLAlchemy's psycopg 3 URL (the only PostgreSQL driver we ship)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class ConfigurationError(RuntimeError):
    """The app cannot start safely with the current configuration."""


def cookie_key_for(settings: Settings, *, demo_database: bool) -> str:
    """The cookie signing key.

    The built-in demo key is public (it is in this file), so a cookie signed with it signs
    anyone in as anyone: it is used only in demo mode on a database created as a demo
    (``lib.demo.is_demo_database``), and refused everywhere else.
    """
    key = settings.cookie_key
    if key and key != DEMO_COOKIE_KEY:
        if len(key) < 32:
            raise ConfigurationError("CLIENTDESK_COOKIE_KEY must be at least 32 characters long.")
        return key
    if settings.demo_mode and demo_database:
        return DEMO_COOKIE_KEY
    if key == DEMO_COOKIE_KEY or settings.demo_mode:
        raise ConfigurationError(
            "This database was not created as a demo, so ClientDesk will not start with the "
            "built-in demo cookie key (it is public, and signs anyone in). For a real practice "
            "set CLIENTDESK_DEMO=0 and CLIENTDESK_COOKIE_KEY to a random value of at least 32 "
            "characters (README: Setting up a real practice). For the demo, start from an "
            "empty data folder: `make run` creates the demo practice."
        )
    raise ConfigurationError(
        "No cookie signing key is configured. Set CLIENTDESK_COOKIE_KEY (or cookie_key in "
        ".streamlit/secrets.toml) to a random value of at least 32 characters, e.g. "
        '`python -c "import secrets; print(secrets.token_urlsafe(48))"`. '
        "Only the demo practice (CLIENTDESK_DEMO=1, on a database `make run` created as a "
        "demo) may run with the built-in key."
    )


if __name__ == "__main__":
    print(markdown_table())
