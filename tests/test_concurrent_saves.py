"""Colleagues saving and reading at the same moment (issue 12 item 8, issue 10 item 11).

Nobody sees a failed save because someone else was saving: lock conflicts are waited out or the
whole unit of work runs again, within CLIENTDESK_DB_WRITE_TIMEOUT, and only lock conflicts are
retried. Reads are served while saves queue. New clients get distinct numbers. Real threads,
real locks, on both engines.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lib import clients, mail, postings, worker
from lib.config import load_settings
from lib.db import (
    SQLITE_READS_AT_ONCE,
    DatabaseBusy,
    Limits,
    make_engine,
    read_session,
    transaction,
    write,
)
from lib.models import AuditEntry, Client, LedgerEntry
from lib.policy import Actor
from tests.factories import make_client, make_clinician, make_user

# Real threads on real connections: every test needs commits other connections see.
pytestmark = pytest.mark.committed


@pytest.fixture
def people(engine) -> tuple[Actor, list[int]]:
    """A manager and three clients, each with their own clinician (so postings to different
    clients share no row lock)."""
    with transaction(engine) as session:
        actor = make_user(session, "manager")
        client_ids = [
            make_client(session, last_name=f"Shared{n}", clinician_id=make_clinician(session))
            for n in range(3)
        ]
    return actor, client_ids


def pay(actor: Actor, client_id: int, key: str, cents: int = 1000):
    def work(session: Session):
        return postings.record_payment(
            session,
            actor=actor,
            client_id=client_id,
            amount_cents=cents,
            method="cash",
            idempotency_key=key,
        )

    return work


def entries(engine, prefix: str) -> list[str]:
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(LedgerEntry.idempotency_key).where(
                    LedgerEntry.idempotency_key.like(f"{prefix}%")
                )
            )
        )


@contextmanager
def colleague_holding_the_lock(db_kind: str, db_url: str, client_id: int) -> Iterator[None]:
    """Another program (SQLite) or session (PostgreSQL) holds the lock a payment needs."""
    if db_kind == "sqlite":
        raw = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            raw.execute("COMMIT")
            raw.close()
        return
    other = create_engine(db_url)
    try:
        with other.connect() as conn:
            conn.execute(text("SELECT id FROM clients WHERE id = :c FOR UPDATE"), {"c": client_id})
            yield
            conn.commit()
    finally:
        other.dispose()


def test_overlapping_add_client_saves_get_distinct_client_numbers(engine):
    with transaction(engine) as session:
        actor = make_user(session, "front_desk")
    threads_n, rounds = 8, 3
    numbers: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def add(round_: int, n: int, barrier: threading.Barrier) -> None:
        barrier.wait(timeout=30)
        try:
            with transaction(engine) as session:
                created = clients.create_client(
                    session,
                    actor=actor,
                    first_name=f"Pat{n}",
                    last_name=f"Overlap{round_}x{n}",
                    dob=date(1970 + n, 1 + round_, 1 + n),
                )
        except Exception as exc:
            with lock:
                failures.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        with lock:
            numbers.append(created.client_number)

    for round_ in range(rounds):
        barrier = threading.Barrier(threads_n)
        threads = [
            threading.Thread(target=add, args=(round_, n, barrier)) for n in range(threads_n)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    assert len(numbers) == len(set(numbers)) == threads_n * rounds
    with read_session(engine) as session:
        stored = set(session.scalars(select(Client.client_number)))
    assert set(numbers) <= stored


@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_a_save_caught_in_a_deadlock_is_run_again_and_both_saves_land(engine, people):
    """Two billers each lock two clients in opposite order, then post to both: PostgreSQL
    kills one transaction as a deadlock victim; its whole unit of work runs again and lands.
    (The locks come first because every posting also updates shared A/R rows, which would
    make the second posting wait for the first rather than deadlock.)"""
    actor, (a, b, _) = people
    both_hold_their_first_lock = threading.Barrier(2)
    calls = {"ab": 0, "ba": 0}
    failures: list[str] = []

    def lock(session: Session, client_id: int) -> None:
        session.execute(select(Client.id).where(Client.id == client_id).with_for_update())

    def unit(name: str, first: int, second: int):
        def work(session: Session):
            calls[name] += 1
            lock(session, first)
            if calls[name] == 1:
                both_hold_their_first_lock.wait(timeout=30)
            lock(session, second)
            pay(actor, first, f"dl-{name}-1")(session)
            pay(actor, second, f"dl-{name}-2")(session)

        return work

    def run(name: str, first: int, second: int) -> None:
        try:
            write(engine, unit(name, first, second))
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=run, args=("ab", a, b)),
        threading.Thread(target=run, args=("ba", b, a)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(calls.values()) == [1, 2]  # the deadlock victim ran once more
    assert sorted(entries(engine, "dl-")) == ["dl-ab-1", "dl-ab-2", "dl-ba-1", "dl-ba-2"]


def test_a_save_waits_for_a_colleagues_lock_and_then_lands(engine, db_kind, db_url, people):
    actor, (client_id, _, _) = people
    released = threading.Event()
    outcome: list[object] = []

    def save() -> None:
        try:
            outcome.append(write(engine, pay(actor, client_id, "wait-1")))
        except Exception as exc:
            outcome.append(exc)
        outcome.append(released.is_set())

    with colleague_holding_the_lock(db_kind, db_url, client_id):
        saver = threading.Thread(target=save)
        saver.start()
        saver.join(timeout=1.0)
        assert saver.is_alive()  # it waits for the colleague instead of failing
        released.set()
    saver.join(timeout=30)
    result, finished_after_release = outcome
    assert isinstance(result, postings.PostingResult), result
    assert finished_after_release
    assert entries(engine, "wait-") == ["wait-1"]


def test_a_save_held_up_too_long_gives_up_with_a_clear_message_and_writes_nothing(
    db_kind, db_url, people
):
    actor, (client_id, _, _) = people
    limits = replace(Limits.from_settings(load_settings({})), write_timeout_seconds=1.5)
    impatient = make_engine(db_url, limits=limits)
    outcome: list[object] = []
    gave_up = threading.Event()

    def save() -> None:
        try:
            outcome.append(write(impatient, pay(actor, client_id, "late-1")))
        except Exception as exc:
            outcome.append(exc)
        gave_up.set()

    try:
        with colleague_holding_the_lock(db_kind, db_url, client_id):
            saver = threading.Thread(target=save)
            saver.start()
            # The colleague keeps the lock until the save has given up (or far past its bound).
            assert gave_up.wait(timeout=30)
        saver.join()
        (error,) = outcome
        assert isinstance(error, DatabaseBusy)
        assert "try again" in str(error) and "nothing was saved" in str(error)
        assert entries(impatient, "late-") == []
    finally:
        impatient.dispose()


def test_errors_other_than_lock_conflicts_are_not_retried(engine, people):
    _, (client_id, _, _) = people
    calls = []

    def clashing_number(session: Session) -> None:
        calls.append(1)
        taken = session.scalar(select(Client.client_number).where(Client.id == client_id))
        session.execute(
            text(
                "UPDATE clients SET client_number = :n WHERE id <> :c AND id = "
                "(SELECT MAX(id) FROM clients)"
            ),
            {"n": taken, "c": client_id},
        )

    with pytest.raises(IntegrityError):
        write(engine, clashing_number)
    assert len(calls) == 1

    def broken(session: Session) -> None:
        calls.append(2)
        raise ValueError("a bug, not a lock")

    with pytest.raises(ValueError):
        write(engine, broken)
    assert calls == [1, 2]


def _colleagues_at_once(engine, colleagues: int, inside: threading.Barrier | None) -> list[str]:
    start = threading.Barrier(colleagues, timeout=20)
    failures: list[str] = []

    def open_screen() -> None:
        try:
            start.wait()
            with read_session(engine) as session:
                session.execute(select(func.count()).select_from(Client)).scalar()
                if inside is not None:
                    inside.wait()  # every colleague holds a connection at this moment
                session.execute(select(func.count()).select_from(AuditEntry)).scalar()
        except Exception as exc:
            failures.append(type(exc).__name__)

    threads = [threading.Thread(target=open_screen) for _ in range(colleagues)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def test_32_colleagues_opening_screens_at_the_same_moment_are_all_served(engine):
    assert _colleagues_at_once(engine, 32, inside=None) == []


@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_32_colleagues_can_hold_a_postgresql_connection_at_the_same_moment(engine):
    """The pool is sized for the server's threads (Streamlit: one per busy session)."""
    assert _colleagues_at_once(engine, 32, inside=threading.Barrier(32, timeout=20)) == []


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_a_read_inside_a_save_never_waits_for_the_readers(engine, people):
    """SQLite admits a few reads at a time; a save that reads is never stuck behind them."""
    actor, (client_id, _, _) = people
    readers_in, let_readers_go = threading.Barrier(SQLITE_READS_AT_ONCE + 1), threading.Event()

    def reader() -> None:
        with read_session(engine) as session:
            session.execute(select(func.count()).select_from(Client)).scalar()
            readers_in.wait(timeout=20)
            let_readers_go.wait(timeout=30)

    readers = [threading.Thread(target=reader) for _ in range(SQLITE_READS_AT_ONCE)]
    for t in readers:
        t.start()
    readers_in.wait(timeout=20)  # every read slot is taken

    def save_that_reads(session: Session):
        result = pay(actor, client_id, "inside-1")(session)
        with read_session(engine) as again:
            again.execute(select(func.count()).select_from(Client)).scalar()
        return result

    try:
        assert isinstance(write(engine, save_that_reads), postings.PostingResult)
    finally:
        let_readers_go.set()
        for t in readers:
            t.join()
    assert entries(engine, "inside-") == ["inside-1"]


def test_reads_are_served_while_saves_queue_behind_a_lock(engine, db_kind, db_url, people):
    """As many saves as the pool has connections wait for a colleague's lock; a colleague who
    only opens the client list is served at once, and then every save lands."""
    actor, (client_id, _, _) = people
    savers_n = Limits.from_settings(load_settings()).connections
    read_done = threading.Event()
    failures: list[str] = []

    def save(n: int) -> None:
        try:
            write(engine, pay(actor, client_id, f"queue-{n}", cents=100 + n))
        except Exception as exc:
            failures.append(f"save: {type(exc).__name__}")

    def read() -> None:
        try:
            with read_session(engine) as session:
                clients.list_clients(session, actor=actor, sort="total", descending=True)
        except Exception as exc:
            failures.append(f"read: {type(exc).__name__}")
        read_done.set()

    with colleague_holding_the_lock(db_kind, db_url, client_id):
        savers = [threading.Thread(target=save, args=(n,)) for n in range(savers_n)]
        for t in savers:
            t.start()
        _wait_until_settled(lambda: engine.pool.checkedout())
        reader = threading.Thread(target=read)
        reader.start()
        served_while_saves_wait = read_done.wait(timeout=5)
    reader.join()
    for t in savers:
        t.join()
    assert served_while_saves_wait
    assert failures == []
    assert len(entries(engine, "queue-")) == savers_n


def _wait_until_settled(value, *, quiet: float = 0.5, limit: float = 5.0) -> None:
    """Until ``value()`` has not changed for ``quiet`` seconds (the savers are all waiting)."""
    ends = time.monotonic() + limit
    last, since = value(), time.monotonic()
    while time.monotonic() < ends and time.monotonic() - since < quiet:
        time.sleep(0.05)
        now = value()
        if now != last:
            last, since = now, time.monotonic()


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_the_worker_keeps_going_while_the_database_stays_busy(db_url, people, tmp_path):
    """A save that gives up (DatabaseBusy) is a database error the worker reports and retries,
    never one that stops it."""
    limits = replace(Limits.from_settings(load_settings({})), write_timeout_seconds=0.5)
    impatient = make_engine(db_url, limits=limits)
    said: list[str] = []
    stop = threading.Event()
    mail_settings = mail.mail_settings(tmp_path, env={})

    def run() -> None:
        worker.run_forever(
            impatient,
            mail_settings=mail_settings,
            practice_tz="America/New_York",
            stop=stop,
            interval=0.2,
            poll=0.2,
            say=said.append,
        )

    thread = threading.Thread(target=run)
    try:
        thread.start()
        _wait_until_settled(lambda: len(said), quiet=0.3)  # started and idle
        with colleague_holding_the_lock("sqlite", db_url, people[1][0]):
            deadline = time.monotonic() + 10
            while not any("DatabaseBusy" in line for line in said):
                assert time.monotonic() < deadline, said
                time.sleep(0.1)
            assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=30)
        impatient.dispose()
    assert not thread.is_alive()
    assert said[-1] == "Worker stopped."
