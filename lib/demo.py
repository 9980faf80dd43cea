"""The demo practice: generated, deterministic (seeded), realistic, sized by a flag.

``seed_demo`` fills an empty, migrated database with a three-clinician practice: payers,
services, clients with 18 months of appointments, charges split between insurance and client,
payments, write-offs and the odd refund, statuses and their history, intake answers, forms and
a document log. Balances are computed with ``lib.ledger.replay`` — the same function the app
uses — so the demo is reconciled by construction.

It writes with bulk Core inserts in batches so that 100,000 clients (about 2 million ledger
entries) load in a few minutes; it is for demos and benchmarks, never for a live practice.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lib import ar_history, audit, auth, client_totals
from lib.clients import search_columns
from lib.demo_collections import seed_collections
from lib.ledger import Posting, balance_rows, credit_rows, replay
from lib.models import (
    Appointment,
    Client,
    ClientStatusChange,
    Clinician,
    Coverage,
    DocumentLogEntry,
    Form,
    InsuranceCredit,
    IntakeAnswer,
    IntakeQuestion,
    IntakeQuestionSetVersion,
    LedgerEntry,
    OpenCharge,
    Payer,
    PracticeSetting,
    ReminderSetting,
    Service,
    User,
)
from lib.timeutil import practice_today, utcnow

# Role | Username | Password — printed by `make run` and listed in the README.
DEMO_LOGINS = (
    ("admin", "admin", "demo-admin-2026", "Alex Admin"),
    ("manager", "manager", "demo-manager-2026", "Morgan Manager"),
    ("biller", "biller", "demo-biller-2026", "Blake Biller"),
    ("front_desk", "frontdesk", "demo-frontdesk-2026", "Frankie Desk"),
    ("clinician", "okafor", "demo-clinician-2026", "Dr. Maya Okafor"),
    ("clinician", "reyes", "demo-clinician-2026", "Daniel Reyes"),
    ("clinician", "lindqvist", "demo-clinician-2026", "Sarah Lindqvist"),
)

CLINICIANS = (
    ("Maya", "Okafor", "PhD", "okafor"),
    ("Daniel", "Reyes", "LCSW", "reyes"),
    ("Sarah", "Lindqvist", "LMFT", "lindqvist"),
)

PAYERS = (
    ("Aetna", "60054", "electronic"),
    ("Blue Cross Blue Shield", "BCBS1", "electronic"),
    ("Cigna Behavioral Health", "62308", "electronic"),
    ("UnitedHealthcare", "87726", "electronic"),
    ("Medicare Part B", "MCRB1", "electronic"),
    ("Tricare East", "TREST", "electronic"),
    ("Magellan Behavioral Health", "", "paper"),
    ("Teachers' Union Health Plan", "", "paper"),
)

SERVICES = (
    ("90791", "Psychiatric diagnostic evaluation", 22000, 60),
    ("90834", "Psychotherapy, 45 minutes", 13500, 45),
    ("90837", "Psychotherapy, 60 minutes", 16500, 60),
    ("90847", "Family psychotherapy with patient", 15000, 50),
    ("90846", "Family psychotherapy without patient", 14000, 50),
    ("90853", "Group psychotherapy", 6000, 90),
)

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Sandra",
    "Mark",
    "Margaret",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Andrew",
    "Emily",
    "Joshua",
    "Donna",
    "Kenneth",
    "Michelle",
    "Kevin",
    "Carol",
    "Brian",
    "Amanda",
    "George",
    "Melissa",
    "Timothy",
    "Deborah",
    "Zoë",
    "José",
    "Chloé",
    "Renée",
    "André",
    "Björn",
    "Ana",
    "Luis",
    "Mei",
    "Hiroshi",
    "Priya",
    "Arjun",
    "Fatima",
    "Omar",
    "Aisha",
    "Nguyen",
    "Olga",
    "Dmitri",
    "Siobhan",
    "Seán",
    "Noémie",
    "François",
    "Ingrid",
    "Søren",
    "Małgorzata",
    "Tomás",
    "Inés",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Müller",
    "Núñez",
    "O'Brien",
    "Schmidt",
    "Smyth",
    "Smithe",
    "Jonson",
    "Peña",
    "Björklund",
    "Østergaard",
    "Kowalski",
    "Nakamura",
    "Patel",
    "Okonkwo",
    "Haddad",
    "Dubois",
    "Fernández",
    "Costa",
    "Ivanova",
    "McAllister",
]
PREFERRED = {
    "William": "Bill",
    "Robert": "Bob",
    "Elizabeth": "Liz",
    "Christopher": "Chris",
    "Jennifer": "Jen",
    "Michael": "Mike",
    "Margaret": "Peggy",
    "Joshua": "Josh",
}
CITIES = (
    ("Boston", "MA", "021"),
    ("Cambridge", "MA", "021"),
    ("Somerville", "MA", "021"),
    ("Quincy", "MA", "021"),
    ("Newton", "MA", "024"),
    ("Providence", "RI", "029"),
    ("Worcester", "MA", "016"),
    ("Nashua", "NH", "030"),
)
STREETS = (
    "Maple St",
    "Oak Ave",
    "Elm St",
    "Washington St",
    "Beacon St",
    "Main St",
    "Highland Ave",
    "Pleasant St",
    "Park Dr",
    "School St",
)
AREA_CODES = ("617", "781", "857", "508", "401", "603", "339")
REFERRALS = (
    "Primary care physician",
    "Insurance directory",
    "Psychology Today",
    "Friend or family",
    "School counselor",
    "Employee assistance program",
    "Website",
    "",
)
LANGUAGES = ("English",) * 12 + (
    "Spanish",
    "Portuguese",
    "Vietnamese",
    "Mandarin",
    "Haitian Creole",
)
PRONOUNS = ("she/her", "he/him", "they/them", "", "")

INTAKE_QUESTIONS = (
    ("What brings you to therapy at this time?", "long_text", [], True),
    ("Have you been in therapy before?", "yes_no", [], True),
    (
        "How did you hear about us?",
        "single_choice",
        ["Doctor referral", "Insurance directory", "Online search", "Friend or family", "Other"],
        False,
    ),
    (
        "Which times work best for appointments?",
        "multiple_choice",
        ["Weekday mornings", "Weekday afternoons", "Weekday evenings", "Saturdays"],
        False,
    ),
    ("On a scale of 1 to 10, how would you rate your stress this week?", "number", [], False),
    ("Date of your last physical exam", "date", [], False),
    ("Current medications (name and dose)", "short_text", [], False),
)

FORMS = (
    (
        "New client intake packet",
        "Your intake forms from Riverbend Counseling Group",
        "Hello {first_name},\n\nPlease complete the attached intake forms before your first "
        "visit.\n\n"
        "Thank you,\nRiverbend Counseling Group",
    ),
    (
        "Consent for treatment",
        "A consent form from Riverbend Counseling Group",
        "Hello {first_name},\n\nPlease review and sign the attached consent form.\n\n"
        "Riverbend Counseling Group",
    ),
    (
        "Release of information",
        "A form from Riverbend Counseling Group",
        "Hello {first_name},\n\nThe release-of-information form you asked for is attached.\n\n"
        "Riverbend Counseling Group",
    ),
)

BATCH = 5000


# The practice_settings row that says "this database was created as a demo". Only seed_demo
# writes it, and only into an empty database: the demo cookie key and the demo logins are
# allowed nowhere else (lib.config.cookie_key_for).
DEMO_MARKER = "demo_practice"


class DemoRefused(RuntimeError):
    """The demo practice was not loaded; the message says why."""


class DemoAlreadyLoaded(DemoRefused):
    pass


def is_demo_database(session: Session) -> bool:
    """Was this database created as a demo (by ``seed_demo``, when it was empty)?"""
    return session.get(PracticeSetting, DEMO_MARKER) is not None


def _refuse_unless_empty(session: Session) -> None:
    if is_demo_database(session):
        raise DemoAlreadyLoaded("The demo practice is already loaded in this database.")
    for model, what in ((User, "staff accounts"), (Client, "clients"), (Clinician, "clinicians")):
        if session.scalar(select(func.count()).select_from(model)):
            raise DemoRefused(
                f"This database already has {what}, so it is a real practice, not a demo: the "
                "demo practice (with its published passwords) was not loaded."
            )


@dataclass(frozen=True)
class SeedSummary:
    clients: int
    appointments: int
    ledger_entries: int
    seconds: float


class _Ids:
    """Explicit primary keys, so related rows can be built before anything is inserted."""

    def __init__(self):
        self._next: dict[str, int] = {}

    def take(self, table: str) -> int:
        value = self._next.get(table, 1)
        self._next[table] = value + 1
        return value


def _phone(rng: random.Random) -> str:
    area = rng.choice(AREA_CODES)
    line = f"01{rng.randint(0, 99):02d}"
    style = rng.random()
    if style < 0.5:
        return f"({area}) 555-{line}"
    if style < 0.8:
        return f"{area}-555-{line}"
    return f"{area}.555.{line}"


def _email(rng: random.Random, first: str, last: str, n: int) -> str:
    from lib.clients import fold

    base = f"{fold(first)}.{fold(last)}".replace("'", "").replace(" ", "")
    base = base.translate(str.maketrans({"ø": "o", "ł": "l", "ß": "ss", "æ": "ae"}))
    base = "".join(c for c in base if c.isascii() and (c.isalnum() or c == "."))
    return f"{base}{n % 997}@{rng.choice(('example.com', 'example.org', 'example.net'))}"


def seed_demo(
    engine: Engine,
    *,
    clients: int = 300,
    seed: int = 20261126,
    today: date | None = None,
    with_logins: bool = True,
) -> SeedSummary:
    """Load the demo practice into an empty, migrated database."""
    started = monotonic()
    # The seeding instant follows ``today`` when one is given: the same seed and day then give
    # the same practice, and no record (e.g. a status change) is dated after the demo's today.
    now = utcnow() if today is None else datetime.combine(today, time(23, 0), tzinfo=UTC)
    today = today or practice_today()
    rng = random.Random(seed)
    ids = _Ids()
    with engine.begin() as conn:
        session = Session(bind=conn)
        # Checked in the transaction that loads the demo: nothing can slip in between.
        _refuse_unless_empty(session)
        clinician_ids = []
        for first, last, cred, _ in CLINICIANS:
            cid = ids.take("clinicians")
            clinician_ids.append(cid)
            conn.execute(
                insert(Clinician),
                [
                    {
                        "id": cid,
                        "first_name": first,
                        "last_name": last,
                        "credentials": cred,
                        "email": f"{last.lower()}@riverbend.example",
                        "active": True,
                    }
                ],
            )
        if with_logins:
            hashes = {}
            for role, username, password, name in DEMO_LOGINS:
                if password not in hashes:
                    hashes[password] = auth.hash_password(password)
                clinician_id = None
                if role == "clinician":
                    clinician_id = clinician_ids[[c[3] for c in CLINICIANS].index(username)]
                auth.create_user(
                    session,
                    actor=None,
                    username=username,
                    display_name=name,
                    role=role,
                    password=password,
                    email=f"{username}@riverbend.example",
                    clinician_id=clinician_id,
                    password_hash=hashes[password],
                )
            session.flush()
        payer_rows = []
        for name, code, kind in PAYERS:
            payer_rows.append(
                {
                    "id": ids.take("payers"),
                    "name": name,
                    "payer_code": code,
                    "kind": kind,
                    "address": "",
                    "phone": "",
                    "active": True,
                    "version": 1,
                }
            )
        conn.execute(insert(Payer), payer_rows)
        payer_ids = [p["id"] for p in payer_rows]
        service_rows = []
        for code, desc, fee, minutes in SERVICES:
            service_rows.append(
                {
                    "id": ids.take("services"),
                    "code": code,
                    "description": desc,
                    "fee_cents": fee,
                    "default_minutes": minutes,
                    "active": True,
                    "version": 1,
                }
            )
        conn.execute(insert(Service), service_rows)
        conn.execute(
            insert(PracticeSetting),
            [
                {"key": "practice_name", "value": "Riverbend Counseling Group", "updated_at": now},
                {"key": "time_zone", "value": "America/New_York", "updated_at": now},
                {"key": DEMO_MARKER, "value": f"created {now.isoformat()}", "updated_at": now},
            ],
        )
        conn.execute(
            insert(ReminderSetting),
            [
                {
                    "scope": "practice",
                    "scope_id": 0,
                    "reminders_enabled": True,
                    "channel_email": True,
                    "channel_sms": True,
                    "channel_voice": False,
                    "lead_hours": 24,
                    "portal_enabled": True,
                    "self_scheduling": False,
                    "cancellation_window_hours": 24,
                    "updated_at": now,
                    "version": 1,
                }
            ],
        )
        question_rows = []
        for pos, (label, qtype, options, required) in enumerate(INTAKE_QUESTIONS):
            question_rows.append(
                {
                    "id": ids.take("intake_questions"),
                    "label": label,
                    "help_text": "",
                    "qtype": qtype,
                    "options_json": json.dumps(options),
                    "required": required,
                    "position": pos,
                    "active": True,
                    "version": 1,
                }
            )
        conn.execute(insert(IntakeQuestion), question_rows)
        set_version = ids.take("intake_question_set_versions")
        conn.execute(
            insert(IntakeQuestionSetVersion),
            [
                {
                    "id": set_version,
                    "created_at": now,
                    "created_by": None,
                    "snapshot_json": json.dumps(question_rows),
                }
            ],
        )
        form_rows = []
        for name, subject, body in FORMS:
            form_rows.append(
                {
                    "id": ids.take("forms"),
                    "name": name,
                    "email_subject": subject,
                    "email_body": body,
                    "active": True,
                    "created_at": now,
                    "version": 1,
                }
            )
        conn.execute(insert(Form), form_rows)
        session.close()

    counts = {"appointments": 0, "ledger": 0}
    for start in range(0, clients, BATCH):
        batch = _client_batch(
            rng,
            ids,
            range(start, min(clients, start + BATCH)),
            today=today,
            now=now,
            clinician_ids=clinician_ids,
            payer_ids=payer_ids,
            services=service_rows,
            questions=question_rows,
            set_version=set_version,
            forms=form_rows,
        )
        with engine.begin() as conn:
            for model, rows in batch.items():
                if rows:
                    conn.execute(insert(model), rows)
        counts["appointments"] += len(batch[Appointment])
        counts["ledger"] += len(batch[LedgerEntry])

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for table in (
                "clinicians",
                "payers",
                "services",
                "clients",
                "appointments",
                "ledger_entries",
                "coverages",
                "client_status_changes",
                "intake_questions",
                "intake_question_set_versions",
                "intake_answers",
                "forms",
                "document_log",
                "reminder_settings",
            ):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                    )
                )
            conn.execute(text("ANALYZE"))
        else:
            conn.exec_driver_sql("ANALYZE")
        session = Session(bind=conn)
        seed_collections(session, today=today)  # contacts, promises and two payment plans
        session.flush()
        client_totals.rebuild(session)
        ar_history.rebuild(session)
        audit.record(
            session,
            actor=None,
            action="demo.seed",
            entity="practice",
            detail=f"clients={clients} seed={seed}",
        )
        session.flush()
        session.close()
    seconds = monotonic() - started
    return SeedSummary(clients, counts["appointments"], counts["ledger"], seconds)


def _client_batch(
    rng,
    ids,
    numbers,
    *,
    today,
    now,
    clinician_ids,
    payer_ids,
    services,
    questions,
    set_version,
    forms,
) -> dict:
    out = {
        m: []
        for m in (
            Client,
            ClientStatusChange,
            Coverage,
            Appointment,
            LedgerEntry,
            OpenCharge,
            InsuranceCredit,
            IntakeAnswer,
            DocumentLogEntry,
        )
    }
    horizon_start = today - timedelta(days=548)  # 18 months
    for n in numbers:
        client_id = ids.take("clients")
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        preferred = PREFERRED.get(first, "") if rng.random() < 0.5 else ""
        middle = rng.choice(FIRST_NAMES)[0] if rng.random() < 0.3 else ""
        age_days = rng.randint(6 * 365, 85 * 365)
        dob = today - timedelta(days=age_days)
        minor = age_days < 18 * 365
        r = rng.random()
        status = (
            "active"
            if r < 0.70
            else "inactive"
            if r < 0.85
            else "discharged"
            if r < 0.93
            else "prospective"
        )
        clinician_id = rng.choice(clinician_ids)
        since = horizon_start + timedelta(days=rng.randint(0, 520))
        city, state, zip_prefix = rng.choice(CITIES)
        mobile = _phone(rng)
        home = _phone(rng) if rng.random() < 0.3 else ""
        email = _email(rng, first, last, n) if rng.random() < 0.9 else ""
        insured = rng.random() < 0.65 and status != "prospective"
        guardian_last = last
        row = {
            "id": client_id,
            "client_number": 1000 + n,
            "first_name": first,
            "middle_name": middle,
            "last_name": last,
            "preferred_name": preferred,
            "pronouns": rng.choice(PRONOUNS),
            "dob": dob,
            "sex": rng.choice(("F", "M")),
            "gender_identity": "",
            "marital_status": "" if minor else rng.choice(("Single", "Married", "Divorced", "")),
            "client_type": "minor" if minor else rng.choice(("adult",) * 9 + ("couple",)),
            "status": status,
            "clinician_id": clinician_id,
            "client_since": since,
            "referral_source": rng.choice(REFERRALS),
            "language": rng.choice(LANGUAGES),
            "address_line1": f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
            "address_line2": f"Apt {rng.randint(1, 40)}" if rng.random() < 0.2 else "",
            "city": city,
            "state": state,
            "zip_code": f"{zip_prefix}{rng.randint(10, 99)}",
            "phone_mobile": mobile,
            "phone_home": home,
            "phone_work": "",
            "preferred_phone": "mobile",
            "text_ok": rng.random() < 0.7,
            "voicemail_ok": rng.random() < 0.8,
            "email": email,
            "email_ok": bool(email),
            "emergency_name": f"{rng.choice(FIRST_NAMES)} {last}",
            "emergency_relationship": rng.choice(("Spouse", "Parent", "Sibling", "Friend")),
            "emergency_phone": _phone(rng),
            "guardian_name": f"{rng.choice(FIRST_NAMES)} {guardian_last}" if minor else "",
            "guardian_relationship": "Parent" if minor else "",
            "guardian_phone": _phone(rng) if minor else "",
            "time_zone": "America/New_York",
            "billing_type": "insurance" if insured else "self_pay",
            "created_at": datetime.combine(since, time(14, 0), tzinfo=UTC),
            "updated_at": now,
            "updated_by": None,
            "version": 1,
        }
        row.update(
            search_columns(
                first_name=first,
                middle_name=middle,
                last_name=last,
                preferred_name=preferred,
                email=email,
                phones=(mobile, home),
            )
        )
        out[Client].append(row)
        out[ClientStatusChange].append(
            {
                "id": ids.take("client_status_changes"),
                "client_id": client_id,
                "old_status": None,
                "new_status": "prospective" if status == "prospective" else "active",
                "reason": "New client",
                "changed_at": row["created_at"],
                "changed_by": None,
            }
        )
        if status in ("inactive", "discharged"):
            out[ClientStatusChange].append(
                {
                    "id": ids.take("client_status_changes"),
                    "client_id": client_id,
                    "old_status": "active",
                    "new_status": status,
                    "reason": "No sessions in 90 days"
                    if status == "inactive"
                    else "Treatment completed",
                    "changed_at": now - timedelta(days=rng.randint(5, 60)),
                    "changed_by": None,
                }
            )
        primary_payer = None
        copay = 0
        if insured:
            primary_payer = rng.choice(payer_ids)
            copay = rng.choice((0, 1500, 2000, 2500, 3000, 4000))
            out[Coverage].append(
                {
                    "id": ids.take("coverages"),
                    "client_id": client_id,
                    "rank": 1,
                    "payer_id": primary_payer,
                    "payer_name": "",
                    "plan_name": rng.choice(
                        ("PPO", "HMO", "Choice Plus", "Open Access", "Standard")
                    ),
                    "member_id": f"{rng.choice('ABCDEFGHJKMW')}{rng.randint(10**8, 10**9 - 1)}",
                    "group_number": str(rng.randint(10000, 99999)),
                    "subscriber_relationship": "child" if minor else "self",
                    "subscriber_name": row["guardian_name"] if minor else "",
                    "subscriber_dob": None,
                    "start_date": since - timedelta(days=rng.randint(0, 400)),
                    "end_date": None,
                    "copay_cents": copay,
                    "active": True,
                }
            )
            if rng.random() < 0.1:
                out[Coverage].append(
                    {
                        "id": ids.take("coverages"),
                        "client_id": client_id,
                        "rank": 2,
                        "payer_id": None,
                        "payer_name": "Regional Employees Benefit Trust",
                        "plan_name": "Secondary",
                        "member_id": f"R{rng.randint(10**6, 10**7 - 1)}",
                        "group_number": "",
                        "subscriber_relationship": "spouse",
                        "subscriber_name": f"{rng.choice(FIRST_NAMES)} {last}",
                        "subscriber_dob": dob - timedelta(days=rng.randint(-2000, 2000)),
                        "start_date": since,
                        "end_date": None,
                        "copay_cents": 0,
                        "active": True,
                    }
                )
        _appointments_and_ledger(
            rng,
            ids,
            out,
            client_id=client_id,
            clinician_id=clinician_id,
            since=since,
            today=today,
            status=status,
            insured=insured,
            payer_id=primary_payer,
            copay=copay,
            services=services,
            client_row=row,
        )
        if status != "prospective" and rng.random() < 0.6:
            for q in questions:
                if rng.random() < 0.7:
                    out[IntakeAnswer].append(
                        {
                            "id": ids.take("intake_answers"),
                            "client_id": client_id,
                            "question_id": q["id"],
                            "value_json": json.dumps(_answer(rng, q, today)),
                            "source": rng.choice(("staff", "anonymous_signup")),
                            "answered_at": row["created_at"],
                            "answered_by": None,
                            "set_version_id": set_version,
                            "version": 1,
                        }
                    )
        if email and rng.random() < 0.35:
            form = rng.choice(forms)
            ok = rng.random() < 0.95
            out[DocumentLogEntry].append(
                {
                    "id": ids.take("document_log"),
                    "client_id": client_id,
                    "kind": "form",
                    "sent_at": row["created_at"] + timedelta(hours=rng.randint(1, 72)),
                    "sender_user_id": None,
                    "recipient": email,
                    "form_names": form["name"],
                    "attachment_names": "",
                    "channel": "email",
                    "status": "sent" if ok else "failed",
                    "error": "" if ok else "550 mailbox unavailable",
                    "resend_of_id": None,
                }
            )
    return out


def _answer(rng, q, today):
    kind = q["qtype"]
    options = json.loads(q["options_json"])
    if kind == "long_text":
        return rng.choice(
            (
                "Anxiety at work and trouble sleeping.",
                "Grief after a loss in the family.",
                "Relationship stress.",
                "Low mood for several months.",
            )
        )
    if kind == "short_text":
        return rng.choice(("None", "Sertraline 50 mg", "Lisinopril 10 mg", ""))
    if kind == "yes_no":
        return rng.random() < 0.5
    if kind == "single_choice":
        return rng.choice(options)
    if kind == "multiple_choice":
        return sorted(rng.sample(options, rng.randint(1, len(options))))
    if kind == "number":
        return rng.randint(1, 10)
    if kind == "date":
        return (today - timedelta(days=rng.randint(30, 900))).isoformat()
    return ""


def _appointments_and_ledger(
    rng,
    ids,
    out,
    *,
    client_id,
    clinician_id,
    since,
    today,
    status,
    insured,
    payer_id,
    copay,
    services,
    client_row,
):
    """Appointments since ``since`` with their charges and payments; the resulting balances
    go onto ``client_row``."""
    if status == "prospective":
        balance, items = balance_rows(client_id, replay([]))
        client_row.update(balance)
        return
    profile = rng.choices(
        ("paid_up", "owing", "credit", "insurance_pending"), weights=(45, 25, 10, 20)
    )[0]
    # About 20 ledger entries per client: insured visits post ~4 entries, self-pay ~2.
    visits = rng.randint(4, 7) if insured else rng.randint(8, 14)
    last_day = today if status == "active" else min(today, since + timedelta(days=200))
    span = max((last_day - since).days, visits)
    days = sorted(rng.sample(range(span), visits)) if span >= visits else list(range(visits))
    postings: list[Posting] = []

    def post(kind, responsibility, amount, day, **extra):
        entry_id = ids.take("ledger_entries")
        row = {
            "id": entry_id,
            "client_id": client_id,
            "kind": kind,
            "responsibility": responsibility,
            "amount_cents": amount,
            "service_date": day,
            "posted_at": datetime.combine(min(day, today), time(17, 0), tzinfo=UTC),
            "appointment_id": extra.get("appointment_id"),
            "service_id": extra.get("service_id"),
            "clinician_id": clinician_id if kind == "charge" else None,
            "payer_id": payer_id if responsibility == "insurance" else None,
            "method": extra.get("method", ""),
            "reference": extra.get("reference", ""),
            "authorization_code": "",
            "memo": extra.get("memo", ""),
            "reverses_entry_id": extra.get("reverses"),
            "idempotency_key": f"demo-{entry_id}",
            "created_by": None,
            "adjustment_reason": extra.get("reason", "other"),
        }
        out[LedgerEntry].append(row)
        postings.append(
            Posting(
                entry_id,
                kind,
                responsibility,
                amount,
                day,
                extra.get("reverses"),
                row["clinician_id"],
                row["payer_id"],
            )
        )
        return entry_id

    for i, offset in enumerate(days):
        day = since + timedelta(days=offset)
        service = services[0] if i == 0 else rng.choice(services[1:4])
        appt_id = ids.take("appointments")
        starts = datetime.combine(
            day, time(rng.choice((13, 14, 15, 16, 17, 18, 19, 20, 21)), 0), tzinfo=UTC
        )
        r = rng.random()
        appt_status = "completed" if r < 0.9 else "no_show" if r < 0.95 else "cancelled"
        out[Appointment].append(
            {
                "id": appt_id,
                "client_id": client_id,
                "clinician_id": clinician_id,
                "service_id": service["id"],
                "starts_at": starts,
                "duration_minutes": service["default_minutes"],
                "status": appt_status,
                "telehealth": rng.random() < 0.4,
                "location": "" if rng.random() < 0.4 else "Main office",
                "created_at": starts - timedelta(days=7),
                "updated_at": starts,
                "version": 1,
            }
        )
        if appt_status != "completed":
            continue
        fee = service["fee_cents"]
        age = (today - day).days
        recent = age <= 45
        if insured:
            client_part = min(copay, fee)
            ins_part = fee - client_part
            ins_charge = (
                post(
                    "charge",
                    "insurance",
                    ins_part,
                    day,
                    appointment_id=appt_id,
                    service_id=service["id"],
                )
                if ins_part
                else None
            )
            if client_part:
                post(
                    "charge",
                    "client",
                    client_part,
                    day,
                    appointment_id=appt_id,
                    service_id=service["id"],
                )
                unpaid = profile == "owing" and (i >= visits - 2 or rng.random() < 0.3)
                if not unpaid:
                    post(
                        "payment",
                        "client",
                        client_part,
                        day,
                        method=rng.choice(("card", "cash", "check")),
                        reference=f"x{rng.randint(1000, 9999)}",
                    )
            pending = ins_charge and (
                (profile == "insurance_pending" and (recent or rng.random() < 0.35))
                or (recent and rng.random() < 0.5)
            )
            if ins_charge and not pending:
                allowed = int(ins_part * rng.choice((0.7, 0.75, 0.8, 0.85)))
                pay_day = min(today, day + timedelta(days=rng.randint(14, 40)))
                post(
                    "payment",
                    "insurance",
                    allowed,
                    pay_day,
                    method="ach",
                    reference=f"EFT{rng.randint(10**6, 10**7 - 1)}",
                )
                post(
                    "adjustment",
                    "insurance",
                    ins_part - allowed,
                    pay_day,
                    memo="Contractual adjustment",
                    reason="contractual",
                )
        else:
            post("charge", "client", fee, day, appointment_id=appt_id, service_id=service["id"])
            unpaid = profile == "owing" and (i >= visits - 2 or rng.random() < 0.25)
            if not unpaid:
                method = rng.choice(("card", "card", "cash", "check", "ach"))
                pid = post(
                    "payment",
                    "client",
                    fee,
                    day,
                    method=method,
                    reference=f"{rng.randint(1000, 9999)}",
                )
                if rng.random() < 0.03:
                    # A bounced check or a mistaken posting, corrected by a reversal and repost.
                    post("reversal", "client", fee, day, reverses=pid, memo="Posted twice in error")
                    post(
                        "payment",
                        "client",
                        fee,
                        day,
                        method=method,
                        reference=f"{rng.randint(1000, 9999)}",
                    )
    if profile == "credit" and postings:
        extra_pay = rng.choice((2000, 5000, 10000))
        post(
            "payment",
            "client",
            extra_pay,
            today - timedelta(days=rng.randint(1, 60)),
            method="card",
            reference=f"{rng.randint(1000, 9999)}",
            memo="Prepayment",
        )
        if rng.random() < 0.2:
            post(
                "refund",
                "client",
                extra_pay // 2,
                today - timedelta(days=1),
                method="card",
                memo="Partial refund of prepayment",
            )
    if status == "active":
        for k in range(rng.randint(0, 3)):
            day = today + timedelta(days=7 * (k + 1) - rng.randint(0, 3))
            starts = datetime.combine(day, time(rng.choice((14, 15, 16, 17, 18)), 0), tzinfo=UTC)
            service = rng.choice(services[1:4])
            out[Appointment].append(
                {
                    "id": ids.take("appointments"),
                    "client_id": client_id,
                    "clinician_id": clinician_id,
                    "service_id": service["id"],
                    "starts_at": starts,
                    "duration_minutes": service["default_minutes"],
                    "status": "scheduled",
                    "telehealth": rng.random() < 0.4,
                    "location": "Main office",
                    "created_at": starts - timedelta(days=14),
                    "updated_at": starts - timedelta(days=14),
                    "version": 1,
                }
            )
    state = replay(postings)
    balance, items = balance_rows(client_id, state)
    client_row.update(balance)
    out[OpenCharge].extend(items)
    out[InsuranceCredit].extend(credit_rows(client_id, state))
