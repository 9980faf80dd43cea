"""The Insurance tab (spec C6, C7): self-pay or up to three ranked coverages, validation,
removal by deactivation, optimistic concurrency; and the practice's payer list."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from lib import auth, client_record, insurance, payers
from lib.client_record import StaleEdit
from lib.db import transaction
from lib.insurance import CoverageInput
from lib.models import AuditEntry, Client, Coverage, Payer
from lib.policy import ALL_ROLES, Actor, PermissionDenied, allowed
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user, password_hash


@dataclass(frozen=True)
class Setup:
    actors: dict[str, Actor]
    client_id: int
    aetna: int
    paper: int

    @property
    def manager(self) -> Actor:
        return self.actors["manager"]


@pytest.fixture
def setup(engine) -> Setup:
    with transaction(engine) as session:
        clinician_id = make_clinician(session)
        actors = {
            role: make_user(
                session, role, clinician_id=clinician_id if role == "clinician" else None
            )
            for role in ALL_ROLES
        }
        aetna = Payer(name="Aetna", payer_code="60054", kind="electronic", active=True, version=1)
        paper = Payer(name="Tufts Paper Plan", payer_code="", kind="paper", active=True, version=1)
        session.add_all([aetna, paper])
        session.flush()
        client_id = make_client(session, clinician_id=clinician_id)
        return Setup(actors=actors, client_id=client_id, aetna=aetna.id, paper=paper.id)


def coverage(payer_id: int | None = None, **kwargs) -> CoverageInput:
    fields = {"payer_id": payer_id, "member_id": "W123456789", "plan_name": "PPO"}
    fields.update(kwargs)
    return CoverageInput(**fields)


def view(engine, actor: Actor, client_id: int) -> insurance.InsuranceView:
    with transaction(engine) as session:
        return insurance.get_insurance(session, actor=actor, client_id=client_id)


def save(engine, actor: Actor, client_id: int, billing_type: str, coverages, version: int) -> int:
    with transaction(engine) as session:
        return insurance.save_insurance(
            session,
            actor=actor,
            client_id=client_id,
            billing_type=billing_type,
            coverages=list(coverages),
            expected_version=version,
        )


def coverage_rows(engine, client_id: int) -> list[Coverage]:
    with transaction(engine) as session:
        return list(
            session.scalars(
                select(Coverage).where(Coverage.client_id == client_id).order_by(Coverage.id)
            )
        )


def stored_client(engine, client_id: int) -> Client:
    with transaction(engine) as session:
        return session.get(Client, client_id)


# --- self-pay or insurance ---------------------------------------------------------------------


def test_self_pay_to_insurance_and_back(engine, setup):
    cid = setup.client_id
    start = view(engine, setup.manager, cid)
    assert (start.billing_type, start.coverages, start.version) == ("self_pay", [], 1)

    primary = coverage(
        setup.aetna, group_number="G-77", copay_cents=2500, start_date=date(2025, 1, 1)
    )
    assert save(engine, setup.manager, cid, "insurance", [primary], 1) == 2
    insured = view(engine, setup.manager, cid)
    assert insured.billing_type == "insurance"
    assert insured.version == 2
    (row,) = insured.coverages
    assert (row.rank, row.rank_label) == (1, "Primary")
    assert row.payer_label == "Aetna (electronic, payer ID 60054)"
    assert row.fields == replace(primary, coverage_id=row.coverage_id)
    assert stored_client(engine, cid).billing_type == "insurance"

    assert save(engine, setup.manager, cid, "self_pay", [], 2) == 3
    back = view(engine, setup.manager, cid)
    assert (back.billing_type, back.coverages) == ("self_pay", [])
    (kept,) = coverage_rows(engine, cid)  # the coverage is kept, only deactivated
    assert kept.id == row.coverage_id
    assert kept.active is False
    assert kept.member_id == "W123456789"

    with transaction(engine) as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.client_id == cid).order_by(AuditEntry.id)
        ).all()
    assert actions == ["client.update_insurance", "client.update_insurance"]


def test_insurance_without_a_coverage_is_refused(engine, setup):
    with pytest.raises(ValidationError) as failed:
        save(engine, setup.manager, setup.client_id, "insurance", [], 1)
    assert set(failed.value.errors) == {"coverages"}
    with pytest.raises(ValidationError) as failed:
        save(engine, setup.manager, setup.client_id, "free", [], 1)
    assert set(failed.value.errors) == {"billing_type"}
    assert stored_client(engine, setup.client_id).insurance_version == 1


def test_up_to_three_coverages_ranked_in_the_order_given(engine, setup):
    cid = setup.client_id
    typed = coverage(payer_name="Harvard Pilgrim", member_id="HP-1")
    given = [coverage(setup.paper, member_id="P.2"), typed, coverage(setup.aetna)]
    save(engine, setup.manager, cid, "insurance", given, 1)
    rows = view(engine, setup.manager, cid).coverages
    assert [(r.rank, r.rank_label) for r in rows] == [
        (1, "Primary"),
        (2, "Secondary"),
        (3, "Tertiary"),
    ]
    assert [r.payer_label for r in rows] == [
        "Tufts Paper Plan (paper)",
        "Harvard Pilgrim (not in payer list)",
        "Aetna (electronic, payer ID 60054)",
    ]
    assert [r.fields.member_id for r in rows] == ["P.2", "HP-1", "W123456789"]
    assert rows[1].payer_id is None

    # Reorder: the old tertiary becomes primary, the old primary is removed.
    reordered = [rows[2].fields, rows[1].fields]
    save(engine, setup.manager, cid, "insurance", reordered, 2)
    after = view(engine, setup.manager, cid).coverages
    assert [(r.coverage_id, r.rank) for r in after] == [
        (rows[2].coverage_id, 1),
        (rows[1].coverage_id, 2),
    ]
    all_rows = {c.id: c for c in coverage_rows(engine, cid)}
    assert len(all_rows) == 3  # nothing new was inserted, nothing deleted
    assert all_rows[rows[0].coverage_id].active is False


def test_a_fourth_coverage_is_refused_and_nothing_is_written(engine, setup):
    four = [coverage(setup.aetna, member_id=f"M{i}") for i in range(4)]
    with pytest.raises(ValidationError) as failed:
        save(engine, setup.manager, setup.client_id, "insurance", four, 1)
    assert "at most 3" in failed.value.errors["coverages"]
    assert coverage_rows(engine, setup.client_id) == []
    assert stored_client(engine, setup.client_id).insurance_version == 1
    assert stored_client(engine, setup.client_id).billing_type == "self_pay"


def test_a_payer_can_be_typed_when_it_is_not_in_the_list(engine, setup):
    typed = coverage(payer_name="  Harvard Pilgrim  ")
    save(engine, setup.manager, setup.client_id, "insurance", [typed], 1)
    (row,) = coverage_rows(engine, setup.client_id)
    assert (row.payer_id, row.payer_name) == (None, "Harvard Pilgrim")


def test_a_listed_payer_wins_over_a_typed_name(engine, setup):
    both = coverage(setup.aetna, payer_name="Something else")
    save(engine, setup.manager, setup.client_id, "insurance", [both], 1)
    (row,) = coverage_rows(engine, setup.client_id)
    assert (row.payer_id, row.payer_name) == (setup.aetna, "")


FUTURE = date.today() + timedelta(days=1)
INVALID = [
    ({"payer_id": None}, {"payer_id"}),
    ({"payer_id": 999_999}, {"payer_id"}),
    ({"member_id": "  "}, {"member_id"}),
    ({"member_id": "W12#45"}, {"member_id"}),
    ({"member_id": "X" * 41}, {"member_id"}),
    ({"subscriber_relationship": "spouse"}, {"subscriber_name", "subscriber_dob"}),
    (
        {"subscriber_relationship": "child", "subscriber_name": "Ana Doe"},
        {"subscriber_dob"},
    ),
    (
        {"subscriber_relationship": "other", "subscriber_dob": date(1960, 1, 1)},
        {"subscriber_name"},
    ),
    (
        {"subscriber_relationship": "spouse", "subscriber_name": "Al", "subscriber_dob": FUTURE},
        {"subscriber_dob"},
    ),
    (
        {"subscriber_relationship": "cousin"},
        {"subscriber_relationship", "subscriber_name", "subscriber_dob"},
    ),
    ({"start_date": date(2025, 6, 1), "end_date": date(2025, 5, 31)}, {"end_date"}),
    ({"copay_cents": -1}, {"copay_cents"}),
    ({"copay_cents": 100_001}, {"copay_cents"}),
]


def test_coverage_validation_names_each_field_and_writes_nothing(engine, setup):
    wrong = {}
    for bad, fields in INVALID:
        cov = coverage(setup.aetna, **bad) if "payer_id" not in bad else coverage(**bad)
        try:
            save(engine, setup.manager, setup.client_id, "insurance", [cov], 1)
        except ValidationError as exc:
            if set(exc.errors) != {f"coverage_1.{f}" for f in fields}:
                wrong[repr(bad)] = exc.errors
        else:
            wrong[repr(bad)] = "saved"
    assert wrong == {}
    assert coverage_rows(engine, setup.client_id) == []
    assert stored_client(engine, setup.client_id).insurance_version == 1


def test_errors_are_keyed_by_the_coverage_rank(engine, setup):
    given = [coverage(setup.aetna), coverage(setup.paper, member_id="")]
    with pytest.raises(ValidationError) as failed:
        save(engine, setup.manager, setup.client_id, "insurance", given, 1)
    assert set(failed.value.errors) == {"coverage_2.member_id"}
    assert coverage_rows(engine, setup.client_id) == []


def test_the_edges_of_what_is_accepted(engine, setup):
    given = [
        coverage(
            setup.aetna, copay_cents=0, start_date=date(2025, 1, 1), end_date=date(2025, 1, 1)
        ),
        coverage(
            setup.paper,
            member_id="P-2",
            copay_cents=100_000,
            subscriber_relationship="spouse",
            subscriber_name="Alex Doe",
            subscriber_dob=date(1980, 2, 29),
        ),
        coverage(
            payer_name="Harvard Pilgrim",
            member_id="HP 3",
            subscriber_relationship="self",
            subscriber_name="typed by mistake",
            subscriber_dob=date(1980, 2, 29),
        ),
    ]
    save(engine, setup.manager, setup.client_id, "insurance", given, 1)
    first, second, third = coverage_rows(engine, setup.client_id)
    assert (first.copay_cents, first.end_date) == (0, date(2025, 1, 1))
    assert (second.copay_cents, second.subscriber_name, second.subscriber_dob) == (
        100_000,
        "Alex Doe",
        date(1980, 2, 29),
    )
    # A self subscriber is the client: a typed subscriber name and DOB are not kept.
    assert (third.subscriber_name, third.subscriber_dob) == ("", None)


def test_removing_a_coverage_deactivates_it(engine, setup):
    cid = setup.client_id
    save(
        engine,
        setup.manager,
        cid,
        "insurance",
        [coverage(setup.aetna), coverage(setup.paper, member_id="P-2")],
        1,
    )
    primary, secondary = view(engine, setup.manager, cid).coverages
    save(engine, setup.manager, cid, "insurance", [primary.fields], 2)
    (left,) = view(engine, setup.manager, cid).coverages
    assert left.coverage_id == primary.coverage_id
    rows = {c.id: c for c in coverage_rows(engine, cid)}
    assert set(rows) == {primary.coverage_id, secondary.coverage_id}
    assert rows[secondary.coverage_id].active is False
    assert rows[secondary.coverage_id].member_id == "P-2"
    assert rows[primary.coverage_id].active is True


# --- concurrency and rights --------------------------------------------------------------------


def test_a_stale_insurance_save_is_refused_and_the_first_stays(engine, setup):
    cid = setup.client_id
    with transaction(engine) as session:
        beatriz = auth.create_user(
            session,
            actor=None,
            username="beatriz",
            display_name="Beatriz Baptiste",
            role="biller",
            password="unused-password-1",
            password_hash=password_hash(),
        )
    shown_to_a = view(engine, setup.manager, cid)
    shown_to_b = view(engine, beatriz, cid)
    assert shown_to_a.version == shown_to_b.version == 1

    save(engine, beatriz, cid, "insurance", [coverage(setup.aetna, member_id="B-1")], 1)
    with pytest.raises(StaleEdit) as refused:
        save(engine, setup.manager, cid, "insurance", [coverage(setup.paper, member_id="A-1")], 1)
    assert str(refused.value).startswith("Changed by Beatriz Baptiste at ")
    assert "reload to see their change" in str(refused.value)
    (row,) = coverage_rows(engine, cid)
    assert (row.payer_id, row.member_id, row.active) == (setup.aetna, "B-1", True)
    assert view(engine, setup.manager, cid).version == 2


def test_a_save_of_another_tab_does_not_make_insurance_stale(engine, setup):
    cid = setup.client_id
    shown = view(engine, setup.manager, cid)
    with transaction(engine) as session:
        client_record.save_section(
            session,
            actor=setup.manager,
            client_id=cid,
            section="contact",
            changes={"city": "Boston"},
            expected_version=1,
        )
    new_version = save(
        engine, setup.manager, cid, "insurance", [coverage(setup.aetna)], shown.version
    )
    assert new_version == shown.version + 1
    assert stored_client(engine, cid).city == "Boston"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_who_may_edit_insurance_is_the_policys_decision(engine, setup, role):
    actor = setup.actors[role]
    if allowed(actor, "insurance.edit"):
        assert save(engine, actor, setup.client_id, "insurance", [coverage(setup.aetna)], 1) == 2
    else:
        with pytest.raises(PermissionDenied):
            save(engine, actor, setup.client_id, "insurance", [coverage(setup.aetna)], 1)
        assert coverage_rows(engine, setup.client_id) == []


# --- the payer list ----------------------------------------------------------------------------


def save_payer(engine, actor: Actor, **values) -> int:
    payer_id = values.pop("payer_id", None)
    expected_version = values.pop("expected_version", None)
    active = values.pop("active", True)
    fields = {"name": "Cigna", "payer_code": "62308", "kind": "electronic"}
    fields.update(values)
    with transaction(engine) as session:
        return payers.save_payer(
            session,
            actor=actor,
            values=fields,
            payer_id=payer_id,
            expected_version=expected_version,
            active=active,
        )


def payer_count(engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Payer))


def test_an_admin_adds_a_payer_and_it_is_audited(engine, setup):
    admin = setup.actors["admin"]
    payer_id = save_payer(engine, admin, phone="800-555-0199", address="PO Box 1, Hartford CT")
    with transaction(engine) as session:
        payer = session.get(Payer, payer_id)
        assert (payer.name, payer.payer_code, payer.kind) == ("Cigna", "62308", "electronic")
        assert payer.phone == "(800) 555-0199"
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "payer.create"))
        assert entry.entity_id == str(payer_id)
        labels = [p.label for p in payers.list_payers(session)]
    assert "Cigna (electronic, payer ID 62308)" in labels


def test_an_electronic_payer_needs_its_payer_id(engine, setup):
    admin = setup.actors["admin"]
    with pytest.raises(ValidationError) as failed:
        save_payer(engine, admin, payer_code="  ")
    assert failed.value.errors == {"payer_code": "Electronic payers need their payer ID."}
    assert save_payer(engine, admin, name="County Paper", payer_code="", kind="paper")


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"name": " "}, "name"),
        ({"kind": "fax"}, "kind"),
        ({"phone": "12345"}, "phone"),
        ({"payer_code": "X" * 21}, "payer_code"),
    ],
)
def test_payer_fields_are_validated(engine, setup, bad, field):
    with pytest.raises(ValidationError) as failed:
        save_payer(engine, setup.actors["admin"], **bad)
    assert field in failed.value.errors
    assert payer_count(engine) == 2


@pytest.mark.parametrize("name", ["Aetna", "aetna", "  AETNA "])
def test_duplicate_payer_names_are_refused(engine, setup, name):
    with pytest.raises(ValidationError) as failed:
        save_payer(engine, setup.actors["admin"], name=name, payer_code="99999")
    assert "already in the list" in failed.value.errors["name"]
    assert payer_count(engine) == 2


def test_updating_a_payer_keeps_its_name_and_checks_the_version(engine, setup):
    admin = setup.actors["admin"]
    assert (
        save_payer(
            engine,
            admin,
            payer_id=setup.aetna,
            expected_version=1,
            name="Aetna",
            payer_code="60054",
            phone="800-555-0100",
        )
        == setup.aetna
    )
    with pytest.raises(ValidationError):  # renaming onto another payer's name
        save_payer(
            engine,
            admin,
            payer_id=setup.aetna,
            expected_version=2,
            name="Tufts Paper Plan",
            payer_code="60054",
        )
    with pytest.raises(StaleEdit):
        save_payer(
            engine, admin, payer_id=setup.aetna, expected_version=1, name="Aetna", payer_code="1"
        )
    # retiring keeps the payer (and coverages that use it) but hides it from pickers
    save_payer(
        engine,
        admin,
        payer_id=setup.aetna,
        expected_version=2,
        name="Aetna",
        payer_code="60054",
        active=False,
    )
    with transaction(engine) as session:
        assert "Aetna" not in [p.name for p in payers.list_payers(session)]
        assert "Aetna" in [p.name for p in payers.list_payers(session, include_inactive=True)]
        assert session.get(Payer, setup.aetna).payer_code == "60054"


@pytest.mark.parametrize("role", [r for r in ALL_ROLES if r != "admin"])
def test_only_admins_may_save_payers(engine, setup, role):
    with pytest.raises(PermissionDenied):
        save_payer(engine, setup.actors[role])
    with pytest.raises(PermissionDenied):
        save_payer(engine, setup.actors[role], payer_id=setup.aetna, expected_version=1)
    assert payer_count(engine) == 2
