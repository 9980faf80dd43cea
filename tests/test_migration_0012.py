"""Migration 0012 on a database with a ledger (SQLite and PostgreSQL): existing adjustments
read "other" without any UPDATE of the append-only ledger (its guard still refuses one), and
the A/R-over-time projection is built from the ledger that is there."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lib import ar_history, ar_trend
from lib.db import alembic_config, current_revision, transaction, upgrade
from tests.factories import insert_client_row

POSTED = datetime(2026, 10, 15, 16, 0, tzinfo=UTC)


def _to(engine, revision: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _entry(session, n: int, client_id: int, kind: str, cents: int, dos: date) -> None:
    session.execute(
        text(
            "INSERT INTO ledger_entries (client_id, kind, responsibility, amount_cents, "
            "service_date, posted_at, method, reference, authorization_code, memo, "
            "idempotency_key, payer_name) VALUES (:c, :k, 'client', :a, :d, :p, '', '', '', "
            "'', :key, '')"
        ),
        {"c": client_id, "k": kind, "a": cents, "d": dos, "p": POSTED, "key": f"m12-{n}"},
    )


def test_0012_gives_old_adjustments_other_and_builds_the_projection(owner_engine):
    engine = owner_engine  # migrations run as the tables' owner
    _to(engine, "0007")
    assert current_revision(engine) == "0007"
    with transaction(engine) as session:
        client_id = insert_client_row(session)
        _entry(session, 1, client_id, "charge", 9000, date(2026, 10, 1))
        _entry(session, 2, client_id, "adjustment", 2000, date(2026, 10, 15))

    upgrade(engine)

    with engine.connect() as conn:
        reasons = conn.execute(
            text("SELECT kind, adjustment_reason FROM ledger_entries ORDER BY id")
        ).all()
    assert [tuple(r) for r in reasons] == [("charge", "other"), ("adjustment", "other")]
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("UPDATE ledger_entries SET adjustment_reason = 'contractual'"))
    with transaction(engine) as session:
        figures = ar_trend.month_end_figures(session, 2, today=date(2026, 11, 5))
        kept = ar_history.stored(session)
        ar_history.rebuild(session)
        assert ar_history.stored(session) == kept
        session.rollback()
    october = figures[0]
    assert october["month_end"] == date(2026, 10, 31)
    assert (october["client_cents"], october["charges_cents"]) == (7000, 9000)
    assert october["adjustments_by_reason"] == {"contractual": 0, "write_off": 0, "other": 2000}
