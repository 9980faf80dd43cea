"""Migration 0009 on a database with data (SQLite and PostgreSQL): statements made as a PDF and
logged "sent" become "generated"; an email left "queued" by the old in-app sending (it was cut
off, and nothing will finish it) becomes failed with a reason; texts waiting in the outbox keep
waiting, and say why. Downgrading keeps every row."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from lib import outbox as outbox_module
from lib.db import alembic_config, current_revision, transaction, upgrade
from lib.models import DocumentLogEntry
from tests.factories import insert_client_row

AT = datetime(2026, 11, 1, 15, 0, tzinfo=UTC)


def _to(engine, revision: str, how) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        how(cfg, revision)


def _log(session, client_id: int, kind: str, channel: str, status: str) -> None:
    session.add(
        DocumentLogEntry(
            client_id=client_id,
            kind=kind,
            sent_at=AT,
            sender_user_id=None,
            recipient="",
            form_names=kind,
            attachment_names="",
            channel=channel,
            status=status,
            error="",
        )
    )


def test_0009_backfills_statement_and_stuck_email_rows_and_downgrades(owner_engine):
    engine = owner_engine  # migrations run as the tables' owner (the app's role may not)
    _to(engine, "0003", command.downgrade)
    assert current_revision(engine) == "0003"
    with transaction(engine) as session:
        client_id = insert_client_row(session)  # only the columns 0003 has
        for kind, channel, status in (
            ("statement", "pdf", "sent"),
            ("form", "email", "queued"),
            ("form", "email", "sent"),
            ("reminder", "sms", "queued"),
        ):
            _log(session, client_id, kind, channel, status)
        session.execute(
            text(
                "INSERT INTO message_outbox (client_id, channel, recipient, body, created_at, "
                "status) VALUES (:c, 'sms', '(617) 555-0142', 'Reminder', :at, 'queued')"
            ),
            {"c": client_id, "at": AT},
        )

    upgrade(engine)

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT kind, channel, status, error FROM document_log ORDER BY id")
        ).all()
        outbox = conn.execute(
            text("SELECT channel, status, kind, attempts, last_error FROM message_outbox")
        ).all()
    assert [tuple(r[:3]) for r in rows] == [
        ("statement", "pdf", "generated"),
        ("form", "email", "failed"),
        ("form", "email", "sent"),
        ("reminder", "sms", "queued"),
    ]
    assert rows[1].error.startswith("Interrupted while sending")
    assert rows[3].error == outbox_module.WAITING_FOR_PROVIDER["sms"]
    assert [tuple(r) for r in outbox] == [("sms", "queued", "reminder", 0, "")]

    _to(engine, "0003", command.downgrade)
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM document_log ORDER BY id")).scalars()
        assert list(statuses) == ["sent", "failed", "sent", "queued"]
        assert conn.execute(text("SELECT count(*) FROM message_outbox")).scalar() == 1
    upgrade(engine)
