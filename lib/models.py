"""SQLAlchemy 2 models for the whole ClientDesk domain (spec sections C, B, R, I, D, A).

Tables are created only by Alembic migrations (``migrations/``), never by ``create_all``.
Conventions: money is integer cents (``*_cents``); timestamps are UTC (``*_at``); dates of
service and birth are plain dates; rows that users edit carry a ``version`` for optimistic
concurrency; ``ledger_entries`` and ``audit_log`` are append-only (database triggers).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "manager", "biller", "front_desk", "clinician")
CLIENT_STATUSES = ("active", "inactive", "prospective", "discharged")
APPOINTMENT_STATUSES = ("scheduled", "completed", "cancelled", "no_show")
LEDGER_KINDS = ("charge", "payment", "adjustment", "refund", "reversal")
RESPONSIBILITIES = ("client", "insurance")
ADJUSTMENT_REASONS = ("contractual", "write_off", "other")
PAYMENT_METHODS = ("card", "cash", "check", "ach", "other")
QUESTION_TYPES = (
    "short_text",
    "long_text",
    "number",
    "date",
    "yes_no",
    "single_choice",
    "multiple_choice",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


UtcDateTime = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# --- staff -------------------------------------------------------------------------------


class Clinician(Base):
    __tablename__ = "clinicians"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    credentials: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The service new appointments of this clinician start with (Clinicians page).
    default_service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("clinicians.id"))
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Re-login cookies issued before this instant are refused (logout, password change, disable).
    sessions_valid_after: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)


class SignInThrottle(Base):
    """Wrong-password count and lock for a typed username that has no account (lib.sign_in).

    Keyed by a hash of the name, never the name: people type passwords into that field.
    """

    __tablename__ = "sign_in_throttles"
    __table_args__ = (Index("ix_sign_in_throttles_updated_at", "updated_at"),)
    name_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- practice configuration --------------------------------------------------------------


class PracticeSetting(Base):
    """Simple key/value settings (practice name, time zone, aging buckets...)."""

    __tablename__ = "practice_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Payer(Base):
    __tablename__ = "payers"
    __table_args__ = (CheckConstraint(_in("kind", ("electronic", "paper")), name="kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    payer_code: Mapped[str] = mapped_column(String(20), default="")
    kind: Mapped[str] = mapped_column(String(12))
    address: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Service(Base):
    __tablename__ = "services"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    description: Mapped[str] = mapped_column(String(200))
    fee_cents: Mapped[int] = mapped_column(Integer)
    default_minutes: Mapped[int] = mapped_column(Integer, default=50)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


# --- clients -----------------------------------------------------------------------------


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (
        CheckConstraint(_in("status", CLIENT_STATUSES), name="status"),
        CheckConstraint(_in("billing_type", ("self_pay", "insurance")), name="billing_type"),
        Index("ix_clients_status_last_first", "status", "last_name", "first_name"),
        Index("ix_clients_clinician_status", "clinician_id", "status"),
        Index("ix_clients_dob", "dob"),
        Index("ix_clients_email_norm", "email_norm"),
        Index("ix_clients_last_name_key", "last_name_key"),
        Index("ix_clients_status_total", "status", "total_cents", "id"),
        Index("ix_clients_status_due", "status", "client_due_cents", "id"),
        Index("ix_clients_status_pending", "status", "insurance_pending_cents", "id"),
        Index("ix_clients_status_credit", "status", "unapplied_credit_cents", "id"),
        Index("ix_clients_status_oldest", "status", "oldest_unpaid_dos", "id"),
        # The collections worklist: owing over a threshold since a day, read from the index.
        Index(
            "ix_clients_collections",
            "client_due_cents",
            "unapplied_credit_cents",
            "oldest_unpaid_dos",
            "insurance_pending_cents",
        ),
        # The old system's id of an imported client: a re-import finds it (NULLs may repeat).
        Index("uq_clients_old_system_id", "old_system_id", unique=True),
        # Covers every column the search box looks at, so a search reads this index, not rows.
        Index(
            "ix_clients_search",
            "status",
            "search_name",
            "phone_digits",
            "email_norm",
            "dob",
            "client_number",
            "clinician_id",
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_number: Mapped[int] = mapped_column(Integer, unique=True)
    # Personal
    first_name: Mapped[str] = mapped_column(String(80))
    middle_name: Mapped[str] = mapped_column(String(80), default="")
    last_name: Mapped[str] = mapped_column(String(80))
    preferred_name: Mapped[str] = mapped_column(String(80), default="")
    pronouns: Mapped[str] = mapped_column(String(40), default="")
    dob: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(20), default="")
    gender_identity: Mapped[str] = mapped_column(String(60), default="")
    marital_status: Mapped[str] = mapped_column(String(20), default="")
    client_type: Mapped[str] = mapped_column(String(10), default="adult")
    status: Mapped[str] = mapped_column(String(12), default="active")
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("clinicians.id"))
    client_since: Mapped[date | None] = mapped_column(Date)
    referral_source: Mapped[str] = mapped_column(String(120), default="")
    language: Mapped[str] = mapped_column(String(40), default="English")
    # Contact
    address_line1: Mapped[str] = mapped_column(String(120), default="")
    address_line2: Mapped[str] = mapped_column(String(120), default="")
    city: Mapped[str] = mapped_column(String(80), default="")
    state: Mapped[str] = mapped_column(String(60), default="")  # a US state, or a region
    zip_code: Mapped[str] = mapped_column(String(16), default="")  # ZIP or postal code
    country: Mapped[str] = mapped_column(String(60), default="", server_default="")  # "" = US
    phone_mobile: Mapped[str] = mapped_column(String(30), default="")
    phone_home: Mapped[str] = mapped_column(String(30), default="")
    phone_work: Mapped[str] = mapped_column(String(30), default="")
    preferred_phone: Mapped[str] = mapped_column(String(10), default="mobile")
    text_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    voicemail_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str] = mapped_column(String(254), default="")
    email_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency_name: Mapped[str] = mapped_column(String(120), default="")
    emergency_relationship: Mapped[str] = mapped_column(String(40), default="")
    emergency_phone: Mapped[str] = mapped_column(String(30), default="")
    guardian_name: Mapped[str] = mapped_column(String(120), default="")
    guardian_relationship: Mapped[str] = mapped_column(String(40), default="")
    guardian_phone: Mapped[str] = mapped_column(String(30), default="")
    time_zone: Mapped[str] = mapped_column(String(40), default="")
    # The client's id in the system the practice imported them from (lib.client_import).
    old_system_id: Mapped[str | None] = mapped_column(String(60))
    # Insurance
    billing_type: Mapped[str] = mapped_column(String(10), default="self_pay")
    # Search helpers maintained by lib.clients on every write: lower-case, accent-free names
    # and the digits of every phone number, so search is one indexed-or-scanned column each.
    search_name: Mapped[str] = mapped_column(String(400), default="")
    phone_digits: Mapped[str] = mapped_column(String(120), default="")
    email_norm: Mapped[str] = mapped_column(String(254), default="")
    # Soundex of the folded last name, for the duplicate check (Smith ~ Smyth ~ Smithe).
    last_name_key: Mapped[str] = mapped_column(String(8), default="", server_default="")
    # Bookkeeping. Each tab saves against its own version (optimistic concurrency, C7);
    # ``version`` counts every change to the record.
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Balance projection of this client's ledger, kept by lib.ledger.refresh_client in the same
    # transaction as every posting; the list sorts, filters and sums these columns.
    # total = client due + insurance pending - unapplied credit - insurance credit.
    client_due_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    insurance_pending_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    unapplied_credit_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # What insurance paid beyond its own open charges (all payers; per payer in
    # ``insurance_credits``). Not the client's money: never refunded to the client.
    insurance_credit_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    oldest_unpaid_dos: Mapped[date | None] = mapped_column(Date)
    personal_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    contact_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    insurance_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class ClientStatusChange(Base):
    """Every status change of a client, never deleted (C8)."""

    __tablename__ = "client_status_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    old_status: Mapped[str | None] = mapped_column(String(12))
    new_status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(300), default="")
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Coverage(Base):
    __tablename__ = "coverages"
    __table_args__ = (
        CheckConstraint("rank BETWEEN 1 AND 3", name="rank"),
        Index("ix_coverages_client_rank", "client_id", "rank"),
        Index("ix_coverages_payer", "payer_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    rank: Mapped[int] = mapped_column(Integer)  # 1 primary, 2 secondary, 3 tertiary
    payer_id: Mapped[int | None] = mapped_column(ForeignKey("payers.id"))
    payer_name: Mapped[str] = mapped_column(String(120), default="")  # typed, not in the list
    plan_name: Mapped[str] = mapped_column(String(120), default="")
    member_id: Mapped[str] = mapped_column(String(40), default="")
    group_number: Mapped[str] = mapped_column(String(40), default="")
    subscriber_relationship: Mapped[str] = mapped_column(String(20), default="self")
    subscriber_name: Mapped[str] = mapped_column(String(120), default="")
    subscriber_dob: Mapped[date | None] = mapped_column(Date)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    copay_cents: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# --- scheduling and money ----------------------------------------------------------------


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint(_in("status", APPOINTMENT_STATUSES), name="status"),
        Index("ix_appointments_client_start", "client_id", "starts_at"),
        Index("ix_appointments_clinician_start", "clinician_id", "starts_at"),
        Index("ix_appointments_status_start", "status", "starts_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    clinician_id: Mapped[int] = mapped_column(ForeignKey("clinicians.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    duration_minutes: Mapped[int] = mapped_column(Integer, default=50)
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    telehealth: Mapped[bool] = mapped_column(Boolean, default=False)
    location: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)


class LedgerEntry(Base):
    """One posting. Append-only: UPDATE and DELETE fail at the database.

    ``amount_cents`` is always positive; ``kind`` says which way it moves the balance.
    A reversal points at the entry it cancels (``reverses_entry_id``, unique: once only).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind"),
        CheckConstraint(_in("responsibility", RESPONSIBILITIES), name="responsibility"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index("ix_ledger_client_id", "client_id", "id"),
        Index("ix_ledger_appointment", "appointment_id"),
        # Point-in-time reports: which clients have entries posted after a day.
        Index("ix_ledger_posted_at", "posted_at", "client_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    kind: Mapped[str] = mapped_column(String(12))
    responsibility: Mapped[str] = mapped_column(String(10))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    service_date: Mapped[date] = mapped_column(Date)  # date of service (charges) or of payment
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("clinicians.id"))
    payer_id: Mapped[int | None] = mapped_column(ForeignKey("payers.id"))
    # Insurance entries whose payer is typed on the coverage (not in the payer list): its name.
    payer_name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    method: Mapped[str] = mapped_column(String(10), default="")
    reference: Mapped[str] = mapped_column(String(60), default="")
    authorization_code: Mapped[str] = mapped_column(String(40), default="")
    memo: Mapped[str] = mapped_column(String(300), default="")
    reverses_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_entries.id"), unique=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Why an adjustment lowered what is owed (ADJUSTMENT_REASONS); "other" on other kinds and
    # on adjustments posted before reasons were recorded.
    adjustment_reason: Mapped[str] = mapped_column(
        String(12), default="other", server_default="other"
    )


class OpenCharge(Base):
    """What is still owed on each charge: a projection of the ledger, kept in the same
    transaction as every posting, so aging reads only open charges."""

    __tablename__ = "open_charges"
    __table_args__ = (
        Index("ix_open_charges_client", "client_id", "service_date"),
        # The oldest unpaid date of service of a client's own part (collections worklist).
        Index(
            "ix_open_charges_client_part",
            "client_id",
            "responsibility",
            "service_date",
            "open_cents",
        ),
        # Covering index: the aging report reads only this index.
        Index(
            "ix_open_charges_aging",
            "responsibility",
            "clinician_id",
            "payer_id",
            "payer_name",
            "service_date",
            "open_cents",
        ),
    )
    charge_entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    responsibility: Mapped[str] = mapped_column(String(10))
    service_date: Mapped[date] = mapped_column(Date)
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("clinicians.id"))
    payer_id: Mapped[int | None] = mapped_column(ForeignKey("payers.id"))
    payer_name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    open_cents: Mapped[int] = mapped_column(BigInteger)


class InsuranceCredit(Base):
    """What one payer paid for a client beyond that payer's open charges: a projection of the
    ledger like ``open_charges`` (one row per client and payer holding credit). ``payer_id``
    None with a ``payer_name``: a payer typed on a coverage; with neither: an old insurance
    payment that named no payer."""

    __tablename__ = "insurance_credits"
    __table_args__ = (Index("ix_insurance_credits_client", "client_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    payer_id: Mapped[int | None] = mapped_column(ForeignKey("payers.id"))
    payer_name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    credit_cents: Mapped[int] = mapped_column(BigInteger)


class ArChange(Base):
    """How month-end A/R and the months' flows moved: a projection of the ledger (lib.ar_history),
    kept in the same transaction as every posting, so the Trends page sums a small table
    instead of replaying the ledger once per month.

    ``part`` 'owed' and 'credit': the change in what was owed (by date of service) or held as
    credit during the month starting ``day``; a month-end is the sum of every earlier change.
    Any other part (charge, payment, adj_<reason>, refund): what was posted on practice day
    ``day``, reversals counted against the kind they cancel. ``clinician_id`` and ``payer_id``
    0 stand for none; ``payer_key`` is a typed payer's name, casefolded.
    """

    __tablename__ = "ar_changes"
    __table_args__ = (
        Index(
            "ux_ar_changes_key",
            "day",
            "part",
            "responsibility",
            "clinician_id",
            "payer_id",
            "payer_key",
            "service_date",
            unique=True,
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    part: Mapped[str] = mapped_column(String(16))
    responsibility: Mapped[str] = mapped_column(String(10))
    clinician_id: Mapped[int] = mapped_column(Integer, default=0)
    payer_id: Mapped[int] = mapped_column(Integer, default=0)
    payer_key: Mapped[str] = mapped_column(String(120), default="")
    service_date: Mapped[date] = mapped_column(Date)
    cents: Mapped[int] = mapped_column(BigInteger)


class ClientTotal(Base):
    """Count and balance sums of clients per (status, clinician): the list's totals for its
    usual filters, kept in the same transaction as every posting and status change.
    ``clinician_id`` 0 stands for "no clinician"."""

    __tablename__ = "client_totals"
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    clinician_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_count: Mapped[int] = mapped_column(BigInteger, default=0)
    client_due_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    insurance_pending_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    unapplied_credit_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)


# --- collections -------------------------------------------------------------------------

CONTACT_KINDS = ("call", "email", "letter", "text")
CONTACT_OUTCOMES = (
    "reached",
    "left_message",
    "no_answer",
    "promised",
    "disputed",
    "bad_contact",
    "sent",
)
PLAN_SCHEDULES = ("weekly", "biweekly", "monthly")
PLAN_STATUSES = ("active", "ended")


class CollectionContact(Base):
    """One attempt to reach a client about what they owe (part of the client's record).

    A follow-up date puts the client back on the worklist that day; a promise to pay has an
    amount and a date."""

    __tablename__ = "collection_contacts"
    __table_args__ = (
        CheckConstraint(_in("kind", CONTACT_KINDS), name="kind"),
        CheckConstraint(_in("outcome", CONTACT_OUTCOMES), name="outcome"),
        Index("ix_collection_contacts_client", "client_id", "id"),
        Index("ix_collection_contacts_follow_up", "follow_up_on"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    kind: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    follow_up_on: Mapped[date | None] = mapped_column(Date)
    promise_cents: Mapped[int | None] = mapped_column(BigInteger)
    promise_on: Mapped[date | None] = mapped_column(Date)
    contacted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    contacted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)


class PaymentPlan(Base):
    """An agreed amount per instalment on a schedule from a start day, until ended."""

    __tablename__ = "payment_plans"
    __table_args__ = (
        CheckConstraint(_in("schedule", PLAN_SCHEDULES), name="schedule"),
        CheckConstraint(_in("status", PLAN_STATUSES), name="status"),
        CheckConstraint("instalment_cents > 0", name="instalment_positive"),
        Index("ix_payment_plans_status_client", "status", "client_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    instalment_cents: Mapped[int] = mapped_column(BigInteger)
    schedule: Mapped[str] = mapped_column(String(10))
    start_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="active")
    ended_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CollectionBatch(Base):
    """One batch action from the worklist, once per key: a double click finds the row."""

    __tablename__ = "collection_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    action: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    chosen_count: Mapped[int] = mapped_column(Integer)
    queued_count: Mapped[int] = mapped_column(Integer)


class DigestSubscription(Base):
    """A staff member who asked for the weekly A/R digest (a row per subscriber)."""

    __tablename__ = "digest_subscriptions"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime)


class DigestSend(Base):
    """One digest per subscriber and practice week, ever (the unique key: several workers)."""

    __tablename__ = "digest_sends"
    __table_args__ = (UniqueConstraint("user_id", "week_start", name="uq_digest_sends_user_week"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    week_start: Mapped[date] = mapped_column(Date)
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    outbox_id: Mapped[int | None] = mapped_column(Integer)


# --- reminders & portal ------------------------------------------------------------------


class ReminderSetting(Base):
    """Practice defaults (scope 'practice'), clinician and client overrides.

    A NULL column means "use the default from the level above".
    """

    __tablename__ = "reminder_settings"
    __table_args__ = (
        UniqueConstraint("scope", "scope_id", name="uq_reminder_settings_scope"),
        CheckConstraint(_in("scope", ("practice", "clinician", "client")), name="scope"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))
    scope_id: Mapped[int] = mapped_column(Integer, default=0)
    reminders_enabled: Mapped[bool | None] = mapped_column(Boolean)
    channel_email: Mapped[bool | None] = mapped_column(Boolean)
    channel_sms: Mapped[bool | None] = mapped_column(Boolean)
    channel_voice: Mapped[bool | None] = mapped_column(Boolean)
    lead_hours: Mapped[int | None] = mapped_column(Integer)
    portal_enabled: Mapped[bool | None] = mapped_column(Boolean)
    self_scheduling: Mapped[bool | None] = mapped_column(Boolean)
    cancellation_window_hours: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)


class PortalInvitation(Base):
    __tablename__ = "portal_invitations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ReminderSend(Base):
    """One reminder per appointment and channel, ever (the unique key makes re-runs safe)."""

    __tablename__ = "reminder_sends"
    __table_args__ = (UniqueConstraint("appointment_id", "channel", name="uq_reminder_once"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"))
    channel: Mapped[str] = mapped_column(String(10))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(10))


OUTBOX_STATUSES = ("queued", "sending", "sent", "failed")


class MessageOutbox(Base):
    """Every message to a client waits here until it is sent (spec A7): email, drained by the
    worker (``lib.worker``) with retries, and texts and voice calls, which wait until a
    provider is configured. ``message`` holds the whole email as it will go out (headers,
    body, attachments) and is emptied once it was sent; the document log row it belongs to
    shows staff how it went."""

    __tablename__ = "message_outbox"
    __table_args__ = (
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
        Index("ix_message_outbox_due", "channel", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(254))
    body: Mapped[str] = mapped_column(Text)  # texts and voice calls; "" for email
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    # What it is (the document log's kinds) and, for invitations and reminders, the row the
    # outcome updates (portal_invitations.id, reminder_sends.id).
    kind: Mapped[str] = mapped_column(String(20), default="", server_default="")
    ref_id: Mapped[int | None] = mapped_column(Integer)
    document_log_id: Mapped[int | None] = mapped_column(ForeignKey("document_log.id"))
    message: Mapped[bytes | None] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    send_before: Mapped[datetime | None] = mapped_column(UtcDateTime)  # pointless after this
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str] = mapped_column(String(500), default="", server_default="")


class WorkerStatus(Base):
    """The worker's heartbeat, one row per machine it runs on, so every replica (and the
    reminder settings page) can see when it last ran."""

    __tablename__ = "worker_status"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # host name
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_run_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_summary: Mapped[str] = mapped_column(String(300), default="")


# --- intake ------------------------------------------------------------------------------


class IntakeQuestion(Base):
    __tablename__ = "intake_questions"
    __table_args__ = (CheckConstraint(_in("qtype", QUESTION_TYPES), name="qtype"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(300))
    help_text: Mapped[str] = mapped_column(String(500), default="")
    qtype: Mapped[str] = mapped_column(String(20))
    options_json: Mapped[str] = mapped_column(Text, default="[]")
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class IntakeQuestionSetVersion(Base):
    """A snapshot of the question set after each saved change; answers remember it."""

    __tablename__ = "intake_question_set_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class IntakeAnswer(Base):
    __tablename__ = "intake_answers"
    __table_args__ = (
        UniqueConstraint("client_id", "question_id", name="uq_intake_answer_client_question"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    question_id: Mapped[int] = mapped_column(ForeignKey("intake_questions.id"))
    value_json: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))  # staff | anonymous_signup
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    set_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("intake_question_set_versions.id")
    )
    version: Mapped[int] = mapped_column(Integer, default=1)


SUBMISSION_STATUSES = ("pending", "accepted", "rejected", "spam")


class IntakeSubmission(Base):
    __tablename__ = "intake_submissions"
    __table_args__ = (CheckConstraint(_in("status", SUBMISSION_STATUSES), name="status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    dob: Mapped[date | None] = mapped_column(Date)
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    answers_json: Mapped[str] = mapped_column(Text, default="{}")
    set_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("intake_question_set_versions.id")
    )
    status: Mapped[str] = mapped_column(String(10), default="pending")
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reject_reason: Mapped[str] = mapped_column(String(300), default="")
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))


class IntakeRateEvent(Base):
    """One public intake submission from one address, kept a day: the per-address limit is
    counted here, in the database, so every replica shares it. ``address_key`` is a hash of
    the address (an IPv6 address by its /64 network), never the address itself."""

    __tablename__ = "intake_rate_events"
    __table_args__ = (Index("ix_intake_rate_events_address_at", "address_key", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


# --- documents ---------------------------------------------------------------------------


class Form(Base):
    __tablename__ = "forms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email_subject: Mapped[str] = mapped_column(String(200))
    email_body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)


class FormAttachment(Base):
    __tablename__ = "form_attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    original_name: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str] = mapped_column(String(100), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# "generated": a statement made as a PDF and handed to staff, not sent to anyone.
DOCUMENT_STATUSES = ("queued", "sent", "failed", "generated")


class DocumentLogEntry(Base):
    """Every form, statement, receipt, invitation and reminder sent to a client."""

    __tablename__ = "document_log"
    __table_args__ = (
        CheckConstraint(_in("status", DOCUMENT_STATUSES), name="status"),
        Index("ix_document_log_client_sent", "client_id", "sent_at"),
        Index("ix_document_log_sent", "sent_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    kind: Mapped[str] = mapped_column(String(20))  # form|statement|receipt|invitation|reminder
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recipient: Mapped[str] = mapped_column(String(254), default="")
    form_names: Mapped[str] = mapped_column(String(500), default="")
    attachment_names: Mapped[str] = mapped_column(String(1000), default="")
    channel: Mapped[str] = mapped_column(String(10), default="email")
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str] = mapped_column(String(500), default="")
    resend_of_id: Mapped[int | None] = mapped_column(ForeignKey("document_log.id"))


# --- audit -------------------------------------------------------------------------------


class AuditEntry(Base):
    """Append-only: UPDATE and DELETE fail at the database (triggers on both engines)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_client_at", "client_id", "at"),
        Index("ix_audit_at", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(40), default="")
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    before_json: Mapped[str | None] = mapped_column(Text)
    after_json: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(String(500), default="")
