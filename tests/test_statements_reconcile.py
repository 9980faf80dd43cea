"""Client statements as PDF (spec B5) and reconciliation (spec B6), in lib and on the CLI."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from lib import postings, statements
from lib.db import transaction
from lib.models import AuditEntry, Client, DocumentLogEntry, PracticeSetting, Service
from lib.policy import Actor, PermissionDenied
from lib.reconcile import reconcile
from lib.timeutil import utcnow
from tests.factories import make_client, make_user

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TODAY = date.today()


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def key() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Practice:
    biller: Actor
    manager: Actor
    service_id: int


@pytest.fixture
def practice(engine) -> Practice:
    with transaction(engine) as session:
        session.add(
            PracticeSetting(key="practice_name", value="Harbor Counseling", updated_at=utcnow())
        )
        service = Service(
            code="90834",
            description="Psychotherapy, 45 minutes",
            fee_cents=13500,
            default_minutes=45,
            active=True,
            version=1,
        )
        session.add(service)
        session.flush()
        return Practice(make_user(session, "biller"), make_user(session, "manager"), service.id)


def charge(session, client_id, cents, day, responsibility="client", **kwargs) -> int:
    return postings.post_charge(
        session,
        actor=None,
        client_id=client_id,
        amount_cents=cents,
        responsibility=responsibility,
        service_date=day,
        idempotency_key=key(),
        **kwargs,
    ).entry_id


def pay(session, actor, client_id, cents, day, method="cash", **kwargs) -> int:
    return postings.record_payment(
        session,
        actor=actor,
        client_id=client_id,
        amount_cents=cents,
        method=method,
        received_on=day,
        idempotency_key=key(),
        **kwargs,
    ).entry_id


def owing_client(engine, practice: Practice, first_name: str = "Hana") -> int:
    """Owes 10.00 (100 days), a 25.00 copay (40 days) and 135.00 (10 days); insurance owes
    30.00; payments 100 days ago, 90 days ago, one reversed, and one from insurance."""
    biller = practice.biller
    with transaction(engine) as session:
        client_id = make_client(session, first_name=first_name, last_name="Ito")
        client = session.get(Client, client_id)
        client.address_line1 = "12 Elm St"
        client.city, client.state, client.zip_code = "Salem", "MA", "01970"
        charge(session, client_id, 4000, ago(100), memo="Missed session fee")
        charge(session, client_id, 2500, ago(40), service_id=practice.service_id)
        charge(
            session,
            client_id,
            11000,
            ago(40),
            "insurance",
            service_id=practice.service_id,
            payer_name="Harbor Health Plan",
        )
        charge(session, client_id, 13500, ago(10), service_id=practice.service_id)
        pay(session, biller, client_id, 1000, ago(100))
        pay(session, biller, client_id, 2000, ago(90), method="ach")
        mistaken = pay(session, biller, client_id, 500, ago(5), method="card", reference="4242")
        postings.reverse_entry(
            session, actor=biller, entry_id=mistaken, reason="declined", idempotency_key=key()
        )
        pay(
            session,
            biller,
            client_id,
            8000,
            ago(3),
            method="check",
            paid_by="insurance",
            payer_name="Harbor Health Plan",
        )
    return client_id


def build(engine, actor, client_id) -> statements.Statement:
    with transaction(engine) as session:
        return statements.build_statement(session, actor=actor, client_id=client_id, today=TODAY)


# --- what a statement says ---------------------------------------------------------------------


def test_a_statement_lists_what_the_client_owes_and_recent_payments(engine, practice):
    client_id = owing_client(engine, practice)
    st = build(engine, practice.biller, client_id)
    assert st.practice_name == "Harbor Counseling"
    assert st.client_name == "Hana Ito"
    assert st.address_lines == ["12 Elm St", "Salem, MA 01970"]
    assert st.statement_date == TODAY
    service = "90834 Psychotherapy, 45 minutes"
    assert [
        (x.service_date, x.description, x.charged_cents, x.owed_cents) for x in st.open_lines
    ] == [
        (ago(100), "Missed session fee", 4000, 1000),
        (ago(40), service, 2500, 2500),
        (ago(10), service, 13500, 13500),
    ]
    # Only client payments, of the last 90 days, not reversed; named as on the payment form.
    assert st.payments == [(ago(90), "ACH", 2000)]
    assert st.client_due_cents == 17000
    assert st.insurance_pending_cents == 3000
    assert st.credit_cents == 0
    assert st.amount_due_cents == 17000
    assert st.aging == [
        ("0–30 days", 13500),
        ("31–60 days", 2500),
        ("61–90 days", 0),
        ("91–120 days", 1000),
        ("120+ days", 0),
    ]


def test_credit_lowers_the_amount_due_but_never_below_zero(engine, practice):
    biller = practice.biller
    with transaction(engine) as session:
        partly = make_client(session, first_name="Partly")
        charge(session, partly, 3000, ago(20))
        pay(session, biller, partly, 1000, ago(10))
        ahead = make_client(session, first_name="Ahead")
        pay(session, biller, ahead, 5000, ago(30))
        charge(session, ahead, 3000, ago(20))
    st = build(engine, biller, partly)
    assert (st.client_due_cents, st.credit_cents, st.amount_due_cents) == (2000, 0, 2000)
    assert [x.owed_cents for x in st.open_lines] == [2000]
    st = build(engine, biller, ahead)
    assert (st.client_due_cents, st.credit_cents, st.amount_due_cents) == (0, 2000, 0)
    assert st.open_lines == []
    assert st.payments == [(ago(30), "Cash", 5000)]


def test_an_insurance_overpayment_is_not_the_clients_credit(engine, practice):
    """Insurance paying more than it owes does not lower what the client owes (issue 10)."""
    with transaction(engine) as session:
        client_id = make_client(session, first_name="Partly")
        charge(session, client_id, 3000, ago(20))
        charge(session, client_id, 9000, ago(20), "insurance", payer_name="Harbor Health Plan")
        pay(
            session,
            practice.biller,
            client_id,
            10000,
            ago(2),
            paid_by="insurance",
            payer_name="harbor  health plan",
        )
    st = build(engine, practice.biller, client_id)
    assert (st.client_due_cents, st.credit_cents, st.amount_due_cents) == (3000, 0, 3000)
    assert st.insurance_pending_cents == 0
    with transaction(engine) as session:
        client = session.get(Client, client_id)
        assert (client.unapplied_credit_cents, client.insurance_credit_cents) == (0, 1000)
        assert client.total_cents == 3000 - 1000
        assert reconcile(session, actor=None).ok


def test_insurance_lines_are_not_on_the_clients_statement(engine, practice):
    with transaction(engine) as session:
        client_id = make_client(session)
        charge(session, client_id, 11000, ago(15), "insurance")
    st = build(engine, practice.biller, client_id)
    assert st.open_lines == []
    assert (st.amount_due_cents, st.insurance_pending_cents) == (0, 11000)
    assert all(cents == 0 for _, cents in st.aging)


# --- making statements -------------------------------------------------------------------------


def statement_logs(engine) -> list[DocumentLogEntry]:
    with transaction(engine) as session:
        rows = list(session.scalars(select(DocumentLogEntry).order_by(DocumentLogEntry.id)))
        session.expunge_all()
        return rows


def statement_audits(engine) -> list[AuditEntry]:
    with transaction(engine) as session:
        rows = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "statement.create")
                .order_by(AuditEntry.id)
            )
        )
        session.expunge_all()
        return rows


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


def test_a_statement_is_stored_as_a_pdf_and_logged_as_generated_not_sent(
    engine, practice, tmp_path
):
    client_id = owing_client(engine, practice)
    with transaction(engine) as session:
        content, name = statements.create_statements(
            session, actor=practice.biller, client_ids=[client_id], data_dir=tmp_path, today=TODAY
        )
    assert content.startswith(b"%PDF")
    assert page_count(content) == 1
    stored = tmp_path / "statements" / name
    assert stored.read_bytes() == content
    assert re.fullmatch(r"statement-\d{8}-\d{6}-[0-9a-f]{10}\.pdf", name)  # fits the audit id
    [log] = statement_logs(engine)
    assert (log.client_id, log.kind, log.channel, log.status) == (
        client_id,
        "statement",
        "pdf",
        "generated",  # handed to staff; nobody sent it (issue 10 item 13)
    )
    assert (log.attachment_names, log.sender_user_id) == (name, practice.biller.user_id)
    [audit] = statement_audits(engine)
    assert (audit.client_id, audit.entity_id, audit.actor_user_id) == (
        client_id,
        name,
        practice.biller.user_id,
    )
    assert audit.detail == "amount_due_cents=17000"


def test_a_batch_of_three_clients_makes_one_pdf_with_a_page_each(engine, practice, tmp_path):
    clients = [owing_client(engine, practice, first) for first in ("Ann", "Ben", "Cai")]
    with transaction(engine) as session:
        content, name = statements.create_statements(
            session, actor=practice.manager, client_ids=clients, data_dir=tmp_path
        )
    assert content.startswith(b"%PDF")
    assert page_count(content) == 3
    assert [p.name for p in (tmp_path / "statements").iterdir()] == [name]
    logs = statement_logs(engine)
    assert sorted(log.client_id for log in logs) == sorted(clients)
    assert {(log.kind, log.attachment_names) for log in logs} == {("statement", name)}
    assert sorted(a.client_id for a in statement_audits(engine)) == sorted(clients)


def test_statements_are_refused_to_front_desk_and_clinicians(engine, practice, tmp_path):
    client_id = owing_client(engine, practice)
    with transaction(engine) as session:
        actors = [make_user(session, "front_desk"), make_user(session, "clinician")]
    for actor in actors:
        with pytest.raises(PermissionDenied):
            with transaction(engine) as session:
                statements.create_statements(
                    session, actor=actor, client_ids=[client_id], data_dir=tmp_path
                )
    assert not (tmp_path / "statements").exists()
    assert statement_logs(engine) == []


def test_a_statement_needs_at_least_one_client(engine, practice, tmp_path):
    with pytest.raises(ValueError, match="at least one client"):
        with transaction(engine) as session:
            statements.create_statements(
                session, actor=practice.biller, client_ids=[], data_dir=tmp_path
            )


# --- reconciliation ----------------------------------------------------------------------------


def run_check(engine):
    with transaction(engine) as session:
        return reconcile(session, actor=None)


def two_clients(engine, practice) -> tuple[int, int]:
    first = owing_client(engine, practice)
    with transaction(engine) as session:
        second = make_client(session, first_name="Second")
        pay(session, practice.biller, second, 7000, ago(1))  # credit only
    return first, second


def test_clean_books_reconcile(engine, practice):
    two_clients(engine, practice)
    check = run_check(engine)
    assert check.ok
    assert check.clients_checked == 2
    # 17000 + 3000 owed, less 7000 credit.
    assert check.ledger_total_cents == check.balances_total_cents == 13000
    assert check.aging_total_cents == 13000
    assert check.mismatches == [] and check.totals_problems == []


def test_a_corrupted_stored_balance_is_reported(engine, practice):
    _, second = two_clients(engine, practice)
    with transaction(engine) as session:
        session.execute(
            text("UPDATE clients SET total_cents = total_cents + 100 WHERE id = :id"),
            {"id": second},
        )
        number = session.get(Client, second).client_number
    check = run_check(engine)
    assert not check.ok
    assert [(m.client_id, m.client_number) for m in check.mismatches] == [(second, number)]
    [mismatch] = check.mismatches
    assert (mismatch.stored_total_cents, mismatch.ledger_total_cents) == (-6900, -7000)
    assert "total_cents" in mismatch.detail
    assert check.balances_total_cents - check.ledger_total_cents == 100


def test_corrupted_list_totals_are_reported(engine, practice):
    two_clients(engine, practice)
    with transaction(engine) as session:
        session.execute(text("UPDATE client_totals SET client_due_cents = client_due_cents + 1"))
    check = run_check(engine)
    assert not check.ok
    assert check.mismatches == []
    assert len(check.totals_problems) == 1
    assert "status active" in check.totals_problems[0]


def test_a_corrupted_open_charge_is_reported(engine, practice):
    first, _ = two_clients(engine, practice)
    with transaction(engine) as session:
        session.execute(
            text("UPDATE open_charges SET open_cents = open_cents - 1 WHERE client_id = :id"),
            {"id": first},
        )
    check = run_check(engine)
    assert not check.ok
    assert [m.client_id for m in check.mismatches] == [first]
    assert "open charges" in check.mismatches[0].detail
    assert check.aging_total_cents != check.ledger_total_cents


def test_only_admins_and_managers_run_reconciliation(engine, practice):
    with transaction(engine) as session:
        assert reconcile(session, actor=practice.manager).ok
        with pytest.raises(PermissionDenied):
            reconcile(session, actor=practice.biller)


# --- the command line --------------------------------------------------------------------------


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["CLIENTDESK_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "lib.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_reconcile_command_exits_1_when_a_stored_balance_is_wrong(tmp_path):
    for args in (("migrate",), ("seed-demo", "--clients", "20")):
        done = cli(tmp_path, *args)
        assert done.returncode == 0, done.stderr
    clean = cli(tmp_path, "reconcile")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Reconciled: everything agrees." in clean.stdout
    assert "Clients checked: 20" in clean.stdout

    with sqlite3.connect(tmp_path / "clientdesk.db") as db:
        client_id, number = db.execute(
            "SELECT id, client_number FROM clients ORDER BY id LIMIT 1"
        ).fetchone()
        db.execute("UPDATE clients SET total_cents = total_cents + 123 WHERE id = ?", (client_id,))
    db.close()
    broken = cli(tmp_path, "reconcile")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "NOT RECONCILED." in broken.stdout
    assert f"client #{number}:" in broken.stdout
    assert "Traceback" not in broken.stderr
