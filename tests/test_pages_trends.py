"""The A/R trends screen in Streamlit's AppTest (issue 15, "A/R over time").

Managers and billers see month-end A/R stacked by aging bucket over 12 or 24 months, client
vs insurance, the months' charges, payments and adjustments, and the KPIs with their
definitions; front desk is refused. The table on screen is the lib's month-end figures.
"""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from lib import ar_trend
from lib.db import transaction
from tests import test_pages_login as login_tests
from tests.test_pages_billing import client_with_balance, last_entry, ledger_count
from tests.test_pages_clients import actor_of, db, errors_beside, open_client
from tests.test_pages_login import sign_in

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app


def open_trends(at: AppTest) -> AppTest:
    at.switch_page("pages/trends.py").run()
    assert not at.exception, at.exception
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def month_table(at: AppTest):
    frames = [df.value for df in at.dataframe if "Net A/R" in df.value.columns]
    assert len(frames) == 1
    return frames[0]


@pytest.mark.parametrize("username", ["manager", "biller"])
def test_managers_and_billers_see_the_trend_the_lib_computes(demo_app, username):
    at = open_trends(sign_in(username))
    assert not at.error, [e.value for e in at.error]
    table = month_table(at)
    assert len(table) == 12
    with db(demo_app) as engine, transaction(engine) as session:
        months = ar_trend.trend(session, actor=actor_of(demo_app, username), months=12)
    assert table["Net A/R"].tolist() == [m["net_ar_cents"] / 100 for m in months]
    assert table["Charges"].tolist() == [m["charges_cents"] / 100 for m in months]
    bucket_charts = [
        c for c in charts(at) if c["encoding"].get("order", {}).get("field") == "order"
    ]
    assert len(bucket_charts) == 1
    assert bucket_charts[0]["encoding"]["color"]["sort"] == [
        "0–30",
        "31–60",
        "61–90",
        "91–120",
        "120+",
    ]
    helps = {m.label: m.help for m in at.metric}
    for label, definition in ar_trend.KPI_DEFINITIONS.values():
        if label != "Average days to payment":
            assert helps[label] == definition

    at.segmented_control(key="trend_months").set_value(24).run()
    assert not at.exception
    assert len(month_table(at)) == 24
    at.button(key="trend_days_to_payment").click().run()
    assert not at.exception
    paid = [df.value for df in at.dataframe if "Average days to payment" in df.value.columns]
    assert len(paid) == 1 and "Client" in paid[0]["Payer"].tolist()


def test_front_desk_is_refused(demo_app):
    at = sign_in("frontdesk")
    at.switch_page("pages/trends.py").run()
    assert not at.exception
    assert any("does not give access" in e.value for e in at.error)
    assert not at.dataframe


def test_an_adjustment_asks_for_its_kind_and_records_it(demo_app):
    client = client_with_balance(demo_app)
    at = open_client(sign_in("biller"), client.client_number)
    cid = client.id
    before = ledger_count(demo_app)
    at.text_input(key=f"corr_amt_{cid}").input("5.00")
    at.text_input(key=f"corr_memo_{cid}").input("Allowed amount per EOB")
    at.button(key=f"corr_go_{cid}").click().run()
    assert not at.exception
    assert errors_beside(at, f"corr_adj_reason_{cid}") == ["Choose the kind of adjustment."]
    assert ledger_count(demo_app) == before

    at.radio(key=f"corr_adj_reason_{cid}").set_value("contractual")
    at.button(key=f"corr_go_{cid}").click().run()
    assert not at.exception
    entry = last_entry(demo_app)
    assert (entry.kind, entry.adjustment_reason, entry.amount_cents) == (
        "adjustment",
        "contractual",
        500,
    )
    assert ledger_count(demo_app) == before + 1
