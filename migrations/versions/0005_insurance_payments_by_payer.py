"""insurance payments by payer: payer names on the ledger, insurance credit per payer

Revision ID: 0005
Revises: 0009 (assigned 0003; re-chained after merging main)
Create Date: 2026-11-30 05:30:00

An insurance payment now pays only its own payer's open charges, and what it leaves over is
that payer's insurance credit, not the client's credit (issue 10). The ledger and open
charges gain the payer's name for payers typed on a coverage (filled in for old charges where
the client's coverages name exactly one such payer), clients gain an insurance-credit column,
insurance credit per payer gets its own projection table, and the ledger gets an index on
``posted_at`` for point-in-time reports (issue 11). Every client's projections are then
recomputed with the new rules (the same pure ``lib.ledger.replay`` the app uses).
"""

from collections.abc import Sequence
from itertools import groupby

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0009"  # assigned "0003"; re-chained after main gained 0009
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000


def _without_ledger_triggers(statement: str) -> None:
    """Run one backfill UPDATE on the append-only ledger with its guard lifted just for it."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_no_update")
        op.execute(statement)
        op.execute(
            "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries "
            "BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END"
        )
        return
    op.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only")
    op.execute(statement)
    op.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only")


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): a copied ledger table would lose its triggers.
    op.add_column(
        "ledger_entries",
        sa.Column("payer_name", sa.String(length=120), server_default="", nullable=False),
    )
    op.add_column(
        "open_charges",
        sa.Column("payer_name", sa.String(length=120), server_default="", nullable=False),
    )
    op.add_column(
        "clients",
        sa.Column("insurance_credit_cents", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_index("ix_ledger_posted_at", "ledger_entries", ["posted_at", "client_id"])
    # The aging report's covering index now covers the payer's name too.
    op.drop_index("ix_open_charges_aging", table_name="open_charges")
    op.create_index(
        "ix_open_charges_aging",
        "open_charges",
        ["responsibility", "clinician_id", "payer_id", "payer_name", "service_date", "open_cents"],
    )
    op.create_table(
        "insurance_credits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=True),
        sa.Column("payer_name", sa.String(length=120), server_default="", nullable=False),
        sa.Column("credit_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_insurance_credits_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_insurance_credits_payer_id_payers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_credits")),
    )
    op.create_index("ix_insurance_credits_client", "insurance_credits", ["client_id"])

    # Insurance charges posted for a coverage whose payer was typed by name carry no payer id;
    # name them after that coverage when the client's coverages name exactly one such payer.
    typed = (
        "FROM coverages c WHERE c.client_id = ledger_entries.client_id "
        "AND c.payer_id IS NULL AND c.payer_name <> ''"
    )
    _without_ledger_triggers(
        f"UPDATE ledger_entries SET payer_name = (SELECT MIN(c.payer_name) {typed}) "
        "WHERE kind = 'charge' AND responsibility = 'insurance' AND payer_id IS NULL "
        f"AND (SELECT COUNT(DISTINCT c.payer_name) {typed}) = 1"
    )
    _recompute_projections()


def _recompute_projections() -> None:
    from lib.ledger import Posting, balance_rows, credit_rows, replay

    bind = op.get_bind()
    meta = sa.MetaData()
    clients = sa.Table("clients", meta, autoload_with=bind)
    ledger = sa.Table("ledger_entries", meta, autoload_with=bind)
    open_charges = sa.Table("open_charges", meta, autoload_with=bind)
    credits = sa.Table("insurance_credits", meta, autoload_with=bind)
    balance_names = (
        "client_due_cents",
        "insurance_pending_cents",
        "unapplied_credit_cents",
        "insurance_credit_cents",
        "total_cents",
        "oldest_unpaid_dos",
    )
    bind.execute(sa.delete(open_charges))
    last_id = 0
    while True:
        ids = list(
            bind.scalars(
                sa.select(clients.c.id)
                .where(clients.c.id > last_id)
                .order_by(clients.c.id)
                .limit(BATCH)
            )
        )
        if not ids:
            break
        last_id = ids[-1]
        rows = bind.execute(
            sa.select(
                ledger.c.client_id,
                ledger.c.id,
                ledger.c.kind,
                ledger.c.responsibility,
                ledger.c.amount_cents,
                ledger.c.service_date,
                ledger.c.reverses_entry_id,
                ledger.c.clinician_id,
                ledger.c.payer_id,
                ledger.c.payer_name,
            )
            .where(ledger.c.client_id.between(ids[0], last_id))
            .order_by(ledger.c.client_id, ledger.c.id)
        ).all()
        by_client = {k: [Posting(*r[1:]) for r in g] for k, g in groupby(rows, lambda r: r[0])}
        updates, items, credit_items = [], [], []
        for client_id in ids:
            state = replay(by_client.get(client_id, []))
            balance, open_rows = balance_rows(client_id, state)
            updates.append({"cid": client_id, **balance})
            items.extend(open_rows)
            credit_items.extend(credit_rows(client_id, state))
        bind.execute(
            sa.update(clients)
            .where(clients.c.id == sa.bindparam("cid"))
            .values({name: sa.bindparam(name) for name in balance_names}),
            updates,
        )
        if items:
            bind.execute(sa.insert(open_charges), items)
        if credit_items:
            bind.execute(sa.insert(credits), credit_items)
    bind.execute(sa.text("DELETE FROM client_totals"))
    bind.execute(
        sa.text(
            "INSERT INTO client_totals (status, clinician_id, client_count, client_due_cents, "
            "insurance_pending_cents, unapplied_credit_cents, total_cents) "
            "SELECT status, COALESCE(clinician_id, 0), COUNT(*), SUM(client_due_cents), "
            "SUM(insurance_pending_cents), SUM(unapplied_credit_cents), SUM(total_cents) "
            "FROM clients GROUP BY status, COALESCE(clinician_id, 0)"
        )
    )


def downgrade() -> None:
    # The projections keep the per-payer rules until recomputed by the older code.
    op.drop_index("ix_insurance_credits_client", table_name="insurance_credits")
    op.drop_table("insurance_credits")
    op.drop_index("ix_ledger_posted_at", table_name="ledger_entries")
    op.drop_index("ix_open_charges_aging", table_name="open_charges")
    op.create_index(
        "ix_open_charges_aging",
        "open_charges",
        ["responsibility", "clinician_id", "payer_id", "service_date", "open_cents"],
    )
    op.drop_column("clients", "insurance_credit_cents")
    op.drop_column("open_charges", "payer_name")
    op.drop_column("ledger_entries", "payer_name")
