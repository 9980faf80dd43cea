"""A/R over time and the practice's KPIs (issue 15, "A/R over time"; spec B4's as-of rule).

Every month-end figure of the trend must equal the ledger replayed to that month-end
(``lib.ledger_as_of``, the oracle), for the whole practice and for each clinician and payer,
on the history of test_aging_as_of (reversals, refunds, a late charge for an old date of
service, client and insurance credit, a payer typed by name, an entry at 23:30 on a month's
last evening) plus adjustments with reasons. The projection kept posting by posting must equal
one rebuilt from the whole ledger. The KPIs are checked on a small hand-made ledger whose
answers are worked out in the comments.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from lib import aging, ar_history, ar_trend, cli, postings
from lib.db import transaction
from lib.ledger import PayerRef
from lib.ledger_as_of import ledger_as_of
from lib.models import LedgerEntry, Payer
from lib.policy import PermissionDenied
from lib.validation import ValidationError
from tests.factories import make_client, make_clinician, make_user
from tests.test_aging_as_of import TRUST, at, entries, expected_as_of, history, post

__all__ = ["history"]  # the fixture, shared with test_aging_as_of
EDGES = (30, 60, 90, 120)
TODAY = date(2026, 5, 20)


@pytest.fixture
def trend_history(engine, history):
    """test_aging_as_of's four months plus May: adjustments with each reason."""
    m = history.manager
    for cents, resp, reason in ((700, "insurance", "contractual"), (300, "client", "write_off")):
        client = history.ann if resp == "insurance" else history.ben
        post(
            engine,
            date(2026, 5, 4),
            postings.post_adjustment,
            actor=m,
            client_id=client,
            amount_cents=cents,
            responsibility=resp,
            memo="May adjustment",
            reason=reason,
        )
    return history


def oracle(session, day: date, chosen: aging.Slice) -> dict:
    """The month-end figures by replaying the ledger to ``day`` (lib.ledger_as_of)."""
    replayed = ledger_as_of(session, day=day)
    keys = [b.key for b in aging.buckets(EDGES)]
    found = {
        "client_cents": 0,
        "insurance_cents": 0,
        "client_buckets": dict.fromkeys(keys, 0),
        "insurance_buckets": dict.fromkeys(keys, 0),
    }
    for o in replayed.owed:
        if chosen.has(o.responsibility, o.clinician_id, o.payer):
            bucket = aging.bucket_for(day - o.service_date, aging.buckets(EDGES))
            found[f"{o.responsibility}_cents"] += o.cents
            found[f"{o.responsibility}_buckets"][bucket] += o.cents
    client_credit = sum(replayed.client_credit.values())
    payer_credit = sum(c for _, ref, c in replayed.payer_credit if chosen.payer in (None, ref))
    if chosen.clinician_id is not None:
        client_credit = payer_credit = 0
    elif chosen.payer is not None:
        client_credit = 0
    found["client_credit_cents"] = client_credit
    found["insurance_credit_cents"] = payer_credit
    found["net_ar_cents"] = (
        found["client_cents"] + found["insurance_cents"] - client_credit - payer_credit
    )
    return found


def flows_oracle(all_entries, first: date, last: date, chosen: aging.Slice) -> dict:
    """Each month's postings summed by hand: a reversal counts against what it cancels."""
    by_id = {p.id: p for _, _, p in all_entries}
    found = {"charges_cents": 0, "payments_cents": 0, "adjustments_cents": 0, "refunds_cents": 0}
    for _, posted_on, p in all_entries:
        if not first <= posted_on <= last:
            continue
        source, sign = (by_id[p.reverses_entry_id], -1) if p.kind == "reversal" else (p, 1)
        ref = (
            PayerRef.of(source.payer_id, source.payer_name)
            if source.responsibility == "insurance"
            else None
        )
        if not chosen.has(source.responsibility, source.clinician_id, ref):
            continue
        if chosen.clinician_id is not None and source.kind != "charge":
            continue
        found[f"{source.kind}s_cents"] += sign * source.amount_cents
    if chosen.clinician_id is not None:
        found.update(payments_cents=None, adjustments_cents=None, refunds_cents=None)
    return found


def slices(h) -> list[aging.Slice]:
    return [
        aging.Slice(),
        aging.Slice(clinician_id=h.okafor),
        aging.Slice(clinician_id=h.reyes),
        aging.Slice(clinician_id=aging.NO_CLINICIAN),
        aging.Slice(payer=PayerRef.of(h.aetna)),
        aging.Slice(payer=PayerRef.of(h.cigna)),
        aging.Slice(payer=PayerRef.of(None, TRUST)),
    ]


def test_every_month_end_figure_equals_the_ledger_replayed_to_that_day(engine, trend_history):
    h = trend_history
    all_entries = entries(engine)
    for chosen in slices(h):
        with at(TODAY), transaction(engine) as session:
            figures = ar_trend.month_end_figures(
                session, 5, chosen.clinician_id, chosen.payer, edges=EDGES, today=TODAY
            )
            assert [f["month_end"] for f in figures] == [
                date(2026, 1, 31),
                date(2026, 2, 28),
                date(2026, 3, 31),
                date(2026, 4, 30),
                TODAY,
            ]
            assert [f["partial"] for f in figures] == [False] * 4 + [True]
            for f in figures:
                want = oracle(session, f["month_end"], chosen)
                got = {k: f[k] for k in want}
                assert got == want, (chosen, f["month_end"])
                assert f["buckets"] == {
                    k: want["client_buckets"][k] + want["insurance_buckets"][k]
                    for k in f["buckets"]
                }
                first = f["month_end"].replace(day=1)
                flows = flows_oracle(all_entries, first, f["month_end"], chosen)
                assert {k: f[k] for k in flows} == flows, (chosen, f["month_end"])
    # The whole practice's net A/R is the ledger summed to each month-end (independently).
    with at(TODAY), transaction(engine) as session:
        figures = ar_trend.month_end_figures(session, 5, edges=EDGES, today=TODAY)
    for f in figures:
        assert f["net_ar_cents"] == expected_as_of(all_entries, f["month_end"]).ledger_sum
    may = figures[-1]
    assert may["adjustments_by_reason"] == {"contractual": 700, "write_off": 300, "other": 0}
    march = figures[2]
    assert march["adjustments_by_reason"] == {"contractual": 0, "write_off": 0, "other": 500}
    # Known points of the history: January's 23:30 payment counts in January; Ben's late
    # charge for a December visit counts from March; Aetna's check reversed in April.
    assert figures[0]["client_cents"] == 4000 + 3500 - 1000
    assert figures[1]["insurance_credit_cents"] == 500
    assert figures[3]["insurance_credit_cents"] == 0


def test_a_past_month_never_changes_when_later_entries_are_posted(engine, trend_history):
    with at(TODAY), transaction(engine) as session:
        before = ar_trend.month_end_figures(session, 5, edges=EDGES, today=TODAY)
    # A late charge for a January visit and a payment, posted in May.
    charge = postings.post_charge
    post(
        engine,
        TODAY,
        charge,
        actor=None,
        client_id=trend_history.dan,
        amount_cents=4200,
        responsibility="client",
        service_date=date(2026, 1, 5),
    )
    with at(TODAY), transaction(engine) as session:
        after = ar_trend.month_end_figures(session, 5, edges=EDGES, today=TODAY)
    assert after[:4] == before[:4]
    assert after[4]["client_cents"] == before[4]["client_cents"] + 4200
    assert after[4]["buckets"]["120_plus"] == before[4]["buckets"]["120_plus"] + 4200


def test_the_projection_kept_posting_by_posting_equals_one_rebuilt_from_the_ledger(
    engine, trend_history
):
    with transaction(engine) as session:
        kept = ar_history.stored(session)
        ar_history.rebuild(session)
        rebuilt = ar_history.stored(session)
        session.rollback()
    assert kept == rebuilt
    assert any(key[1] == "adj_contractual" for key in kept)


# --- KPIs on a hand-made ledger -----------------------------------------------------------


@pytest.fixture
def march(engine, monkeypatch):
    """One month of postings with known answers (see the test)."""
    monkeypatch.setenv("CLIENTDESK_TIME_ZONE", "America/New_York")
    with at(date(2026, 2, 27)), transaction(engine) as session:
        manager = make_user(session, "manager")
        clinician = make_clinician(session, "Maya", "Okafor")
        payer = Payer(name="Aetna", payer_code="60054", kind="electronic", active=True, version=1)
        session.add(payer)
        session.flush()
        people = [make_client(session, first_name=n, clinician_id=clinician) for n in "ABCDE"]
        payer_id = payer.id
    a, b, c, d, e = people
    m = manager

    def charge(day, client, cents, dos, resp="client", **kw):
        post(
            engine,
            day,
            postings.post_charge,
            actor=None,
            client_id=client,
            amount_cents=cents,
            responsibility=resp,
            service_date=dos,
            clinician_id=clinician,
            **kw,
        )

    def pay(day, client, cents, **kw):
        kw.setdefault("method", "check")
        post(
            engine,
            day,
            postings.record_payment,
            actor=m,
            client_id=client,
            amount_cents=cents,
            received_on=day,
            **kw,
        )

    def adjust(day, client, cents, resp, reason):
        post(
            engine,
            day,
            postings.post_adjustment,
            actor=m,
            client_id=client,
            amount_cents=cents,
            responsibility=resp,
            memo="adjusted",
            reason=reason,
        )

    d_ = date
    charge(d_(2026, 3, 1), a, 10000, d_(2026, 3, 1), "insurance", payer_id=payer_id)
    pay(d_(2026, 3, 21), a, 7000, paid_by="insurance", payer_id=payer_id)
    adjust(d_(2026, 3, 21), a, 3000, "insurance", "contractual")  # closes A's claim: 20 days
    charge(d_(2026, 3, 5), b, 5000, d_(2026, 3, 5))
    pay(d_(2026, 3, 15), b, 5000)  # closes B's charge: 10 days
    charge(d_(2026, 3, 10), c, 20000, d_(2025, 11, 20))  # late: 131 days old on March 31
    pay(d_(2026, 3, 3), d, 1500, method="card", reference="4242")  # prepayment: credit
    charge(d_(2026, 3, 2), e, 4000, d_(2026, 1, 15))
    adjust(d_(2026, 3, 25), e, 1000, "client", "write_off")  # 3000 left, 75 days old
    return m, clinician, payer_id


def test_kpis_on_a_hand_made_month(engine, march):
    actor, _, payer_id = march
    with at(date(2026, 4, 5)), transaction(engine) as session:
        figures = ar_trend.trend(session, actor=actor, months=2, edges=EDGES)
        paid = ar_trend.period_days_to_payment(session, actor=actor, month=date(2026, 3, 1))
        dia = ar_trend.days_in_ar(session, date(2026, 3, 31))
    mar = figures[0]
    assert mar["month_end"] == date(2026, 3, 31)
    assert mar["charges_cents"] == 10000 + 5000 + 20000 + 4000
    assert mar["payments_cents"] == 7000 + 5000 + 1500
    assert mar["adjustments_by_reason"] == {"contractual": 3000, "write_off": 1000, "other": 0}
    # Owed on March 31: C 20000 (131 days) + E 3000 (75 days); D holds 1500 credit.
    assert (mar["ar_cents"], mar["unapplied_credit_cents"], mar["net_ar_cents"]) == (
        23000,
        1500,
        21500,
    )
    assert mar["gross_collection_rate"] == round(13500 / 39000, 4)
    assert mar["net_collection_rate"] == round(13500 / (39000 - 3000), 4)
    assert mar["pct_ar_over_90"] == round(20000 / 23000, 4)
    assert mar["pct_ar_over_120"] == round(20000 / 23000, 4)
    # 21500 ÷ (39000 charged in the 90 days to March 31 ÷ 90) = 49.6 days.
    assert mar["days_in_ar"] == 49.6 == dia
    assert paid == [
        {"payer": "Client", "payer_id": None, "charges_closed": 1, "average_days": 10.0},
        {"payer": "Aetna", "payer_id": payer_id, "charges_closed": 1, "average_days": 20.0},
    ]
    april = figures[1]
    assert april["partial"] and april["charges_cents"] == 0
    assert april["gross_collection_rate"] is None  # nothing charged: no rate, not 0 %


def test_a_reversed_payment_reopens_the_charge_for_days_to_payment(engine, march):
    actor, _, _ = march
    with transaction(engine) as session:
        b_payment = session.scalar(
            select(LedgerEntry.id).where(
                LedgerEntry.kind == "payment", LedgerEntry.amount_cents == 5000
            )
        )
    post(
        engine,
        date(2026, 3, 28),
        postings.reverse_entry,
        actor=actor,
        entry_id=b_payment,
        reason="bounced",
    )
    with at(date(2026, 4, 5)), transaction(engine) as session:
        paid = ar_trend.period_days_to_payment(session, actor=actor, month=date(2026, 3, 1))
        figures = ar_trend.trend(session, actor=actor, months=2)
    assert [p["payer"] for p in paid] == ["Aetna"]
    assert figures[0]["payments_cents"] == 13500 - 5000
    assert figures[0]["ar_cents"] == 23000 + 5000


def test_adjustment_reasons_are_checked_and_kpis_need_the_role(engine, march):
    actor, _, _ = march
    with at(date(2026, 4, 5)), transaction(engine) as session:
        client = make_client(session, first_name="F")
        with pytest.raises(ValidationError):
            postings.post_adjustment(
                session,
                actor=actor,
                client_id=client,
                amount_cents=100,
                responsibility="client",
                memo="x",
                idempotency_key="k-bad-reason",
                reason="goodwill",
            )
        desk = make_user(session, "front_desk", username="desk")
        with pytest.raises(PermissionDenied):
            ar_trend.trend(session, actor=desk, months=2)


def test_cli_ar_trend_prints_one_json_object_per_month(engine, db_url, march, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    _, clinician, payer_id = march
    with at(date(2026, 4, 5)):
        assert cli.main(["ar-trend", "--months", "2", "--json"]) == 0
    months = json.loads(capsys.readouterr().out)
    assert [m["month_end"] for m in months] == ["2026-03-31", "2026-04-05"]
    mar = months[0]
    assert mar["net_ar_cents"] == 21500
    assert (mar["client_cents"], mar["insurance_cents"]) == (23000, 0)
    assert sum(mar["buckets"].values()) == 23000
    assert (mar["charges_cents"], mar["payments_cents"]) == (39000, 13500)
    for kpi in (
        "days_in_ar",
        "gross_collection_rate",
        "net_collection_rate",
        "pct_ar_over_90",
        "pct_ar_over_120",
        "unapplied_credit_cents",
        "days_to_payment",
    ):
        assert kpi in mar
    assert mar["days_in_ar"] == 49.6
    with at(date(2026, 4, 5)):
        assert cli.main(["ar-trend", "--months", "2", "--json", "--payer", str(payer_id)]) == 0
    by_payer = json.loads(capsys.readouterr().out)
    assert by_payer[0]["net_ar_cents"] == 0 and by_payer[0]["charges_cents"] == 10000
    with at(date(2026, 4, 5)):
        assert cli.main(["ar-trend", "--months", "2", "--clinician", str(clinician)]) == 0
    text = capsys.readouterr().out
    assert "2026-03-31" in text and "$230.00" in text
