"""Time ``import-clients`` for a big file into a big practice (issue 14: 10,000 rows in under
a minute into a practice of 100,000 clients), with a naive per-row baseline in the same run.

    CLIENTDESK_DATA_DIR=/tmp/perf DATABASE_URL=... python bench/import_clients.py --rows 10000

The practice must already be seeded (``python -m lib.cli seed-demo --clients 100000`` with the
same DATABASE_URL / CLIENTDESK_DATA_DIR). Each run writes a new file whose old system ids and
names are new, so nothing is a duplicate of an earlier run; then it imports the same file a
second time (everything a duplicate, nothing written). The baseline adds ``--baseline`` rows
one at a time through ``lib.clients.create_client`` (the add-client form's path, one duplicate
query per row) and extrapolates to the file's size.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from lib import client_import, clients  # noqa: E402
from lib.auth import actor_for  # noqa: E402
from lib.config import load_settings  # noqa: E402
from lib.db import make_engine, read_session, transaction  # noqa: E402
from lib.models import Client, Clinician, User  # noqa: E402

FIRST = [
    "Zoë",
    "Seán",
    "Ana-María",
    "D'Andre",
    "Łukasz",
    "Chloé",
    "Mateo",
    "Aisha",
    "Kai",
    "Ingrid",
]
LAST = [
    "O'Brien",
    "Núñez-García",
    "Smith-Jones",
    "Müller",
    "D'Souza",
    "Nguyen",
    "Kowalski",
    "Øberg",
]


def _letters(n: int) -> str:
    out = ""
    for _ in range(6):
        n, r = divmod(n, 26)
        out += "bcdfghjklmnpqrstvwxzaeiouy"[r]
    return out.capitalize()


def make_file(rows: int, seed: int, clinician_names: list[str]) -> bytes:
    rnd = random.Random(seed)
    out = io.StringIO()
    w = csv.writer(out, delimiter=";")
    w.writerow(
        [
            "Client ID",
            "First Name",
            "Last Name",
            "DOB",
            "Cell",
            "Email",
            "Address",
            "City",
            "State",
            "Zip",
            "Therapist",
            "Client Balance",
            "Insurance Balance",
            "Payer",
            "DOS",
        ]
    )
    tag = f"{seed:x}"
    for i in range(rows):
        first = f"{rnd.choice(FIRST)}-{_letters(i)[:3]}"  # hyphenated, varied
        # Letters first, so the sound-alike key differs too: every row is a new client.
        last = _letters(seed * 100_000 + i) + "-" + rnd.choice(LAST)
        formats = ("{m}/{d}/{y}", "{y}-{m:02d}-{d:02d}", "{d:02d}.{m:02d}.{y}")
        dob = rnd.choice(formats).format(
            m=rnd.randint(1, 12), d=rnd.randint(1, 28), y=rnd.randint(1940, 2015)
        )
        due = rnd.choice(["", "", "", "45.00", "120.50", "$1,250.00"])
        pending = rnd.choice(["", "", "300", "87.25"])
        w.writerow(
            [
                f"OLD-{tag}-{i}",
                first,
                last,
                dob,
                f"(312) {rnd.randint(200, 999)}-{rnd.randint(1000, 9999)}",
                f"c{tag}.{i}@example.org",
                f"{rnd.randint(1, 999)} Main St",
                "Chicago",
                "IL",
                f"{rnd.randint(60601, 60699)}",
                rnd.choice([*clinician_names, ""]),
                due,
                pending,
                "Aetna" if pending else "",
                "10/15/2026" if (due or pending) else "",
            ]
        )
    return out.getvalue().encode("utf-8")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=100)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    engine = make_engine(load_settings().database_url)
    with read_session(engine) as session:
        practice = session.scalar(select(func.count()).select_from(Client))
        names = [
            f"{first} {last}"
            for first, last in session.execute(select(Clinician.first_name, Clinician.last_name))
        ]
        admin = actor_for(session.scalars(select(User).where(User.role == "admin")).first())
    data = make_file(args.rows, args.seed, names)
    print(
        f"{engine.url.get_backend_name()}: practice of {practice:,} clients, "
        f"file of {args.rows:,} rows"
    )
    started = time.perf_counter()
    report = client_import.run_import(engine, actor=admin, data=data, filename="bench.csv")
    first = time.perf_counter() - started
    print(f"  import_clients        {first:8.1f} s   {report.summary()}")
    started = time.perf_counter()
    again = client_import.run_import(engine, actor=admin, data=data, filename="bench.csv")
    print(f"  import_same_again     {time.perf_counter() - started:8.1f} s   {again.summary()}")
    started = time.perf_counter()
    for i in range(args.baseline):
        with contextlib.suppress(clients.PossibleDuplicates), transaction(engine) as session:
            clients.create_client(
                session,
                actor=admin,
                first_name="Base",
                last_name=f"Line{args.seed}x{i}",
                dob=date(1990, 1, 1 + i % 28),
                email="",
                phone_mobile="",
            )
    per_row = (time.perf_counter() - started) / args.baseline
    print(
        f"  naive_per_row         {per_row * args.rows:8.1f} s   (create_client per row, "
        f"{per_row * 1000:.0f} ms x {args.rows:,}, without opening balances)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
