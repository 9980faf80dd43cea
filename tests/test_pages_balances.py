"""The Outstanding balances screen in Streamlit's AppTest (issue 11 items 2-4, spec B4).

Selections that stop applying are cleared where the user can see it (item 2), the charts keep
bucket order and rank names by amount (item 3), headline money is never cut short (item 3),
and exports carry the as-of date and bucket edges (item 4). Each test signs in on a fresh copy
of the demo practice (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta

from sqlalchemy import select
from streamlit.runtime.memory_media_file_storage import _calculate_file_id
from streamlit.testing.v1 import AppTest

from lib import aging, export, postings
from lib.db import transaction
from lib.models import Client
from lib.money import format_cents, format_compact
from lib.timeutil import practice_today
from tests import test_pages_login as login_tests
from tests.test_pages_billing import BUCKETS, breakdown, open_balances
from tests.test_pages_clients import actor_of, db, metrics, the_table
from tests.test_pages_login import sign_in

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app


def select_row(at: AppTest, table: str, row: int | None) -> AppTest:
    at.session_state[f"ar_{table}_table"] = {
        "selection": {"rows": [] if row is None else [row], "columns": []}
    }
    return at.run()


def selected(at: AppTest, table: str) -> list[int]:
    return list(at.session_state[f"ar_{table}_table"]["selection"]["rows"])


def subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


def infos(at: AppTest) -> list[str]:
    return [i.value for i in at.info]


def lib_report(url: str, **kwargs) -> aging.AgingReport:
    with db(url) as engine, transaction(engine) as session:
        return aging.report(session, actor=actor_of(url, "manager"), **kwargs)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def chart_by(at: AppTest, channel: str, field: str) -> dict:
    found = [
        spec
        for spec in charts(at)
        if spec.get("encoding", {}).get(channel, {}).get("field") == field
    ]
    assert len(found) == 1, [s.get("encoding") for s in charts(at)]
    return found[0]


# --- item 2: selections ----------------------------------------------------------------------


def test_changing_the_edges_after_selecting_120_plus_clears_the_selection(demo_app):
    at = open_balances(sign_in("manager"))
    everyone = len(the_table(at, "Owed"))
    select_row(at, "bucket", 4)
    assert not at.exception
    assert "Clients owing 120+ days" in subheaders(at)

    at.text_input(key="ar_edges").input("30, 60").run()

    assert not at.exception, at.exception
    assert the_table(at, "Bucket (days)")["Bucket (days)"].tolist() == ["0–30", "31–60", "60+"]
    assert selected(at, "bucket") == []
    assert any("“120+”" in text and "cleared" in text for text in infos(at)), infos(at)
    assert "Clients with a balance" in subheaders(at)
    assert len(the_table(at, "Owed")) == everyone
    at.run()  # the notice is shown once
    assert not any("cleared" in text for text in infos(at))


def test_a_selection_that_still_applies_follows_its_row_and_can_be_cleared(demo_app):
    at = open_balances(sign_in("manager"))
    select_row(at, "bucket", 1)
    assert "Clients owing 31–60 days" in subheaders(at)

    at.text_input(key="ar_edges").input("30, 60, 100").run()  # 31–60 is still a bucket
    assert not at.exception
    assert selected(at, "bucket") == [1]
    assert "Clients owing 31–60 days" in subheaders(at)
    assert any("31–60 days" in c.value for c in at.caption)  # "Selected: 31–60 days"

    at.button(key="ar_clear").click().run()
    assert not at.exception
    assert selected(at, "bucket") == []
    assert "Clients with a balance" in subheaders(at)
    assert not [b for b in at.button if b.key == "ar_clear"]


def test_a_clinician_row_is_followed_when_the_order_changes(demo_app):
    report = lib_report(demo_app)
    last = len(report.by_clinician) - 1
    chosen = report.by_clinician[last]
    at = open_balances(sign_in("manager"))
    select_row(at, "clinician", last)
    assert any(f"clinician {chosen.label}" in s for s in subheaders(at))

    # Narrowed to that clinician, the breakdown has one row: the selection moves to it.
    at.selectbox(key="ar_clinician").set_value(chosen.key).run()
    assert not at.exception
    assert selected(at, "clinician") == [0]
    assert any(f"clinician {chosen.label}" in s for s in subheaders(at))


def test_no_sequence_of_selections_and_filters_fails(demo_app):
    """Random clicks and filter changes, including a position the table no longer has (what
    the browser sends when it still shows an older, longer table)."""
    rng = random.Random(11)
    at = open_balances(sign_in("manager"))
    clinicians = at.selectbox(key="ar_clinician").options
    payers = at.selectbox(key="ar_payer").options
    today = practice_today()
    for step in range(30):
        action = rng.choice(("row", "row", "edges", "clinician", "payer", "as_of", "clear"))
        if action == "row":
            select_row(at, rng.choice(("bucket", "clinician", "payer")), rng.randint(0, 8))
        elif action == "edges":
            text = rng.choice(("30, 60, 90, 120", "30, 60", "15, 45", "7", "60, 30", "90"))
            at.text_input(key="ar_edges").input(text).run()
        elif action == "clinician":
            at.selectbox(key="ar_clinician").select_index(rng.randrange(len(clinicians))).run()
        elif action == "payer":
            at.selectbox(key="ar_payer").select_index(rng.randrange(len(payers))).run()
        elif action == "as_of":
            at.date_input(key="ar_as_of").set_value(today - timedelta(days=rng.choice((0, 45))))
            at.run()
        elif [b for b in at.button if b.key == "ar_clear"]:
            at.button(key="ar_clear").click().run()
        assert not at.exception, (step, action, at.exception)
        errors = [e.value for e in at.error]
        assert all("edge" in e for e in errors), (step, action, errors)
        if not errors:  # the client list adds up to what the selection says it is
            for table in ("bucket", "clinician", "payer"):
                rows = selected(at, table)
                assert len(rows) <= 1
                frame = breakdown(at, {"bucket": "Bucket (days)"}.get(table, table.title()))
                assert all(r < len(frame) for r in rows), (step, table, rows, len(frame))


# --- item 3: charts and headline figures -------------------------------------------------------


def test_the_aging_chart_follows_bucket_order(demo_app):
    at = open_balances(sign_in("manager"))
    spec = chart_by(at, "x", "Bucket (days)")
    assert spec["encoding"]["x"]["sort"] == BUCKETS
    assert spec["encoding"]["x"]["axis"]["labelAngle"] == 0

    at.text_input(key="ar_edges").input("15, 45, 100").run()
    spec = chart_by(at, "x", "Bucket (days)")
    assert spec["encoding"]["x"]["sort"] == ["0–15", "16–45", "46–100", "100+"]


def test_clinician_and_payer_bars_are_ranked_by_amount_with_readable_labels(demo_app):
    report = lib_report(demo_app)
    at = open_balances(sign_in("manager"))
    for field, rows in (("Clinician", report.by_clinician), ("Payer", report.by_payer)):
        spec = chart_by(at, "y", field)  # horizontal bars: names on the vertical axis
        ranked = sorted(rows, key=lambda r: -r.total_cents)
        assert spec["encoding"]["y"]["sort"] == [r.label for r in ranked]
        assert [r.total_cents for r in ranked] == sorted(
            (r.total_cents for r in rows), reverse=True
        )
        assert spec["encoding"]["y"]["axis"]["labelLimit"] >= 300  # long payer names fit
        assert spec["encoding"]["x"]["field"] == "Total"
        assert spec["height"]["step"] >= 24  # a band per name, however many there are


def test_headline_money_is_never_cut_short_at_practice_size(demo_app):
    """Over $13 million owed: each headline figure is short enough for any column ($13.62M),
    three to a row, with the exact amount written under it."""
    with db(demo_app) as engine, transaction(engine) as session:
        client_id = session.scalars(select(Client.id).order_by(Client.id).limit(1)).one()
        for n in range(136):
            postings.post_charge(
                session,
                actor=None,
                client_id=client_id,
                amount_cents=99_999_99,
                responsibility="client",
                service_date=practice_today() - timedelta(days=n % 200),
                idempotency_key=uuid.uuid4().hex,
            )
    report = lib_report(demo_app)
    assert report.total_ar_cents > 13_500_000_00

    at = open_balances(sign_in("manager"))
    shown = metrics(at)
    figures = {
        "Total A/R": report.total_ar_cents,
        "Client due": report.client_due_cents,
        "Insurance pending": report.insurance_pending_cents,
        "Unapplied credit": report.unapplied_credit_cents,
        "Insurance credit": report.insurance_credit_cents,
        "Net (after credit)": report.net_cents,
    }
    for label, cents in figures.items():
        assert len(shown[label]) <= 9, (label, shown[label])
        assert shown[label] == format_compact(cents)
    assert shown["Total A/R"] == f"${report.total_ar_cents / 100_000_000:.2f}M"
    captions = [c.value for c in at.caption]
    assert format_cents(report.total_ar_cents) in captions  # the exact figure, in full
    assert format_cents(report.net_cents) in captions
    rows = _blocks_with_metrics(at)
    assert rows and all(1 <= count <= 3 for count in rows), rows


def _blocks_with_metrics(at: AppTest) -> list[int]:
    """For every horizontal block that holds metrics: how many columns it has."""
    counts = []

    def walk(node) -> None:
        children = list(getattr(node, "children", {}).values())
        if type(node).__name__ == "Block" and children:
            kinds = [type(c).__name__ for c in children]
            if all(k == "Column" for k in kinds) and any(
                any(type(x).__name__ == "Metric" for x in col.children.values()) for col in children
            ):
                counts.append(len(children))
        for child in children:
            walk(child)

    walk(at._tree)
    return counts


# --- item 4: exports ---------------------------------------------------------------------------


def served_id(at: AppTest, key: str) -> str:
    """The id under which the page handed a download to the browser: a hash of the file's
    bytes, its type and its file name (Streamlit's media storage)."""
    button = next(b for b in at.download_button if b.key == key)
    return button.proto.url.rsplit("/", 1)[-1].split(".")[0]


def test_the_csv_export_is_the_screen_named_for_its_as_of_date_and_edges(demo_app):
    at = open_balances(sign_in("manager"))
    day = practice_today() - timedelta(days=31)
    at.date_input(key="ar_as_of").set_value(day)
    at.text_input(key="ar_edges").input("15, 45").run()
    assert not at.exception
    stem = f"as-of-{day.isoformat()}_edges-15-45"
    on_screen = the_table(at, "Bucket (days)")
    assert on_screen["Bucket (days)"].tolist() == ["0–15", "16–45", "45+"]
    data = export.to_csv(on_screen, money_columns=["Client", "Insurance", "Total"])
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0] == "Bucket (days),Client,Insurance,Total"
    for line, (_, row) in zip(lines[1:], on_screen.iterrows(), strict=True):
        assert line.split(",") == [
            row["Bucket (days)"],
            *(f"{row[c]:.2f}" for c in ("Client", "Insurance", "Total")),
        ]
    expected = _calculate_file_id(data, "text/csv", f"aging-buckets_{stem}.csv")
    assert served_id(at, "export_csv_aging-buckets") == expected

    clients = the_table(at, "Owed")
    data = export.to_csv(clients, money_columns=["Owed"])
    assert served_id(at, "export_csv_aging-clients") == _calculate_file_id(
        data, "text/csv", f"aging-clients_{stem}.csv"
    )
