"""Issue 10 on the screens (AppTest, both engines): files, defaults and long text.

- Item 4: a statement made for one client is never offered on another; a batch made for one
  filter disappears when the filter changes.
- Item 8: at 23:30 practice time every default says the practice's today, not tomorrow.
- Item 9: a paste longer than a field's limit is kept, with a message next to the field, and
  nothing is written; in the review queue a long answer can be read in full.
"""

from __future__ import annotations

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from lib.db import transaction
from lib.models import Client, IntakeSubmission
from tests import record_forms
from tests import test_pages_intake as intake_pages
from tests import test_pages_login as login_tests
from tests.test_pages_billing import client_with_balance, open_balances
from tests.test_pages_clients import client_row, db, errors_beside, open_client
from tests.test_pages_login import sign_in

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app

PASTE = ("Lorem ipsum dolor sit amet. " * 180).strip()  # 5,039 characters


def _download_keys(at: AppTest, start: str) -> list[str]:
    return [k for k in record_forms.keys_on_screen(at) if k.startswith(start)]


def _other_client(url: str, not_id: int) -> Client:
    with db(url) as engine, transaction(engine) as session:
        client = session.scalars(
            select(Client).where(Client.id != not_id, Client.status == "active").limit(1)
        ).one()
        session.expunge(client)
        return client


# --- item 4: generated files belong to their record and filter -------------------------------


def test_a_statement_made_for_one_client_is_not_offered_on_another(demo_app):
    first = client_with_balance(demo_app)
    second = _other_client(demo_app, first.id)
    at = open_client(sign_in("manager"), first.client_number)
    at.button(key="billing_stmt").click().run()
    assert not at.exception, at.exception
    assert _download_keys(at, "billing_stmt_dl")  # offered on the client it was made for

    open_client(at, second.client_number)
    assert _download_keys(at, "billing_stmt_dl") == []
    open_client(at, first.client_number)  # and a file once dropped is not offered again
    assert _download_keys(at, "billing_stmt_dl") == []


def test_batch_statements_disappear_when_the_filter_changes(demo_app):
    at = open_balances(sign_in("manager"))
    at.button(key="ar_statements").click().run()
    assert not at.exception, at.exception
    assert _download_keys(at, "ar_statements_dl")

    at.session_state["ar_bucket_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception, at.exception
    assert _download_keys(at, "ar_statements_dl") == []


# --- item 8: defaults at 23:30 practice time --------------------------------------------------


def test_every_default_date_is_the_practice_day_late_in_the_evening(demo_app, late_evening):
    client = client_with_balance(demo_app)
    at = open_client(sign_in("manager"), client.client_number)

    at.button(key="head_pay").click().run()
    assert at.date_input(key="pay_received").value == late_evening.date()
    at.session_state["cd_payment_dialog_open"] = None  # the user closes the payment dialog
    at.button(key="head_schedule").click().run()
    assert at.date_input(key="appt_day").value == late_evening.date()

    open_balances(at)
    assert at.date_input(key="ar_as_of").value == late_evening.date()


# --- item 9: long text is never dropped --------------------------------------------------------


def test_a_long_paste_on_a_client_tab_is_kept_with_a_message(demo_app):
    client = client_with_balance(demo_app)
    at = open_client(sign_in("manager"), client.client_number)
    field = record_forms.key(at, "client_personal", client.id, "referral_source")
    at.text_input(key=field).input(PASTE)
    save = record_forms.submit(at, "client_personal", client.id, "Save personal details")
    at.button(key=save).click().run()

    assert not at.exception, at.exception
    assert at.text_input(key=field).value == PASTE  # nothing the user pasted is lost
    (message,) = errors_beside(at, field)
    assert f"at most 80 characters; this one has {len(PASTE):,}" in message
    assert client_row(demo_app, client.client_number).referral_source == client.referral_source


def test_a_long_answer_on_the_public_page_is_kept_with_a_message(demo_app):
    qs = intake_pages.questions(demo_app)
    at = intake_pages.open_public()
    intake_pages.fill_public(at, demo_app)
    long_key = f"pi0_q{qs['long_text'].question_id}"
    at.text_area(key=long_key).input(PASTE)
    intake_pages.send(at)

    assert at.text_area(key=long_key).value == PASTE
    assert any(
        f"at most 4,000 characters; this one has {len(PASTE):,}" in e
        for e in intake_pages.errors(at)
    )
    assert not intake_pages.thanked(at)
    assert intake_pages.submissions(demo_app) == []


def test_the_review_queue_shows_a_long_answer_in_full(demo_app):
    qs = intake_pages.questions(demo_app)
    answer = PASTE[:3990]
    at = intake_pages.open_public()
    intake_pages.fill_public(at, demo_app)
    at.text_area(key=f"pi0_q{qs['long_text'].question_id}").input(answer)
    intake_pages.send(at)
    assert intake_pages.thanked(at)

    at = sign_in("manager")
    at.switch_page("pages/intake_review.py").run()
    (submission,) = intake_pages.submissions(demo_app)
    assert isinstance(submission, IntakeSubmission)
    assert answer.strip() in [t.value for t in at.text]
