"""clients imported from another system; clinicians managed in the app

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Issue 14: the old system's client id (unique where given, so a re-import finds it),
    a country and room for a region or postal code outside the US; clinicians get a version
    (edited on the Clinicians page) and a default service.

    No table is rebuilt (SQLite's batch mode would drop and recreate ``clients``, which every
    other table references): columns are added, and on SQLite the default service is checked
    by lib, not by a foreign key, so that the downgrade can drop the column again."""
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("clients", sa.Column("old_system_id", sa.String(length=60), nullable=True))
    op.add_column(
        "clients", sa.Column("country", sa.String(length=60), nullable=False, server_default="")
    )
    if postgres:  # SQLite does not enforce VARCHAR lengths
        op.alter_column("clients", "state", type_=sa.String(length=60))
        op.alter_column("clients", "zip_code", type_=sa.String(length=16))
    op.create_index("uq_clients_old_system_id", "clients", ["old_system_id"], unique=True)
    op.add_column(
        "clinicians", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("clinicians", sa.Column("default_service_id", sa.Integer(), nullable=True))
    if postgres:
        op.create_foreign_key(
            "fk_clinicians_default_service_id_services",
            "clinicians",
            "services",
            ["default_service_id"],
            ["id"],
        )


def _drop(table: str, column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":  # ALTER TABLE DROP COLUMN, no rebuild
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(
            "fk_clinicians_default_service_id_services", "clinicians", type_="foreignkey"
        )
        # state and zip_code stay wide: narrowing them would fail on an imported region.
    _drop("clinicians", "default_service_id")
    _drop("clinicians", "version")
    op.drop_index("uq_clients_old_system_id", table_name="clients")
    _drop("clients", "country")
    _drop("clients", "old_system_id")
