"""lib/models.py and migrations/ describe the same schema, on SQLite and on PostgreSQL.

Tables are only ever created by the migrations (``lib.db.upgrade``), while the code reads and
writes through the models. If the two drift apart, a column the code relies on (its type, its
nullability, its default, an index) is not what the database has, and the difference shows only
on a practice's data. Alembic's autogenerate compares the models with a freshly migrated
database: any difference it finds is a missing migration or a model that says something else.
"""

from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from lib.models import Base

# How a database reports a default it was given: SQLite keeps the text as written, wrapped in
# parentheses ("('')"), PostgreSQL adds a cast ("''::character varying"). Only the value counts.
_CAST = re.compile(r"::[a-z ]+(\([0-9, ]*\))?$")


def _plain_default(sql: str | None) -> str | None:
    if sql is None:
        return None
    text = sql.strip()
    while True:
        text = _CAST.sub("", text).strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
            continue
        break
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1].replace("''", "'")
    return text


def _defaults_differ(
    context, inspected_column, metadata_column, inspected_default, metadata_default, rendered
) -> bool:
    return _plain_default(inspected_default) != _plain_default(rendered)


def schema_differences(engine) -> list:
    """What autogenerate would write into a new migration for this database."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "compare_server_default": _defaults_differ},
        )
        return compare_metadata(context, Base.metadata)


# Chosen on SQLite by migration 0011 (import), which adds columns without rebuilding ``clients``
# (every table references it): SQLite does not enforce VARCHAR lengths, so clients.state and
# zip_code keep their declared lengths there, and lib checks clinicians.default_service_id
# instead of a foreign key. These, and only these, differences are allowed on SQLite.
KNOWN_SQLITE_DRIFT = {
    ("modify_type", "clients", "state"),
    ("modify_type", "clients", "zip_code"),
    ("add_fk", "clinicians", "default_service_id"),
}


def _key(difference) -> tuple[str, str, str]:
    d = difference[0] if isinstance(difference, list) else difference
    if d[0] in ("add_fk", "remove_fk"):
        fk = d[1]
        return (d[0], fk.parent.name, ",".join(c.name for c in fk.columns))
    if d[0].startswith("modify_"):
        return (d[0], d[2], d[3])
    return (d[0], str(d[1]), "")


def unexpected(engine, differences) -> list:
    if engine.dialect.name != "sqlite":
        return differences
    return [d for d in differences if _key(d) not in KNOWN_SQLITE_DRIFT]


def test_a_freshly_migrated_database_has_exactly_the_models_schema(engine):
    differences = schema_differences(engine)
    assert unexpected(engine, differences) == [], (
        "models and migrations disagree; add a migration or fix the model"
    )


def test_the_check_sees_a_model_that_says_something_else(engine):
    """The comparison can fail: a default the migrations never gave is reported."""
    column = Base.metadata.tables["message_outbox"].c.kind
    saved = column.server_default
    try:
        column.server_default = None
        differences = schema_differences(engine)
    finally:
        column.server_default = saved
    assert [_key(d) for d in unexpected(engine, differences)] == [
        ("modify_default", "message_outbox", "kind")
    ]
