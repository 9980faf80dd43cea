"""Balances and payments through app.py in Streamlit's AppTest (spec B3, B4, C4; issue 4).

Each test signs in on a fresh copy of the demo practice (SQLite and PostgreSQL) and compares
what the page shows with what lib computes from the same database.

The Record payment dialog is opened from a session-state flag (``ui.billing.PAYMENT_OPEN``):
AppTest reruns the whole script for every click, so a dialog drawn only in the run where its
opening button was pressed would be gone before its own "Record payment" button could be
clicked. A double click is two runs with the dialog's one idempotency key; the test replays
that through the key the dialog keeps in session state.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from lib import aging, postings
from lib.db import transaction
from lib.models import Client, Coverage, LedgerEntry, OpenCharge, Payer
from lib.money import format_cents, format_compact
from tests import test_pages_login as login_tests
from tests.test_pages_clients import (
    actor_of,
    client_row,
    db,
    errors_beside,
    metrics,
    open_client,
    the_table,
)
from tests.test_pages_login import DOLLARS, NO_ACCESS, screen_text, sign_in

# The sign-in tests' fixtures: a fresh Streamlit per test, app.py on a fresh demo practice.
_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app

BUCKETS = ["0–30", "31–60", "61–90", "91–120", "120+"]
KEY = "cd_payment_dialog_key"  # ui.billing.PAYMENT_DIALOG


def open_balances(at: AppTest) -> AppTest:
    at.switch_page("pages/balances.py").run()
    assert not at.exception, at.exception
    return at


def breakdown(at: AppTest, first: str):
    """The by-clinician or by-payer table (its first column is named ``first``)."""
    frames = [df.value for df in at.dataframe if list(df.value.columns)[:1] == [first]]
    assert len(frames) == 1, f"expected one table by {first.lower()}, found {len(frames)}"
    return frames[0]


def ledger_count(url: str) -> int:
    with db(url) as engine, transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(LedgerEntry))


def lib_report(url: str, **kwargs) -> aging.AgingReport:
    with db(url) as engine, transaction(engine) as session:
        return aging.report(session, actor=actor_of(url, "manager"), as_of=date.today(), **kwargs)


def client_with_balance(url: str) -> Client:
    with db(url) as engine, transaction(engine) as session:
        client = session.scalars(
            select(Client)
            .where(Client.status == "active", Client.total_cents > 0)
            .order_by(Client.client_number)
            .limit(1)
        ).one()
        session.expunge(client)
        return client


# --- the outstanding-balances report (B4) --------------------------------------------------


def test_total_ar_matches_lib_and_the_buckets_are_in_order(demo_app):
    report = lib_report(demo_app)
    with db(demo_app) as engine, transaction(engine) as session:
        open_cents = session.scalar(
            select(func.coalesce(func.sum(OpenCharge.open_cents), 0)).where(
                OpenCharge.service_date <= date.today()
            )
        )
    assert report.total_ar_cents > 0
    assert report.total_ar_cents == open_cents

    at = open_balances(sign_in("manager"))

    assert "Outstanding balances" in [t.value for t in at.title]
    shown = metrics(at)
    assert shown["Total A/R"] == format_compact(report.total_ar_cents)
    assert shown["Client due"] == format_compact(report.client_due_cents)
    assert shown["Insurance pending"] == format_compact(report.insurance_pending_cents)
    assert shown["Unapplied credit"] == format_compact(report.unapplied_credit_cents)
    buckets = the_table(at, "Bucket (days)")
    assert buckets["Bucket (days)"].tolist() == BUCKETS
    totals = report.bucket_totals()
    assert [round(v * 100) for v in buckets["Total"]] == [totals[b.key] for b in report.buckets]
    assert round(buckets["Total"].sum() * 100) == report.total_ar_cents
    assert round(buckets["Client"].sum() * 100) == report.client_due_cents
    clinicians = breakdown(at, "Clinician")
    assert round(clinicians["Total"].sum() * 100) == report.total_ar_cents
    payers = breakdown(at, "Payer")
    assert round(payers["Total"].sum() * 100) == report.total_ar_cents


def test_selecting_a_bucket_lists_its_clients(demo_app):
    report = lib_report(demo_app)
    totals = report.bucket_totals()
    index, bucket = next(
        (i, b) for i, b in enumerate(report.buckets) if totals[b.key] and i > 0
    )  # an older bucket, so the list differs from "every client with a balance"
    with db(demo_app) as engine, transaction(engine) as session:
        behind = aging.clients_behind(
            session,
            actor=actor_of(demo_app, "manager"),
            as_of=date.today(),
            bucket_key=bucket.key,
        )
    assert behind

    at = open_balances(sign_in("manager"))
    everyone = the_table(at, "Owed")
    at.session_state["ar_bucket_table"] = {"selection": {"rows": [index], "columns": []}}
    at.run()

    assert not at.exception
    assert f"Clients owing {bucket.label} days" in [s.value for s in at.subheader]
    listed = the_table(at, "Owed")
    assert listed["Client #"].tolist() == [c.client_number for c in behind]
    assert [round(v * 100) for v in listed["Owed"]] == [c.amount_cents for c in behind]
    assert round(listed["Owed"].sum() * 100) == totals[bucket.key]
    assert len(listed) < len(everyone)

    # A row of that list opens the client.
    at.session_state["ar_clients"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception
    assert at.query_params.get("client") == str(behind[0].client_number)


def test_bad_bucket_edges_show_a_message_next_to_the_field(demo_app):
    at = open_balances(sign_in("manager"))
    at.text_input(key="ar_edges").input("30, 20")
    at.run()

    assert not at.exception
    messages = errors_beside(at, "ar_edges")
    assert len(messages) == 1 and "larger than the one before" in messages[0]
    assert not at.metric  # no report from edges that make no sense

    at.text_input(key="ar_edges").input("45, 90")
    at.run()
    assert errors_beside(at, "ar_edges") == []
    assert the_table(at, "Bucket (days)")["Bucket (days)"].tolist() == ["0–45", "46–90", "90+"]
    assert metrics(at)["Total A/R"] == format_compact(lib_report(demo_app).total_ar_cents)


def test_export_buttons_for_the_client_list_and_the_report(demo_app):
    at = sign_in("manager")
    keys = {b.key for b in at.download_button}
    assert keys == {"export_csv_clients", "export_xlsx_clients"}

    open_balances(at)
    keys = {b.key for b in at.download_button}
    for name in ("aging-buckets", "aging-by-clinician", "aging-by-payer", "aging-clients"):
        assert {f"export_csv_{name}", f"export_xlsx_{name}"} <= keys
    assert {b.label for b in at.download_button} >= {"Export CSV", "Export XLSX"}


def test_front_desk_cannot_open_the_balances_page(demo_app):
    at = sign_in("frontdesk")
    at.switch_page("pages/balances.py").run()

    assert not at.exception
    assert NO_ACCESS in [e.value for e in at.error]
    assert "Outstanding balances" not in [t.value for t in at.title]
    assert not at.metric
    assert not DOLLARS.search(screen_text(at))

    client = client_with_balance(demo_app)
    open_client(at, client.client_number)
    assert "head_pay" not in [b.key for b in at.button]


# --- recording a payment (B3) --------------------------------------------------------------


def _open_payment_dialog(url: str) -> tuple[AppTest, Client]:
    client = client_with_balance(url)
    at = open_client(sign_in("manager"), client.client_number)
    at.button(key="head_pay").click().run()
    assert not at.exception
    assert at.text_input(key="pay_amount")
    return at, client


def test_the_payment_dialog_refuses_bad_amounts_and_posts_nothing(demo_app):
    at, client = _open_payment_dialog(demo_app)
    before = ledger_count(demo_app)

    for typed, message in (
        ("12.345", "two decimals"),
        ("0", "more than zero"),
        ("-5", "negative"),
        ("abc", "as a number"),
        ("", "Enter an amount"),
    ):
        at.text_input(key="pay_amount").input(typed)
        at.button(key="pay_submit").click().run()
        assert not at.exception
        shown = errors_beside(at, "pay_amount")
        assert len(shown) == 1 and message in shown[0], (typed, shown)
        assert at.text_input(key="pay_amount").value == typed  # the dialog stays open

    assert ledger_count(demo_app) == before
    assert client_row(demo_app, client.client_number).total_cents == client.total_cents


def test_a_payment_of_1250_dollars_is_posted_once(demo_app):
    at, client = _open_payment_dialog(demo_app)
    before = ledger_count(demo_app)
    key = at.session_state[KEY]

    at.text_input(key="pay_amount").input("$1,250.00")
    at.button(key="pay_submit").click().run()

    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    after = client_row(demo_app, client.client_number)
    assert after.total_cents == client.total_cents - 125000
    assert ledger_count(demo_app) == before + 1
    assert any("Payment of $1,250.00 recorded" in s.value for s in at.success)
    assert metrics(at)["Balance"] == format_cents(after.total_cents)
    assert not [t for t in at.text_input if t.key == "pay_amount"]  # the dialog closed
    assert KEY not in at.session_state  # the next opening gets a new key

    # A second click that reached the server with the same dialog (same key) posts nothing.
    with db(demo_app) as engine, transaction(engine) as session:
        again = postings.record_payment(
            session,
            actor=actor_of(demo_app, "manager"),
            client_id=client.id,
            amount_cents=125000,
            method="card",
            idempotency_key=key,
        )
    assert again.duplicate
    assert ledger_count(demo_app) == before + 1
    assert client_row(demo_app, client.client_number).total_cents == after.total_cents


def test_a_double_click_in_the_dialog_posts_once(demo_app):
    """The first click's run committed but was cut short by the second click (the dialog is
    still open, its key still in session state): the second run must not post again."""
    at, client = _open_payment_dialog(demo_app)
    before = ledger_count(demo_app)
    at.text_input(key="pay_amount").input("$1,250.00")
    with db(demo_app) as engine, transaction(engine) as session:  # the first click's posting
        postings.record_payment(
            session,
            actor=actor_of(demo_app, "manager"),
            client_id=client.id,
            amount_cents=125000,
            method="card",
            idempotency_key=at.session_state[KEY],
        )

    at.button(key="pay_submit").click().run()  # the second click

    assert not at.exception
    assert ledger_count(demo_app) == before + 1
    assert client_row(demo_app, client.client_number).total_cents == client.total_cents - 125000
    assert not [t for t in at.text_input if t.key == "pay_amount"]

    # Opening the dialog again starts a new payment with a new key.
    at.button(key="head_pay").click().run()
    at.text_input(key="pay_amount").input("10")
    at.button(key="pay_submit").click().run()
    assert not at.exception
    assert ledger_count(demo_app) == before + 2


# --- insurance payments name their payer (issue 10 item 6) ------------------------------------


def insured_client(url: str) -> tuple[Client, int, int]:
    """An active client whose primary payer is not the first payer alphabetically, that
    payer's id, and the id of the first payer (Aetna) — which is not on this client's file."""
    with db(url) as engine, transaction(engine) as session:
        aetna = session.scalars(select(Payer).order_by(Payer.name)).first()
        billed_by_aetna = select(LedgerEntry.client_id).where(LedgerEntry.payer_id == aetna.id)
        client, payer_id = session.execute(
            select(Client, Coverage.payer_id)
            .join(Coverage, Coverage.client_id == Client.id)
            .where(
                Client.status == "active",
                Coverage.rank == 1,
                Coverage.active.is_(True),
                Coverage.payer_id.is_not(None),
                Coverage.payer_id != aetna.id,
                Client.id.not_in(billed_by_aetna),
            )
            .order_by(Client.client_number)
            .limit(1)
        ).one()
        session.expunge(client)
        return client, payer_id, aetna.id


def last_entry(url: str) -> LedgerEntry:
    with db(url) as engine, transaction(engine) as session:
        entry = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(1)).one()
        session.expunge(entry)
        return entry


def test_paid_by_insurance_preselects_the_clients_primary_payer(demo_app):
    client, primary, _ = insured_client(demo_app)
    at = open_client(sign_in("manager"), client.client_number)
    at.button(key="head_pay").click().run()
    at.radio(key="pay_by").set_value("insurance").run()
    assert not at.exception

    payer = at.selectbox(key="pay_payer")
    assert payer.value == f"id:{primary}"  # not Aetna, the first payer alphabetically
    assert "(primary coverage)" in payer.format_func(payer.value)
    assert not [c for c in at.checkbox if c.key == "pay_other_payer"]

    at.text_input(key="pay_amount").input("80.00")
    at.button(key="pay_submit").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    entry = last_entry(demo_app)
    assert (entry.client_id, entry.responsibility, entry.payer_id) == (
        client.id,
        "insurance",
        primary,
    )
    assert entry.amount_cents == 8000


def test_a_payer_not_on_the_clients_coverages_must_be_confirmed(demo_app):
    client, _, aetna = insured_client(demo_app)
    at = open_client(sign_in("manager"), client.client_number)
    at.button(key="head_pay").click().run()
    at.radio(key="pay_by").set_value("insurance").run()
    at.selectbox(key="pay_payer").set_value(f"id:{aetna}").run()
    at.text_input(key="pay_amount").input("80.00")
    before = ledger_count(demo_app)

    at.button(key="pay_submit").click().run()  # the confirmation box is there but not ticked
    assert not at.exception
    shown = errors_beside(at, "pay_payer")
    assert len(shown) == 1 and "is not on this client's coverages" in shown[0], shown
    assert ledger_count(demo_app) == before

    at.checkbox(key="pay_other_payer").check().run()
    at.button(key="pay_submit").click().run()
    assert not at.exception
    assert ledger_count(demo_app) == before + 1
    entry = last_entry(demo_app)
    assert (entry.client_id, entry.payer_id, entry.amount_cents) == (client.id, aetna, 8000)
