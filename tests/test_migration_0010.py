"""Migration 0010 on a database with data (SQLite and PostgreSQL): clients saved before it have
search columns folded without transliteration (" thomas østergaard "); after it they are found
by what people type ("thomas ostergaard"), in batches larger than one. Downgrading puts the old
columns back."""

from __future__ import annotations

from datetime import date

import jellyfish
from alembic import command
from sqlalchemy import select

from lib import clients
from lib.db import alembic_config, current_revision, transaction
from lib.models import Client
from tests.factories import insert_client_row, make_user

NAMES = [("Thomas", "Østergaard"), ("Łukasz", "Wałęsa"), ("Zoë", "Brennan"), ("Ann", "Lee")]


def _to(engine, revision: str, how) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    cfg.attributes["backfill_batch"] = 3  # more than one batch for four clients
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        how(cfg, revision)


def _columns(engine) -> dict[str, tuple[str, str]]:
    with transaction(engine) as session:
        rows = session.execute(
            select(Client.last_name, Client.search_name, Client.last_name_key)
        ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_0010_refreshes_the_search_columns_of_existing_clients(owner_engine):
    engine = owner_engine
    _to(engine, "0013", command.downgrade)
    assert current_revision(engine) == "0013"
    old = {  # as the fold before 0010 stored them: ø and ł kept, soundex of the a-z left
        "Østergaard": (" thomas østergaard ", jellyfish.soundex("stergaard")),
        "Wałęsa": (" łukasz wałesa ", jellyfish.soundex("waesa")),
        "Brennan": (" zoe brennan ", jellyfish.soundex("brennan")),
        "Lee": (" ann lee ", jellyfish.soundex("lee")),
    }
    with transaction(engine) as session:
        for n, (first, last) in enumerate(NAMES):
            search_name, key = old[last]
            insert_client_row(
                session,
                client_number=7001 + n,
                first_name=first,
                last_name=last,
                dob=date(1970, 1, 1),
                search_name=search_name,
                last_name_key=key,
            )

    _to(engine, "0010", command.upgrade)
    assert current_revision(engine) == "0010"

    after = _columns(engine)
    for first, last in NAMES:
        built = clients.search_columns(first_name=first, last_name=last)
        assert after[last] == (built["search_name"], built["last_name_key"])
    assert after["Østergaard"] == (" thomas ostergaard ", jellyfish.soundex("ostergaard"))
    with transaction(engine) as session:
        manager = make_user(session, "manager")
        found = clients.list_clients(session, actor=manager, query="thomas ostergaard")
        assert [r.name for r in found.rows] == ["Østergaard, Thomas"]

    _to(engine, "0013", command.downgrade)
    assert _columns(engine) == {last: old[last] for _, last in NAMES}
    _to(engine, "head", command.upgrade)
