"""Counts and balance sums per (status, clinician), so the client list's totals cost nothing.

Every change that moves a client's balance, status or clinician adjusts these rows in the same
transaction (``adjust``); ``rebuild`` recomputes them from the client rows (demo load,
migration) and ``differences`` is what reconciliation checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lib.models import Client, ClientTotal

SUMS = ("client_due_cents", "insurance_pending_cents", "unapplied_credit_cents", "total_cents")


@dataclass(frozen=True)
class Totals:
    client_count: int
    client_due_cents: int
    insurance_pending_cents: int
    unapplied_credit_cents: int
    total_cents: int


def adjust(
    session: Session,
    *,
    status: str,
    clinician_id: int | None,
    count: int = 0,
    client_due_cents: int = 0,
    insurance_pending_cents: int = 0,
    unapplied_credit_cents: int = 0,
    total_cents: int = 0,
) -> None:
    """Add the given deltas to one (status, clinician) row, creating it when missing."""
    deltas = {
        "client_count": count,
        "client_due_cents": client_due_cents,
        "insurance_pending_cents": insurance_pending_cents,
        "unapplied_credit_cents": unapplied_credit_cents,
        "total_cents": total_cents,
    }
    if not any(deltas.values()):
        return
    dialect = session.get_bind().dialect.name
    build = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = build(ClientTotal).values(status=status, clinician_id=clinician_id or 0, **deltas)
    statement = statement.on_conflict_do_update(
        index_elements=["status", "clinician_id"],
        set_={k: getattr(ClientTotal, k) + statement.excluded[k] for k in deltas},
    )
    session.execute(statement)


def move(
    session: Session,
    *,
    old: tuple[str, int | None],
    new: tuple[str, int | None],
    balances: dict[str, int],
) -> None:
    """A client changed status or clinician: carry its count and balances across."""
    if (old[0], old[1] or 0) == (new[0], new[1] or 0):
        return
    # Same order every time (sorted keys), so two movers cannot deadlock on PostgreSQL.
    for key, sign in sorted([(old, -1), (new, 1)], key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        adjust(
            session,
            status=key[0],
            clinician_id=key[1],
            count=sign,
            **{k: sign * balances.get(k, 0) for k in SUMS},
        )


def _grouped(session: Session) -> dict[tuple[str, int], Totals]:
    # A literal 0 (not a bound parameter), so PostgreSQL sees the same expression twice.
    clinician = func.coalesce(Client.clinician_id, literal_column("0"))
    rows = session.execute(
        select(
            Client.status,
            clinician,
            func.count(),
            *[func.coalesce(func.sum(getattr(Client, k)), 0) for k in SUMS],
        ).group_by(Client.status, clinician)
    ).all()
    return {(r[0], int(r[1])): Totals(*(int(v) for v in r[2:])) for r in rows}


def rebuild(session: Session) -> None:
    """Recompute every row from the client rows (after a bulk load or a migration)."""
    session.execute(delete(ClientTotal))
    rows = [
        {"status": status, "clinician_id": clinician, **vars(t)}
        for (status, clinician), t in _grouped(session).items()
    ]
    if rows:
        session.execute(insert(ClientTotal), rows)


def summed(
    session: Session, *, statuses: tuple[str, ...], clinician_id: int | None = None
) -> Totals:
    """Totals of clients in these statuses (and of one clinician when given)."""
    query = select(
        func.coalesce(func.sum(ClientTotal.client_count), 0),
        *[func.coalesce(func.sum(getattr(ClientTotal, k)), 0) for k in SUMS],
    )
    if statuses:
        query = query.where(ClientTotal.status.in_(statuses))
    if clinician_id is not None:
        query = query.where(ClientTotal.clinician_id == clinician_id)
    return Totals(*(int(v) for v in session.execute(query).one()))


def practice_credit(session: Session) -> int:
    return int(session.scalar(select(func.sum(ClientTotal.unapplied_credit_cents))) or 0)


def differences(session: Session) -> list[str]:
    """Rows whose stored totals disagree with the client rows (empty when all agree)."""
    stored = {
        (t.status, t.clinician_id): Totals(
            t.client_count,
            t.client_due_cents,
            t.insurance_pending_cents,
            t.unapplied_credit_cents,
            t.total_cents,
        )
        for t in session.scalars(select(ClientTotal))
    }
    actual = _grouped(session)
    problems = []
    for key in sorted(set(stored) | set(actual)):
        zero = Totals(0, 0, 0, 0, 0)
        if stored.get(key, zero) != actual.get(key, zero):
            problems.append(
                f"list totals for status {key[0]}, clinician {key[1]}: stored "
                f"{stored.get(key, zero)} but the clients add up to {actual.get(key, zero)}"
            )
    return problems
