"""The client list (spec C1, C2): search as you type, filters, sorting, paging, count and totals.

Every test builds the same small practice on a fresh database (SQLite and PostgreSQL): clients
with accents, preferred names, phones, emails and a name made of markup, two clinicians, a
payer with coverages, and ledger entries whose balances come from ``lib.ledger.refresh_client``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from lib import aging, clients, ledger
from lib.auth import actor_for
from lib.db import transaction
from lib.models import Client, Coverage, LedgerEntry, OpenCharge, Payer, User
from lib.policy import Actor, PermissionDenied
from lib.timeutil import utcnow
from tests.factories import make_client, make_clinician, make_user

ALL_STATUSES = ("active", "inactive", "prospective", "discharged")
MARKUP_FIRST = "<img src=x onerror=alert(1)>"
MARKUP_LAST = "**Bold** $x^2$ [link](http://x)"

# key: (first, last, preferred, dob, email, phone as stored, status, clinician "a"/"b")
PEOPLE = {
    "zoe": ("Zoë", "Brennan", "", date(1979, 5, 2), "zb@example.net", "(508) 555-0177"),
    "maria": (
        "María",
        "Álvarez",
        "Nena",
        date(1985, 3, 7),
        "maria.alvarez@example.com",
        "(617) 555-0142",
    ),
    "robert": (
        "Robert",
        "Chen",
        "Bobby",
        date(1990, 11, 23),
        "bchen@example.org",
        "(212) 555-0100",
    ),
    "sam": ("Sam", "Okoye", "", date(1985, 7, 3), "sam.okoye@example.com", "(978) 555-0161"),
    "markup": (MARKUP_FIRST, MARKUP_LAST, "", date(2000, 1, 1), "", ""),
    "lee": ("Lee", "Park", "", date(1971, 9, 9), "lee@example.net", "(781) 555-0188"),
    "ines": (
        "Inés",
        "Alvarado",
        "",
        date(1962, 1, 30),
        "ines.alvarado@example.com",
        "(413) 555-0123",
    ),
    "dmitri": ("Dmitri", "Volkov", "", date(1958, 12, 12), "", "(339) 555-0155"),
    "priya": ("Priya", "Raman", "", date(1995, 4, 18), "", "(857) 555-0133"),
}
STATUS = {"ines": "inactive", "dmitri": "discharged", "priya": "prospective"}
CLINICIAN = {"zoe": "a", "maria": "a", "markup": "a", "ines": "a", "priya": "a"}  # others: b
ACTIVE = {"zoe", "maria", "robert", "sam", "markup", "lee"}


@dataclass(frozen=True)
class World:
    ids: dict[str, int]
    numbers: dict[str, int]
    manager: Actor
    biller: Actor
    front_desk: Actor
    clinician_a: Actor
    clinician_a_id: int
    clinician_b_id: int
    payer_id: int
    as_of: date

    def keys(self, result: clients.ClientListResult) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[r.client_id] for r in result.rows]


def _post(session, client_id: int, kind: str, responsibility: str, amount: int, day: date) -> None:
    session.add(
        LedgerEntry(
            client_id=client_id,
            kind=kind,
            responsibility=responsibility,
            amount_cents=amount,
            service_date=day,
            posted_at=utcnow(),
            idempotency_key=f"search-{client_id}-{kind}-{amount}-{day}",
        )
    )
    session.flush()


@pytest.fixture
def world(engine) -> World:
    as_of = date.today()
    with transaction(engine) as session:
        clinician_a = make_clinician(session, "Ana", "Abara")
        clinician_b = make_clinician(session, "Ben", "Brook")
        ids, numbers = {}, {}
        for n, (key, (first, last, preferred, dob, email, phone)) in enumerate(PEOPLE.items()):
            cid = make_client(
                session,
                first_name=first,
                last_name=last,
                preferred_name=preferred,
                dob=dob,
                email=email,
                phone_mobile=phone,
                status=STATUS.get(key, "active"),
                clinician_id=clinician_a if CLINICIAN.get(key) == "a" else clinician_b,
            )
            # Client numbers no phone number contains, so a number search is unambiguous.
            session.get(Client, cid).client_number = 3001 + n
            ids[key], numbers[key] = cid, 3001 + n
        session.flush()

        payer = Payer(name="Aetna", payer_code="60054", kind="electronic", active=True, version=1)
        session.add(payer)
        session.flush()
        for key, active in (("robert", True), ("sam", False), ("ines", True)):
            session.add(
                Coverage(
                    client_id=ids[key], rank=1, payer_id=payer.id, member_id="M1", active=active
                )
            )

        _post(session, ids["maria"], "charge", "client", 12000, as_of - timedelta(days=10))
        _post(session, ids["robert"], "charge", "insurance", 20000, as_of - timedelta(days=45))
        _post(session, ids["zoe"], "charge", "client", 9000, as_of - timedelta(days=5))
        _post(session, ids["zoe"], "payment", "client", 9000, as_of - timedelta(days=2))
        _post(session, ids["sam"], "payment", "client", 5000, as_of - timedelta(days=3))
        _post(session, ids["markup"], "charge", "client", 3000, as_of - timedelta(days=100))
        _post(session, ids["ines"], "charge", "client", 7000, as_of - timedelta(days=200))
        for cid in ids.values():
            ledger.refresh_client(session, cid)

        return World(
            ids=ids,
            numbers=numbers,
            manager=make_user(session, "manager"),
            biller=make_user(session, "biller"),
            front_desk=make_user(session, "front_desk"),
            clinician_a=make_user(session, "clinician", clinician_id=clinician_a),
            clinician_a_id=clinician_a,
            clinician_b_id=clinician_b,
            payer_id=payer.id,
            as_of=as_of,
        )


def listing(engine, actor: Actor, **kwargs) -> clients.ClientListResult:
    kwargs.setdefault("limit", 100)
    with transaction(engine) as session:
        return clients.list_clients(session, actor=actor, **kwargs)


# --- search ------------------------------------------------------------------------------------

SEARCHES = {
    "names: any order, partial, case- and accent-insensitive, preferred names": [
        ("zoe", {"zoe"}),
        ("ZOË", {"zoe"}),
        ("alvarez maria", {"maria"}),
        ("María Álvarez", {"maria"}),
        ("Álvarez, María", {"maria"}),
        ("alv", {"maria"}),  # Inés Alvarado matches too, but is inactive
        ("nena", {"maria"}),
        ("bobby chen", {"robert"}),
        ("ok", {"sam"}),
    ],
    "phones in any formatting, and the last four digits": [
        ("617-555-0142", {"maria"}),
        ("(617) 555 0142", {"maria"}),
        ("6175550142", {"maria"}),
        ("617.555.0142", {"maria"}),
        ("+1 617 555 0142", {"maria"}),
        ("0142", {"maria"}),
    ],
    "email, whole or any fragment of it": [
        ("maria.alvarez@example.com", {"maria"}),
        ("MARIA.ALVAREZ@EXAMPLE.COM", {"maria"}),
        ("alvarez@exa", {"maria"}),
        ("example.org", {"robert"}),
        ("bchen", {"robert"}),
    ],
    "date of birth as typed (3/7 is March 7; 7/3 is Sam's July 3)": [
        ("3/7/1985", {"maria"}),
        ("03/07/1985", {"maria"}),
        ("1985-03-07", {"maria"}),
        ("7/3/1985", {"sam"}),
        ("1985-07-03", {"sam"}),
    ],
    "user-typed markup is searchable as the text it is": [
        ("onerror", {"markup"}),
        ("$x^2$", {"markup"}),
        ("[link]", {"markup"}),
    ],
    "nothing matches, and LIKE wildcards are not wildcards": [
        ("zzz", set()),
        ("%", set()),
        ("_", set()),
        ("9999", set()),
    ],
}


@pytest.mark.parametrize("kind", SEARCHES)
def test_search_finds_exactly_the_matching_active_clients(engine, world, kind):
    wrong = {}
    for query, expected in SEARCHES[kind]:
        result = listing(engine, world.manager, query=query)
        found = set(world.keys(result))
        if found != expected or result.count != len(expected):
            wrong[query] = (found, result.count)
    assert wrong == {}


@pytest.mark.parametrize("key", ["robert", "priya"])
def test_search_by_client_number(engine, world, key):
    result = listing(engine, world.manager, query=str(world.numbers[key]), statuses=ALL_STATUSES)
    assert world.keys(result) == [key]


def test_search_respects_the_status_filter(engine, world):
    assert set(world.keys(listing(engine, world.manager, query="alv"))) == {"maria"}
    everyone = listing(engine, world.manager, query="alv", statuses=ALL_STATUSES)
    assert set(world.keys(everyone)) == {"maria", "ines"}


def test_search_ignores_surrounding_blanks_and_blank_means_everything(engine, world):
    assert world.keys(listing(engine, world.manager, query="  nena  ")) == ["maria"]
    assert set(world.keys(listing(engine, world.manager, query="   "))) == ACTIVE


# --- filters -----------------------------------------------------------------------------------


def test_status_defaults_to_active_only(engine, world):
    result = listing(engine, world.manager)
    assert set(world.keys(result)) == ACTIVE
    assert {r.status for r in result.rows} == {"Active"}


def test_status_filter_takes_several_statuses(engine, world):
    for statuses, expected in (
        (("inactive",), {"ines"}),
        (("inactive", "discharged"), {"ines", "dmitri"}),
        (("prospective", "active"), ACTIVE | {"priya"}),
        (ALL_STATUSES, set(PEOPLE)),
    ):
        result = listing(engine, world.manager, statuses=statuses)
        assert set(world.keys(result)) == expected, statuses
        assert result.count == len(expected), statuses


def test_clinician_filter(engine, world):
    a = listing(engine, world.manager, clinician_id=world.clinician_a_id)
    assert set(world.keys(a)) == {"zoe", "maria", "markup"}
    assert {r.clinician for r in a.rows} == {"Ana Abara"}
    b_all = listing(engine, world.manager, clinician_id=world.clinician_b_id, statuses=ALL_STATUSES)
    assert set(world.keys(b_all)) == {"robert", "sam", "lee", "dmitri"}


def test_payer_filter_uses_active_coverages_only(engine, world):
    result = listing(engine, world.manager, payer_id=world.payer_id)
    assert world.keys(result) == ["robert"]  # Sam's coverage with this payer was removed
    everyone = listing(engine, world.manager, payer_id=world.payer_id, statuses=ALL_STATUSES)
    assert set(world.keys(everyone)) == {"robert", "ines"}


def test_has_balance_lists_clients_who_owe_and_not_those_paid_up(engine, world):
    result = listing(engine, world.manager, has_balance=True)
    keys = set(world.keys(result))
    assert {"maria", "robert", "markup"} <= keys
    assert "zoe" not in keys  # charged and paid in full
    assert "lee" not in keys  # never charged
    assert all(r.total_cents != 0 for r in result.rows)
    inactive_too = listing(engine, world.manager, has_balance=True, statuses=ALL_STATUSES)
    assert "ines" in world.keys(inactive_too)


def test_aging_bucket_filter_by_date_of_service(engine, world):
    # Maria's charge is 10 days old, Robert's 45, the markup client's 100, Inés' (inactive) 200.
    for bucket, expected, expected_all in (
        ("0_30", {"maria"}, {"maria"}),
        ("30_60", {"robert"}, {"robert"}),
        ("60_90", set(), set()),
        ("90_120", {"markup"}, {"markup"}),
        ("120_plus", set(), {"ines"}),
    ):
        result = listing(engine, world.biller, aging_bucket=bucket, as_of=world.as_of)
        assert set(world.keys(result)) == expected, bucket
        everyone = listing(
            engine, world.biller, aging_bucket=bucket, as_of=world.as_of, statuses=ALL_STATUSES
        )
        assert set(world.keys(everyone)) == expected_all, bucket


def test_filters_combine(engine, world):
    result = listing(
        engine,
        world.manager,
        query="a",
        clinician_id=world.clinician_a_id,
        has_balance=True,
        statuses=ALL_STATUSES,
    )
    # "a" is in all five of clinician A's names; Zoë is paid up and Priya never charged.
    assert set(world.keys(result)) == {"maria", "ines", "markup"}


# --- sorting and paging ------------------------------------------------------------------------

ASCII_NAME_ORDER = ["zoe", "robert", "sam", "lee"]  # Brennan, Chen, Okoye, Park


@pytest.mark.parametrize("descending", [False, True])
def test_sort_by_name_both_directions(engine, world, descending):
    keys = world.keys(listing(engine, world.manager, sort="name", descending=descending))
    assert set(keys) == ACTIVE
    plain = [k for k in keys if k in ASCII_NAME_ORDER]
    assert plain == (ASCII_NAME_ORDER[::-1] if descending else ASCII_NAME_ORDER)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_by_total_both_directions(engine, world, descending):
    result = listing(engine, world.manager, sort="total", descending=descending)
    totals = [r.total_cents for r in result.rows]
    assert totals == sorted([-5000, 0, 0, 3000, 12000, 20000], reverse=descending)
    keys = world.keys(result)
    ends = ["sam", "robert"][::-1] if descending else ["sam", "robert"]
    assert [keys[0], keys[-1]] == ends


@pytest.mark.parametrize("descending", [False, True])
def test_sort_by_oldest_unpaid_puts_clients_without_unpaid_charges_last(engine, world, descending):
    result = listing(engine, world.manager, sort="oldest_unpaid", descending=descending)
    keys = world.keys(result)
    dated = ["markup", "robert", "maria"]  # 100, 45 and 10 days ago
    assert keys[:3] == (dated[::-1] if descending else dated)
    assert set(keys[3:]) == {"zoe", "sam", "lee"}
    assert all(r.oldest_unpaid_dos is None for r in result.rows[3:])


def test_paging_walks_the_whole_sorted_list_once(engine, world):
    whole = listing(engine, world.manager, statuses=ALL_STATUSES, sort="name")
    pages = [
        listing(engine, world.manager, statuses=ALL_STATUSES, sort="name", limit=4, offset=offset)
        for offset in (0, 4, 8)
    ]
    assert [len(p.rows) for p in pages] == [4, 4, 1]
    assert [r.client_id for p in pages for r in p.rows] == [r.client_id for r in whole.rows]
    assert {p.count for p in pages} == {len(PEOPLE)}
    assert {p.totals for p in pages} == {whole.totals}


def test_an_unknown_sort_is_refused(engine, world):
    with pytest.raises(ValueError):
        listing(engine, world.manager, sort="ssn")


# --- count and totals --------------------------------------------------------------------------


def _sums(rows) -> clients.ClientListTotals:
    return clients.ClientListTotals(
        client_due_cents=sum(r.client_due_cents for r in rows),
        insurance_pending_cents=sum(r.insurance_pending_cents for r in rows),
        unapplied_credit_cents=sum(r.unapplied_credit_cents for r in rows),
        total_cents=sum(r.total_cents for r in rows),
    )


def test_count_and_totals_are_those_of_the_filtered_set(engine, world):
    for filters in (
        {},
        {"statuses": ALL_STATUSES},
        {"clinician_id": world.clinician_b_id},
        {"query": "alv", "statuses": ALL_STATUSES},
        {"has_balance": True},
        {"aging_bucket": "30_60"},
    ):
        result = listing(engine, world.manager, as_of=world.as_of, **filters)
        assert result.count == len(result.rows), filters
        assert result.totals == _sums(result.rows), filters
        first_only = listing(engine, world.manager, as_of=world.as_of, limit=1, **filters)
        assert first_only.count == result.count, filters
        assert first_only.totals == result.totals, filters  # the filter's totals, not the page's
    for filters in ({}, {"statuses": ()}, {"statuses": ALL_STATUSES}, {"query": "a"}):
        own = listing(engine, world.clinician_a, **filters)
        assert own.count == len(own.rows), filters
        assert own.totals is None


def test_totals_in_numbers(engine, world):
    active = listing(engine, world.manager)
    assert active.totals == clients.ClientListTotals(
        client_due_cents=12000 + 3000,
        insurance_pending_cents=20000,
        unapplied_credit_cents=5000,
        total_cents=12000 + 3000 + 20000 - 5000,
    )
    alv = listing(engine, world.manager, query="alv", statuses=ALL_STATUSES)
    assert alv.totals == clients.ClientListTotals(19000, 0, 0, 19000)


def test_rows_carry_the_balance_columns_for_billing_roles(engine, world):
    result = listing(engine, world.biller, query="nena")
    (row,) = result.rows
    assert result.shows_balances
    assert row.client_due_cents == 12000
    assert row.insurance_pending_cents == 0
    assert row.unapplied_credit_cents == 0
    assert row.total_cents == 12000
    assert row.oldest_unpaid_dos == world.as_of - timedelta(days=10)
    (credit,) = listing(engine, world.biller, query="okoye").rows
    assert credit.unapplied_credit_cents == 5000
    assert credit.total_cents == -5000


# --- who sees what -----------------------------------------------------------------------------


def test_front_desk_gets_no_balances(engine, world):
    result = listing(engine, world.front_desk, statuses=ALL_STATUSES)
    assert set(world.keys(result)) == set(PEOPLE)
    assert not result.shows_balances
    assert result.totals is None
    for row in result.rows:
        assert row.client_due_cents is None
        assert row.insurance_pending_cents is None
        assert row.unapplied_credit_cents is None
        assert row.total_cents is None
        assert row.oldest_unpaid_dos is None
    with pytest.raises(PermissionDenied):
        listing(engine, world.front_desk, has_balance=True)
    with pytest.raises(PermissionDenied):
        listing(engine, world.front_desk, aging_bucket="0_30")
    with pytest.raises(ValueError):
        listing(engine, world.front_desk, sort="total")


def test_a_clinician_lists_only_their_own_clients(engine, world):
    own = listing(engine, world.clinician_a, statuses=ALL_STATUSES)
    assert set(world.keys(own)) == {"zoe", "maria", "markup", "ines", "priya"}
    assert own.count == 5
    assert listing(engine, world.clinician_a, query="bobby").rows == []
    assert listing(engine, world.clinician_a, query="6175550142").count == 1
    other = listing(engine, world.clinician_a, clinician_id=world.clinician_b_id)
    assert other.count == 0


# --- user-typed text ---------------------------------------------------------------------------


def test_markup_names_come_back_unchanged(engine, world):
    (row,) = listing(engine, world.manager, query="onerror").rows
    assert row.name == f"{MARKUP_LAST}, {MARKUP_FIRST}"
    assert row.client_number == world.numbers["markup"]


def test_row_shows_name_with_preferred_name_and_contact(engine, world):
    (row,) = listing(engine, world.manager, query="nena").rows
    assert row.name == "Álvarez, María (Nena)"
    assert row.phone == "(617) 555-0142"
    assert row.email == "maria.alvarez@example.com"
    assert row.dob == date(1985, 3, 7)
    assert row.status == "Active"
    assert row.clinician == "Ana Abara"


# --- the demo practice -------------------------------------------------------------------------


def test_demo_practice_filters_agree_with_the_ledger_projections(demo_engine):
    with transaction(demo_engine) as session:
        biller = actor_for(session.scalar(select(User).where(User.username == "biller")))
        today = date.today()
        owing = {  # from the ledger itself, not from the projections the list reads
            cid
            for cid in session.scalars(select(Client.id))
            if ledger.client_state(session, cid).total_cents != 0
        }
        result = clients.list_clients(
            session, actor=biller, statuses=ALL_STATUSES, has_balance=True, limit=1000
        )
        assert {r.client_id for r in result.rows} == owing
        assert result.totals == _sums(result.rows)
        for bucket in aging.buckets():
            oldest, newest = bucket.date_range(today)
            charges = select(OpenCharge.client_id).where(OpenCharge.service_date <= newest)
            if oldest is not None:
                charges = charges.where(OpenCharge.service_date >= oldest)
            in_bucket = set(session.scalars(charges))
            listed = clients.list_clients(
                session,
                actor=biller,
                statuses=ALL_STATUSES,
                aging_bucket=bucket.key,
                as_of=today,
                limit=1000,
            )
            assert {r.client_id for r in listed.rows} == in_bucket, bucket.key
            assert listed.count == len(in_bucket)
            assert listed.totals == _sums(listed.rows)


# --- issue 11 item 6: letters without a decomposition, 2-digit years, #number, other statuses ---

# (first, last, what a person types on a US keyboard)
TRANSLITERATED = [
    ("Thomas", "Østergaard", "thomas ostergaard"),
    ("Łukasz", "Wałęsa", "lukasz walesa"),
    ("Æsa", "Sæther", "aesa saether"),
    ("Jürgen", "Strauß", "jurgen strauss"),
    ("Đorđe", "Đukić", "dorde dukic"),
]


@pytest.mark.parametrize(("first", "last", "typed"), TRANSLITERATED)
def test_letters_without_a_decomposition_are_found_as_typed_in_ascii(
    engine, world, first, last, typed
):
    with transaction(engine) as session:
        created = clients.create_client(
            session, actor=world.manager, first_name=first, last_name=last, dob=date(1970, 1, 2)
        )
    for query in (typed, f"{first} {last}", typed.split()[1][:4]):
        found = listing(engine, world.manager, query=query)
        assert [r.client_id for r in found.rows] == [created.client_id], query


def test_a_renamed_client_is_found_by_the_new_name_only(engine, world):
    from lib import client_record

    with transaction(engine) as session:
        version = session.get(Client, world.ids["lee"]).personal_version
        client_record.save_section(
            session,
            actor=world.manager,
            client_id=world.ids["lee"],
            section="personal",
            changes={"last_name": "Ødegård"},
            expected_version=version,
        )
    assert world.keys(listing(engine, world.manager, query="lee odegard")) == ["lee"]
    assert world.keys(listing(engine, world.manager, query="lee park")) == []


def test_two_digit_year_of_birth_is_never_in_the_future(engine, world):
    with transaction(engine) as session:
        make_client(session, first_name="Old", last_name="Timer", dob=date(1951, 12, 20))
        make_client(session, first_name="Young", last_name="One", dob=date(2005, 3, 7))
    for typed, name in (("12/20/51", "Timer, Old"), ("03/07/05", "One, Young")):
        assert [r.name for r in listing(engine, world.manager, query=typed).rows] == [name]
    today = date(2026, 12, 7)
    assert clients.parse_date_query("12/20/51", today) == date(1951, 12, 20)
    assert clients.parse_date_query("12-20-51", today) == date(1951, 12, 20)
    assert clients.parse_date_query("12/07/26", today) == date(2026, 12, 7)  # today: this year
    assert clients.parse_date_query("12/08/26", today) == date(1926, 12, 8)  # tomorrow: 1926
    assert clients.parse_date_query("2/29/28", today) == date(1928, 2, 29)


def test_two_digit_year_uses_the_practices_day(late_evening):
    # 23:30 in New York is already tomorrow in UTC: a birthday "tomorrow" by the server's
    # date is today at the practice, so it is this century's.
    today = late_evening.date()
    typed = today.strftime("%m/%d/%y")
    assert clients.parse_date_query(typed) == today
    tomorrow = today + timedelta(days=1)
    assert clients.parse_date_query(tomorrow.strftime("%m/%d/%y")).year == tomorrow.year - 100


@pytest.mark.parametrize("typed", ["#{n}", "# {n}", " #{n} "])
def test_client_number_as_the_app_prints_it(engine, world, typed):
    query = typed.format(n=world.numbers["robert"])
    assert world.keys(listing(engine, world.manager, query=query)) == ["robert"]


def test_a_search_with_no_match_under_the_status_filter_says_where_it_finds_clients(engine, world):
    result = listing(engine, world.manager, query="alvarado")
    assert result.count == 0 and result.rows == []
    assert result.elsewhere == {"inactive": 1}
    with transaction(engine) as session:
        make_client(session, first_name="Inez", last_name="Alvarado", status="discharged")
        make_client(session, first_name="Ina", last_name="Alvarado", status="discharged")
    assert listing(engine, world.manager, query="alvarado").elsewhere == {
        "inactive": 1,
        "discharged": 2,
    }
    # Something found under the filter, or found nowhere: nothing to say.
    assert listing(engine, world.manager, query="alv").elsewhere == {}
    assert listing(engine, world.manager, query="zzz").elsewhere == {}
    # The other filters still apply, and a clinician never learns of other clinicians' clients.
    assert listing(engine, world.clinician_a, query="volkov").elsewhere == {}
    assert listing(engine, world.manager, query="volkov").elsewhere == {"discharged": 1}


@pytest.mark.parametrize("sort", ["email", "phone"])
def test_every_grid_column_sorts_the_whole_list(engine, world, sort):
    up = listing(engine, world.manager, sort=sort, statuses=ALL_STATUSES)
    down = listing(engine, world.manager, sort=sort, statuses=ALL_STATUSES, descending=True)
    assert len(up.rows) == len(PEOPLE)
    key = (lambda r: r.email.lower()) if sort == "email" else (lambda r: r.phone)
    assert [key(r) for r in up.rows] == sorted(key(r) for r in up.rows)
    assert [key(r) for r in down.rows] == sorted((key(r) for r in up.rows), reverse=True)
