"""The demo practice's collections history, so the worklist is alive on the first `make run`.

Picks clients who owe, deterministically (most owed first), and gives them contacts (some with
a promise to pay, some with a follow-up due today) and two payment plans: one kept to, one a
payment behind. Plan payments are ledger entries like the demo's others (posted at 17:00 UTC
on their day, never after the demo's today), and the balances are refreshed from the ledger.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from lib.ledger import refresh_client
from lib.models import Client, CollectionContact, LedgerEntry, PaymentPlan, User
from lib.payment_plans import due_dates

# (kind, outcome, note, days ago, follow-up in days from today or None, promise days or None)
# The most telling first: a small practice has few clients who owe.
CONTACTS = (
    ("call", "left_message", "Left a voicemail about the balance.", 9, 0, None),
    ("call", "promised", "Will pay half at the next visit.", 6, 5, 10),
    ("text", "promised", "Texted back: paying online this week.", 1, 7, 4),
    ("call", "no_answer", "", 3, -1, None),
    ("email", "sent", "Sent the account reminder.", 20, None, None),
    ("letter", "sent", "Mailed a statement with a note.", 15, 14, None),
    ("call", "reached", "Asked for an itemised statement.", 2, 0, None),
    ("call", "disputed", "Says insurance should have paid; checking the EOB.", 4, 3, None),
)


def _at(day: date) -> datetime:
    return datetime.combine(day, time(17, 0), tzinfo=UTC)


def seed_collections(session: Session, *, today: date) -> dict[str, int]:
    """Contacts for the clients who owe most, and an on-track and a behind payment plan."""
    owing = session.scalars(
        select(Client.id)
        .where(Client.client_due_cents - Client.unapplied_credit_cents > 0)
        .order_by((Client.client_due_cents - Client.unapplied_credit_cents).desc(), Client.id)
        .limit(len(CONTACTS) + 2)
    ).all()
    if len(owing) < 3:
        return {"contacts": 0, "plans": 0}
    biller = session.scalar(select(User.id).where(User.username == "biller"))
    contacts = []
    for n, (client_id, spec) in enumerate(zip(owing[2:], CONTACTS, strict=False)):
        kind, outcome, note, ago, follow, promise = spec
        contacts.append(
            {
                "client_id": client_id,
                "kind": kind,
                "outcome": outcome,
                "note": note,
                "follow_up_on": None if follow is None else today + timedelta(days=follow),
                "promise_cents": 5_000 if promise is not None else None,
                "promise_on": None if promise is None else today + timedelta(days=promise),
                "contacted_at": _at(today - timedelta(days=ago)),
                "contacted_by": biller,
                "idempotency_key": f"demo-contact-{n}",
            }
        )
    session.execute(insert(CollectionContact), contacts)

    # Two plans on the clients who owe most: monthly and kept to; weekly and one behind.
    plans = (
        (owing[0], 5_000, "monthly", today - timedelta(days=40), 0),
        (owing[1], 2_500, "weekly", today - timedelta(days=30), 1),
    )
    for client_id, cents, schedule, start, missed in plans:
        session.add(
            PaymentPlan(
                client_id=client_id,
                instalment_cents=cents,
                schedule=schedule,
                start_on=start,
                status="active",
                created_at=_at(start),
                created_by=biller,
            )
        )
        days = due_dates(schedule, start, today)
        for i, day in enumerate(days[: len(days) - missed]):
            session.add(
                LedgerEntry(
                    client_id=client_id,
                    kind="payment",
                    responsibility="client",
                    amount_cents=cents,
                    service_date=day,
                    posted_at=_at(day),
                    method="card",
                    reference="plan",
                    memo="Payment plan instalment",
                    idempotency_key=f"demo-plan-{client_id}-{i}",
                    created_by=None,
                )
            )
        session.flush()
        refresh_client(session, client_id)
    return {"contacts": len(contacts), "plans": len(plans)}
