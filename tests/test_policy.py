"""Who may do what (spec A1): the role × action table, and lib enforcing it, not only the pages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lib import audit, auth, clients
from lib.db import transaction
from lib.demo import DEMO_LOGINS
from lib.models import Client, User
from lib.policy import (
    ACTION_LABELS,
    ALL_ROLES,
    POLICY,
    Actor,
    PermissionDenied,
    allowed,
    require,
    require_client_access,
)

ALL_STATUSES = ("active", "inactive", "prospective", "discharged")


def actor(role: str, clinician_id: int | None = None) -> Actor:
    return Actor(user_id=1, username=role, display_name=role, role=role, clinician_id=clinician_id)


@pytest.mark.parametrize("action", sorted(POLICY))
@pytest.mark.parametrize("role", ALL_ROLES)
def test_require_refuses_exactly_what_the_table_refuses(role, action):
    clinician_id = 1 if role == "clinician" else None
    if role in POLICY[action]:
        require(actor(role, clinician_id), action)
        assert allowed(actor(role, clinician_id), action)
    else:
        with pytest.raises(PermissionDenied) as denied:
            require(actor(role, clinician_id), action)
        assert ACTION_LABELS[action] in str(denied.value)
        assert not allowed(actor(role, clinician_id), action)


def test_every_action_has_a_label_for_the_refusal_message():
    assert set(ACTION_LABELS) == set(POLICY)


def test_an_unknown_action_is_an_error_not_a_silent_yes():
    with pytest.raises(KeyError):
        require(actor("admin"), "clients.delete_everything")


ADMIN_ONLY = ("users.manage", "audit.view", "settings.manage")

# What the product promises, written out by hand: if the table drifts, this disagrees.
PROMISES = [
    ("front_desk", "balance.view", False),
    ("front_desk", "intake.view", False),
    ("front_desk", "payment.record", False),
    ("front_desk", "report.balances", False),
    ("front_desk", "client.create", True),
    ("biller", "balance.view", True),
    ("biller", "payment.record", True),
    ("manager", "balance.view", True),
    ("manager", "report.balances", True),
    ("clinician", "intake.view", True),
    ("clinician", "client.view", True),
] + [(role, action, role == "admin") for action in ADMIN_ONLY for role in ALL_ROLES]


@pytest.mark.parametrize(("role", "action", "expected"), PROMISES)
def test_the_promised_rights_hold(role, action, expected):
    assert allowed(actor(role, 1), action) is expected


def test_a_clinician_opens_their_own_client():
    require_client_access(actor("clinician", clinician_id=2), "client.view", 2)


def test_a_clinician_cannot_open_another_clinicians_client():
    with pytest.raises(PermissionDenied):
        require_client_access(actor("clinician", clinician_id=2), "client.view", 3)


def test_a_clinician_cannot_open_an_unassigned_client():
    with pytest.raises(PermissionDenied):
        require_client_access(actor("clinician", clinician_id=2), "client.view", None)


def test_a_clinician_account_without_a_clinician_sees_no_client():
    with pytest.raises(PermissionDenied):
        require_client_access(actor("clinician", clinician_id=None), "client.view", None)


@pytest.mark.parametrize("role", ["admin", "manager", "biller", "front_desk"])
def test_other_roles_open_any_clinicians_client(role):
    require_client_access(actor(role), "client.view", 3)


def test_client_access_still_checks_the_action():
    with pytest.raises(PermissionDenied):
        require_client_access(actor("clinician", clinician_id=2), "payment.record", 2)


# --- lib enforces it ---------------------------------------------------------------------------


def demo_actor(session, username: str) -> Actor:
    return auth.actor_for(session.scalar(select(User).where(User.username == username)))


def test_front_desk_client_list_carries_no_balances(demo_engine):
    with transaction(demo_engine) as session:
        front_desk = demo_actor(session, "frontdesk")
        result = clients.list_clients(session, actor=front_desk, statuses=ALL_STATUSES, limit=1000)
    assert not result.shows_balances
    assert result.totals is None
    assert result.count > 0
    assert len(result.rows) == result.count
    for row in result.rows:
        assert row.client_due_cents is None
        assert row.insurance_pending_cents is None
        assert row.unapplied_credit_cents is None
        assert row.total_cents is None
        assert row.oldest_unpaid_dos is None


def test_billing_client_list_carries_balances(demo_engine):
    with transaction(demo_engine) as session:
        biller = demo_actor(session, "biller")
        result = clients.list_clients(session, actor=biller, statuses=ALL_STATUSES, limit=1000)
    assert result.shows_balances
    assert result.totals is not None
    assert all(row.total_cents is not None for row in result.rows)
    assert any(row.total_cents != 0 for row in result.rows)


@pytest.mark.parametrize("filters", [{"has_balance": True}, {"aging_bucket": "0_30"}])
def test_front_desk_cannot_filter_by_balance(demo_engine, filters):
    with transaction(demo_engine) as session:
        front_desk = demo_actor(session, "frontdesk")
        with pytest.raises(PermissionDenied):
            clients.list_clients(session, actor=front_desk, **filters)


def test_front_desk_cannot_sort_by_balance(demo_engine):
    with transaction(demo_engine) as session:
        front_desk = demo_actor(session, "frontdesk")
        with pytest.raises((PermissionDenied, ValueError)):
            clients.list_clients(session, actor=front_desk, sort="total")


CLINICIAN_LOGINS = [username for role, username, _, _ in DEMO_LOGINS if role == "clinician"]


def test_a_clinician_lists_only_their_own_clients(demo_engine):
    with transaction(demo_engine) as session:
        total = len(session.scalars(select(Client.id)).all())
        for username in CLINICIAN_LOGINS:
            clinician = demo_actor(session, username)
            result = clients.list_clients(
                session, actor=clinician, statuses=ALL_STATUSES, limit=1000
            )
            own = set(
                session.scalars(
                    select(Client.id).where(Client.clinician_id == clinician.clinician_id)
                )
            )
            assert clinician.clinician_id is not None
            assert own, f"the demo gives {username} clients"
            assert {row.client_id for row in result.rows} == own, username
            assert result.count == len(own) < total


def test_a_clinician_cannot_widen_the_list_with_another_clinicians_filter(demo_engine):
    with transaction(demo_engine) as session:
        okafor = demo_actor(session, "okafor")
        reyes = demo_actor(session, "reyes")
        result = clients.list_clients(
            session, actor=okafor, statuses=ALL_STATUSES, clinician_id=reyes.clinician_id
        )
    assert result.count == 0
    assert result.rows == []


NON_ADMINS = ["manager", "biller", "frontdesk", "okafor"]


def test_only_admins_list_staff_accounts(demo_engine):
    with transaction(demo_engine) as session:
        for username in NON_ADMINS:
            with pytest.raises(PermissionDenied):
                auth.list_users(session, actor=demo_actor(session, username))
        admin_view = auth.list_users(session, actor=demo_actor(session, "admin"))
    assert {a.username for a in admin_view} >= {u for _, u, _, _ in DEMO_LOGINS}


def test_only_admins_read_the_audit_log(demo_engine):
    with transaction(demo_engine) as session:
        for username in NON_ADMINS:
            with pytest.raises(PermissionDenied):
                audit.list_entries(session, actor=demo_actor(session, username))
        entries = audit.list_entries(session, actor=demo_actor(session, "admin"))
    assert entries, "the demo seeding itself is audited"
