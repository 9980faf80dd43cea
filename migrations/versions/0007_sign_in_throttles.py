"""sign-in throttles for usernames without an account

Revision ID: 0007
Revises: 0008 (assigned 0003; re-chained after main's 0009, 0005 and 0008 when merging main)
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """An unknown username locks after the same wrong tries as a real one (issue 12 item 5):
    its count lives here, shared by every replica, keyed by a hash of the typed name."""
    op.create_table(
        'sign_in_throttles',
        sa.Column('name_hash', sa.String(length=64), nullable=False),
        sa.Column('failed_count', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name_hash', name=op.f('pk_sign_in_throttles')),
    )
    with op.batch_alter_table('sign_in_throttles', schema=None) as batch_op:
        batch_op.create_index('ix_sign_in_throttles_updated_at', ['updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sign_in_throttles', schema=None) as batch_op:
        batch_op.drop_index('ix_sign_in_throttles_updated_at')
    op.drop_table('sign_in_throttles')
