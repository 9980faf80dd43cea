"""search name transliterated (ø, ł, æ, ß, đ)

Revision ID: 0010
Revises: 0013
Create Date: 2026-12-07 14:00:00

The stored search columns of every client (``search_name`` and the sound-alike
``last_name_key``) are rebuilt with ``lib.clients.fold``, which now transliterates with anyascii:
"Thomas Østergaard" is stored as " thomas ostergaard " and found by ``thomas ostergaard``
(issue 11 item 6). Rows are read and written in batches of ``BATCH`` in id order, and only rows
whose columns change are written, so a large practice's backfill stays small in memory.
"""

import re
import unicodedata
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0010"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000

_CLIENTS = sa.table(
    "clients",
    sa.column("id", sa.Integer),
    sa.column("first_name", sa.String),
    sa.column("middle_name", sa.String),
    sa.column("last_name", sa.String),
    sa.column("preferred_name", sa.String),
    sa.column("search_name", sa.String),
    sa.column("last_name_key", sa.String),
)


def _current(row) -> dict[str, str]:
    """The columns as lib.clients builds them today (anyascii folding)."""
    from lib.clients import search_columns

    built = search_columns(
        first_name=row.first_name,
        middle_name=row.middle_name or "",
        last_name=row.last_name,
        preferred_name=row.preferred_name or "",
    )
    return {"search_name": built["search_name"], "last_name_key": built["last_name_key"]}


def _before_0010(row) -> dict[str, str]:
    """The columns as they were built before this revision (accents stripped by NFKD only)."""
    import jellyfish

    def fold(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", text or "")
        return "".join(c for c in decomposed if not unicodedata.combining(c)).lower().strip()

    parts = (row.first_name, row.middle_name, row.last_name, row.preferred_name)
    names = " ".join(p for p in parts if p)
    letters = re.sub(r"[^a-z]", "", fold(row.last_name))
    return {
        "search_name": " " + re.sub(r"\s+", " ", fold(names)) + " ",
        "last_name_key": jellyfish.soundex(letters) if letters else "",
    }


def _refresh(build: Callable) -> None:
    bind = op.get_bind()
    c = _CLIENTS.c
    update = (
        sa.update(_CLIENTS)
        .where(c.id == sa.bindparam("row_id"))
        .values(
            search_name=sa.bindparam("new_search_name"),
            last_name_key=sa.bindparam("new_last_name_key"),
        )
    )
    batch = context.config.attributes.get("backfill_batch", BATCH)  # tests use small batches
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(
                c.id,
                c.first_name,
                c.middle_name,
                c.last_name,
                c.preferred_name,
                c.search_name,
                c.last_name_key,
            )
            .where(c.id > last_id)
            .order_by(c.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        changed = []
        for row in rows:
            new = build(row)
            if new["search_name"] != row.search_name or new["last_name_key"] != row.last_name_key:
                changed.append(
                    {
                        "row_id": row.id,
                        "new_search_name": new["search_name"],
                        "new_last_name_key": new["last_name_key"],
                    }
                )
        if changed:
            bind.execute(update, changed)
        last_id = rows[-1].id


def upgrade() -> None:
    _refresh(_current)


def downgrade() -> None:
    _refresh(_before_0010)
