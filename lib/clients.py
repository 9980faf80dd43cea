"""Clients: the searchable list with balances (spec C1, C2) and the search columns behind it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import jellyfish
from anyascii import anyascii
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from lib import aging, audit, client_totals
from lib.db import exclusive
from lib.models import (
    Client,
    ClientStatusChange,
    Clinician,
    Coverage,
    OpenCharge,
)
from lib.policy import Actor, allowed, require, sees_only_own_clients
from lib.timeutil import practice_day, practice_today, utcnow
from lib.validation import (
    Validator,
    clean_choice,
    clean_dob,
    clean_email,
    clean_phone,
    clean_text,
)

STATUS_LABELS = {
    "active": "Active",
    "inactive": "Inactive",
    "prospective": "Prospective",
    "discharged": "Discharged",
}


def fold(text: str) -> str:
    """Lower-case ASCII, so a name is found as people type it on a US keyboard:
    'Zoë Álvarez' -> 'zoe alvarez', 'Thomas Østergaard' -> 'thomas ostergaard', 'Łukasz' ->
    'lukasz', 'Straße' -> 'strasse'. Letters without a Unicode decomposition (ø, ł, æ, ß, đ)
    are transliterated by anyascii, not by a hand-made table.

    The stored search columns are built with it (``search_columns``); migration 0010 refreshed
    them when it changed, so a change here needs a migration that refreshes them again.
    """
    return anyascii(text or "").lower().strip()


def last_name_key(last_name: str) -> str:
    """Sound-alike key of a last name: Smith, Smyth and Smithe share one."""
    letters = re.sub(r"[^a-z]", "", fold(last_name))
    return jellyfish.soundex(letters) if letters else ""


def digits(text: str) -> str:
    return re.sub(r"\D", "", text or "")


def search_columns(
    *,
    first_name: str,
    middle_name: str = "",
    last_name: str,
    preferred_name: str = "",
    email: str = "",
    phones: tuple[str, ...] = (),
) -> dict[str, str]:
    """The derived search columns of a client, recomputed on every write of the client."""
    names = " ".join(p for p in (first_name, middle_name, last_name, preferred_name) if p)
    phone_digits = " ".join(d for d in (digits(p) for p in phones) if d)
    return {
        "search_name": " " + re.sub(r"\s+", " ", fold(names)) + " ",
        "phone_digits": phone_digits,
        "email_norm": (email or "").strip().lower(),
        "last_name_key": last_name_key(last_name),
    }


_DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%m-%d-%Y", "%m.%d.%Y", "%Y/%m/%d")
_SHORT_YEAR_FORMATS = ("%m/%d/%y", "%m-%d-%y", "%m.%d.%y")


def parse_date_query(text: str, today: date | None = None) -> date | None:
    """A date of birth typed the way people type them: 3/7/1985, 03/07/1985, 1985-03-07,
    3/7/85. A two-digit year is the latest such year that is not after ``today`` (the
    practice's day): a date of birth is never in the future, so 12/20/51 is 1951."""
    text = text.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    for fmt in _SHORT_YEAR_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        today = today or practice_today()
        year = (today.year - today.year % 100) + parsed.year % 100
        candidate = _with_year(parsed, year)
        if candidate is None or candidate > today:
            candidate = _with_year(parsed, year - 100)
        return candidate
    return None


def _with_year(day: date, year: int) -> date | None:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a year without one
        return None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


SEARCH_MAX_CHARS = 100
SEARCH_MAX_WORDS = 8


@dataclass(frozen=True)
class CappedSearch:
    text: str  # what is searched for
    note: str  # "" when that is the whole search; else what was left out, to show the user


def cap_search(query: str) -> CappedSearch:
    """The search as the database gets it: at most ``SEARCH_MAX_WORDS`` words and
    ``SEARCH_MAX_CHARS`` characters. No name, phone, email, date or number is longer, and a
    pasted page would otherwise become one condition per word, more than SQLite accepts."""
    text = (query or "").strip()
    note = ""
    words = [w for w in re.split(r"[\s,]+", text) if w]
    if len(words) > SEARCH_MAX_WORDS:
        text = " ".join(words[:SEARCH_MAX_WORDS])
        note = f"Only the first {SEARCH_MAX_WORDS} words of the search are used."
    if len(text) > SEARCH_MAX_CHARS:
        text = text[:SEARCH_MAX_CHARS].strip()
        note = f"Only the first {SEARCH_MAX_CHARS} characters of the search are used."
    return CappedSearch(text, note)


_CLIENT_NUMBER = re.compile(r"#\s*(\d{1,9})")


def search_condition(query: str, today: date | None = None):
    """Every way the search box can match a client; None when the query is blank.
    ``today`` (the practice's day) dates two-digit years of birth."""
    q = (query or "").strip()
    if not q:
        return None
    number = _CLIENT_NUMBER.fullmatch(q)
    if number:  # "#1289", the way the app prints a client number
        return Client.client_number == int(number.group(1))
    options = []
    as_date = parse_date_query(q, today)
    if as_date is not None:
        options.append(Client.dob == as_date)
    q_digits = digits(q)
    phoneish = re.fullmatch(r"[\d\s().+\-]+", q) is not None
    if q_digits and phoneish:
        if q_digits.isdigit() and len(q_digits) <= 9 and q.strip().isdigit():
            options.append(Client.client_number == int(q_digits))
        if len(q_digits) >= 4:
            options.append(Client.phone_digits.like(f"%{q_digits}%"))
        if len(q_digits) == 11 and q_digits.startswith("1"):  # +1 617 555 0142
            options.append(Client.phone_digits.like(f"%{q_digits[1:]}%"))
    if "@" in q or (" " not in q and as_date is None):  # an email, or the start of one
        options.append(Client.email_norm.like(f"%{_like_escape(q.lower())}%", escape="\\"))
    tokens = [t for t in re.split(r"[\s,]+", fold(q)) if t]
    if tokens and not (phoneish and q_digits) and as_date is None:
        options.append(
            and_(*[Client.search_name.like(f"%{_like_escape(t)}%", escape="\\") for t in tokens])
        )
    return or_(*options) if options else Client.id.is_(None)


@dataclass(frozen=True)
class ClientListRow:
    client_id: int
    client_number: int
    name: str  # "Last, First (Preferred)"
    dob: date | None
    phone: str
    email: str
    status: str
    clinician: str
    client_due_cents: int | None = None
    insurance_pending_cents: int | None = None
    unapplied_credit_cents: int | None = None
    total_cents: int | None = None
    oldest_unpaid_dos: date | None = None


@dataclass(frozen=True)
class ClientListTotals:
    client_due_cents: int
    insurance_pending_cents: int
    unapplied_credit_cents: int
    total_cents: int


@dataclass(frozen=True)
class ClientListResult:
    rows: list[ClientListRow]
    count: int
    totals: ClientListTotals | None  # None for roles without billing rights
    shows_balances: bool
    search_note: str = ""  # set when only part of a very long search was used (cap_search)
    # When the search finds nobody under the status filter: {status: clients} it finds in the
    # other statuses, so the screen can offer to include them.
    elsewhere: dict[str, int] = field(default_factory=dict)


SORTS = {
    "name": (Client.last_name, Client.first_name, Client.id),
    "client_number": (Client.client_number,),
    "status": (Client.status, Client.last_name, Client.id),
    "clinician": (Clinician.last_name, Client.last_name, Client.id),
    "dob": (Client.dob, Client.id),
    "email": (Client.email_norm, Client.id),
    # the list shows the mobile, else the home phone
    "phone": (func.coalesce(func.nullif(Client.phone_mobile, ""), Client.phone_home), Client.id),
}
NULLABLE_SORTS = {"dob", "clinician", "oldest_unpaid"}  # their first column can be empty
BALANCE_SORTS = {
    "client_due": (Client.client_due_cents, Client.id),
    "insurance_pending": (Client.insurance_pending_cents, Client.id),
    "unapplied_credit": (Client.unapplied_credit_cents, Client.id),
    "total": (Client.total_cents, Client.id),
    "oldest_unpaid": (Client.oldest_unpaid_dos, Client.id),
}


def display_name(last: str, first: str, preferred: str = "") -> str:
    name = f"{last}, {first}"
    return f"{name} ({preferred})" if preferred and preferred != first else name


def list_clients(
    session: Session,
    *,
    actor: Actor,
    query: str = "",
    statuses: tuple[str, ...] = ("active",),
    clinician_id: int | None = None,
    payer_id: int | None = None,
    has_balance: bool = False,
    aging_bucket: str | None = None,
    as_of: date | None = None,
    sort: str = "name",
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> ClientListResult:
    """One page of the client list, its total count and (billing roles) money totals.

    Everything is filtered, sorted and paged in SQL, so the cost does not grow with the
    practice's size beyond what the indexes need.
    """
    require(actor, "client.view")
    shows_balances = allowed(actor, "balance.view")
    if (has_balance or aging_bucket) and not shows_balances:
        require(actor, "balance.view")
    today = practice_today()
    search = cap_search(query)
    matched = search_condition(search.text, today)
    filters = _filter_conditions(
        actor,
        clinician_id=clinician_id,
        payer_id=payer_id,
        has_balance=has_balance,
        aging_bucket=aging_bucket,
        as_of=as_of or today,
    )
    conditions = [Client.status.in_(statuses)] if statuses else []
    conditions += filters
    if matched is not None:
        # Find the matching ids first (an index-only scan of ix_clients_search), then read
        # just those rows; one query over all columns makes the planner scan the wide rows.
        conditions = [Client.id.in_(select(Client.id).where(*conditions, matched))]

    sorts = dict(SORTS)
    if shows_balances:
        sorts.update(BALANCE_SORTS)
    if sort not in sorts:
        raise ValueError(f"unknown sort {sort!r}")
    # Empty values (no unpaid charge, no clinician) last in both directions, on both engines;
    # columns that are never empty keep a plain ORDER BY so their index serves it.
    order = [c.desc() if descending else c.asc() for c in sorts[sort]]
    if sort in NULLABLE_SORTS:
        order[0] = order[0].nulls_last()

    totals = None
    simple = matched is None and payer_id is None and not has_balance and not aging_bucket
    if simple:
        # The usual view (a status, maybe one clinician): totals kept per (status, clinician).
        own = actor.clinician_id if sees_only_own_clients(actor) else None
        if own is not None and clinician_id is not None and clinician_id != own:
            kept = client_totals.Totals(0, 0, 0, 0, 0)
        else:
            kept = client_totals.summed(
                session, statuses=tuple(statuses), clinician_id=own or clinician_id
            )
        count = kept.client_count
        if shows_balances:
            totals = ClientListTotals(
                kept.client_due_cents,
                kept.insurance_pending_cents,
                kept.unapplied_credit_cents,
                kept.total_cents,
            )

    # A search or a filter: count and money totals come with the page, as window aggregates
    # over every matching row, so the matching rows are found once, not once per query.
    windowed = (
        []
        if simple
        else [
            func.count().over(),
            *[func.sum(getattr(Client, k)).over() for k in client_totals.SUMS],
        ]
    )
    page = session.execute(
        select(
            Client.id,
            Client.client_number,
            Client.last_name,
            Client.first_name,
            Client.preferred_name,
            Client.dob,
            Client.phone_mobile,
            Client.phone_home,
            Client.email,
            Client.status,
            Clinician.first_name,
            Clinician.last_name,
            Client.client_due_cents,
            Client.insurance_pending_cents,
            Client.unapplied_credit_cents,
            Client.total_cents,
            Client.oldest_unpaid_dos,
            *windowed,
        )
        .select_from(Client)
        .outerjoin(Clinician, Clinician.id == Client.clinician_id)
        .where(*conditions)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    ).all()
    if not simple:
        if page:
            sums = page[0][17:]
        elif offset == 0:  # nothing matches at all
            sums = (0, *(0 for _ in client_totals.SUMS))
        else:  # a page past the end (the list shrank): the totals on their own
            sums = session.execute(
                select(
                    func.count(),
                    *[func.coalesce(func.sum(getattr(Client, k)), 0) for k in client_totals.SUMS],
                ).where(*conditions)
            ).one()
        count = int(sums[0])
        if shows_balances:
            totals = ClientListTotals(*(int(v or 0) for v in sums[1:]))

    elsewhere: dict[str, int] = {}
    if count == 0 and matched is not None and statuses:
        # Nothing under the status filter: say where the search does find clients.
        elsewhere = _counts_by_status(session, [Client.status.not_in(statuses), *filters, matched])

    rows = []
    for r in page:
        money = {}
        if shows_balances:
            money = {
                "client_due_cents": int(r[12] or 0),
                "insurance_pending_cents": int(r[13] or 0),
                "unapplied_credit_cents": int(r[14] or 0),
                "total_cents": int(r[15] or 0),
                "oldest_unpaid_dos": r[16],
            }
        rows.append(
            ClientListRow(
                client_id=r[0],
                client_number=r[1],
                name=display_name(r[2], r[3], r[4]),
                dob=r[5],
                phone=r[6] or r[7] or "",
                email=r[8],
                status=STATUS_LABELS.get(r[9], r[9]),
                clinician=f"{r[10]} {r[11]}" if r[10] else "",
                **money,
            )
        )
    return ClientListResult(
        rows=rows,
        count=count,
        totals=totals,
        shows_balances=shows_balances,
        search_note=search.note,
        elsewhere=elsewhere,
    )


def _filter_conditions(
    actor: Actor,
    *,
    clinician_id: int | None,
    payer_id: int | None,
    has_balance: bool,
    aging_bucket: str | None,
    as_of: date,
) -> list:
    """The list's filters other than status and search, as SQL conditions."""
    conditions = []
    if sees_only_own_clients(actor):
        conditions.append(Client.clinician_id == actor.clinician_id)
    if clinician_id is not None:
        conditions.append(Client.clinician_id == clinician_id)
    if payer_id is not None:
        conditions.append(
            exists().where(
                Coverage.client_id == Client.id,
                Coverage.payer_id == payer_id,
                Coverage.active.is_(True),
            )
        )
    if has_balance:
        conditions.append(Client.total_cents != 0)
    if aging_bucket:
        oldest, newest = aging.bucket_by_key(aging_bucket).date_range(as_of)
        in_bucket = [OpenCharge.client_id == Client.id, OpenCharge.service_date <= newest]
        if oldest is not None:
            in_bucket.append(OpenCharge.service_date >= oldest)
        conditions.append(exists().where(*in_bucket))
    return conditions


def _counts_by_status(session: Session, conditions: list) -> dict[str, int]:
    """{status: clients} in the order of ``STATUS_LABELS``, statuses with none left out."""
    found = dict(
        session.execute(
            select(Client.status, func.count()).where(*conditions).group_by(Client.status)
        ).all()
    )
    return {s: int(found[s]) for s in STATUS_LABELS if found.get(s)}


def clinician_choices(session: Session) -> list[tuple[int, str]]:
    """(id, 'First Last') of active clinicians, for filters and forms."""
    return [
        (c.id, f"{c.first_name} {c.last_name}")
        for c in session.scalars(
            select(Clinician).where(Clinician.active.is_(True)).order_by(Clinician.last_name)
        )
    ]


# --- adding a client (C3) ------------------------------------------------------------------

CLIENT_TYPES = ("adult", "minor", "couple")
DUPLICATE_THRESHOLD = 45


@dataclass(frozen=True)
class DuplicateMatch:
    client_id: int
    client_number: int
    name: str
    dob: date | None
    status: str
    score: int  # 0-100
    reasons: tuple[str, ...]


class PossibleDuplicates(Exception):
    """Likely matches exist and the user has not confirmed saving anyway."""

    def __init__(self, matches: list[DuplicateMatch]):
        super().__init__(f"{len(matches)} possible duplicate(s)")
        self.matches = matches


def score_match(
    *,
    first_name: str,
    last_name: str,
    dob: date | None,
    email: str,
    phone_digits: str,
    candidate: dict,
) -> tuple[int, tuple[str, ...]]:
    """How likely ``candidate`` is the same person, 0-100, and why.

    Last name exact 25 (sounds alike 15), first or preferred name 15 (same initial 5),
    date of birth 30, email 30, phone 25; capped at 100.
    """
    score = 0
    reasons = []
    last, cand_last = fold(last_name), fold(candidate["last_name"])
    if last and last == cand_last:
        score += 25
        reasons.append("same last name")
    elif last and last_name_key(last_name) == candidate["last_name_key"]:
        score += 15
        reasons.append("last name sounds alike")
    first = fold(first_name)
    cand_firsts = {fold(candidate["first_name"]), fold(candidate["preferred_name"])} - {""}
    if first and first in cand_firsts:
        score += 15
        reasons.append("same first name")
    elif first and any(f[0] == first[0] for f in cand_firsts):
        score += 5
        reasons.append("same first initial")
    if dob is not None and dob == candidate["dob"]:
        score += 30
        reasons.append("same date of birth")
    if email and email.strip().lower() == candidate["email_norm"]:
        score += 30
        reasons.append("same email")
    if len(phone_digits) >= 10 and phone_digits[-10:] in candidate["phone_digits"]:
        score += 25
        reasons.append("same phone")
    return min(score, 100), tuple(reasons)


def find_duplicates(
    session: Session,
    *,
    actor: Actor,
    first_name: str,
    last_name: str,
    dob: date | None,
    email: str = "",
    phone: str = "",
    exclude_client_id: int | None = None,
    limit: int = 5,
) -> list[DuplicateMatch]:
    """Existing clients that are likely the same person, best first.

    Looks across every status and every clinician (a duplicate hidden from a clinician is
    still a duplicate), but returns only names, numbers and DOB — no balances or notes.
    """
    require(actor, "client.create")
    phone_digits = digits(phone)
    options = []
    if dob is not None:
        options.append(Client.dob == dob)
    if email.strip():
        options.append(Client.email_norm == email.strip().lower())
    if len(phone_digits) >= 10:
        options.append(Client.phone_digits.like(f"%{phone_digits[-10:]}%"))
    key = last_name_key(last_name)
    if key:
        options.append(Client.last_name_key == key)
    if not options:
        return []
    query = (
        select(
            Client.id,
            Client.client_number,
            Client.first_name,
            Client.last_name,
            Client.preferred_name,
            Client.dob,
            Client.status,
            Client.email_norm,
            Client.phone_digits,
            Client.last_name_key,
        )
        .where(or_(*options))
        .limit(2000)
    )
    if exclude_client_id is not None:
        query = query.where(Client.id != exclude_client_id)
    matches = []
    for row in session.execute(query).mappings():
        score, reasons = score_match(
            first_name=first_name,
            last_name=last_name,
            dob=dob,
            email=email,
            phone_digits=phone_digits,
            candidate=dict(row),
        )
        if score >= DUPLICATE_THRESHOLD:
            matches.append(
                DuplicateMatch(
                    client_id=row["id"],
                    client_number=row["client_number"],
                    name=display_name(row["last_name"], row["first_name"], row["preferred_name"]),
                    dob=row["dob"],
                    status=STATUS_LABELS.get(row["status"], row["status"]),
                    score=score,
                    reasons=reasons,
                )
            )
    matches.sort(key=lambda m: (-m.score, m.client_number))
    return matches[:limit]


@dataclass(frozen=True)
class NewClient:
    client_id: int
    client_number: int


def validate_new_client(
    session: Session,
    *,
    first_name: str,
    last_name: str,
    dob: date | None,
    email: str,
    phone_mobile: str,
    clinician_id: int | None,
    status: str,
    today: date | None = None,
) -> dict:
    """Clean the add-client form or raise ``ValidationError`` with a message per field."""
    v = Validator()
    v.check("first_name", clean_text, first_name, label="first name", required=True, max_len=80)
    v.check("last_name", clean_text, last_name, label="last name", required=True, max_len=80)
    v.check("dob", clean_dob, dob, today=today)
    v.check("email", clean_email, email)
    v.check("phone_mobile", clean_phone, phone_mobile)
    v.check("status", clean_choice, status, STATUS_LABELS, label="status", allow_blank=False)
    if clinician_id is not None and session.get(Clinician, clinician_id) is None:
        v.fail("clinician_id", "Choose a clinician from the list.")
    v.values["clinician_id"] = clinician_id
    v.raise_if_errors()
    return v.values


def _next_client_number(session: Session) -> int:
    """MAX + 1 under a lock held until commit, so two overlapping saves never pick the same
    number on either engine (and imported or demo numbers never collide with a sequence)."""
    exclusive(session, "client_number")
    return int(session.scalar(select(func.coalesce(func.max(Client.client_number), 999))) + 1)


def create_client(
    session: Session,
    *,
    actor: Actor,
    first_name: str,
    last_name: str,
    dob: date | None,
    email: str = "",
    phone_mobile: str = "",
    clinician_id: int | None = None,
    status: str = "active",
    acknowledged_duplicates: tuple[int, ...] = (),
    now: datetime | None = None,
) -> NewClient:
    """Add a client after validation and the duplicate check.

    Raises ``ValidationError`` (field messages) or ``PossibleDuplicates`` when likely matches
    exist that the user has not seen; pass their ids in ``acknowledged_duplicates`` to save
    anyway (audited with those client numbers).
    """
    require(actor, "client.create")
    if sees_only_own_clients(actor):
        clinician_id = actor.clinician_id
    values = validate_new_client(
        session,
        first_name=first_name,
        last_name=last_name,
        dob=dob,
        email=email,
        phone_mobile=phone_mobile,
        clinician_id=clinician_id,
        status=status,
    )
    matches = find_duplicates(
        session,
        actor=actor,
        first_name=values["first_name"],
        last_name=values["last_name"],
        dob=values["dob"],
        email=values["email"],
        phone=values["phone_mobile"],
    )
    unseen = [m for m in matches if m.client_id not in set(acknowledged_duplicates)]
    if unseen:
        raise PossibleDuplicates(matches)
    now = now or utcnow()
    client = Client(
        client_number=_next_client_number(session),
        first_name=values["first_name"],
        last_name=values["last_name"],
        dob=values["dob"],
        email=values["email"],
        email_ok=bool(values["email"]),
        phone_mobile=values["phone_mobile"],
        clinician_id=values["clinician_id"],
        status=values["status"],
        client_since=practice_day(now),  # the practice's day, not the server's
        created_at=now,
        updated_at=now,
        updated_by=actor.user_id,
        version=1,
        **search_columns(
            first_name=values["first_name"],
            last_name=values["last_name"],
            email=values["email"],
            phones=(values["phone_mobile"],),
        ),
    )
    session.add(client)
    session.flush()
    session.add(
        ClientStatusChange(
            client_id=client.id,
            old_status=None,
            new_status=client.status,
            reason="New client",
            changed_at=now,
            changed_by=actor.user_id,
        )
    )
    client_totals.adjust(session, status=client.status, clinician_id=client.clinician_id, count=1)
    detail = ""
    if matches:
        detail = "saved despite possible duplicates: " + ", ".join(
            str(m.client_number) for m in matches
        )
    audit.record(
        session,
        actor=actor,
        action="client.create",
        entity="client",
        entity_id=client.id,
        client_id=client.id,
        after={k: v for k, v in values.items()},
        detail=detail,
        at=now,
    )
    return NewClient(client_id=client.id, client_number=client.client_number)
