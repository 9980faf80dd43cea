"""adjustment reasons and the A/R-over-time projection

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-07 14:00:00

Adjustments carry a reason (contractual, write-off, other) so the net collection rate can
leave contractual adjustments out. The column is added with a server default: existing rows
read "other" without any UPDATE of the append-only ledger (its triggers refuse UPDATE), and a
plain ADD COLUMN (no batch copy) keeps the ledger's triggers.

``ar_changes`` is a projection of the ledger (lib.ar_history) built here from the existing
ledger, as every other projection is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ledger_entries",
        sa.Column(
            "adjustment_reason", sa.String(length=12), server_default="other", nullable=False
        ),
    )
    op.create_table(
        "ar_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.Column("responsibility", sa.String(length=10), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=False),
        sa.Column("payer_key", sa.String(length=120), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ar_changes")),
    )
    op.create_index(
        "ux_ar_changes_key",
        "ar_changes",
        [
            "day",
            "part",
            "responsibility",
            "clinician_id",
            "payer_id",
            "payer_key",
            "service_date",
        ],
        unique=True,
    )
    from sqlalchemy.orm import Session

    from lib import ar_history

    session = Session(bind=op.get_bind())
    ar_history.rebuild(session)
    session.flush()


def downgrade() -> None:
    op.drop_index("ux_ar_changes_key", table_name="ar_changes")
    op.drop_table("ar_changes")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of the ledger would lose its triggers.
    op.execute("ALTER TABLE ledger_entries DROP COLUMN adjustment_reason")
