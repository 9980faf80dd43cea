"""Migrations as the owner role, and the app's role with the least rights it needs.

On PostgreSQL, ``CLIENTDESK_MIGRATION_DATABASE_URL`` names the same database as the role that
owns the tables; migrations and restores run as that role, and the app (``DATABASE_URL``) runs
as a role that owns nothing and may only INSERT and SELECT the append-only tables, so it can
neither rewrite them nor switch their triggers off. Without the setting everything runs as
``DATABASE_URL`` (SQLite always).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from lib.config import Settings
from lib.db import APPEND_ONLY_TABLES, DatabaseNotReady, make_engine, upgrade


def grant_app_access(owner_engine: Engine, *, app_role: str) -> None:
    """PostgreSQL: let the app's role read and write what it needs and no more.

    The append-only tables get SELECT and INSERT only, so the app cannot UPDATE, DELETE or
    TRUNCATE them, and because it owns nothing it cannot drop or disable their triggers.
    Idempotent; run after every migration and restore (``migrate`` does).
    """
    with owner_engine.begin() as conn:
        role = conn.dialect.identifier_preparer.quote(app_role)
        tables = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        ).all()
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
        for table in tables:
            quoted = conn.dialect.identifier_preparer.quote(table)
            conn.exec_driver_sql(f"REVOKE ALL ON TABLE {quoted} FROM {role}")
            if table in APPEND_ONLY_TABLES:
                rights = "SELECT, INSERT"
            elif table == "alembic_version":
                rights = "SELECT"
            else:
                rights = "SELECT, INSERT, UPDATE, DELETE"
            conn.exec_driver_sql(f"GRANT {rights} ON TABLE {quoted} TO {role}")
        conn.exec_driver_sql(
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}"
        )


def migration_url(settings: Settings) -> str:
    """Where migrations and restore connect: the owner's URL when set, else the app's."""
    owner = settings.migration_database_url
    if not owner:
        return settings.database_url
    app, own = make_url(settings.database_url), make_url(owner)
    if (app.get_backend_name(), app.host, app.port, app.database) != (
        own.get_backend_name(),
        own.host,
        own.port,
        own.database,
    ):
        raise DatabaseNotReady(
            "CLIENTDESK_MIGRATION_DATABASE_URL must name the same database as DATABASE_URL "
            "(only the user may differ)."
        )
    return owner


def migrate(settings: Settings) -> None:
    """Apply migrations as the owner, then grant the app's role its rights (PostgreSQL with a
    separate migration role); the app's own URL is used when no migration URL is set."""
    url = migration_url(settings)
    engine = make_engine(url)
    try:
        upgrade(engine)
        apply_app_grants(engine, settings)
    finally:
        engine.dispose()


def apply_app_grants(owner_engine: Engine, settings: Settings) -> None:
    """Grant DATABASE_URL's role its rights when migrations run as another (owner) role."""
    app_user = make_url(settings.database_url).username
    if (
        owner_engine.dialect.name == "postgresql"
        and settings.migration_database_url
        and app_user
        and app_user != owner_engine.url.username
    ):
        grant_app_access(owner_engine, app_role=app_user)


# The triggers that keep the audit log and the ledger append-only (migrations 0001 and 0008).
# SQLite's batch migrations rebuild a table without its triggers: this list is checked at head.
APPEND_ONLY_TRIGGERS = {
    "sqlite": tuple(
        f"{table}_{what}"
        for table in APPEND_ONLY_TABLES
        for what in ("no_update", "no_delete", "no_replace")
    ),
    "postgresql": tuple(
        f"{table}_{what}" for table in APPEND_ONLY_TABLES for what in ("append_only", "no_truncate")
    ),
}


def missing_append_only_triggers(engine: Engine) -> list[str]:
    """The append-only triggers this database lacks (or has disabled); [] when all are there."""
    if engine.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'"
    with engine.connect() as conn:
        present = set(conn.scalars(text(sql)))
    return [t for t in APPEND_ONLY_TRIGGERS[engine.dialect.name] if t not in present]
