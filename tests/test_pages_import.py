"""The Import clients page (issue 14) through app.py in AppTest, on SQLite and PostgreSQL:
upload, the guessed column matches, a preview that writes nothing, the import, and a second
click that imports nothing twice."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select

from lib import client_import
from lib.db import make_engine, transaction
from lib.models import AuditEntry, Client
from tests import test_pages_login as login_tests
from tests.test_pages_clients import actor_of, db
from tests.test_pages_login import sign_in

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app

FILE = (
    "\ufeffVorname;Surname;Geburtstag;Mobile;Therapist;Client Balance;DOS;Shoe size\n"
    "Zoë;O'Brien-Núñez;3/7/1985;617.555.0142;Daniel Reyes;120.50;10/2/2026;41\n"
    "Jean-Luc;D'Arcy;07.03.1986;(617) 555-0143;;;;44\n"
    ";;;;;;;\n"
).encode()


def client_count(url: str) -> int:
    with db(url) as engine, transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Client))


def test_upload_map_preview_import_and_a_second_click(demo_app):
    before = client_count(demo_app)
    at = sign_in("manager")
    at.switch_page("pages/import_clients.py").run()
    assert not at.exception, at.exception
    [uploader] = at.file_uploader
    uploader.set_value(("old-system.csv", FILE, "text/csv")).run()
    assert not at.exception, at.exception
    prefix = f"imp.{hashlib.sha256(FILE).hexdigest()[:16]}."
    assert at.selectbox(key=prefix + "map.last_name").value == "Surname"  # guessed
    assert at.selectbox(key=prefix + "map.first_name").value == "— not in the file —"
    at.selectbox(key=prefix + "map.first_name").set_value("Vorname")
    at.selectbox(key=prefix + "map.dob").set_value("Geburtstag").run()
    assert any("Shoe size" in c.value for c in at.caption)

    at.button(key=prefix + "check").click().run()
    assert not at.exception, at.exception
    assert client_count(demo_app) == before  # the preview wrote nothing
    [table] = at.dataframe
    assert list(table.value["Result"]) == ["new", "new"]
    assert any("2 would be imported" in i.value for i in at.info)

    # The first click commits, and its run is cut short by a second click.
    engine = make_engine(demo_app)
    client_import.run_import(
        engine,
        actor=actor_of(demo_app, "manager"),
        data=FILE,
        filename="old-system.csv",
        overrides={"first_name": "Vorname", "dob": "Geburtstag"},
    )
    engine.dispose()
    at.button(key=prefix + "commit").click().run()
    assert not at.exception, at.exception
    assert client_count(demo_app) == before + 2
    assert any("0 imported, 2 duplicates skipped, 0 invalid" in s.value for s in at.success)
    # The button is gone once the result is on screen.
    assert not [b for b in at.button if b.key == prefix + "commit"]
    with db(demo_app) as engine, transaction(engine) as session:
        imports = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "clients.import")
        ).all()
    assert [d.split(";")[0] for d in imports] == [
        "old-system.csv: 2 imported, 0 duplicates skipped, 0 invalid",
        "old-system.csv: 0 imported, 2 duplicates skipped, 0 invalid",
    ]


def test_a_bad_file_is_refused_in_words(demo_app):
    at = sign_in("admin")
    at.switch_page("pages/import_clients.py").run()
    [uploader] = at.file_uploader
    uploader.set_value(("clients.xlsx", b"not a workbook", "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert any("not an Excel workbook" in e.value for e in at.error)


def test_only_admins_and_managers_import(demo_app):
    at = sign_in("frontdesk")
    at.switch_page("pages/import_clients.py").run()
    assert not at.exception
    assert not at.file_uploader
