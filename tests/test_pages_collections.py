"""The Collections page, the Billing tab's contact form and the digest opt-in, through app.py in
Streamlit's AppTest on a fresh demo practice (SQLite and PostgreSQL; issue 15)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from lib import collections_worklist, digest
from lib.db import transaction
from lib.models import (
    Client,
    CollectionContact,
    DigestSubscription,
    DocumentLogEntry,
    MessageOutbox,
)
from lib.timeutil import practice_today
from tests import test_pages_login as login_tests
from tests.test_pages_clients import actor_of, db, open_client, the_table
from tests.test_pages_login import NO_ACCESS, screen_text, sign_in

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app
TABLE = "coll_table"


def open_collections(at: AppTest) -> AppTest:
    at.switch_page("pages/collections.py").run()
    assert not at.exception, at.exception
    return at


def select_rows(at: AppTest, rows: list[int]) -> AppTest:
    at.session_state[TABLE] = {"selection": {"rows": rows, "columns": []}}
    at.run()
    assert not at.exception, at.exception
    return at


def lib_worklist(url: str) -> collections_worklist.Worklist:
    with db(url) as engine, transaction(engine) as session:
        return collections_worklist.worklist(session, actor=actor_of(url, "biller"))


def contacts_of(url: str, client_id: int) -> list[tuple]:
    with db(url) as engine, transaction(engine) as session:
        return [
            tuple(r)
            for r in session.execute(
                select(
                    CollectionContact.kind,
                    CollectionContact.outcome,
                    CollectionContact.follow_up_on,
                )
                .where(CollectionContact.client_id == client_id)
                .order_by(CollectionContact.id)
            )
        ]


def test_the_worklist_on_screen_is_lib_s_in_the_same_order(demo_app):
    at = open_collections(sign_in("biller"))
    table = the_table(at, "Priority")
    found = lib_worklist(demo_app)
    assert found.rows, "the demo's worklist is empty"
    assert list(table["Client #"]) == [r.client_number for r in found.rows]
    assert list(table["Why"]) == [r.reasons for r in found.rows]
    assert any("behind by" in p for p in table["Plan"])
    assert any(p for p in table["Promise"])


def test_a_contact_is_logged_from_the_worklist_in_two_clicks(demo_app):
    at = open_collections(sign_in("biller"))
    row = lib_worklist(demo_app).rows[0]
    before = contacts_of(demo_app, row.client_id)
    select_rows(at, [0])  # click 1: the row
    at.button(key=f"coll_worklist_{row.client_id}_save").click().run()  # click 2
    assert not at.exception, at.exception
    follow_up = practice_today() + timedelta(days=7)
    assert [s.value for s in at.success] == [
        f"Client #{row.client_number}: Call logged: No answer. "
        f"Back on the worklist on {follow_up:%m/%d/%Y}."
    ]
    after = contacts_of(demo_app, row.client_id)
    assert after[: len(before)] == before
    assert after[len(before) :] == [("call", "no_answer", practice_today() + timedelta(days=7))]
    assert at.session_state[TABLE]["selection"]["rows"] == []  # the form is gone


def test_a_batch_reminder_goes_to_consenting_clients_once_however_often_it_is_clicked(demo_app):
    found = lib_worklist(demo_app)
    with db(demo_app) as engine, transaction(engine) as session:
        first = session.get(Client, found.rows[0].client_id)
        first.email, first.email_ok = "pays.later@example.org", True
        second = session.get(Client, found.rows[1].client_id)
        second.email_ok = False
    at = select_rows(open_collections(sign_in("biller")), [0, 1])
    consenting = sum(1 for r in lib_worklist(demo_app).rows[:2] if r.email_ok)
    assert consenting == 1
    at.button(key="coll_remind").click().run()
    at.button(key="coll_remind").click().run()  # the second click of a double click
    assert not at.exception, at.exception
    with db(demo_app) as engine, transaction(engine) as session:
        queued = session.scalars(
            select(MessageOutbox.recipient).where(MessageOutbox.kind == "account_reminder")
        ).all()
    assert queued == ["pays.later@example.org"]
    assert "already sent" in screen_text(at)


def test_the_billing_tab_logs_a_contact_and_a_bad_promise_is_refused_beside_its_field(demo_app):
    found = lib_worklist(demo_app)
    row = found.rows[-1]
    at = open_client(sign_in("biller"), row.client_number)
    before = contacts_of(demo_app, row.client_id)
    at.selectbox(key=f"coll_billing_{row.client_id}_outcome").set_value("promised").run()
    at.button(key=f"coll_billing_{row.client_id}_save").click().run()
    assert not at.exception, at.exception
    assert contacts_of(demo_app, row.client_id) == before  # nothing written
    text = screen_text(at)
    assert "Enter the amount the client promised to pay." in text
    at.text_input(key=f"coll_billing_{row.client_id}_promise_amt").input("40.00")
    at.text_input(key=f"coll_billing_{row.client_id}_note").input("Pays after payday <b>")
    at.date_input(key=f"coll_billing_{row.client_id}_promise_on").set_value(
        practice_today() + timedelta(days=3)
    )
    at.button(key=f"coll_billing_{row.client_id}_save").click().run()
    assert not at.exception, at.exception
    assert contacts_of(demo_app, row.client_id)[len(before) :] == [
        ("call", "promised", practice_today() + timedelta(days=7))
    ]
    assert any(b.key == f"coll_billing_{row.client_id}_again" for b in at.button)
    history = the_table(at, "Promise")  # the contact is part of the client's record
    assert history.iloc[0]["Note"] == "Pays after payday <b>"
    assert history.iloc[0]["Promise"].startswith("$40.00 by ")
    # Another client's Billing tab starts from a fresh form.
    other = found.rows[0]
    at = open_client(at, other.client_number)
    assert at.selectbox(key=f"coll_billing_{other.client_id}_outcome").value == "no_answer"


def test_the_collections_page_is_for_billing_roles_only(demo_app):
    at = open_collections(sign_in("frontdesk"))
    assert NO_ACCESS in [e.value for e in at.error]
    assert not any(df for df in at.dataframe)


def test_a_manager_opts_in_to_the_digest_on_my_account(demo_app):
    at = sign_in("manager")
    at.switch_page("pages/account.py").run()
    toggle = next(t for t in at.toggle if "digest" in t.label)
    toggle.set_value(True).run()
    assert not at.exception, at.exception
    with db(demo_app) as engine, transaction(engine) as session:
        manager = actor_of(demo_app, "manager")
        assert digest.is_subscribed(session, actor=manager)
        assert session.scalar(select(func.count()).select_from(DigestSubscription)) == 1
    biller = sign_in("biller")
    biller.switch_page("pages/account.py").run()
    assert not [t for t in biller.toggle if "digest" in t.label]


def test_statements_for_the_selected_rows_are_one_pdf_logged_per_client(demo_app, downloads):
    found = lib_worklist(demo_app)
    at = select_rows(open_collections(sign_in("biller")), [0, 2])
    pdf = downloads.click(at, "coll_statements")
    assert pdf.startswith(b"%PDF")
    chosen = {found.rows[0].client_id, found.rows[2].client_id}
    with db(demo_app) as engine, transaction(engine) as session:
        logged = session.scalars(
            select(DocumentLogEntry.client_id).where(
                DocumentLogEntry.kind == "statement", DocumentLogEntry.status == "generated"
            )
        ).all()
    assert chosen <= set(logged)
    at.run()
    table = the_table(at, "Priority")
    shown = dict(zip(table["Client #"], table["Last statement"], strict=True))
    for r in found.rows[:3]:
        assert bool(shown[r.client_number]) == (r.client_id in chosen or bool(r.last_statement_at))
