"""A very long search on the Clients page (issue 12 item 10), on SQLite and PostgreSQL.

A paste of 50,000 characters or 500 words used to become one LIKE condition per word (more than
SQLite's expression depth) or a pattern longer than SQLite's limit. The server now searches for
the first words and characters only and says so; the search box keeps everything typed.
"""

from __future__ import annotations

import pytest

from lib import clients
from lib.db import read_session, transaction
from tests import test_pages_login as login_tests
from tests.factories import make_client, make_user
from tests.test_pages_login import sign_in

# The sign-in tests' fixtures: a fresh demo practice in demo mode, and a clean Streamlit.
demo_app = login_tests.demo_app
_fresh_streamlit = login_tests._fresh_streamlit

LONG_TEXT = "a" * 50_000
MANY_WORDS = " ".join(["jane"] * 500)


def search(engine, actor, query: str) -> clients.ClientListResult:
    with read_session(engine) as session:
        return clients.list_clients(session, actor=actor, query=query, statuses=())


@pytest.mark.parametrize(
    ("query", "note"),
    [
        (LONG_TEXT, f"Only the first {clients.SEARCH_MAX_CHARS} characters"),
        (MANY_WORDS, f"Only the first {clients.SEARCH_MAX_WORDS} words"),
        (",".join(["jane"] * 500), f"Only the first {clients.SEARCH_MAX_WORDS} words"),
    ],
)
def test_a_very_long_search_is_capped_with_a_note_instead_of_failing(engine, query, note):
    with transaction(engine) as session:
        manager = make_user(session, "manager")
        make_client(session, first_name="Jane", last_name="Doe", email="jane@example.com")
        make_client(session, first_name="Omar", last_name="Haddad")

    result = search(engine, manager, query)

    assert result.search_note.startswith(note)
    expected = 0 if query == LONG_TEXT else 1  # the first words are still "jane"
    assert result.count == len(result.rows) == expected


def test_an_ordinary_search_is_used_whole_and_says_nothing(engine):
    with transaction(engine) as session:
        manager = make_user(session, "manager")
        make_client(session, first_name="Jane", last_name="Doe")
    result = search(engine, manager, "  doe jane ")
    assert (result.count, result.search_note) == (1, "")
    capped = clients.cap_search("one two three four five six seven eight")
    assert (capped.text, capped.note) == ("one two three four five six seven eight", "")


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_the_clients_page_says_the_search_was_capped_and_keeps_the_text(demo_app):
    at = sign_in("manager")
    at.text_input(key="clients_query").input(MANY_WORDS)
    at.run()

    assert not at.exception
    assert [i.value for i in at.info] == [
        f"Only the first {clients.SEARCH_MAX_WORDS} words of the search are used."
    ]
    assert at.text_input(key="clients_query").value == MANY_WORDS
