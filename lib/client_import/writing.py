"""Writing the accepted rows of an import: clients, their first status, their opening
balances as ledger entries, the projections and the audit — a few statements per thousand
rows, inside the caller's one transaction (all or nothing)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from lib import ar_history, client_totals, ledger
from lib.audit import to_json
from lib.clients import search_columns
from lib.db import exclusive
from lib.models import AuditEntry, Client, ClientStatusChange, LedgerEntry
from lib.policy import Actor

from .rows import Row

OPENING_MEMO = "Opening balance"
CREDIT_MEMO = "Opening balance (credit)"
CHUNK = 1000


def opening_key(client_id: int, responsibility: str) -> str:
    """One opening balance of each kind per client, ever: posting it again is a no-op."""
    return f"opening:{client_id}:{responsibility}"


def _client_row(row: Row, number: int, actor: Actor | None, now: datetime) -> dict:
    v = row.values
    return {
        "client_number": number,
        "first_name": v["first_name"],
        "middle_name": v["middle_name"] or "",
        "last_name": v["last_name"],
        "preferred_name": v["preferred_name"] or "",
        "dob": v["dob"],
        "sex": v["sex"],
        "status": v["status"],
        "clinician_id": v["clinician_id"],
        "client_since": v["client_since"],
        "address_line1": v["address_line1"] or "",
        "address_line2": v["address_line2"] or "",
        "city": v["city"] or "",
        "state": v["state"],
        "zip_code": v["zip_code"],
        "country": v["country"],
        "phone_mobile": v["phone_mobile"],
        "phone_home": v["phone_home"],
        "preferred_phone": "mobile" if v["phone_mobile"] or not v["phone_home"] else "home",
        "email": v["email"],
        "old_system_id": v["old_system_id"],
        "created_at": now,
        "updated_at": now,
        "updated_by": actor.user_id if actor else None,
        "version": 1,
        **search_columns(
            first_name=v["first_name"],
            middle_name=v["middle_name"] or "",
            last_name=v["last_name"],
            preferred_name=v["preferred_name"] or "",
            email=v["email"],
            phones=(v["phone_mobile"], v["phone_home"]),
        ),
    }


def write_rows(
    session: Session,
    *,
    rows: list[Row],
    actor: Actor | None,
    now: datetime,
    filename: str,
) -> tuple[dict[int, int], int]:
    """Insert the rows' clients; returns {row number: client number} and how many opening
    balance entries were posted."""
    if not rows:
        return {}, 0
    exclusive(session, "client_number")
    first = int(session.scalar(select(func.coalesce(func.max(Client.client_number), 999))) + 1)
    numbers: dict[int, int] = {}
    ids: dict[int, int] = {}  # row number -> client id
    conn = session.connection()  # Core executemany: one batched INSERT per chunk
    params = [_client_row(r, first + i, actor, now) for i, r in enumerate(rows)]
    for start in range(0, len(params), CHUNK):
        conn.execute(insert(Client.__table__), params[start : start + CHUNK])
    by_number = dict(
        conn.execute(
            select(Client.client_number, Client.id).where(
                Client.client_number.between(first, first + len(rows) - 1)
            )
        ).all()
    )
    for i, r in enumerate(rows):
        numbers[r.number] = first + i
        ids[r.number] = by_number[first + i]
    conn.execute(
        insert(ClientStatusChange.__table__),
        [
            {
                "client_id": ids[r.number],
                "old_status": None,
                "new_status": r.values["status"],
                "reason": "Imported",
                "changed_at": now,
                "changed_by": actor.user_id if actor else None,
            }
            for r in rows
        ],
    )
    groups = Counter((r.values["status"], r.values["clinician_id"]) for r in rows)
    for (status, clinician_id), count in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)
    ):
        client_totals.adjust(session, status=status, clinician_id=clinician_id, count=count)

    entries = []
    for r in rows:
        o = r.opening
        for responsibility, cents in (
            ("client", o["client_due_cents"]),
            ("insurance", o["insurance_pending_cents"]),
        ):
            if cents:
                insured = responsibility == "insurance"
                entries.append(
                    {
                        "client_id": ids[r.number],
                        "kind": "charge",
                        "responsibility": responsibility,
                        "amount_cents": cents,
                        "service_date": o["service_date"],
                        "posted_at": now,
                        "clinician_id": r.values["clinician_id"],
                        "payer_id": o["payer_id"] if insured else None,
                        "payer_name": o["payer_name"] if insured else "",
                        "memo": OPENING_MEMO,
                        "idempotency_key": opening_key(ids[r.number], responsibility),
                        "created_by": actor.user_id if actor else None,
                    }
                )
    for r in rows:  # after the charges, so a credit never pays the client's opening charge
        if r.opening["credit_cents"]:
            entries.append(
                {
                    "client_id": ids[r.number],
                    "kind": "payment",
                    "responsibility": "client",
                    "amount_cents": r.opening["credit_cents"],
                    "service_date": r.opening["service_date"],
                    "posted_at": now,
                    "method": "other",
                    "memo": CREDIT_MEMO,
                    "idempotency_key": opening_key(ids[r.number], "credit"),
                    "created_by": actor.user_id if actor else None,
                }
            )
    blank = {"method": "", "clinician_id": None, "payer_id": None, "payer_name": ""}
    entries = [blank | e for e in entries]  # one shape, so each chunk is one statement
    for start in range(0, len(entries), CHUNK):
        conn.execute(insert(LedgerEntry.__table__), entries[start : start + CHUNK])
    ledger.refresh_clients(session, {e["client_id"] for e in entries})
    ar_history.add_new_clients(session, {e["client_id"] for e in entries})

    audit_rows = []
    for r in rows:
        o = r.opening
        after = {k: v for k, v in r.values.items() if v not in (None, "")} | {
            "client_number": numbers[r.number]
        }
        if o["client_due_cents"] or o["insurance_pending_cents"] or o["credit_cents"]:
            after |= {
                "opening_client_due_cents": o["client_due_cents"],
                "opening_insurance_pending_cents": o["insurance_pending_cents"],
                "opening_client_credit_cents": o["credit_cents"],
                "opening_service_date": o["service_date"],
            }
        audit_rows.append(
            {
                "at": now,
                "actor_user_id": actor.user_id if actor else None,
                "actor_username": actor.username if actor else "system",
                "action": "client.import",
                "entity": "client",
                "entity_id": str(ids[r.number]),
                "client_id": ids[r.number],
                "before_json": None,
                "after_json": to_json(after),
                "detail": f"imported from {filename} row {r.number}"[:500],
            }
        )
    for start in range(0, len(audit_rows), CHUNK):
        conn.execute(insert(AuditEntry.__table__), audit_rows[start : start + CHUNK])
    return numbers, len(entries)
