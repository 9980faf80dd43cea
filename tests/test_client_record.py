"""Adding a client and editing their record (spec C3, C5–C8): validation, the duplicate check,
audited opens, tab-by-tab saves with optimistic concurrency, and status history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from lib import auth, client_record, clients, ledger
from lib.client_record import ClientNotFound, StaleEdit
from lib.clients import PossibleDuplicates
from lib.db import transaction
from lib.models import AuditEntry, Client, ClientStatusChange, LedgerEntry
from lib.policy import ALL_ROLES, Actor, PermissionDenied, allowed
from lib.timeutil import as_utc, utcnow
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user, password_hash

MARKUP_FIRST = "<img src=x onerror=alert(1)>"
MARKUP_LAST = "**Bold** $x^2$ [link](http://x)"
OMAR = {  # nothing in common with the default new client, Jane Smith
    "first_name": "Omar",
    "last_name": "Haddad",
    "dob": date(1970, 1, 1),
    "email": "",
    "phone_mobile": "",
}


@dataclass(frozen=True)
class Staff:
    manager: Actor
    front_desk: Actor
    admin: Actor
    biller: Actor
    clinician: Actor  # linked to clinician_id
    other_clinician: Actor
    clinician_id: int
    other_clinician_id: int


def named_user(session, role: str, username: str, display_name: str, **kwargs) -> Actor:
    return auth.create_user(
        session,
        actor=None,
        username=username,
        display_name=display_name,
        role=role,
        password="unused-password-1",
        password_hash=password_hash(),
        **kwargs,
    )


@pytest.fixture
def staff(engine) -> Staff:
    with transaction(engine) as session:
        clinician_id = make_clinician(session, "Ana", "Abara")
        other_clinician_id = make_clinician(session, "Ben", "Brook")
        return Staff(
            manager=make_user(session, "manager"),
            front_desk=make_user(session, "front_desk"),
            admin=make_user(session, "admin"),
            biller=make_user(session, "biller"),
            clinician=make_user(session, "clinician", clinician_id=clinician_id),
            other_clinician=make_user(session, "clinician", clinician_id=other_clinician_id),
            clinician_id=clinician_id,
            other_clinician_id=other_clinician_id,
        )


def create(engine, actor: Actor, **kwargs) -> clients.NewClient:
    fields = {
        "first_name": "Jane",
        "last_name": "Smith",
        "dob": date(1985, 3, 7),
        "email": "jane.smith@example.com",
        "phone_mobile": "617-555-0142",
    }
    fields.update(kwargs)
    with transaction(engine) as session:
        return clients.create_client(session, actor=actor, **fields)


def count(engine, model, *where) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def audit_rows(engine, action: str, client_id: int | None = None) -> list[AuditEntry]:
    with transaction(engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        if client_id is not None:
            query = query.where(AuditEntry.client_id == client_id)
        return list(session.scalars(query))


def open_record(engine, actor: Actor, client_id: int, **kwargs) -> client_record.ClientRecord:
    with transaction(engine) as session:
        return client_record.open_record(session, actor=actor, client_id=client_id, **kwargs)


def save(
    engine,
    actor: Actor,
    client_id: int,
    section: str,
    version: int,
    shown: client_record.ClientRecord | None = None,
    **changes,
) -> int:
    """Save a tab the way the form does: the fields the user changed against the version the
    form showed (``shown`` is accepted for callers that read the record first)."""
    reason = changes.pop("status_reason", "Changed in a test" if "status" in changes else "")
    with transaction(engine) as session:
        return client_record.save_section(
            session,
            actor=actor,
            client_id=client_id,
            section=section,
            changes=changes,
            expected_version=version,
            status_reason=reason,
        )


def stored(engine, client_id: int) -> Client:
    with transaction(engine) as session:
        return session.get(Client, client_id)


# --- adding a client ---------------------------------------------------------------------------


def test_create_client_saves_the_client_with_its_history_balance_and_audit(engine, staff):
    new = create(engine, staff.front_desk, clinician_id=staff.clinician_id)
    client = stored(engine, new.client_id)
    assert (client.first_name, client.last_name, client.dob) == ("Jane", "Smith", date(1985, 3, 7))
    assert client.phone_mobile == "(617) 555-0142"  # parsed and stored in one format
    assert client.email == "jane.smith@example.com"
    assert client.status == "active"
    assert client.clinician_id == staff.clinician_id
    assert client.client_number == new.client_number
    with transaction(engine) as session:
        (change,) = session.scalars(
            select(ClientStatusChange).where(ClientStatusChange.client_id == new.client_id)
        )
        assert (change.old_status, change.new_status) == (None, "active")
    assert open_record(engine, staff.manager, new.client_id).balance_cents == 0
    (entry,) = audit_rows(engine, "client.create", new.client_id)
    assert entry.actor_user_id == staff.front_desk.user_id
    assert entry.detail == ""
    second = create(engine, staff.front_desk, **OMAR)
    assert second.client_number == new.client_number + 1


def test_a_new_client_can_be_edited_the_evening_it_was_added(engine, staff, late_evening):
    """At 23:30 in New York it is already tomorrow in UTC; 'client since' is the practice's
    today, and the record can be edited at once."""
    with transaction(engine) as session:
        new = clients.create_client(
            session, actor=staff.manager, first_name="Eve", last_name="Ning", dob=date(1980, 1, 1)
        )
    record = open_record(engine, staff.manager, new.client_id)
    assert record.values["client_since"] == late_evening.date()
    assert save(engine, staff.manager, new.client_id, "personal", 1, pronouns="she/her") == 2


VALIDATION_CASES = [
    ({"first_name": "   "}, "first_name", "Enter the first name."),
    ({"last_name": ""}, "last_name", "Enter the last name."),
    ({"dob": date.today() + timedelta(days=1)}, "dob", "cannot be in the future"),
    ({"dob": None}, "dob", "Enter the date of birth."),
    ({"email": "jane@"}, "email", "not a valid email address"),
    ({"email": "jane smith@example.com"}, "email", "not a valid email address"),
    ({"phone_mobile": "12345"}, "phone_mobile", "not valid"),
    ({"phone_mobile": "call me"}, "phone_mobile", "not a phone number"),
    ({"status": "deleted"}, "status", "Choose a valid status."),
    ({"status": ""}, "status", "Choose a valid status."),
    ({"clinician_id": 999_999}, "clinician_id", "Choose a clinician from the list."),
    ({"first_name": "x" * 81}, "first_name", "at most 80 characters"),
]


def test_create_client_validation_names_the_field_and_writes_nothing(engine, staff):
    wrong = {}
    for bad, field, message in VALIDATION_CASES:
        try:
            create(engine, staff.manager, **bad)
        except ValidationError as exc:
            if list(exc.errors) != [field] or message not in exc.errors[field]:
                wrong[repr(bad)] = exc.errors
        else:
            wrong[repr(bad)] = "saved"
    assert wrong == {}
    assert count(engine, Client) == 0
    assert count(engine, AuditEntry, AuditEntry.action == "client.create") == 0


def test_create_client_reports_every_bad_field_at_once(engine, staff):
    with pytest.raises(ValidationError) as failed:
        create(
            engine,
            staff.manager,
            first_name="",
            last_name=" ",
            email="nope",
            phone_mobile="12345",
            dob=date.today() + timedelta(days=30),
        )
    assert set(failed.value.errors) == {"first_name", "last_name", "email", "phone_mobile", "dob"}


def test_create_client_accepts_a_dob_of_today_and_no_email_or_phone(engine, staff):
    new = create(engine, staff.manager, dob=date.today(), email="", phone_mobile="")
    assert stored(engine, new.client_id).dob == date.today()


@pytest.mark.parametrize("role", ["biller", "clinician"])
def test_roles_without_client_create_cannot_add_clients(engine, staff, role):
    with pytest.raises(PermissionDenied):
        create(engine, getattr(staff, role))
    assert count(engine, Client) == 0


# --- the duplicate check -----------------------------------------------------------------------


@pytest.fixture
def existing(engine, staff) -> dict[str, int]:
    with transaction(engine) as session:
        return {
            "jane": make_client(
                session,
                first_name="Jane",
                last_name="Smith",
                dob=date(1985, 3, 7),
                email="jane.smith@example.com",
                phone_mobile="(617) 555-0142",
                clinician_id=staff.other_clinician_id,
                status="discharged",  # hidden from the default list, still a duplicate
            ),
            "omar": make_client(
                session,
                first_name="Omar",
                last_name="Haddad",
                dob=date(1970, 1, 1),
                email="omar@example.org",
                phone_mobile="(212) 555-0100",
            ),
        }


def duplicates(engine, actor: Actor, **kwargs) -> list[clients.DuplicateMatch]:
    fields = {"first_name": "Jane", "last_name": "Smith", "dob": None, "email": "", "phone": ""}
    fields.update(kwargs)
    with transaction(engine) as session:
        return clients.find_duplicates(session, actor=actor, **fields)


def test_same_name_and_dob_scores_at_least_70(engine, staff, existing):
    (match,) = duplicates(engine, staff.front_desk, dob=date(1985, 3, 7))
    assert match.client_id == existing["jane"]
    assert match.score >= 70
    assert {"same last name", "same first name", "same date of birth"} <= set(match.reasons)
    assert match.status == "Discharged"
    # name matching ignores case and accents
    (folded,) = duplicates(engine, staff.front_desk, first_name="JANÉ", dob=date(1985, 3, 7))
    assert folded.client_id == existing["jane"]
    assert folded.score == match.score


def test_a_sound_alike_last_name_with_the_same_dob_is_found(engine, staff, existing):
    (match,) = duplicates(engine, staff.front_desk, last_name="Smyth", dob=date(1985, 3, 7))
    assert match.client_id == existing["jane"]
    assert "last name sounds alike" in match.reasons
    assert "same last name" not in match.reasons
    assert clients.DUPLICATE_THRESHOLD <= match.score < 70


def test_the_same_email_makes_a_likely_match(engine, staff, existing):
    # Jane married and changed her last name; her date of birth was mistyped.
    other = {"last_name": "Kowalski", "dob": date(1990, 1, 1)}
    assert duplicates(engine, staff.front_desk, **other) == []
    (match,) = duplicates(engine, staff.front_desk, email=" JANE.SMITH@example.com ", **other)
    assert match.client_id == existing["jane"]
    assert "same email" in match.reasons


def test_the_same_phone_makes_a_likely_match(engine, staff, existing):
    other = {"first_name": "Janet", "dob": date(1990, 1, 1)}
    assert duplicates(engine, staff.front_desk, **other) == []
    for typed in ("617-555-0142", "+1 (617) 555 0142"):
        (match,) = duplicates(engine, staff.front_desk, phone=typed, **other)
        assert match.client_id == existing["jane"], typed
        assert "same phone" in match.reasons, typed


def test_an_unrelated_client_is_not_a_duplicate(engine, staff, existing):
    assert duplicates(engine, staff.front_desk, first_name="Peter", last_name="Jones") == []
    found = duplicates(
        engine,
        staff.front_desk,
        dob=date(1985, 3, 7),
        email="jane.smith@example.com",
        phone="617-555-0142",
    )
    assert [m.client_id for m in found] == [existing["jane"]]  # not Omar
    assert found[0].score == 100


def test_create_client_stops_at_likely_duplicates_and_writes_nothing(engine, staff, existing):
    with pytest.raises(PossibleDuplicates) as stopped:
        create(engine, staff.front_desk, email="", phone_mobile="")
    assert [m.client_id for m in stopped.value.matches] == [existing["jane"]]
    assert count(engine, Client) == 2
    assert audit_rows(engine, "client.create") == []


def test_saving_anyway_needs_every_match_acknowledged_and_is_audited(engine, staff, existing):
    with transaction(engine) as session:
        smyth = make_client(session, first_name="Jane", last_name="Smyth", dob=date(1985, 3, 7))
        numbers = {cid: session.get(Client, cid).client_number for cid in (existing["jane"], smyth)}
    with pytest.raises(PossibleDuplicates) as stopped:
        create(engine, staff.front_desk, acknowledged_duplicates=(existing["jane"],))
    assert {m.client_id for m in stopped.value.matches} == {existing["jane"], smyth}
    assert count(engine, Client) == 3

    new = create(engine, staff.front_desk, acknowledged_duplicates=(existing["jane"], smyth))
    (entry,) = audit_rows(engine, "client.create", new.client_id)
    assert entry.detail.startswith("saved despite possible duplicates:")
    for number in numbers.values():
        assert str(number) in entry.detail
    assert str(stored(engine, new.client_id).client_number) not in entry.detail
    assert count(engine, Client) == 4


def test_duplicate_matches_are_best_first(engine, staff, existing):
    with transaction(engine) as session:
        make_client(session, first_name="Jane", last_name="Smyth", dob=date(1985, 3, 7))
    found = duplicates(engine, staff.front_desk, dob=date(1985, 3, 7))
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    assert found[0].client_id == existing["jane"]


# --- opening a record --------------------------------------------------------------------------


def test_opening_a_record_is_audited(engine, staff):
    new = create(engine, staff.manager)
    record = open_record(engine, staff.front_desk, new.client_id)
    assert record.client_number == new.client_number
    assert record.name == "Smith, Jane"
    assert record.status_label == "Active"
    assert record.versions == {"personal": 1, "contact": 1, "insurance": 1}
    (entry,) = audit_rows(engine, "client.open", new.client_id)
    assert entry.actor_user_id == staff.front_desk.user_id
    assert entry.entity_id == str(new.client_id)
    open_record(engine, staff.front_desk, new.client_id, audit_open=False)
    assert len(audit_rows(engine, "client.open", new.client_id)) == 1
    with transaction(engine) as session:
        by_number = client_record.open_record(
            session, actor=staff.manager, client_number=new.client_number
        )
    assert by_number.client_id == new.client_id
    assert len(audit_rows(engine, "client.open", new.client_id)) == 2


def test_front_desk_sees_no_balance_in_the_header(engine, staff):
    new = create(engine, staff.manager)
    assert open_record(engine, staff.front_desk, new.client_id).balance_cents is None
    assert open_record(engine, staff.biller, new.client_id).balance_cents == 0


def test_a_clinician_opens_only_their_own_clients(engine, staff):
    own = create(engine, staff.manager, clinician_id=staff.clinician_id)
    other = create(engine, staff.manager, **OMAR)
    assert open_record(engine, staff.clinician, own.client_id).clinician_name == "Ana Abara"
    with pytest.raises(PermissionDenied):
        open_record(engine, staff.clinician, other.client_id)
    with pytest.raises(PermissionDenied):
        open_record(engine, staff.other_clinician, own.client_id)
    opens = audit_rows(engine, "client.open")
    assert [(e.client_id, e.actor_user_id) for e in opens] == [
        (own.client_id, staff.clinician.user_id)
    ]


def test_an_unknown_client_is_not_found(engine, staff):
    with pytest.raises(ClientNotFound):
        open_record(engine, staff.manager, 424242)
    with transaction(engine) as session:
        with pytest.raises(ClientNotFound):
            client_record.open_record(session, actor=staff.manager, client_number=424242)


def test_user_typed_markup_is_stored_and_returned_literally(engine, staff):
    new = create(engine, staff.manager, first_name=MARKUP_FIRST, last_name=MARKUP_LAST, email="")
    record = open_record(engine, staff.manager, new.client_id)
    assert record.values["first_name"] == MARKUP_FIRST
    assert record.values["last_name"] == MARKUP_LAST
    assert record.name == f"{MARKUP_LAST}, {MARKUP_FIRST}"
    save(engine, staff.manager, new.client_id, "personal", 1, preferred_name="<b>Bee</b> & _x_")
    again = open_record(engine, staff.manager, new.client_id)
    assert again.values["preferred_name"] == "<b>Bee</b> & _x_"
    assert stored(engine, new.client_id).preferred_name == "<b>Bee</b> & _x_"


# --- saving a tab ------------------------------------------------------------------------------


def test_a_personal_tab_validation_error_writes_nothing(engine, staff):
    new = create(engine, staff.manager)
    before = len(audit_rows(engine, "client.update_personal"))
    for bad, field in (
        ({"first_name": " "}, "first_name"),
        ({"dob": date.today() + timedelta(days=1)}, "dob"),
        ({"sex": "Q"}, "sex"),
        ({"client_type": "robot"}, "client_type"),
        ({"status": "gone"}, "status"),
        ({"client_since": date.today() + timedelta(days=1)}, "client_since"),
        ({"clinician_id": 999_999}, "clinician_id"),
    ):
        with pytest.raises(ValidationError) as failed:
            save(engine, staff.manager, new.client_id, "personal", 1, pronouns="they", **bad)
        assert field in failed.value.errors, bad
    client = stored(engine, new.client_id)
    assert (client.first_name, client.pronouns, client.status) == ("Jane", "", "active")
    assert (client.personal_version, client.version) == (1, 1)
    assert len(audit_rows(engine, "client.update_personal")) == before


def test_a_contact_tab_validation_error_writes_nothing(engine, staff):
    new = create(engine, staff.manager)
    for bad, field in (
        ({"phone_home": "12345"}, "phone_home"),
        ({"email": "jane@@example.com"}, "email"),
        ({"state": "Massachusetts"}, "state"),
        ({"zip_code": "0213"}, "zip_code"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"preferred_phone": "work"}, "preferred_phone"),
        ({"text_ok": True, "phone_mobile": ""}, "text_ok"),
    ):
        with pytest.raises(ValidationError) as failed:
            save(engine, staff.manager, new.client_id, "contact", 1, city="Boston", **bad)
        assert field in failed.value.errors, bad
    client = stored(engine, new.client_id)
    assert (client.city, client.contact_version, client.version) == ("", 1, 1)
    assert audit_rows(engine, "client.update_contact") == []


def test_a_contact_save_bumps_only_its_tab_and_audits_only_the_changes(engine, staff):
    new = create(engine, staff.manager)
    version = save(
        engine, staff.front_desk, new.client_id, "contact", 1, phone_mobile="617 555 0199"
    )
    assert version == 2
    client = stored(engine, new.client_id)
    assert client.phone_mobile == "(617) 555-0199"
    assert (client.personal_version, client.contact_version, client.insurance_version) == (1, 2, 1)
    assert client.version == 2
    assert client.updated_by == staff.front_desk.user_id
    (entry,) = audit_rows(engine, "client.update_contact", new.client_id)
    assert entry.actor_user_id == staff.front_desk.user_id
    assert entry.before_json == '{"phone_mobile": "(617) 555-0142"}'
    assert entry.after_json == '{"phone_mobile": "(617) 555-0199"}'
    # the search columns follow the edit
    with transaction(engine) as session:
        by_new = clients.list_clients(session, actor=staff.manager, query="0199")
        by_old = clients.list_clients(session, actor=staff.manager, query="0142")
    assert [r.client_id for r in by_new.rows] == [new.client_id]
    assert by_old.rows == []


def test_a_personal_save_bumps_only_its_tab_and_audits_only_the_changes(engine, staff):
    new = create(engine, staff.manager)
    version = save(
        engine, staff.manager, new.client_id, "personal", 1, preferred_name="Jay", pronouns="she"
    )
    assert version == 2
    client = stored(engine, new.client_id)
    assert (client.personal_version, client.contact_version, client.insurance_version) == (2, 1, 1)
    (entry,) = audit_rows(engine, "client.update_personal", new.client_id)
    assert entry.before_json == '{"preferred_name": "", "pronouns": ""}'
    assert entry.after_json == '{"preferred_name": "Jay", "pronouns": "she"}'
    with transaction(engine) as session:
        found = clients.list_clients(session, actor=staff.manager, query="jay smith")
    assert [r.client_id for r in found.rows] == [new.client_id]
    assert found.rows[0].name == "Smith, Jane (Jay)"


def test_saving_an_unchanged_tab_writes_nothing(engine, staff):
    new = create(engine, staff.manager)
    assert save(engine, staff.manager, new.client_id, "contact", 1) == 1
    assert stored(engine, new.client_id).contact_version == 1
    assert audit_rows(engine, "client.update_contact") == []


def test_a_clinician_edits_their_own_client_but_does_not_reassign_them(engine, staff):
    own = create(engine, staff.manager, clinician_id=staff.clinician_id)
    assert save(engine, staff.clinician, own.client_id, "personal", 1, pronouns="he") == 2
    with pytest.raises(PermissionDenied):
        save(
            engine,
            staff.clinician,
            own.client_id,
            "personal",
            2,
            clinician_id=staff.other_clinician_id,
        )
    assert stored(engine, own.client_id).clinician_id == staff.clinician_id
    other = create(engine, staff.manager, **OMAR)
    shown = open_record(engine, staff.manager, other.client_id)
    with pytest.raises(PermissionDenied):
        save(engine, staff.clinician, other.client_id, "contact", 1, shown, city="Boston")
    assert stored(engine, other.client_id).city == ""


# --- two people editing the same client (C7) ---------------------------------------------------


@pytest.fixture
def two_editors(engine, staff):
    with transaction(engine) as session:
        alice = named_user(session, "front_desk", "alice", "Alice Archer")
        beatriz = named_user(session, "manager", "beatriz", "Beatriz Baptiste")
    new = create(engine, staff.manager)
    return alice, beatriz, new.client_id


def test_the_second_save_of_the_same_tab_is_refused_and_the_first_stays(engine, two_editors):
    alice, beatriz, client_id = two_editors
    shown_to_alice = open_record(engine, alice, client_id)
    shown_to_beatriz = open_record(engine, beatriz, client_id)
    version = shown_to_alice.versions["contact"]
    assert shown_to_beatriz.versions["contact"] == version

    save(engine, beatriz, client_id, "contact", version, phone_mobile="617-555-0111")
    with pytest.raises(StaleEdit) as refused:
        save(
            engine, alice, client_id, "contact", version, shown_to_alice, phone_mobile="6175550122"
        )

    message = str(refused.value)
    assert message.startswith("Changed by Beatriz Baptiste at ")
    assert "reload to see their change" in message
    (beatriz_save,) = audit_rows(engine, "client.update_contact", client_id)
    assert refused.value.changed_by == "Beatriz Baptiste"
    assert refused.value.changed_at is not None
    assert abs(refused.value.changed_at - as_utc(beatriz_save.at)) < timedelta(seconds=1)
    client = stored(engine, client_id)
    assert client.phone_mobile == "(617) 555-0111"
    assert client.contact_version == version + 1
    assert beatriz_save.actor_user_id == beatriz.user_id  # and nothing from Alice

    # Alice reloads, sees Beatriz's number, and can now save hers.
    reloaded = open_record(engine, alice, client_id)
    assert reloaded.values["phone_mobile"] == "(617) 555-0111"
    save(
        engine,
        alice,
        client_id,
        "contact",
        reloaded.versions["contact"],
        reloaded,
        phone_mobile="6175550122",
    )
    assert stored(engine, client_id).phone_mobile == "(617) 555-0122"


def test_an_unchanged_save_over_a_newer_version_is_refused_too(engine, two_editors):
    alice, beatriz, client_id = two_editors
    save(engine, beatriz, client_id, "contact", 1, city="Boston")
    with pytest.raises(StaleEdit, match="Beatriz Baptiste"):
        save(engine, alice, client_id, "contact", 1, city="Boston")


def test_saving_a_different_tab_than_the_one_changed_is_not_refused(engine, two_editors):
    alice, beatriz, client_id = two_editors
    shown = open_record(engine, alice, client_id)
    save(engine, beatriz, client_id, "contact", shown.versions["contact"], city="Boston")
    new_version = save(
        engine, alice, client_id, "personal", shown.versions["personal"], shown, pronouns="she/her"
    )
    assert new_version == shown.versions["personal"] + 1
    client = stored(engine, client_id)
    assert (client.city, client.pronouns) == ("Boston", "she/her")


@pytest.mark.committed  # Beatriz saves on her own connection while Alice's transaction is open
def test_a_save_racing_inside_an_open_transaction_is_refused(engine, db_kind, two_editors):
    """Alice's transaction has read the record when Beatriz's save commits (PostgreSQL only:
    SQLite lets one writer at a time in, so the race cannot happen there)."""
    if db_kind != "postgresql":
        pytest.skip("SQLite serialises writers")
    alice, beatriz, client_id = two_editors
    with pytest.raises(StaleEdit, match="Beatriz Baptiste"):
        with transaction(engine) as session:
            shown = client_record.open_record(session, actor=alice, client_id=client_id)
            save(engine, beatriz, client_id, "contact", 1, phone_mobile="617-555-0111")
            client_record.save_section(
                session,
                actor=alice,
                client_id=client_id,
                section="contact",
                changes={"phone_mobile": "617-555-0122"},
                expected_version=shown.versions["contact"],
            )
    assert stored(engine, client_id).phone_mobile == "(617) 555-0111"


# --- status changes (C8) -----------------------------------------------------------------------


def status_changes(engine, client_id: int) -> list[ClientStatusChange]:
    with transaction(engine) as session:
        return list(
            session.scalars(
                select(ClientStatusChange)
                .where(ClientStatusChange.client_id == client_id)
                .order_by(ClientStatusChange.id)
            )
        )


def change_status(engine, actor: Actor, client_id: int, new_status: str, version: int, reason=""):
    with transaction(engine) as session:
        return client_record.change_status(
            session,
            actor=actor,
            client_id=client_id,
            new_status=new_status,
            reason=reason,
            expected_version=version,
        )


def test_a_status_change_keeps_history_and_is_audited(engine, staff):
    new = create(engine, staff.manager)
    version = change_status(engine, staff.manager, new.client_id, "inactive", 1, "Moved away")
    assert version == 2
    first, second = status_changes(engine, new.client_id)
    assert (first.old_status, first.new_status) == (None, "active")
    assert (second.old_status, second.new_status, second.reason) == (
        "active",
        "inactive",
        "Moved away",
    )
    assert second.changed_by == staff.manager.user_id
    (entry,) = audit_rows(engine, "client.status_change", new.client_id)
    assert entry.before_json == '{"status": "active"}'
    assert entry.after_json == '{"status": "inactive"}'
    assert entry.detail == "Moved away"
    assert stored(engine, new.client_id).status == "inactive"
    # nothing is deleted: the client is still listed under Inactive
    with transaction(engine) as session:
        active = clients.list_clients(session, actor=staff.manager)
        inactive = clients.list_clients(session, actor=staff.manager, statuses=("inactive",))
    assert active.count == 0
    assert [r.client_id for r in inactive.rows] == [new.client_id]


def test_status_history_is_newest_first_and_complete(engine, staff):
    new = create(engine, staff.manager)
    version = 1
    for status in ("inactive", "active", "discharged"):
        version = change_status(engine, staff.manager, new.client_id, status, version, status)
    with transaction(engine) as session:
        history = client_record.status_history(
            session, actor=staff.front_desk, client_id=new.client_id
        )
    assert [(h.old_status, h.new_status) for h in history] == [
        ("Active", "Discharged"),
        ("Inactive", "Active"),
        ("Active", "Inactive"),
        ("", "Active"),
    ]
    assert history[0].changed_by == staff.manager.display_name
    assert count(engine, Client) == 1


def test_a_status_change_in_the_personal_tab_keeps_history_too(engine, staff):
    new = create(engine, staff.manager)
    save(engine, staff.front_desk, new.client_id, "personal", 1, status="prospective")
    assert [c.new_status for c in status_changes(engine, new.client_id)] == [
        "active",
        "prospective",
    ]
    assert len(audit_rows(engine, "client.status_change", new.client_id)) == 1


@pytest.mark.parametrize("role", ALL_ROLES)
def test_who_may_change_a_status_is_the_policys_decision(engine, staff, role):
    actor = {
        "admin": staff.admin,
        "manager": staff.manager,
        "biller": staff.biller,
        "front_desk": staff.front_desk,
        "clinician": staff.clinician,
    }[role]
    new = create(engine, staff.manager, clinician_id=staff.clinician_id)
    if allowed(actor, "client.edit") and allowed(actor, "client.change_status"):
        assert change_status(engine, actor, new.client_id, "discharged", 1, "Done") == 2
        assert stored(engine, new.client_id).status == "discharged"
        assert len(status_changes(engine, new.client_id)) == 2
    else:
        with pytest.raises(PermissionDenied):
            change_status(engine, actor, new.client_id, "discharged", 1, "Done")
        assert stored(engine, new.client_id).status == "active"
        assert len(status_changes(engine, new.client_id)) == 1
        assert audit_rows(engine, "client.status_change") == []


def test_a_stale_status_change_is_refused(engine, two_editors):
    alice, beatriz, client_id = two_editors
    save(engine, beatriz, client_id, "personal", 1, pronouns="she")
    with pytest.raises(StaleEdit, match="Beatriz Baptiste"):
        change_status(engine, alice, client_id, "inactive", 1)
    assert stored(engine, client_id).status == "active"
    assert len(status_changes(engine, client_id)) == 1


def test_list_counts_and_totals_follow_status_and_clinician_changes(engine, staff):
    new = create(engine, staff.manager, clinician_id=staff.clinician_id)
    with transaction(engine) as session:
        session.add(
            LedgerEntry(
                client_id=new.client_id,
                kind="charge",
                responsibility="client",
                amount_cents=12000,
                service_date=date.today(),
                posted_at=utcnow(),
                idempotency_key=f"record-{new.client_id}",
            )
        )
        session.flush()
        ledger.refresh_client(session, new.client_id)
    save(
        engine,
        staff.manager,
        new.client_id,
        "personal",
        1,
        status="inactive",
        clinician_id=staff.other_clinician_id,
    )
    change_status(engine, staff.manager, new.client_id, "discharged", 2, "Done")
    everyone = ("active", "inactive", "prospective", "discharged")
    with transaction(engine) as session:
        for filters in (
            {},
            {"statuses": ("inactive",)},
            {"statuses": ("discharged",)},
            {"statuses": everyone, "clinician_id": staff.clinician_id},
            {"statuses": everyone, "clinician_id": staff.other_clinician_id},
        ):
            result = clients.list_clients(session, actor=staff.manager, **filters)
            assert result.count == len(result.rows), filters
            assert result.totals.total_cents == sum(r.total_cents for r in result.rows), filters
        (row,) = clients.list_clients(session, actor=staff.manager, statuses=("discharged",)).rows
    assert row.total_cents == 12000


# --- the record's history tab ------------------------------------------------------------------


def test_history_is_newest_first(engine, staff):
    new = create(engine, staff.manager)
    open_record(engine, staff.front_desk, new.client_id)
    save(engine, staff.front_desk, new.client_id, "contact", 1, city="Boston")
    change_status(engine, staff.manager, new.client_id, "inactive", 1, "Moved")
    with transaction(engine) as session:
        rows = client_record.history(session, actor=staff.manager, client_id=new.client_id)
    assert [r.action for r in rows] == [
        "client.status_change",
        "client.update_personal",
        "client.update_contact",
        "client.open",
        "client.create",
    ]
    assert rows[2].before == {"city": ""}
    assert rows[2].after == {"city": "Boston"}
    assert rows[2].actor_username == staff.front_desk.username


@pytest.mark.parametrize("role", ALL_ROLES)
def test_history_is_refused_for_roles_without_client_history(engine, staff, role):
    actor = {
        "admin": staff.admin,
        "manager": staff.manager,
        "biller": staff.biller,
        "front_desk": staff.front_desk,
        "clinician": staff.clinician,
    }[role]
    new = create(engine, staff.manager, clinician_id=staff.clinician_id)
    with transaction(engine) as session:
        if allowed(actor, "client.history"):
            rows = client_record.history(session, actor=actor, client_id=new.client_id)
            assert [r.action for r in rows] == ["client.create"]
        else:
            with pytest.raises(PermissionDenied):
                client_record.history(session, actor=actor, client_id=new.client_id)
