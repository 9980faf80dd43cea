"""Colleagues saving and reading at the same moment: latency, errors and lost writes.

    python bench/load.py [--engine sqlite|postgresql|both] [--writers 8,16,32] [--readers 16]
                         [--seconds 10] [--clients 300]

Each writer thread is a staff member saving through the app's write door (``lib.db.write``):
payments (50%), opening a client record, which is audited (20%), Contact tab saves (15%) and
Add client (15%). Each reader thread loads the client list sorted by balance or the
outstanding-balances report through ``read_session``. For every writer count it prints the
p50/p95/max latency of writes and reads (milliseconds, retries included: what a user waits),
the number of failed operations and of acknowledged writes missing afterwards.

A fresh demo practice is made for each engine (SQLite in a temporary folder, PostgreSQL as a
throw-away database on BENCH_DATABASE_URL's server, by default the local one) and removed after.
tests/test_load.py runs the same workload, bounded, in the test suite.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

from lib import aging, auth, clients, postings  # noqa: E402
from lib import client_record as cr  # noqa: E402
from lib.config import driver_url, setting  # noqa: E402
from lib.db import make_engine, read_session, upgrade, write  # noqa: E402
from lib.demo import seed_demo  # noqa: E402
from lib.models import AuditEntry, Client, LedgerEntry, User  # noqa: E402
from lib.reconcile import reconcile  # noqa: E402


@dataclass
class LoadResult:
    """What the colleagues saw: latencies in seconds, failures, and what was acknowledged."""

    writers: int
    readers: int
    seconds: float
    write_latencies: list[float] = field(default_factory=list)
    read_latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    payment_keys: list[str] = field(default_factory=list)
    created_numbers: list[int] = field(default_factory=list)
    contact_saves: Counter = field(default_factory=Counter)  # client id -> saves acknowledged
    contact_versions_before: dict[int, int] = field(default_factory=dict)
    audited_opens: int = 0


@dataclass(frozen=True)
class Lost:
    payments: int
    clients: int
    contact_saves: int
    opens: int
    reconciled: bool

    @property
    def total(self) -> int:
        return self.payments + self.clients + self.contact_saves + self.opens


def percentile_ms(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run_load(engine: Engine, *, writers: int, readers: int, seconds: float) -> LoadResult:
    """Run the mix for ``seconds`` with the given threads; every failure is recorded."""
    with read_session(engine) as session:
        manager = session.scalar(select(User).where(User.username == "manager"))
        actor = auth.actor_for(manager)
        versions = dict(session.execute(select(Client.id, Client.contact_version)).all())
        client_ids = sorted(versions)
        opens_before = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "client.open")
        )
    result = LoadResult(
        writers=writers, readers=readers, seconds=seconds, contact_versions_before=versions
    )
    result.audited_opens = -opens_before  # becomes the number of opens acknowledged
    run = uuid.uuid4().hex[:8]
    lock = threading.Lock()
    start = threading.Barrier(writers + readers)
    stop_at = [0.0]

    def timed(latencies: list[float], what: str, fn) -> bool:
        began = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # every failure is what the bench is about
            with lock:
                result.errors.append(f"{what}: {type(exc).__name__}: {str(exc)[:160]}")
            return False
        with lock:
            latencies.append(time.perf_counter() - began)
        return True

    def writer(i: int) -> None:
        rng = random.Random(f"{run}-w{i}")
        mine = [c for n, c in enumerate(client_ids) if n % writers == i] or client_ids
        start.wait()
        n = 0
        while time.monotonic() < stop_at[0]:
            n += 1
            roll = rng.random()
            if roll < 0.5:
                key = f"load-{run}-{i}-{n}"
                client_id = rng.choice(client_ids)
                cents = rng.randrange(100, 5000)

                def pay(s, client_id=client_id, cents=cents, key=key):
                    return postings.record_payment(
                        s,
                        actor=actor,
                        client_id=client_id,
                        amount_cents=cents,
                        method="cash",
                        idempotency_key=key,
                    )

                if timed(result.write_latencies, "payment", lambda pay=pay: write(engine, pay)):
                    with lock:
                        result.payment_keys.append(key)
            elif roll < 0.7:
                client_id = rng.choice(client_ids)

                def open_(s, client_id=client_id):
                    return cr.open_record(s, actor=actor, client_id=client_id, audit_open=True)

                if timed(result.write_latencies, "open", lambda f=open_: write(engine, f)):
                    with lock:
                        result.audited_opens += 1
            elif roll < 0.85:
                client_id = rng.choice(mine)
                phone = f"212{rng.randrange(200, 999)}{rng.randrange(10**4):04d}"

                def save(s, client_id=client_id, phone=phone):
                    record = cr.open_record(s, actor=actor, client_id=client_id, audit_open=False)
                    return cr.save_section(
                        s,
                        actor=actor,
                        client_id=client_id,
                        section="contact",
                        changes={"phone_mobile": phone},
                        expected_version=record.versions["contact"],
                    )

                if timed(result.write_latencies, "contact save", lambda f=save: write(engine, f)):
                    with lock:
                        result.contact_saves[client_id] += 1
            else:
                created: list[int] = []

                dob = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))

                def add(s, i=i, n=n, dob=dob, created=created):
                    person = {"first_name": f"Load{i}", "last_name": f"Run{run}n{n}", "dob": dob}
                    try:
                        new = clients.create_client(s, actor=actor, **person)
                    except clients.PossibleDuplicates as seen:  # "save anyway", as users do
                        ids = tuple(m.client_id for m in seen.matches)
                        new = clients.create_client(
                            s, actor=actor, acknowledged_duplicates=ids, **person
                        )
                    created.append(new.client_number)
                    return new

                if timed(result.write_latencies, "add client", lambda f=add: write(engine, f)):
                    with lock:
                        result.created_numbers.append(created[-1])

    def reader(i: int) -> None:
        rng = random.Random(f"{run}-r{i}")
        start.wait()
        while time.monotonic() < stop_at[0]:
            if rng.random() < 0.7:

                def read():
                    with read_session(engine) as s:
                        clients.list_clients(s, actor=actor, sort="total", descending=True)

            else:

                def read():
                    with read_session(engine) as s:
                        aging.report(s, actor=actor)

            timed(result.read_latencies, "read", read)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    stop_at[0] = time.monotonic() + seconds + 1.0  # threads start within the extra second
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result


def find_lost(engine: Engine, result: LoadResult) -> Lost:
    """Everything acknowledged is in the database, and the ledger still reconciles."""
    with read_session(engine) as session:
        keys = set(
            session.scalars(
                select(LedgerEntry.idempotency_key).where(
                    LedgerEntry.idempotency_key.like("load-%")
                )
            )
        )
        numbers = set(
            session.scalars(
                select(Client.client_number).where(
                    Client.client_number.in_(result.created_numbers or [-1])
                )
            )
        )
        versions = dict(
            session.execute(
                select(Client.id, Client.contact_version).where(
                    Client.id.in_(list(result.contact_saves) or [-1])
                )
            ).all()
        )
        opens = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "client.open")
        )
        ok = reconcile(session, actor=None).ok
    # Each acknowledged Contact save bumps the tab's version by exactly one.
    lost_saves = sum(
        abs(result.contact_versions_before[cid] + saves - versions.get(cid, 0))
        for cid, saves in result.contact_saves.items()
    )
    return Lost(
        payments=sum(1 for k in result.payment_keys if k not in keys),
        clients=len(set(result.created_numbers) - numbers)
        + (len(result.created_numbers) - len(set(result.created_numbers))),
        contact_saves=lost_saves,
        opens=max(0, result.audited_opens - opens),
        reconciled=ok,
    )


def _fresh_database(engine_name: str, folder: Path) -> tuple[str, Callable[[], None]]:
    if engine_name == "sqlite":
        return f"sqlite:///{folder / 'load.db'}", lambda: None
    server = driver_url(setting("BENCH_DATABASE_URL"))
    name = f"clientdesk_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--writers", default="8,16,32")
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=300)
    args = parser.parse_args(argv)
    engines = ("sqlite", "postgresql") if args.engine == "both" else (args.engine,)
    counts = [int(n) for n in args.writers.split(",")]
    header = (
        f"{'engine':<11}{'writers':>8}{'readers':>8}{'writes':>8}{'w p50':>8}{'w p95':>8}"
        f"{'w max':>8}{'reads':>8}{'r p50':>8}{'r p95':>8}{'r max':>8}{'errors':>8}{'lost':>6}"
    )
    print(f"{args.seconds:g} s per run, {args.clients} demo clients, latencies in ms")
    print(header)
    failed = False
    for engine_name in engines:
        with tempfile.TemporaryDirectory() as tmp:
            url, drop = _fresh_database(engine_name, Path(tmp))
            engine = make_engine(url)
            try:
                upgrade(engine)
                seed_demo(engine, clients=args.clients, seed=42)
                for writers in counts:
                    r = run_load(
                        engine, writers=writers, readers=args.readers, seconds=args.seconds
                    )
                    lost = find_lost(engine, r)
                    failed |= bool(r.errors) or lost.total > 0 or not lost.reconciled
                    w, rd = r.write_latencies, r.read_latencies
                    print(
                        f"{engine_name:<11}{writers:>8}{args.readers:>8}{len(w):>8}"
                        f"{percentile_ms(w, 0.5):>8.0f}{percentile_ms(w, 0.95):>8.0f}"
                        f"{percentile_ms(w, 1.0):>8.0f}{len(rd):>8}"
                        f"{percentile_ms(rd, 0.5):>8.0f}{percentile_ms(rd, 0.95):>8.0f}"
                        f"{percentile_ms(rd, 1.0):>8.0f}{len(r.errors):>8}{lost.total:>6}",
                        flush=True,
                    )
                    for error, times in Counter(r.errors).most_common(3):
                        print(f"    {times} x {error}")
            finally:
                engine.dispose()
                drop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
