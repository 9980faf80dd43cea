"""A client's Insurance tab: self-pay or up to three coverages (C6, Insurance).

Coverages are ranked primary / secondary / tertiary. The payer comes from the practice's payer
list or, when it is not there, is typed as a name. Removed coverages are deactivated, never
deleted, and the tab saves with optimistic concurrency like the other tabs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lib import audit
from lib.client_record import ClientNotFound, last_change
from lib.edits import StaleEdit, refuse_if_stale
from lib.ledger import PayerRef
from lib.models import Client, Coverage, LedgerEntry, Payer
from lib.policy import Actor, require_client_access
from lib.timeutil import practice_today, utcnow
from lib.validation import FieldError, ValidationError, Validator, clean_text

MAX_COVERAGES = 3
RANK_LABELS = {1: "Primary", 2: "Secondary", 3: "Tertiary"}
RELATIONSHIPS = ("self", "spouse", "child", "other")
BILLING_TYPES = {"self_pay": "Self-pay", "insurance": "Insurance"}
MAX_COPAY_CENTS = 1_000_00


@dataclass(frozen=True)
class CoverageInput:
    """One coverage as typed in the form. ``coverage_id`` None means a new coverage."""

    payer_id: int | None = None
    payer_name: str = ""
    plan_name: str = ""
    member_id: str = ""
    group_number: str = ""
    subscriber_relationship: str = "self"
    subscriber_name: str = ""
    subscriber_dob: date | None = None
    start_date: date | None = None
    end_date: date | None = None
    copay_cents: int = 0
    coverage_id: int | None = None


@dataclass(frozen=True)
class CoverageRow:
    coverage_id: int
    rank: int
    rank_label: str
    payer_id: int | None
    payer_label: str  # list payer "Aetna (electronic, payer ID 60054)" or the typed name
    fields: CoverageInput


@dataclass(frozen=True)
class InsuranceView:
    billing_type: str
    coverages: list[CoverageRow]
    version: int


def _payer_label(payer: Payer | None, typed: str) -> str:
    if payer is None:
        return f"{typed} (not in payer list)" if typed else ""
    code = f", payer ID {payer.payer_code}" if payer.payer_code else ""
    return f"{payer.name} ({payer.kind}{code})"


def get_insurance(session: Session, *, actor: Actor, client_id: int) -> InsuranceView:
    client = session.get(Client, client_id)
    if client is None:
        raise ClientNotFound("There is no client with that number.")
    require_client_access(actor, "client.view", client.clinician_id)
    rows = session.execute(
        select(Coverage, Payer)
        .outerjoin(Payer, Payer.id == Coverage.payer_id)
        .where(Coverage.client_id == client_id, Coverage.active.is_(True))
        .order_by(Coverage.rank)
    ).all()
    coverages = [
        CoverageRow(
            coverage_id=c.id,
            rank=c.rank,
            rank_label=RANK_LABELS[c.rank],
            payer_id=c.payer_id,
            payer_label=_payer_label(p, c.payer_name),
            fields=CoverageInput(
                payer_id=c.payer_id,
                payer_name=c.payer_name,
                plan_name=c.plan_name,
                member_id=c.member_id,
                group_number=c.group_number,
                subscriber_relationship=c.subscriber_relationship,
                subscriber_name=c.subscriber_name,
                subscriber_dob=c.subscriber_dob,
                start_date=c.start_date,
                end_date=c.end_date,
                copay_cents=c.copay_cents,
                coverage_id=c.id,
            ),
        )
        for c, p in rows
    ]
    return InsuranceView(client.billing_type, coverages, client.insurance_version)


def _member_id(value: str) -> str:
    text = clean_text(value, label="member ID", required=True, max_len=40)
    if not all(ch.isalnum() or ch in "-. " for ch in text):
        raise FieldError("Member IDs contain only letters, digits, dashes and dots.")
    return text


def validate_coverages(
    session: Session, billing_type: str, coverages: list[CoverageInput], today: date | None = None
) -> list[CoverageInput]:
    """Clean the coverages; errors are keyed ``coverage_<rank>.<field>``."""
    today = today or practice_today()
    errors: dict[str, str] = {}
    if billing_type not in BILLING_TYPES:
        raise ValidationError({"billing_type": "Choose self-pay or insurance."})
    if billing_type == "self_pay":
        return []
    if not coverages:
        raise ValidationError(
            {"coverages": "Add the client's primary coverage, or choose self-pay."}
        )
    if len(coverages) > MAX_COVERAGES:
        raise ValidationError(
            {"coverages": f"A client can have at most {MAX_COVERAGES} coverages."}
        )
    cleaned = []
    for rank, cov in enumerate(coverages, start=1):
        v = Validator()
        prefix = f"coverage_{rank}."
        payer_name = v.check("payer_name", clean_text, cov.payer_name, label="payer name")
        if cov.payer_id is not None:
            if session.get(Payer, cov.payer_id) is None:
                v.fail("payer_id", "Choose a payer from the list.")
            payer_name = ""
        elif not payer_name:
            v.fail("payer_id", "Choose a payer from the list or type the payer's name.")
        v.check("plan_name", clean_text, cov.plan_name, label="plan")
        member = v.check("member_id", _member_id, cov.member_id)
        v.check("group_number", clean_text, cov.group_number, label="group number", max_len=40)
        relationship = cov.subscriber_relationship or "self"
        if relationship not in RELATIONSHIPS:
            v.fail("subscriber_relationship", "Choose the subscriber's relationship.")
        sub_name = v.check(
            "subscriber_name", clean_text, cov.subscriber_name, label="subscriber name"
        )
        sub_dob = cov.subscriber_dob
        if relationship != "self":
            if not sub_name:
                v.fail("subscriber_name", "Enter the subscriber's name.")
            if sub_dob is None:
                v.fail("subscriber_dob", "Enter the subscriber's date of birth.")
        else:
            sub_name, sub_dob = "", None
        if sub_dob is not None and sub_dob > today:
            v.fail("subscriber_dob", "The subscriber's date of birth cannot be in the future.")
        if cov.start_date and cov.end_date and cov.end_date < cov.start_date:
            v.fail("end_date", "The coverage cannot end before it starts.")
        if not 0 <= cov.copay_cents <= MAX_COPAY_CENTS:
            v.fail("copay_cents", "The copay must be between $0 and $1,000.")
        errors.update({prefix + k: msg for k, msg in v.errors.items()})
        if not v.errors:
            cleaned.append(
                CoverageInput(
                    payer_id=cov.payer_id,
                    payer_name=payer_name or "",
                    plan_name=v.values["plan_name"],
                    member_id=member,
                    group_number=v.values["group_number"],
                    subscriber_relationship=relationship,
                    subscriber_name=sub_name or "",
                    subscriber_dob=sub_dob,
                    start_date=cov.start_date,
                    end_date=cov.end_date,
                    copay_cents=cov.copay_cents,
                    coverage_id=cov.coverage_id,
                )
            )
    if errors:
        raise ValidationError(errors)
    return cleaned


def save_insurance(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    billing_type: str,
    coverages: list[CoverageInput],
    expected_version: int,
    tz_name: str | None = None,
) -> int:
    """Save the Insurance tab as the form now holds it; returns the tab's version.

    The form showed the coverages at ``expected_version``; when the tab is still at that
    version, the coverages given are the stored ones with exactly the user's edits, and only
    the values that differ are written. Same errors as ``client_record.save_section``.
    """
    client = session.scalar(select(Client).where(Client.id == client_id).with_for_update())
    if client is None:
        raise ClientNotFound("There is no client with that number.")
    require_client_access(actor, "insurance.edit", client.clinician_id)
    refuse_if_stale(
        session,
        current_version=client.insurance_version,
        expected_version=expected_version,
        entity="client",
        entity_id=client_id,
        actions=["client.update_insurance"],
        tz_name=tz_name,
    )
    cleaned = validate_coverages(session, billing_type, coverages)
    before_view = get_insurance(session, actor=actor, client_id=client_id)
    before = [c.fields for c in before_view.coverages]
    if billing_type == before_view.billing_type and cleaned == before:
        return expected_version
    now = utcnow()
    result = session.execute(
        update(Client)
        .where(Client.id == client_id, Client.insurance_version == expected_version)
        .values(
            billing_type=billing_type,
            insurance_version=Client.insurance_version + 1,
            version=Client.version + 1,
            updated_at=now,
            updated_by=actor.user_id,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StaleEdit(*last_change(session, client_id, "insurance"), tz_name)
    existing = {
        c.id: c
        for c in session.scalars(
            select(Coverage).where(Coverage.client_id == client_id, Coverage.active.is_(True))
        )
    }
    kept = set()
    for rank, cov in enumerate(cleaned, start=1):
        values = asdict(cov)
        values.pop("coverage_id")
        row = existing.get(cov.coverage_id) if cov.coverage_id else None
        if row is None:
            session.add(Coverage(client_id=client_id, rank=rank, active=True, **values))
            continue
        kept.add(row.id)
        for key, value in {"rank": rank, **values}.items():
            if getattr(row, key) != value:
                setattr(row, key, value)
    for coverage_id, row in existing.items():
        if coverage_id not in kept:
            row.active = False
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="client.update_insurance",
        entity="client",
        entity_id=client_id,
        client_id=client_id,
        before={
            "billing_type": before_view.billing_type,
            "coverages": [_audit_view(c) for c in before],
        },
        after={"billing_type": billing_type, "coverages": [_audit_view(c) for c in cleaned]},
        at=now,
    )
    return expected_version + 1


def _audit_view(cov: CoverageInput) -> dict:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(cov).items()}


# --- who may pay for this client (the Record payment dialog, issue 10) ----------------------


@dataclass(frozen=True)
class PaymentPayer:
    """A payer the Record payment dialog offers. ``on_file``: on one of the client's coverages
    or already billed on their ledger; any other payer needs the user's confirmation."""

    payer_id: int | None
    payer_name: str  # typed on a coverage (payer not in the list); "" for list payers
    label: str
    on_file: bool

    @property
    def ref(self) -> PayerRef:
        return PayerRef.of(self.payer_id, self.payer_name)


def payment_payers(
    session: Session, *, client_id: int, actor: Actor | None = None
) -> list[PaymentPayer]:
    """The client's coverages in rank order (the primary first: the dialog's default), then
    payers billed on the client's ledger that are no longer on a coverage (a former payer
    paying an old claim), then every other active payer in the list (not on file).

    ``actor`` None: called by ``lib.postings`` to check a payment's payer."""
    client = session.get(Client, client_id)
    if client is None:
        raise ClientNotFound("There is no client with that number.")
    if actor is not None:
        require_client_access(actor, "payment.record", client.clinician_id)
    names = {p.id: p.name for p in session.scalars(select(Payer))}
    found: dict[PayerRef, PaymentPayer] = {}

    def add(payer_id: int | None, typed: str, label: str, on_file: bool) -> None:
        ref = PayerRef.of(payer_id, typed)
        if not ref.unknown and ref not in found:
            found[ref] = PaymentPayer(payer_id, ref.name, label, on_file)

    coverages = session.scalars(
        select(Coverage)
        .where(Coverage.client_id == client_id, Coverage.active.is_(True))
        .order_by(Coverage.rank)
    )
    for c in coverages:
        name = names.get(c.payer_id, "") if c.payer_id else c.payer_name
        add(c.payer_id, c.payer_name, f"{name} ({RANK_LABELS[c.rank].lower()} coverage)", True)
    billed = session.execute(
        select(LedgerEntry.payer_id, LedgerEntry.payer_name)
        .where(
            LedgerEntry.client_id == client_id,
            LedgerEntry.kind == "charge",
            LedgerEntry.responsibility == "insurance",
        )
        .distinct()
    ).all()
    for payer_id, typed in sorted(billed, key=lambda r: (names.get(r[0], r[1] or "")).lower()):
        name = names.get(payer_id, "") if payer_id else typed
        add(payer_id, typed, f"{name} (billed before, no longer on a coverage)", True)
    others = session.scalars(
        select(Payer).where(Payer.active.is_(True)).order_by(func.lower(Payer.name))
    )
    for p in others:
        add(p.id, "", f"{p.name} (not on this client's coverages)", False)
    return list(found.values())
