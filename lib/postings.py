"""Posting to the ledger: charges, payments, adjustments, refunds and reversals (spec B2, B3).

Every posting, in one transaction: lock the client's row (so two postings for one client queue
instead of racing), insert one append-only ledger entry, recompute the client's projections
(``lib.ledger.refresh_client``) and write an audit row. Each posting carries an idempotency key:
posting the same key again returns the first posting instead of posting twice (a double-click,
a retried request).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lib import ar_history, audit, insurance
from lib.ledger import ClientState, PayerRef, clean_payer_name, client_state, refresh_client
from lib.models import Client, LedgerEntry, Payer
from lib.policy import Actor, require_client_access
from lib.timeutil import practice_today, utcnow
from lib.validation import ValidationError, clean_note

METHOD_LABELS = {"card": "Card", "cash": "Cash", "check": "Check", "ach": "ACH", "other": "Other"}
PAYER_LABELS = {"client": "Client", "insurance": "Insurance"}
ADJUSTMENT_REASON_LABELS = {
    "contractual": "Contractual (payer's allowed amount)",
    "write_off": "Write-off (bad debt, small balance)",
    "other": "Other",
}
MAX_POSTING_CENTS = 100_000_00


class PostingError(ValueError):
    """The posting is not allowed as asked (the message says why); nothing was written."""


@dataclass(frozen=True)
class PostingResult:
    entry_id: int
    client_id: int
    kind: str
    amount_cents: int
    duplicate: bool  # True: this idempotency key was posted before; nothing new was written
    client_due_cents: int
    insurance_pending_cents: int
    unapplied_credit_cents: int
    total_cents: int


def _result(entry: LedgerEntry, state: ClientState, duplicate: bool) -> PostingResult:
    return PostingResult(
        entry_id=entry.id,
        client_id=entry.client_id,
        kind=entry.kind,
        amount_cents=entry.amount_cents,
        duplicate=duplicate,
        client_due_cents=state.client_due_cents,
        insurance_pending_cents=state.insurance_pending_cents,
        unapplied_credit_cents=state.unapplied_credit_cents,
        total_cents=state.total_cents,
    )


def _lock_client(session: Session, client_id: int) -> Client:
    """Row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers."""
    client = session.scalar(select(Client).where(Client.id == client_id).with_for_update())
    if client is None:
        raise PostingError("There is no such client.")
    return client


def _existing(session: Session, key: str) -> LedgerEntry | None:
    return session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))


def _same_client(previous: LedgerEntry, client_id: int) -> None:
    if previous.client_id != client_id:
        raise PostingError("This posting key was already used for another client.")


def check_reference(method: str, reference: str) -> str:
    """A check number, the card's last 4 digits and the like — never a card number."""
    text = (reference or "").strip()
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 12:
        raise ValidationError(
            {"reference": "Never enter a card number. For cards, enter only the last 4 digits."}
        )
    if method == "card" and text and not re.fullmatch(r"\d{4}", text):
        raise ValidationError({"reference": "For a card, enter the last 4 digits only."})
    if len(text) > 60:
        raise ValidationError({"reference": "The reference can be at most 60 characters."})
    return text


def _post(
    session: Session,
    *,
    actor: Actor | None,
    client_id: int,
    action: str,
    idempotency_key: str,
    entry: dict,
    detail: str = "",
    precheck: Callable[[ClientState], None] | None = None,
) -> PostingResult:
    key = (idempotency_key or "").strip()
    if not key or len(key) > 80:
        raise PostingError("A posting needs an idempotency key of 1-80 characters.")
    client = _lock_client(session, client_id)
    if actor is not None:
        require_client_access(actor, action, client.clinician_id)
    previous = _existing(session, key)
    if previous is not None:
        _same_client(previous, client_id)
        state = refresh_client(session, client_id)
        return _result(previous, state, duplicate=True)
    if precheck is not None:
        precheck(client_state(session, client_id))  # under the client lock
    amount = entry["amount_cents"]
    if not isinstance(amount, int) or amount <= 0 or amount > MAX_POSTING_CENTS:
        raise PostingError("The amount must be a positive number of cents up to $100,000.")
    now = utcnow()
    row = LedgerEntry(
        client_id=client_id,
        posted_at=now,
        idempotency_key=key,
        created_by=actor.user_id if actor else None,
        method=entry.pop("method", ""),
        reference=entry.pop("reference", ""),
        authorization_code=entry.pop("authorization_code", ""),
        memo=entry.pop("memo", ""),
        **entry,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # Another transaction posted the same key between our check and our insert.
        previous = _existing(session, key)
        if previous is None:
            raise PostingError(
                "This posting clashes with one made a moment ago (an entry can be reversed "
                "only once). Reload to see the ledger."
            ) from None
        _same_client(previous, client_id)
        return _result(previous, refresh_client(session, client_id), duplicate=True)
    state = refresh_client(session, client_id)
    original = session.get(LedgerEntry, row.reverses_entry_id) if row.reverses_entry_id else None
    ar_history.record_entry(session, row, original)
    audit.record(
        session,
        actor=actor,
        action=f"ledger.{row.kind}",
        entity="ledger_entry",
        entity_id=row.id,
        client_id=client_id,
        after={
            "kind": row.kind,
            "responsibility": row.responsibility,
            "amount_cents": row.amount_cents,
            "service_date": row.service_date,
            "method": row.method,
            "reference": row.reference,
            "reverses_entry_id": row.reverses_entry_id,
            "payer_id": row.payer_id,
            "payer_name": row.payer_name,
        },
        detail=detail,
        at=now,
    )
    return _result(row, state, duplicate=False)


def post_charge(
    session: Session,
    *,
    actor: Actor | None,
    client_id: int,
    amount_cents: int,
    responsibility: str,
    service_date: date,
    idempotency_key: str,
    appointment_id: int | None = None,
    service_id: int | None = None,
    clinician_id: int | None = None,
    payer_id: int | None = None,
    payer_name: str = "",
    memo: str = "",
) -> PostingResult:
    """A charge owed by the client or expected from insurance. ``actor`` None: the system
    posting an appointment's charge on completion. An insurance charge names its payer: a
    ``payer_id`` from the list, or the ``payer_name`` typed on the coverage."""
    if responsibility not in PAYER_LABELS:
        raise PostingError("A charge is the client's or insurance's responsibility.")
    insured = responsibility == "insurance"
    return _post(
        session,
        actor=actor,
        client_id=client_id,
        action="ledger.adjust",
        idempotency_key=idempotency_key,
        entry={
            "kind": "charge",
            "responsibility": responsibility,
            "amount_cents": amount_cents,
            "service_date": service_date,
            "appointment_id": appointment_id,
            "service_id": service_id,
            "clinician_id": clinician_id,
            "payer_id": payer_id if insured else None,
            "payer_name": clean_payer_name(payer_name)[:120] if insured and not payer_id else "",
            "memo": memo.strip()[:300],
        },
    )


def record_payment(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    amount_cents: int,
    method: str,
    idempotency_key: str,
    paid_by: str = "client",
    reference: str = "",
    authorization_code: str = "",
    memo: str = "",
    received_on: date | None = None,
    payer_id: int | None = None,
    payer_name: str = "",
    confirmed_other_payer: bool = False,
) -> PostingResult:
    """A payment from the client or from insurance.

    A client's payment pays the client's oldest open charges; what is left is the client's
    unapplied credit. An insurance payment names its payer (``payer_id`` from the list, or the
    ``payer_name`` typed on one of the client's coverages), pays only that payer's oldest open
    charges and leaves the rest as that payer's insurance credit. A payer that is not on the
    client's coverages (nor billed on their ledger) is refused unless
    ``confirmed_other_payer`` says the user confirmed it.
    """
    errors = {}
    if method not in METHOD_LABELS:
        errors["method"] = "Choose how it was paid."
    if paid_by not in PAYER_LABELS:
        errors["paid_by"] = "Choose who paid."
    payer, off_file = None, False
    if paid_by == "insurance":
        payer, off_file, message = _insurance_payer(
            session, client_id, payer_id, payer_name, confirmed_other_payer
        )
        if message:
            errors["payer_id"] = message
    auth_code = (authorization_code or "").strip()
    if len(re.sub(r"\D", "", auth_code)) >= 12 or len(auth_code) > 40:
        errors["authorization_code"] = "Enter the processor's short authorization code only."
    if errors:
        raise ValidationError(errors)
    reference = check_reference(method, reference)
    received = received_on or practice_today()
    if received > practice_today():
        raise ValidationError({"received_on": "A payment cannot be received in the future."})
    return _post(
        session,
        actor=actor,
        client_id=client_id,
        action="payment.record",
        idempotency_key=idempotency_key,
        entry={
            "kind": "payment",
            "responsibility": paid_by,
            "amount_cents": amount_cents,
            "service_date": received,
            "payer_id": payer.payer_id if payer else None,
            "payer_name": payer.name if payer else "",
            "method": method,
            "reference": reference,
            "authorization_code": auth_code,
            "memo": clean_note(memo, field="memo", label="note"),
        },
        detail="payer not on the client's coverages, confirmed by the user" if off_file else "",
    )


def _insurance_payer(
    session: Session,
    client_id: int,
    payer_id: int | None,
    payer_name: str,
    confirmed: bool,
) -> tuple[PayerRef | None, bool, str]:
    """The payer of an insurance payment, whether it is off the client's file, and why it
    cannot be used ("" when it can)."""
    if payer_id is not None:
        payer = session.get(Payer, payer_id)
        if payer is None:
            return None, False, "Choose a payer from the list."
        ref, name = PayerRef.of(payer_id), payer.name
    else:
        ref = PayerRef.of(None, payer_name)
        if ref.unknown:
            return None, False, "Choose the insurance payer who paid."
        if len(ref.name) > 120:
            return None, False, "The payer's name can be at most 120 characters."
        name = ref.name
    try:
        choices = insurance.payment_payers(session, client_id=client_id)
    except insurance.ClientNotFound:
        return ref, False, ""  # _post refuses the unknown client
    off_file = ref not in {c.ref for c in choices if c.on_file}
    if off_file and not confirmed:
        return (
            None,
            True,
            (
                f"{name} is not on this client's coverages. Choose the client's payer, or confirm "
                "that this payer paid for this client."
            ),
        )
    return ref, off_file, ""


def post_adjustment(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    amount_cents: int,
    responsibility: str,
    memo: str,
    idempotency_key: str,
    on_date: date | None = None,
    reason: str = "other",
) -> PostingResult:
    """A write-off or contractual adjustment: lowers what the client or insurance owes.
    ``reason`` (contractual, write_off, other) decides whether the net collection rate
    leaves it out (contractual) or counts it as uncollected."""
    if responsibility not in PAYER_LABELS:
        raise PostingError("An adjustment lowers the client's or insurance's part.")
    if reason not in ADJUSTMENT_REASON_LABELS:
        raise ValidationError({"reason": "Choose the kind of adjustment."})
    if not (memo or "").strip():
        raise ValidationError({"memo": "Say why (for example: contractual adjustment)."})
    return _post(
        session,
        actor=actor,
        client_id=client_id,
        action="ledger.adjust",
        idempotency_key=idempotency_key,
        entry={
            "kind": "adjustment",
            "adjustment_reason": reason,
            "responsibility": responsibility,
            "amount_cents": amount_cents,
            "service_date": on_date or practice_today(),
            "memo": clean_note(memo, field="memo", label="reason"),
        },
    )


def post_refund(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    amount_cents: int,
    method: str,
    idempotency_key: str,
    reference: str = "",
    memo: str = "",
) -> PostingResult:
    """Pay unapplied credit back to the client; never more than the credit there is."""
    if method not in METHOD_LABELS:
        raise ValidationError({"method": "Choose how the refund is paid."})
    reference = check_reference(method, reference)

    def within_credit(state: ClientState) -> None:
        if amount_cents > state.unapplied_credit_cents:
            raise PostingError(
                "A refund cannot be more than the client's unapplied credit "
                f"(${state.unapplied_credit_cents / 100:,.2f})."
            )

    return _post(
        session,
        actor=actor,
        client_id=client_id,
        action="ledger.adjust",
        idempotency_key=idempotency_key,
        entry={
            "kind": "refund",
            "responsibility": "client",
            "amount_cents": amount_cents,
            "service_date": practice_today(),
            "method": method,
            "reference": reference,
            "memo": clean_note(memo, field="memo", label="note"),
        },
        precheck=within_credit,
    )


def reverse_entry(
    session: Session,
    *,
    actor: Actor,
    entry_id: int,
    reason: str,
    idempotency_key: str,
    client_id: int | None = None,
) -> PostingResult:
    """Cancel a posting with a reversing entry (the original stays in the ledger).

    A reversal cannot itself be reversed, and an entry can be reversed only once: post the
    corrected entry instead.
    """
    original = session.get(LedgerEntry, entry_id)
    if original is None or (client_id is not None and original.client_id != client_id):
        raise PostingError("There is no such entry on this client's ledger.")
    if original.kind == "reversal":
        raise PostingError("A reversal cannot be reversed; post the correct entry instead.")
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why this entry is reversed."})
    already = session.scalar(
        select(LedgerEntry.id).where(LedgerEntry.reverses_entry_id == entry_id)
    )
    if already is not None and _existing(session, idempotency_key) is None:
        raise PostingError("This entry has already been reversed.")
    return _post(
        session,
        actor=actor,
        client_id=original.client_id,
        action="ledger.adjust",
        idempotency_key=idempotency_key,
        entry={
            "kind": "reversal",
            "responsibility": original.responsibility,
            "amount_cents": original.amount_cents,
            "service_date": practice_today(),
            "reverses_entry_id": original.id,
            "memo": clean_note(reason, field="reason", label="reason"),
        },
        detail=f"reverses #{original.id}",
    )
