"""append-only tables refuse INSERT OR REPLACE on SQLite

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-30 05:30:00

SQLite's REPLACE (``INSERT OR REPLACE``, ``REPLACE INTO``) resolves a unique conflict by
deleting the old row first, and that implicit delete does not fire DELETE triggers unless
``recursive_triggers`` is on. So an audit or ledger row could be rewritten in place. A BEFORE
INSERT trigger that refuses any row clashing with an existing one closes that path for every
connection, whatever its pragmas. (PostgreSQL has no REPLACE; its ``ON CONFLICT DO UPDATE``
fires the UPDATE trigger that is already there.)
"""

from collections.abc import Sequence

from alembic import op


revision: str = "0008"
down_revision: str | None = "0005"  # assigned "0003"; re-chained after main (0009, 0005)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every unique key of each append-only table: a REPLACE can conflict on any of them.
UNIQUE_KEYS = {
    "audit_log": ("id",),
    "ledger_entries": ("id", "idempotency_key", "reverses_entry_id"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, keys in UNIQUE_KEYS.items():
        clashes = " OR ".join(
            f"(NEW.{k} IS NOT NULL AND EXISTS (SELECT 1 FROM {table} WHERE {k} = NEW.{k}))"
            for k in keys
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} WHEN {clashes} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: that row already exists'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in UNIQUE_KEYS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
