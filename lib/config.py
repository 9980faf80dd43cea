"""Settings read from the environment, in one place.

Every knob an operator can turn is listed here (and in the README's Configuration table).
Nothing else in ClientDesk reads ``os.environ`` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The key used to sign re-login cookies in demo mode only. Outside demo mode the app refuses it.
DEMO_COOKIE_KEY = "clientdesk-demo-cookie-key-not-for-production"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


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
    base_url: str  # where staff open the app (links in staff emails such as the digest)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (defaults to the process environment)."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("CLIENTDESK_DATA_DIR") or PROJECT_ROOT / "data")
    url = _driver_url(env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'clientdesk.db'}")
    migration_url = env.get("CLIENTDESK_MIGRATION_DATABASE_URL") or None
    return Settings(
        database_url=url,
        data_dir=data_dir,
        demo_mode=_flag(env.get("CLIENTDESK_DEMO")),
        cookie_key=env.get("CLIENTDESK_COOKIE_KEY") or None,
        cookie_name=env.get("CLIENTDESK_COOKIE_NAME") or "clientdesk_auth",
        idle_minutes=int(env.get("CLIENTDESK_IDLE_MINUTES") or 15),
        cookie_max_hours=int(env.get("CLIENTDESK_COOKIE_MAX_HOURS") or 8),
        lockout_attempts=int(env.get("CLIENTDESK_LOCKOUT_ATTEMPTS") or 5),
        lockout_minutes=int(env.get("CLIENTDESK_LOCKOUT_MINUTES") or 15),
        practice_time_zone=env.get("CLIENTDESK_TIME_ZONE") or "America/New_York",
        auto_migrate=_flag(env.get("CLIENTDESK_AUTO_MIGRATE", "1")),
        # A downloaded file answers its browser for at most a minute after the click.
        download_seconds=max(1, min(60, int(env.get("CLIENTDESK_DOWNLOAD_SECONDS") or 60))),
        secure_cookies=_flag(env.get("CLIENTDESK_SECURE_COOKIES")),
        migration_database_url=_driver_url(migration_url) if migration_url else None,
        db_pool_size=int(env.get("CLIENTDESK_DB_POOL_SIZE") or 10),
        db_max_overflow=int(env.get("CLIENTDESK_DB_MAX_OVERFLOW") or 30),
        db_pool_timeout_seconds=float(env.get("CLIENTDESK_DB_POOL_TIMEOUT") or 10),
        db_write_timeout_seconds=float(env.get("CLIENTDESK_DB_WRITE_TIMEOUT") or 10),
        base_url=(env.get("CLIENTDESK_BASE_URL") or "http://127.0.0.1:8501").rstrip("/"),
    )


def _driver_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # psycopg 3 is the only PostgreSQL driver we ship.
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
