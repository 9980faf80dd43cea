"""collections: contacts, payment plans, batch keys, weekly digest opt-ins and sends

Revision ID: 0013
Revises: 0012 (given 0007; re-chained after issue15-trends' 0012 when merging it for the digest)
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Issue 15: who was contacted about a balance and what they promised, payment plans, a
    key per batch action (a double click sends once), and the managers' weekly digest."""
    # The worklist reads who owes what since when from indexes alone (fast at 100k clients).
    op.create_index(
        "ix_clients_collections",
        "clients",
        ["client_due_cents", "unapplied_credit_cents", "oldest_unpaid_dos", "insurance_pending_cents"],
    )
    op.create_index(
        "ix_open_charges_client_part",
        "open_charges",
        ["client_id", "responsibility", "service_date", "open_cents"],
    )
    op.create_table(
        "collection_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("follow_up_on", sa.Date(), nullable=True),
        sa.Column("promise_cents", sa.BigInteger(), nullable=True),
        sa.Column("promise_on", sa.Date(), nullable=True),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contacted_by", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.CheckConstraint(
            "kind IN ('call', 'email', 'letter', 'text')", name=op.f("ck_collection_contacts_kind")
        ),
        sa.CheckConstraint(
            "outcome IN ('reached', 'left_message', 'no_answer', 'promised', 'disputed', "
            "'bad_contact', 'sent')",
            name=op.f("ck_collection_contacts_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_collection_contacts_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["contacted_by"], ["users.id"], name=op.f("fk_collection_contacts_contacted_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_contacts")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_collection_contacts_idempotency_key")
        ),
    )
    op.create_index("ix_collection_contacts_client", "collection_contacts", ["client_id", "id"])
    op.create_index("ix_collection_contacts_follow_up", "collection_contacts", ["follow_up_on"])

    op.create_table(
        "payment_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("instalment_cents", sa.BigInteger(), nullable=False),
        sa.Column("schedule", sa.String(length=10), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "schedule IN ('weekly', 'biweekly', 'monthly')", name=op.f("ck_payment_plans_schedule")
        ),
        sa.CheckConstraint("status IN ('active', 'ended')", name=op.f("ck_payment_plans_status")),
        sa.CheckConstraint("instalment_cents > 0", name=op.f("ck_payment_plans_instalment_positive")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_payment_plans_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_payment_plans_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_plans")),
    )
    op.create_index("ix_payment_plans_status_client", "payment_plans", ["status", "client_id"])

    op.create_table(
        "collection_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("chosen_count", sa.Integer(), nullable=False),
        sa.Column("queued_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_collection_batches_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_batches")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_collection_batches_idempotency_key")
        ),
    )

    op.create_table(
        "digest_subscriptions",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_digest_subscriptions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_digest_subscriptions")),
    )
    op.create_table(
        "digest_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_digest_sends_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_sends")),
        sa.UniqueConstraint("user_id", "week_start", name="uq_digest_sends_user_week"),
    )


def downgrade() -> None:
    op.drop_table("digest_sends")
    op.drop_table("digest_subscriptions")
    op.drop_table("collection_batches")
    op.drop_index("ix_payment_plans_status_client", table_name="payment_plans")
    op.drop_table("payment_plans")
    op.drop_index("ix_collection_contacts_follow_up", table_name="collection_contacts")
    op.drop_index("ix_collection_contacts_client", table_name="collection_contacts")
    op.drop_table("collection_contacts")
    op.drop_index("ix_open_charges_client_part", table_name="open_charges")
    op.drop_index("ix_clients_collections", table_name="clients")
