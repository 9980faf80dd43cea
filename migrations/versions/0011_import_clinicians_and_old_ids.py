"""clients imported from another system; clinicians managed in the app

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Issue 14: the old system's client id (unique where given, so a re-import finds it),
    a country and room for a region or postal code outside the US; clinicians get a version
    (edited on the Clinicians page) and a default service."""
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("old_system_id", sa.String(length=60), nullable=True))
        batch_op.add_column(
            sa.Column("country", sa.String(length=60), nullable=False, server_default="")
        )
        if postgres:  # SQLite does not enforce VARCHAR lengths
            batch_op.alter_column("state", type_=sa.String(length=60))
            batch_op.alter_column("zip_code", type_=sa.String(length=16))
        batch_op.create_index("uq_clients_old_system_id", ["old_system_id"], unique=True)
    with op.batch_alter_table("clinicians", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("default_service_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_clinicians_default_service_id_services", "services", ["default_service_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("clinicians", schema=None) as batch_op:
        batch_op.drop_constraint("fk_clinicians_default_service_id_services", type_="foreignkey")
        batch_op.drop_column("default_service_id")
        batch_op.drop_column("version")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index("uq_clients_old_system_id")
        batch_op.drop_column("country")
        batch_op.drop_column("old_system_id")
