"""Benchmark the screens practice managers wait on, against a naive baseline in the same run.

    python bench/run.py --clients 100000 [--engine sqlite|postgresql] [--json FILE]

Seeds (or reuses) a demo database of N clients (about 20 ledger entries each) and prints the
median milliseconds of:

  client_list_page          first 50 active clients sorted by balance, with count and totals
  client_search             a partial name typed in the search box
  aging_report              the outstanding-balances report over every client with a balance
  aging_report_month_end    the same report as of the end of last month (point in time:
                            replays every client with entries posted since then)
  record_payment            one payment: allocation, projections and audit, committed
  naive_pandas_client_list  what a typical Streamlit app does: read the whole ledger with
                            pandas and group it by client (the baseline)

SQLite databases live in data/bench/; PostgreSQL ones are created on BENCH_DATABASE_URL's
server (default: the local one) as clientdesk_bench_<N>.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


import pandas as pd  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from lib import aging, auth, clients, postings  # noqa: E402
from lib.config import driver_url, setting  # noqa: E402
from lib.db import make_engine, read_session, transaction, upgrade  # noqa: E402
from lib.demo import seed_demo  # noqa: E402
from lib.models import Client, LedgerEntry, User  # noqa: E402
from lib.timeutil import practice_today  # noqa: E402


def database_url(engine_name: str, clients_n: int) -> str:
    if engine_name == "sqlite":
        folder = ROOT / "data" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / f'bench-{clients_n}.db'}"
    server = driver_url(setting("BENCH_DATABASE_URL"))
    name = f"clientdesk_bench_{clients_n}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def prepare(url: str, clients_n: int):
    engine = make_engine(url)
    upgrade(engine)
    with read_session(engine) as session:
        have = session.scalar(select(func.count()).select_from(Client))
    if have == 0:
        print(f"Seeding {clients_n:,} clients (once; reused by later runs)...", flush=True)
        summary = seed_demo(engine, clients=clients_n, seed=42)
        print(f"  seeded in {summary.seconds:.0f} s", flush=True)
    elif have != clients_n:
        raise SystemExit(f"{url} holds {have} clients, not {clients_n}; remove it first.")
    return engine


def median_ms(fn, repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)

    engine = prepare(database_url(args.engine, args.clients), args.clients)
    with read_session(engine) as session:
        biller = session.scalar(select(User).where(User.username == "biller"))
        actor = auth.actor_for(biller)
        entries = session.scalar(select(func.count()).select_from(LedgerEntry))
        client_ids = list(
            session.scalars(select(Client.id).where(Client.status == "active").limit(500))
        )

    def client_list_page():
        with read_session(engine) as session:
            result = clients.list_clients(
                session, actor=actor, sort="total", descending=True, limit=50
            )
        assert len(result.rows) == min(50, result.count) and result.totals is not None

    def client_search():
        with read_session(engine) as session:
            result = clients.list_clients(session, actor=actor, query="smi", limit=50)
        assert result.count > 0

    def aging_report():
        with read_session(engine) as session:
            report = aging.report(session, actor=actor)
        assert report.total_ar_cents > 0

    month_end = practice_today().replace(day=1) - timedelta(days=1)

    def aging_report_month_end():
        with read_session(engine) as session:
            report = aging.report(session, actor=actor, as_of=month_end)
        assert report.total_ar_cents > 0 and report.replayed

    run_id = time.time_ns()
    counter = iter(range(10**9))

    def record_payment():
        n = next(counter)
        with transaction(engine) as session:
            postings.record_payment(
                session,
                actor=actor,
                client_id=client_ids[n % len(client_ids)],
                amount_cents=1000,
                method="cash",
                idempotency_key=f"bench-{run_id}-{n}",
            )

    def naive_pandas_client_list():
        with engine.connect() as conn:
            ledger = pd.read_sql("SELECT client_id, kind, amount_cents FROM ledger_entries", conn)
            people = pd.read_sql("SELECT id, first_name, last_name, status FROM clients", conn)
        sign = ledger["kind"].map({"charge": 1, "refund": 1}).fillna(-1)
        balances = (ledger["amount_cents"] * sign).groupby(ledger["client_id"]).sum()
        frame = people.set_index("id").join(balances.rename("balance")).fillna({"balance": 0})
        active = frame[frame["status"] == "active"].sort_values("balance", ascending=False)
        assert len(active.head(50)) > 0

    heavy_repeat = max(3, args.repeat // 5)
    ms = {
        "client_list_page": median_ms(client_list_page, args.repeat),
        "client_search": median_ms(client_search, args.repeat),
        "aging_report": median_ms(aging_report, args.repeat),
        "aging_report_month_end": median_ms(aging_report_month_end, heavy_repeat, warmup=1),
        "record_payment": median_ms(record_payment, args.repeat),
        "naive_pandas_client_list": median_ms(naive_pandas_client_list, heavy_repeat, warmup=1),
    }
    result = {"clients": args.clients, "ledger_entries": entries, "engine": args.engine, "ms": ms}
    print(
        f"\nClientDesk benchmark: {args.clients:,} clients, {entries:,} ledger entries, "
        f"{args.engine}"
    )
    print(f"{'measure':<28}{'median ms':>12}")
    for name, value in ms.items():
        print(f"{name:<28}{value:>12.2f}")
    speedup = ms["naive_pandas_client_list"] / ms["client_list_page"]
    print(f"{'list page vs naive pandas':<28}{speedup:>11.0f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
