"""The demo practice's collections (issue 15): the worklist is alive on the first run, with
contacts, promises and two payment plans, one on track and one behind."""

from __future__ import annotations

from sqlalchemy import func, select

from lib import collections_worklist, payment_plans
from lib.db import read_session
from lib.models import CollectionContact
from tests.test_pages_clients import actor_of


def test_the_demo_worklist_has_contacts_promises_and_two_plans(demo_engine, demo_url):
    biller = actor_of(demo_url, "biller")
    with read_session(demo_engine) as session:
        found = collections_worklist.worklist(session, actor=biller)
        plans = payment_plans.statuses(session)
        promises = session.scalar(
            select(func.count()).where(CollectionContact.outcome == "promised")
        )
    assert found.total_count >= 5
    assert promises >= 2
    assert sorted(p.on_track for p in plans.values()) == [False, True]
    behind = next(p for p in plans.values() if not p.on_track)
    assert behind.behind_cents == behind.instalment_cents  # one instalment missed
    on_list = {r.client_id: r for r in found.rows}
    assert behind.client_id in on_list
    assert "Payment plan behind by $25.00" in on_list[behind.client_id].reasons
    assert any("Follow-up due today" in r.reasons for r in found.rows)
    assert any(r.promise for r in found.rows) and any(r.last_contact for r in found.rows)
