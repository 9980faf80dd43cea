"""one outbox for every message, the worker's heartbeat, intake limits per address

Revision ID: 0009
Revises: 0003
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_DOCUMENT = "status IN ('queued', 'sent', 'failed')"
NEW_DOCUMENT = "status IN ('queued', 'sent', 'failed', 'generated')"
OLD_SUBMISSION = "status IN ('pending', 'accepted', 'rejected')"
NEW_SUBMISSION = "status IN ('pending', 'accepted', 'rejected', 'spam')"
OUTBOX = "status IN ('queued', 'sending', 'sent', 'failed')"
WAITING = {
    "sms": "Waiting in the outbox: no text-message provider is set up, so texts are not sent.",
    "voice": "Waiting in the outbox: no voice-call provider is set up, so calls are not made.",
}
INTERRUPTED = (
    "Interrupted while sending, before ClientDesk had an outbox; it may not have arrived. "
    "Send it again if needed."
)


def upgrade() -> None:
    """Email goes through message_outbox (drained by `python -m lib.cli worker`), statements
    made as a PDF are logged as "generated", spam is a submission status, and the public
    intake page's per-address limit and the worker's heartbeat live in the database."""
    # A statement made as a PDF was logged "sent" although nobody sent it.
    with op.batch_alter_table('document_log', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_document_log_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_document_log_status'), NEW_DOCUMENT)
    op.execute(
        "UPDATE document_log SET status = 'generated' "
        "WHERE kind = 'statement' AND channel = 'pdf' AND status = 'sent'"
    )
    # Before the outbox an email was "queued" only while the app itself talked to the mail
    # server; one still queued now was cut off half-way and nothing will finish it.
    op.get_bind().execute(
        sa.text(
            "UPDATE document_log SET status = 'failed', error = :error "
            "WHERE status = 'queued' AND channel = 'email'"
        ),
        {"error": INTERRUPTED},
    )

    with op.batch_alter_table('message_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), server_default='', nullable=False))
        batch_op.add_column(sa.Column('ref_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('document_log_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('message', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('send_before', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), server_default='', nullable=False))
        batch_op.create_foreign_key(
            'fk_message_outbox_document_log_id_document_log', 'document_log', ['document_log_id'], ['id']
        )
        batch_op.create_check_constraint(op.f('ck_message_outbox_status'), OUTBOX)
        batch_op.create_index('ix_message_outbox_due', ['channel', 'status', 'next_attempt_at'], unique=False)
    # Texts and voice calls queued so far are all appointment reminders; their log rows say why
    # they wait.
    op.execute("UPDATE message_outbox SET kind = 'reminder' WHERE kind = ''")
    for channel, note in WAITING.items():
        op.get_bind().execute(
            sa.text(
                "UPDATE document_log SET error = :note "
                "WHERE status = 'queued' AND channel = :channel AND error = ''"
            ),
            {"note": note, "channel": channel},
        )

    with op.batch_alter_table('intake_submissions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_intake_submissions_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_intake_submissions_status'), NEW_SUBMISSION)

    op.create_table('intake_rate_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address_key', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_rate_events'))
    )
    with op.batch_alter_table('intake_rate_events', schema=None) as batch_op:
        batch_op.create_index('ix_intake_rate_events_address_at', ['address_key', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_rate_events_at'), ['at'], unique=False)

    op.create_table('worker_status',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_summary', sa.String(length=300), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_worker_status'))
    )


def downgrade() -> None:
    op.drop_table('worker_status')
    with op.batch_alter_table('intake_rate_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_rate_events_at'))
        batch_op.drop_index('ix_intake_rate_events_address_at')
    op.drop_table('intake_rate_events')

    op.execute("UPDATE intake_submissions SET status = 'rejected' WHERE status = 'spam'")
    with op.batch_alter_table('intake_submissions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_intake_submissions_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_intake_submissions_status'), OLD_SUBMISSION)

    # Email still waiting in the outbox cannot be sent by the older version: say so.
    op.execute(
        "UPDATE document_log SET status = 'failed', "
        "error = 'Not sent: ClientDesk was downgraded while it waited in the outbox.' "
        "WHERE status = 'queued' AND channel = 'email'"
    )
    op.execute("DELETE FROM message_outbox WHERE channel = 'email'")
    with op.batch_alter_table('message_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_message_outbox_due')
        batch_op.drop_constraint(op.f('ck_message_outbox_status'), type_='check')
        batch_op.drop_constraint(op.f('fk_message_outbox_document_log_id_document_log'), type_='foreignkey')
        batch_op.drop_column('last_error')
        batch_op.drop_column('finished_at')
        batch_op.drop_column('claim_token')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('send_before')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('message')
        batch_op.drop_column('document_log_id')
        batch_op.drop_column('ref_id')
        batch_op.drop_column('kind')

    op.execute("UPDATE document_log SET status = 'sent' WHERE status = 'generated'")
    with op.batch_alter_table('document_log', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_document_log_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_document_log_status'), OLD_DOCUMENT)
