"""The Clients screen through app.py in Streamlit's AppTest (spec C1–C8, issue 3).

Every test signs in through the real login form on a fresh copy of the demo practice (SQLite and
PostgreSQL), drives the page the way a user would, and checks both the screen and the database.

AppTest notes (Streamlit 1.67):
- A dataframe row click is an assignment of the table's selection state:
  ``at.session_state["clients_table"] = {"selection": {"rows": [i], "columns": []}}``.
- ``st.date_input(max_value=today)`` refuses a later date before the page sees it (the value
  becomes ``None``, as the browser's date picker does), so a future date of birth reaches the
  page as "no date of birth"; the page must still say so next to the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from lib import auth, clients
from lib import client_record as cr
from lib.db import make_engine, transaction
from lib.models import AuditEntry, Client, Coverage, User
from lib.money import format_cents
from lib.policy import Actor
from tests import record_forms
from tests import test_pages_login as login_tests
from tests.test_pages_login import DOLLARS, screen_text, sign_in

# The sign-in tests' fixtures: a fresh Streamlit per test, app.py on a fresh demo practice.
_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app

BALANCE_COLUMNS = {"Client due", "Insurance pending", "Unapplied credit", "Total"}
XSS = "<img src=x onerror=alert(1)>"


# --- helpers -------------------------------------------------------------------------------


@contextmanager
def db(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def actor_of(url: str, username: str) -> Actor:
    with db(url) as engine, transaction(engine) as session:
        return auth.actor_for(session.scalars(select(User).where(User.username == username)).one())


def count_clients(url: str) -> int:
    with db(url) as engine, transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Client))


def client_row(url: str, number: int) -> Client:
    with db(url) as engine, transaction(engine) as session:
        client = session.scalars(select(Client).where(Client.client_number == number)).one()
        session.expunge(client)
        return client


def active_clients(url: str) -> list[Client]:
    with db(url) as engine, transaction(engine) as session:
        rows = session.scalars(
            select(Client).where(Client.status == "active").order_by(Client.client_number)
        ).all()
        for c in rows:
            session.expunge(c)
        return list(rows)


def nodes(block) -> Iterator:
    yield block
    for child in getattr(block, "children", {}).values():
        yield from nodes(child)


def all_nodes(at: AppTest) -> Iterator:
    """Every element and block: main area, sidebar and dialogs (drawn outside both)."""
    yield from nodes(at.main.root)


def parent_of(at: AppTest, key: str):
    """The block (a column, a form) that directly holds the widget with this key."""
    for node in all_nodes(at):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "key", None) == key and not hasattr(child, "children"):
                return node
    raise AssertionError(f"no widget with key {key!r} on screen")


def errors_beside(at: AppTest, key: str) -> list[str]:
    """Error messages shown in the same column as the widget, right under it."""
    siblings = list(parent_of(at, key).children.values())
    i = next(n for n, c in enumerate(siblings) if getattr(c, "key", None) == key)
    found = []
    for sibling in siblings[i + 1 :]:
        if type(sibling).__name__ == "Error":
            found.append(sibling.value)
        elif type(sibling).__name__ != "UnknownElement":  # an empty slot
            break
    return found


def markdown_texts(at: AppTest) -> list[str]:
    """Everything on screen that Streamlit renders as markdown: bodies and labels."""
    texts = []
    for node in all_nodes(at):
        proto = getattr(node, "proto", None)
        kind = proto.DESCRIPTOR.name if proto is not None else ""
        if kind in {"Markdown", "Alert", "Heading", "Toast"}:
            texts.append(proto.body)
        elif kind == "Metric":
            texts.append(proto.label)
        label = getattr(node, "label", None)
        if isinstance(label, str):
            texts.append(label)
    return texts


def the_table(at: AppTest, column: str):
    frames = [df.value for df in at.dataframe if column in df.value.columns]
    assert len(frames) == 1, f"expected one table with a {column!r} column, found {len(frames)}"
    return frames[0]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def open_client(at: AppTest, number: int) -> AppTest:
    at.switch_page("pages/client.py")
    at.query_params["client"] = str(number)
    at.run()
    assert not at.exception, at.exception
    assert f"#{number}" in [t.value for t in at.text]
    return at


def tab_key(at: AppTest, section: str, client_id: int, field: str) -> str:
    """The key of a client tab's field now on screen (see tests/record_forms.py)."""
    return record_forms.key(at, f"client_{section}", client_id, field)


def contact_save(at: AppTest, client_id: int) -> str:
    return record_forms.submit(at, "client_contact", client_id, "Save contact details")


NEW_CLIENT_SAVE = "FormSubmitter:new_client-Check and save"


# --- the list (C1, C2) ---------------------------------------------------------------------


def test_manager_sees_names_count_and_money_totals(demo_app):
    active = active_clients(demo_app)
    at = sign_in("manager")

    table = the_table(at, "Name")
    expected = sorted(active, key=lambda c: (c.last_name, c.first_name, c.id))[:50]
    assert table["Client #"].tolist() == [c.client_number for c in expected]
    assert table["Name"].tolist() == [
        clients.display_name(c.last_name, c.first_name, c.preferred_name) for c in expected
    ]
    assert set(table.columns) >= BALANCE_COLUMNS
    shown = metrics(at)
    assert shown["Clients"] == f"{len(active):,}"
    assert shown["Client due"] == format_cents(sum(c.client_due_cents for c in active))
    assert shown["Insurance pending"] == format_cents(
        sum(c.insurance_pending_cents for c in active)
    )
    assert shown["Unapplied credit"] == format_cents(sum(c.unapplied_credit_cents for c in active))
    assert shown["Total balance"] == format_cents(sum(c.total_cents for c in active))
    by_number = {c.client_number: c for c in active}
    for _, row in table.iterrows():
        assert round(row["Total"] * 100) == by_number[row["Client #"]].total_cents
    assert [b.key for b in at.download_button] == ["export_csv_clients", "export_xlsx_clients"]


def test_front_desk_sees_no_balance_columns_or_totals(demo_app):
    active = active_clients(demo_app)
    at = sign_in("frontdesk")

    table = the_table(at, "Name")
    assert len(table) == min(50, len(active))
    assert not BALANCE_COLUMNS & set(table.columns)
    assert "Oldest unpaid" not in table.columns
    assert metrics(at) == {"Clients": f"{len(active):,}"}
    assert not DOLLARS.search(screen_text(at))
    assert "clients_bucket" not in [s.key for s in at.selectbox]
    assert not at.download_button  # front desk may not export client lists


def test_search_by_part_of_a_last_name_narrows_the_list(demo_app):
    active = active_clients(demo_app)
    target = next(c for c in active if len(c.last_name) >= 5)
    fragment = target.last_name[1:5].lower()  # the middle of the name, lower case
    expected = {  # a name part, or (one word without spaces) part of the email address
        c.client_number
        for c in active
        if fragment
        in clients.fold(" ".join((c.first_name, c.middle_name, c.last_name, c.preferred_name)))
        or fragment in c.email.lower()
    }
    assert target.client_number in expected
    assert len(expected) < len(active)

    at = sign_in("manager")
    at.text_input(key="clients_query").input(fragment)
    at.run()

    assert not at.exception
    table = the_table(at, "Name")
    assert set(table["Client #"]) == expected
    shown = metrics(at)
    assert shown["Clients"] == str(len(expected))
    in_result = [c for c in active if c.client_number in expected]
    assert shown["Total balance"] == format_cents(sum(c.total_cents for c in in_result))

    at.text_input(key="clients_query").input("")
    at.run()
    assert len(the_table(at, "Name")) == min(50, len(active))


def test_status_filter(demo_app):
    with db(demo_app) as engine, transaction(engine) as session:
        by_status = dict(
            session.execute(select(Client.status, func.count()).group_by(Client.status)).all()
        )
    assert by_status.get("inactive") and by_status.get("discharged")

    at = sign_in("manager")
    assert at.multiselect(key="clients_status").value == ["active"]
    at.multiselect(key="clients_status").set_value(["inactive"])
    at.run()

    table = the_table(at, "Name")
    assert set(table["Status"]) == {"Inactive"}
    assert len(table) == min(50, by_status["inactive"])
    assert metrics(at)["Clients"] == f"{by_status['inactive']:,}"

    at.multiselect(key="clients_status").set_value(["inactive", "discharged"])
    at.run()
    table = the_table(at, "Name")
    assert set(table["Status"]) == {"Inactive", "Discharged"}
    assert metrics(at)["Clients"] == f"{by_status['inactive'] + by_status['discharged']:,}"


def test_selecting_a_row_opens_the_client(demo_app):
    at = sign_in("manager")
    table = the_table(at, "Name")
    number, name = int(table["Client #"][2]), table["Name"][2]

    at.session_state["clients_table"] = {"selection": {"rows": [2], "columns": []}}
    at.run()

    assert not at.exception
    assert at.query_params.get("client") == str(number)
    assert f"#{number}" in [t.value for t in at.text]
    assert name in [t.value for t in at.text]
    with db(demo_app) as engine, transaction(engine) as session:
        opened = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "client.open", AuditEntry.actor_username == "manager"
            )
        ).all()
    assert [e.entity_id for e in opened] == [str(client_row(demo_app, number).id)]


# --- adding a client (C3) ------------------------------------------------------------------


def test_add_client_with_bad_input_shows_field_messages_and_saves_nothing(demo_app):
    before = count_clients(demo_app)
    at = sign_in("manager")
    at.switch_page("pages/client_new.py").run()
    assert "Add client" in [t.value for t in at.title]

    at.text_input(key="nc_first_name").input("Dana")
    at.text_input(key="nc_last_name").input("   ")
    at.date_input(key="nc_dob").set_value(date.today() + timedelta(days=30))
    at.text_input(key="nc_email").input("x@")
    at.text_input(key="nc_phone").input("12345")
    at.button(key=NEW_CLIENT_SAVE).click().run()

    assert not at.exception
    assert errors_beside(at, "nc_last_name") == ["Enter the last name."]
    # The date picker refuses a date after today, so the page gets no date at all.
    assert at.date_input(key="nc_dob").value is None
    assert len(errors_beside(at, "nc_dob")) == 1
    assert "email" in errors_beside(at, "nc_email")[0]
    assert "phone" in errors_beside(at, "nc_phone")[0]
    assert errors_beside(at, "nc_first_name") == []
    assert "Add client" in [t.value for t in at.title]
    assert count_clients(demo_app) == before


def test_a_likely_duplicate_is_shown_with_its_score_and_can_be_saved_anyway(demo_app):
    existing = next(c for c in active_clients(demo_app) if c.dob is not None)
    before = count_clients(demo_app)
    at = sign_in("frontdesk")
    at.switch_page("pages/client_new.py").run()

    at.text_input(key="nc_first_name").input(existing.first_name)
    at.text_input(key="nc_last_name").input(existing.last_name)
    at.date_input(key="nc_dob").set_value(existing.dob)
    at.button(key=NEW_CLIENT_SAVE).click().run()

    assert not at.exception
    assert any("look like the same person" in w.value for w in at.warning)
    texts = [t.value for t in at.text]
    name = clients.display_name(existing.last_name, existing.first_name, existing.preferred_name)
    row = texts.index(f"#{existing.client_number}  {name}")
    assert texts[row + 1] == f"DOB {existing.dob:%m/%d/%Y}"
    assert texts[row + 2] == "Score 70"  # last name 25 + first name 15 + date of birth 30
    assert "same date of birth" in texts[row + 3]
    assert count_clients(demo_app) == before

    at.button(key="nc_save_anyway").click().run()

    assert not at.exception
    assert count_clients(demo_app) == before + 1
    new_number = int(at.query_params["client"])
    assert new_number != existing.client_number
    assert f"#{new_number}" in [t.value for t in at.text]
    created = client_row(demo_app, new_number)
    assert (created.first_name, created.last_name, created.dob) == (
        existing.first_name,
        existing.last_name,
        existing.dob,
    )
    with db(demo_app) as engine, transaction(engine) as session:
        detail = session.scalar(
            select(AuditEntry.detail).where(
                AuditEntry.action == "client.create", AuditEntry.client_id == created.id
            )
        )
    assert str(existing.client_number) in detail


# --- the client record (C5–C7) -------------------------------------------------------------


def test_personal_contact_and_insurance_tabs_show_the_database_values(demo_app):
    with db(demo_app) as engine, transaction(engine) as session:
        coverage = session.scalars(
            select(Coverage)
            .join(Client, Client.id == Coverage.client_id)
            .where(
                Coverage.rank == 1,
                Coverage.active.is_(True),
                Coverage.payer_id.is_not(None),
                Client.billing_type == "insurance",
                Client.phone_mobile != "",
                Client.city != "",
            )
            .order_by(Client.client_number)
            .limit(1)
        ).one()
        session.expunge(coverage)
        client = session.get(Client, coverage.client_id)
        session.expunge(client)
    cid = client.id
    at = open_client(sign_in("manager"), client.client_number)

    assert {t.label for t in at.tabs} >= {"Personal", "Contact", "Insurance", "History"}
    assert at.text_input(key=tab_key(at, "personal", cid, "first_name")).value == client.first_name
    assert at.text_input(key=tab_key(at, "personal", cid, "last_name")).value == client.last_name
    assert at.date_input(key=tab_key(at, "personal", cid, "dob")).value == client.dob
    assert at.selectbox(key=tab_key(at, "personal", cid, "status")).value == client.status
    assert at.selectbox(key=tab_key(at, "personal", cid, "clinician_id")).value == (
        client.clinician_id or 0
    )
    assert (
        at.text_input(key=tab_key(at, "contact", cid, "phone_mobile")).value == client.phone_mobile
    )
    assert at.text_input(key=tab_key(at, "contact", cid, "email")).value == client.email
    assert at.text_input(key=tab_key(at, "contact", cid, "city")).value == client.city
    assert at.text_input(key=tab_key(at, "contact", cid, "state")).value == client.state
    assert at.text_input(key=tab_key(at, "contact", cid, "zip_code")).value == client.zip_code
    assert at.radio(key=tab_key(at, "insurance", cid, "billing_type")).value == "insurance"
    assert at.selectbox(key=tab_key(at, "insurance", cid, "1_payer")).value == coverage.payer_id
    assert (
        at.text_input(key=tab_key(at, "insurance", cid, "1_member_id")).value == coverage.member_id
    )
    assert (
        at.text_input(key=tab_key(at, "insurance", cid, "1_plan_name")).value == coverage.plan_name
    )
    assert (
        at.text_input(key=tab_key(at, "insurance", cid, "1_group_number")).value
        == coverage.group_number
    )


def _a_client_with_a_mobile(url: str) -> Client:
    return next(c for c in active_clients(url) if c.phone_mobile)


def test_saving_a_changed_mobile_phone_persists_it(demo_app):
    client = _a_client_with_a_mobile(demo_app)
    at = open_client(sign_in("manager"), client.client_number)

    at.text_input(key=tab_key(at, "contact", client.id, "phone_mobile")).input("617-555-0101")
    at.button(key=contact_save(at, client.id)).click().run()

    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Saved." in [s.value for s in at.success]
    saved = client_row(demo_app, client.client_number)
    assert saved.phone_mobile == "(617) 555-0101"
    assert saved.contact_version == client.contact_version + 1
    assert "6175550101" in saved.phone_digits
    # The form starts again from what was saved, under new keys.
    fresh = at.text_input(key=tab_key(at, "contact", client.id, "phone_mobile")).value
    assert fresh == "(617) 555-0101"

    # ...and the list shows (and finds) the new number.
    at.switch_page("pages/clients.py").run()
    at.text_input(key="clients_query").input("617 555 0101")
    at.run()
    table = the_table(at, "Name")
    assert table["Client #"].tolist() == [client.client_number]
    assert table["Phone"].tolist() == ["(617) 555-0101"]


def test_a_stale_save_is_refused_and_keeps_the_other_users_change(demo_app):
    client = _a_client_with_a_mobile(demo_app)
    at = open_client(sign_in("manager"), client.client_number)
    phone_key = tab_key(at, "contact", client.id, "phone_mobile")
    at.text_input(key=phone_key).input("617-555-0101")

    # Meanwhile the administrator saves a different number for the same client.
    admin = actor_of(demo_app, "admin")
    with db(demo_app) as engine, transaction(engine) as session:
        record = cr.open_record(session, actor=admin, client_id=client.id, audit_open=False)
        cr.save_section(
            session,
            actor=admin,
            client_id=client.id,
            section="contact",
            changes={"phone_mobile": "508-555-0199"},
            expected_version=record.versions["contact"],
        )

    at.button(key=contact_save(at, client.id)).click().run()

    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("reload to see their change" in e and "Alex Admin" in e for e in errors), errors
    assert client_row(demo_app, client.client_number).phone_mobile == "(508) 555-0199"
    assert at.text_input(key=phone_key).value == "617-555-0101"  # the user's edit is kept

    assert "Not saved:\n  Mobile phone → 617-555-0101" in [t.value for t in at.text]
    at.button(key=record_forms.prefix(at, "client_contact", client.id) + "reload").click().run()
    assert not at.exception
    assert not [e for e in at.error if "reload" in e.value]
    # The reloaded form shows the stored number under new keys; the unsaved edit stays listed.
    assert at.text_input(key=tab_key(at, "contact", client.id, "phone_mobile")).value == (
        "(508) 555-0199"
    )
    assert tab_key(at, "contact", client.id, "phone_mobile") != phone_key
    assert "Not saved:\n  Mobile phone → 617-555-0101" in [t.value for t in at.text]


def test_history_tab_lists_the_audit_trail_newest_first(demo_app):
    client = _a_client_with_a_mobile(demo_app)
    at = open_client(sign_in("manager"), client.client_number)
    at.text_input(key=tab_key(at, "contact", client.id, "phone_mobile")).input("617-555-0101")
    at.button(key=contact_save(at, client.id)).click().run()
    assert not at.exception

    history = the_table(at, "Action")
    with db(demo_app) as engine, transaction(engine) as session:
        trail = session.execute(
            select(AuditEntry.action, AuditEntry.actor_username, AuditEntry.at)
            .where(AuditEntry.client_id == client.id)
            .order_by(AuditEntry.id.desc())
        ).all()
    assert history["Action"].tolist() == [t.action for t in trail]
    assert history["Who"].tolist() == [t.actor_username for t in trail]
    assert history["Action"].tolist()[:2] == ["client.update_contact", "client.open"]
    assert history["Who"][0] == "manager"
    assert "617" in history["After"][0]
    stamps = [t.at for t in trail]
    assert stamps == sorted(stamps, reverse=True)

    front_desk = open_client(sign_in("frontdesk"), client.client_number)
    assert "History" not in {t.label for t in front_desk.tabs}
    assert "Billing" not in {t.label for t in front_desk.tabs}


def test_a_name_with_html_is_shown_literally(demo_app):
    manager = actor_of(demo_app, "manager")
    with db(demo_app) as engine, transaction(engine) as session:
        created = clients.create_client(
            session, actor=manager, first_name="Mallory", last_name=XSS, dob=date(1990, 2, 3)
        )
    listed_as = f"{XSS}, Mallory"

    at = sign_in("manager")
    at.text_input(key="clients_query").input("mallory")
    at.run()

    table = the_table(at, "Name")
    assert table["Name"].tolist() == [listed_as]
    assert not [t for t in markdown_texts(at) if "onerror" in t]

    at.session_state["clients_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception
    assert at.query_params.get("client") == str(created.client_number)
    assert listed_as in [t.value for t in at.text]
    assert at.text_input(key=tab_key(at, "personal", created.client_id, "last_name")).value == XSS
    assert not [t for t in markdown_texts(at) if "onerror" in t or "<img" in t]
