"""Documents on screen through app.py in AppTest (spec D1–D3): the client's Documents tab and
its send dialog, the practice-wide Document log page, and the admin's Forms library.

Every test signs in through the real login form on a fresh copy of the demo practice (SQLite and
PostgreSQL). Mail goes to the outbox folder of a temporary data directory (no SMTP configured),
which is what `make run` does too. A dataframe row click is an assignment of the table's
selection state; a dialog is opened by its session flag, as the page does.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from lib import mail, worker
from lib.db import make_engine, transaction
from lib.models import AuditEntry, Client, DocumentLogEntry, Form, FormAttachment, User
from tests import test_pages_login as login_tests
from tests.test_forms import exe_bytes, pdf_bytes
from tests.test_pages_login import NO_ACCESS, sidebar_links, sign_in

# The sign-in tests' fixtures: a fresh Streamlit per test, app.py on a fresh demo practice.
_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app

LOCAL_TIME = re.compile(r"^[A-Z][a-z]{2} \d{2}, \d{4} \d{2}:\d{2} [AP]M E[SD]T$")
MARKUP = "<img src=x onerror=alert(1)> **bold** [link](http://x)"


@pytest.fixture
def app_data(demo_app, tmp_path, monkeypatch) -> Path:
    """The app's data folder (outbox, uploaded forms) for this test only."""
    monkeypatch.setenv("CLIENTDESK_DATA_DIR", str(tmp_path))
    return tmp_path


@contextmanager
def db(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def emailable_client(url: str, clinician_username: str | None = None) -> Client:
    """An active demo client with an email address and email consent."""
    with db(url) as engine, transaction(engine) as session:
        query = select(Client).where(
            Client.status == "active", Client.email != "", Client.email_ok.is_(True)
        )
        if clinician_username:
            clinician_id = session.scalar(
                select(User.clinician_id).where(User.username == clinician_username)
            )
            query = query.where(Client.clinician_id == clinician_id)
        client = session.scalars(query.order_by(Client.client_number).limit(1)).one()
        session.expunge(client)
        return client


def form_ids(url: str) -> dict[str, int]:
    with db(url) as engine, transaction(engine) as session:
        return {f.name: f.id for f in session.scalars(select(Form))}


def user_id(url: str, username: str) -> int:
    with db(url) as engine, transaction(engine) as session:
        return session.scalar(select(User.id).where(User.username == username))


def add_log_rows(url: str, rows: list[dict]) -> list[int]:
    with db(url) as engine, transaction(engine) as session:
        entries = [
            DocumentLogEntry(
                **{
                    "kind": "form",
                    "channel": "email",
                    "attachment_names": "",
                    "error": "",
                    "sender_user_id": None,
                    **row,
                }
            )
            for row in rows
        ]
        session.add_all(entries)
        session.flush()
        return [e.id for e in entries]


def log_entries(url: str, *where) -> list[DocumentLogEntry]:
    with db(url) as engine, transaction(engine) as session:
        rows = session.scalars(
            select(DocumentLogEntry).where(*where).order_by(DocumentLogEntry.id.desc())
        ).all()
        for r in rows:
            session.expunge(r)
        return list(rows)


def open_client(at: AppTest, number: int) -> AppTest:
    at.switch_page("pages/client.py")
    at.query_params["client"] = str(number)
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, path: str) -> AppTest:
    at.switch_page(path)
    at.run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, column: str):
    frames = [df.value for df in at.dataframe if column in df.value.columns]
    assert len(frames) == 1, f"expected one table with a {column!r} column, found {len(frames)}"
    return frames[0]


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def _nodes(block) -> Iterator:
    yield block
    for child in getattr(block, "children", {}).values():
        yield from _nodes(child)


def markdown_texts(at: AppTest) -> list[str]:
    """Everything Streamlit renders as markdown: bodies of markdown, alerts, toasts, labels."""
    found = []
    for node in _nodes(at.main.root):
        proto = getattr(node, "proto", None)
        kind = proto.DESCRIPTOR.name if proto is not None else ""
        if kind in {"Markdown", "Alert", "Heading", "Toast"}:
            found.append(proto.body)
        label = getattr(node, "label", None)
        if isinstance(label, str):
            found.append(label)
    return found


def error_after(at: AppTest, label: str) -> list[str]:
    """Error messages shown right under the widget with this label (in its own block)."""
    for node in _nodes(at.main.root):
        children = list(getattr(node, "children", {}).values())
        for i, child in enumerate(children):
            if getattr(child, "label", None) == label and not hasattr(child, "children"):
                found = []
                for sibling in children[i + 1 :]:
                    if type(sibling).__name__ == "Error":
                        found.append(sibling.value)
                    elif type(sibling).__name__ != "UnknownElement":  # an empty slot
                        break
                return found
    raise AssertionError(f"no widget labelled {label!r}")


def deliver(url: str, app_data: Path) -> worker.Delivery:
    """The worker's turn: send what the outbox holds (to .eml files in the app's data dir)."""
    with db(url) as engine:
        return worker.deliver_due(engine, mail_settings=mail.mail_settings(app_data))


def audit_count(url: str, action: str, entity: str | None = None) -> int:
    with db(url) as engine, transaction(engine) as session:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        if entity:
            query = query.where(AuditEntry.entity == entity)
        return session.scalar(query)


# --- the Documents tab and the send dialog -------------------------------------------------


def test_a_manager_sends_a_form_from_the_header_and_sees_it_in_the_documents_tab(
    demo_app, app_data
):
    client = emailable_client(demo_app)
    consent = form_ids(demo_app)["Consent for treatment"]
    at = open_client(sign_in("manager"), client.client_number)

    at.button(key="head_send_forms").click().run()
    choice = at.multiselect(key=f"send_forms_choice_{client.id}_0")
    choice.set_value([consent]).run()
    assert not at.exception

    shown = texts(at)
    assert f"To: {client.email}" in shown
    assert "Subject: A consent form from Riverbend Counseling Group" in shown
    body = next(t for t in shown if t.startswith("Hello "))
    assert body.startswith(f"Hello {client.first_name},\n\nPlease review and sign")
    assert client.last_name not in body
    assert (
        log_entries(
            demo_app,
            DocumentLogEntry.client_id == client.id,
            DocumentLogEntry.sender_user_id.is_not(None),
        )
        == []
    )

    at.button(key="send_forms_submit").click().run()
    assert not at.exception

    assert "Forms queued: they are emailed within a minute." in [s.value for s in at.success]
    assert any(t.startswith(f"To {client.email}, queued at ") for t in texts(at))  # literally
    assert [b for b in at.button if b.key == "send_forms_submit"] == []  # the dialog closed
    assert table(at, "Forms").iloc[0]["Status"] == "Queued"
    assert not (app_data / "outbox").exists()

    assert deliver(demo_app, app_data) == worker.Delivery(sent=1)
    at.run()
    [entry, *_] = log_entries(demo_app, DocumentLogEntry.client_id == client.id)
    assert (entry.status, entry.form_names, entry.recipient) == (
        "sent",
        "Consent for treatment",
        client.email,
    )
    assert entry.sender_user_id == user_id(demo_app, "manager")
    log = table(at, "Forms")
    first = log.iloc[0]
    assert (first["#"], first["What"], first["Forms"], first["Status"], first["Sender"]) == (
        entry.id,
        "Form",
        "Consent for treatment",
        "Sent",
        "Morgan Manager",
    )
    assert LOCAL_TIME.match(first["Sent"]), first["Sent"]
    [eml] = list((app_data / "outbox").glob("*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"] == client.email
    assert message["Subject"] == "A consent form from Riverbend Counseling Group"


def test_a_client_without_email_consent_cannot_be_sent_forms(demo_app, app_data):
    with db(demo_app) as engine, transaction(engine) as session:
        client = session.scalars(
            select(Client).where(Client.email_ok.is_(False)).order_by(Client.id).limit(1)
        ).one()
        number, client_id = client.client_number, client.id
    at = open_client(sign_in("frontdesk"), number)

    at.button(key="head_send_forms").click().run()

    assert not at.exception
    assert any("Contact tab" in e.value for e in at.error)
    assert [m for m in at.multiselect if m.key == f"send_forms_choice_{client_id}_0"] == []
    assert [b for b in at.button if b.key == "send_forms_submit"] == []


def test_the_documents_tab_filters_shows_text_literally_and_resends_a_failed_send(
    demo_app, app_data
):
    client = emailable_client(demo_app)
    now = datetime.now(UTC)
    failed_id, _ = add_log_rows(
        demo_app,
        [
            {
                "client_id": client.id,
                "sent_at": now - timedelta(days=2),
                "recipient": client.email,
                "form_names": "Release of information",
                "status": "failed",
                "error": MARKUP,
            },
            {
                "client_id": client.id,
                "sent_at": now - timedelta(days=1),
                "recipient": client.email,
                "form_names": "Consent for treatment",
                "status": "sent",
            },
        ],
    )
    at = open_client(sign_in("frontdesk"), client.client_number)
    log = table(at, "Forms")
    assert list(log["#"][:2]) == [failed_id + 1, failed_id]  # newest first
    assert MARKUP in list(log["Error"])
    assert not [t for t in markdown_texts(at) if "onerror" in t or "**bold**" in t]

    at.multiselect(key="client_docs_status").set_value(["failed"]).run()
    log = table(at, "Forms")
    assert list(log["Status"]) == ["Failed"] * len(log)
    assert failed_id in list(log["#"])
    at.multiselect(key="client_docs_status").set_value([]).run()
    at.selectbox(key="client_docs_form").set_value("Consent for treatment").run()
    assert set(table(at, "Forms")["Forms"]) == {"Consent for treatment"}
    at.selectbox(key="client_docs_form").set_value("").run()

    row = list(table(at, "Forms")["#"]).index(failed_id)
    at.session_state["client_docs_table"] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    at.button(key="client_docs_resend").click().run()
    release = form_ids(demo_app)["Release of information"]
    assert at.multiselect(key=f"send_forms_choice_{client.id}_{failed_id}").value == [release]
    at.button(key="send_forms_submit").click().run()

    assert not at.exception
    deliver(demo_app, app_data)
    at.run()
    [resent, *_] = log_entries(demo_app, DocumentLogEntry.client_id == client.id)
    assert (resent.status, resent.resend_of_id) == ("sent", failed_id)
    assert resent.form_names == "Release of information"
    assert table(at, "Forms").iloc[0]["Resend of"] == f"#{failed_id}"


# --- the practice-wide Document log --------------------------------------------------------


def test_the_document_log_filters_by_status_client_sender_and_dates_and_exports(
    demo_app, app_data, downloads
):
    client = emailable_client(demo_app)
    desk = user_id(demo_app, "frontdesk")
    long_ago = datetime(2024, 1, 15, 17, 0, tzinfo=UTC)
    add_log_rows(
        demo_app,
        [
            {
                "client_id": client.id,
                "sent_at": long_ago,
                "recipient": client.email,
                "form_names": "Consent for treatment",
                "status": "failed",
                "error": "SMTP 550",
                "sender_user_id": desk,
            }
        ],
    )
    everything = log_entries(demo_app)
    at = open_page(sign_in("manager"), "pages/document_log.py")

    assert "Document log" in [t.value for t in at.title]
    assert {m.label: m.value for m in at.metric}["Documents"] == f"{len(everything):,}"
    assert len(table(at, "Client")) == min(len(everything), 100)

    at.multiselect(key="doclog_status").set_value(["failed"]).run()
    failed = [e for e in everything if e.status == "failed"]
    log = table(at, "Client")
    assert set(log["Status"]) == {"Failed"} and len(log) == len(failed)

    at.text_input(key="doclog_client").input(str(client.client_number)).run()
    log = table(at, "Client")
    assert set(log["Client #"]) == {client.client_number}

    at.text_input(key="doclog_client").input("").run()
    at.selectbox(key="doclog_sender").set_value(desk).run()
    at.date_input(key="doclog_from").set_value(datetime(2024, 1, 15).date()).run()
    at.date_input(key="doclog_to").set_value(datetime(2024, 1, 15).date()).run()
    log = table(at, "Client")
    assert len(log) == 1
    assert log.iloc[0]["Sent"] == "Jan 15, 2024 12:00 PM EST"
    assert (log.iloc[0]["Sender"], log.iloc[0]["Error"]) == ("Frankie Desk", "SMTP 550")

    exports = audit_count(demo_app, "export", "document_log")
    csv = downloads.click(at, "export_csv_document-log").decode("utf-8-sig")
    assert "SMTP 550" in csv and len(csv.strip().splitlines()) == 2  # the header and one row
    assert audit_count(demo_app, "export", "document_log") == exports + 1


def test_a_clinician_sees_only_their_own_clients_in_the_document_log(demo_app, app_data):
    own = emailable_client(demo_app, "okafor")
    with db(demo_app) as engine, transaction(engine) as session:
        clinician_id = session.scalar(select(User.clinician_id).where(User.username == "okafor"))
        own_numbers = set(
            session.scalars(select(Client.client_number).where(Client.clinician_id == clinician_id))
        )
        others = session.scalar(
            select(func.count())
            .select_from(DocumentLogEntry)
            .join(Client, Client.id == DocumentLogEntry.client_id)
            .where(Client.clinician_id != clinician_id)
        )
    add_log_rows(
        demo_app,
        [
            {
                "client_id": own.id,
                "sent_at": datetime.now(UTC),
                "recipient": own.email,
                "form_names": "Consent for treatment",
                "status": "sent",
            }
        ],
    )
    assert others > 0  # the demo practice has documents of other clinicians' clients

    at = open_page(sign_in("okafor"), "pages/document_log.py")

    shown = set(table(at, "Client")["Client #"])
    assert own.client_number in shown
    assert shown <= own_numbers
    assert not [b for b in at.download_button if b.key == "export_csv_document-log"]


# --- the Forms library ---------------------------------------------------------------------


def test_the_forms_library_is_for_admins_only(demo_app, app_data):
    manager = sign_in("manager")
    assert "Document log" in sidebar_links(manager)
    assert "Forms library" not in sidebar_links(manager)
    open_page(manager, "pages/forms.py")
    assert NO_ACCESS in [e.value for e in manager.error]
    assert "Forms library" not in [t.value for t in manager.title]

    admin = sign_in("admin")
    assert {"Document log", "Forms library"} <= sidebar_links(admin)


def test_an_admin_adds_a_form_phi_is_refused_and_only_real_files_are_attached(demo_app, app_data):
    at = open_page(sign_in("admin"), "pages/forms.py")
    assert "Forms library" in [t.value for t in at.title]
    forms_before = len(form_ids(demo_app))

    [name] = [t for t in at.text_input if t.label == "Form name"]
    [subject] = [t for t in at.text_input if t.label == "Email subject"]
    [body] = [t for t in at.text_area if t.label == "Email body"]
    name.input("Telehealth consent")
    subject.input("Telehealth consent for {first_name} {last_name}")
    body.input("Hello {first_name},\n\nPlease sign the attached telehealth consent.")
    [save] = [b for b in at.button if b.label == "Save form"]
    save.click().run()

    assert not at.exception
    assert any("No PHI in email" in m for m in error_after(at, "Email subject"))
    assert error_after(at, "Email body") == []
    assert len(form_ids(demo_app)) == forms_before

    [subject] = [t for t in at.text_input if t.label == "Email subject"]
    subject.input("Telehealth consent from Riverbend")
    [save] = [b for b in at.button if b.label == "Save form"]
    save.click().run()
    assert not at.exception
    assert "Form added." in [s.value for s in at.success]
    new_id = form_ids(demo_app)["Telehealth consent"]
    assert at.selectbox(key="forms_choice").value == new_id

    [uploader] = at.file_uploader
    uploader.set_value(("consent.pdf", exe_bytes(), "application/pdf")).run()
    at.button(key="forms_attach").click().run()
    assert not at.exception
    assert any("Not attached" in e.value for e in at.error)
    assert any("not a PDF, Word (DOCX), PNG or JPEG" in t for t in texts(at))
    with db(demo_app) as engine, transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(FormAttachment)) == 0
    assert not (app_data / "forms").exists() or not list((app_data / "forms").iterdir())

    content = pdf_bytes("telehealth")
    [uploader] = at.file_uploader
    uploader.set_value(("../../Telehealth consent.pdf", content, "application/pdf")).run()
    at.button(key="forms_attach").click().run()
    assert not at.exception
    assert "Attached." in [s.value for s in at.success]
    assert any(t.startswith("Telehealth consent.pdf · application/pdf") for t in texts(at))
    [stored] = list((app_data / "forms").iterdir())
    assert stored.read_bytes() == content
    with db(demo_app) as engine, transaction(engine) as session:
        [row] = session.scalars(select(FormAttachment)).all()
    assert (row.form_id, row.original_name, row.stored_name) == (
        new_id,
        "Telehealth consent.pdf",
        stored.name,
    )


def test_the_document_log_exports_this_page_or_all_matching_rows(demo_app, app_data, downloads):
    """Issue 11 item 7: the log's export offers the page on screen or every matching row, in
    the order on screen."""
    client = emailable_client(demo_app)
    base = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
    add_log_rows(
        demo_app,
        [
            {
                "client_id": client.id,
                "sent_at": base + timedelta(minutes=n),
                "recipient": client.email,
                "form_names": f"Form {n}",
                "status": "sent",
            }
            for n in range(101)
        ],
    )
    total = len(log_entries(demo_app))
    at = open_page(sign_in("manager"), "pages/document_log.py")
    shown = list(table(at, "Client")["#"])
    assert len(shown) == 100 < total

    def exported() -> list[int]:
        text = downloads.click(at, "export_csv_document-log").decode("utf-8-sig")
        return [int(line.split(",")[0]) for line in text.strip().splitlines()[1:]]

    assert exported() == shown
    scope = at.radio(key="export_scope_document-log")
    assert scope.options == ["This page (100 rows)", f"All {total:,} matching documents"]
    scope.set_value("all").run()
    everything = exported()
    assert len(everything) == total and everything[:100] == shown
