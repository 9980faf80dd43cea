"""Migration 0013 (collections, issue 15) goes down and up again on both engines, and the
worklist's covering indexes are there after it."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from lib.db import alembic_config, current_revision, head_revision, upgrade

TABLES = {
    "collection_contacts",
    "payment_plans",
    "collection_batches",
    "digest_subscriptions",
    "digest_sends",
}


def _down(engine, revision: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_0013_goes_down_and_up_with_its_tables_and_indexes(owner_engine):
    engine = owner_engine  # migrations run as the tables' owner
    _down(engine, "0012")
    assert current_revision(engine) == "0012"
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)  # to the head, which comes after 0013
    assert current_revision(engine) == head_revision(str(engine.url))
    found = inspect(engine)
    assert set(found.get_table_names()) >= TABLES
    assert "ix_clients_collections" in {i["name"] for i in found.get_indexes("clients")}
    assert "ix_open_charges_client_part" in {i["name"] for i in found.get_indexes("open_charges")}
