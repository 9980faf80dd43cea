"""Command line: ``python -m lib.cli COMMAND`` (spec A4).

migrate        apply Alembic migrations to DATABASE_URL (or data/clientdesk.db), as the owner
               role of CLIENTDESK_MIGRATION_DATABASE_URL when that is set
seed-demo      load the demo practice into an empty database (``--clients N``; ``--if-empty``
               for `make run`: reuse a demo database, refuse a real practice's)
demo-logins    print the demo logins as a table
create-user    create a staff account (the first admin: ``--role admin``)
create-clinician  add a clinician (``--first``, ``--last``; optionally credentials, email,
               default service code and the username of their staff account)
reset-password set a new password for a staff account
import-clients import clients (and opening balances) from a CSV or XLSX file: ``--dry-run``
               checks only; ``--map FIELD=COLUMN``; ``--skip-invalid``;
               ``--allow-possible-duplicates``; ``--date-order MDY|DMY``
reconcile      check ledger = stored balances = aging; exit 1 when anything disagrees
send-reminders queue due appointment reminders and send the email outbox once
               (``--now ISO`` to act as if it were then)
worker         run until stopped: send the email outbox and due reminders every minute
check          exit 0 when the database is reachable and migrated (and, in demo mode or with a
               key in the environment, the cookie key is allowed for this database)
ar-trend       month-end A/R and KPIs for the last N months (``--months N``, ``--clinician ID``,
               ``--payer ID``, ``--json`` for one object per month)
export-all     every practice table as CSV in one zip with a README (``--to FILE.zip``)
backup         write one archive of the database and data/ (``--to FILE``), online
restore        restore such an archive (``--force`` replaces a target that holds data)
"""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
import threading
from pathlib import Path

from lib import (
    auth,
    backup,
    client_import,
    clinicians,
    data_export,
    mail,
    restore,
    services,
    worker,
)
from lib.config import ConfigurationError, cookie_key_for, load_settings
from lib.db import DatabaseNotReady, check_ready, make_engine, read_session, transaction
from lib.demo import DEMO_LOGINS, DemoRefused, is_demo_database, seed_demo
from lib.migrate import migrate
from lib.money import format_cents
from lib.policy import ALL_ROLES
from lib.reconcile import reconcile
from lib.reminder_sender import parse_instant
from lib.validation import ValidationError


def _engine():
    return make_engine(load_settings().database_url)


def _read_password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise SystemExit("No terminal to ask for a password: pass --password-stdin.")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise SystemExit("The passwords do not match.")
    return first


def cmd_migrate(_args) -> int:
    settings = load_settings()
    migrate(settings)  # as CLIENTDESK_MIGRATION_DATABASE_URL's owner role when it is set
    check_ready(make_engine(settings.database_url))
    print("Database is at the current schema revision.")
    return 0


def cmd_check(_args) -> int:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        check_ready(engine)
        with read_session(engine) as session:
            demo = is_demo_database(session)
        if settings.demo_mode or settings.cookie_key:
            # (A key in .streamlit/secrets.toml is the app's to read; the demo key is refused
            # here as it is there.)
            cookie_key_for(settings, demo_database=demo)
    except (DatabaseNotReady, ConfigurationError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print("Database reachable and migrated" + (" (the demo practice)." if demo else "."))
    return 0


def cmd_seed_demo(args) -> int:
    engine = _engine()
    check_ready(engine)
    with read_session(engine) as session:
        already = is_demo_database(session)
    if already and args.if_empty:
        print("Demo data already loaded; reusing the existing database.")
        return 0
    try:
        summary = seed_demo(engine, clients=args.clients, seed=args.seed)
    except DemoRefused as exc:
        print(str(exc), file=sys.stderr)
        if not already:
            print(
                "To serve this practice, set CLIENTDESK_DEMO=0 and CLIENTDESK_COOKIE_KEY "
                "(README: Setting up a real practice). A demo database made by an older "
                "ClientDesk does not say it is a demo: move data/clientdesk.db away and run "
                "`make run` again for a fresh one.",
                file=sys.stderr,
            )
        return 1
    print(
        f"Loaded the demo practice: {summary.clients:,} clients, "
        f"{summary.appointments:,} appointments, {summary.ledger_entries:,} ledger entries "
        f"in {summary.seconds:.1f} s."
    )
    return 0


def cmd_demo_logins(_args) -> int:
    print("Demo logins (demo data only):")
    print(f"  {'Role':<11} {'Username':<10} Password")
    for role, username, password, _ in DEMO_LOGINS:
        print(f"  {role:<11} {username:<10} {password}")
    return 0


def cmd_create_user(args) -> int:
    engine = _engine()
    check_ready(engine)
    password = _read_password(args)
    try:
        with transaction(engine) as session:
            auth.create_user(
                session,
                actor=None,
                username=args.username,
                display_name=args.name,
                role=args.role,
                password=password,
                email=args.email or "",
                clinician_id=args.clinician_id,
            )
    except auth.AuthError as exc:
        print(f"Not created: {exc}", file=sys.stderr)
        return 2
    print(f"Created {args.role} account {auth.normalise_username(args.username)!r}.")
    return 0


def cmd_create_clinician(args) -> int:
    engine = _engine()
    check_ready(engine)
    changes = {
        "first_name": args.first,
        "last_name": args.last,
        "credentials": args.credentials or "",
        "email": args.email or "",
        "username": args.username or "",
    }
    try:
        with transaction(engine) as session:
            if args.default_service:
                codes = {s.code.lower(): s.service_id for s in services.list_services(session)}
                if args.default_service.lower() not in codes:
                    raise ValidationError(
                        {"default_service_id": f"There is no service {args.default_service!r}."}
                    )
                changes["default_service_id"] = codes[args.default_service.lower()]
            clinician_id = clinicians.save_clinician(session, actor=None, changes=changes)
    except ValidationError as exc:
        for message in exc.errors.values():
            print(f"Not created: {message}", file=sys.stderr)
        return 2
    print(f"Created clinician {args.first} {args.last} (id {clinician_id}).")
    return 0


def cmd_import_clients(args) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"Cannot read {path}: {exc.strerror}.", file=sys.stderr)
        return 2
    engine = _engine()
    check_ready(engine)
    try:
        overrides = client_import.headers.parse_overrides(args.map or [])
        report = client_import.run_import(
            engine,
            actor=None,
            data=data,
            filename=path.name,
            overrides=overrides,
            dry_run=args.dry_run,
            skip_invalid=args.skip_invalid,
            allow_possible_duplicates=args.allow_possible_duplicates,
            date_order=args.date_order,
            source=f"the command line (user {getpass.getuser()})",
        )
    except (client_import.FileProblem, client_import.MappingProblem) as exc:
        print(f"Nothing was imported: {exc}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    return report.exit_code


def cmd_export_all(args) -> int:
    target = Path(args.to)
    if target.suffix.lower() != ".zip":
        print("--to must name a .zip file.", file=sys.stderr)
        return 2
    engine = _engine()
    check_ready(engine)
    with transaction(engine) as session:  # one snapshot of every table, and its audit row
        result = data_export.export_all(
            session, actor=None, source=f"the command line (user {getpass.getuser()})"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(result.data)
    print(
        f"Exported {len(result.tables)} tables ({sum(result.tables.values()):,} rows) to {target}."
    )
    return 0


def cmd_reset_password(args) -> int:
    engine = _engine()
    check_ready(engine)
    password = _read_password(args)
    try:
        with transaction(engine) as session:
            auth.set_password(session, actor=None, username=args.username, new_password=password)
    except auth.AuthError as exc:
        print(f"Not changed: {exc}", file=sys.stderr)
        return 2
    print(f"Password changed for {args.username!r}; its old sessions are signed out.")
    return 0


def cmd_reconcile(_args) -> int:
    engine = _engine()
    check_ready(engine)
    with read_session(engine) as session:
        result = reconcile(session, actor=None)
    print(f"Ledger total (not reversed):   {format_cents(result.ledger_total_cents):>16}")
    print(f"Stored client balances:        {format_cents(result.balances_total_cents):>16}")
    print(f"Aging buckets less credit:     {format_cents(result.aging_total_cents):>16}")
    print(f"Clients checked: {result.clients_checked:,}")
    for problem in result.totals_problems:
        print(f"  {problem}")
    for m in result.mismatches[:200]:
        print(
            f"  client #{m.client_number}: stored {format_cents(m.stored_total_cents)}, "
            f"ledger {format_cents(m.ledger_total_cents)} ({m.detail})"
        )
    if len(result.mismatches) > 200:
        print(f"  ... and {len(result.mismatches) - 200:,} more clients")
    print("Reconciled: everything agrees." if result.ok else "NOT RECONCILED.")
    return 0 if result.ok else 1


def cmd_ar_trend(args) -> int:
    import json

    from lib import ar_trend

    engine = _engine()
    check_ready(engine)
    try:
        with read_session(engine) as session:
            months = ar_trend.trend(
                session,
                actor=None,
                months=args.months,
                clinician_id=args.clinician,
                payer_id=args.payer,
            )
            for month in months:
                month["days_to_payment"] = ar_trend.period_days_to_payment(
                    session,
                    actor=None,
                    month=month["month_end"],
                    clinician_id=args.clinician,
                    payer_id=args.payer,
                )
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(months, default=str, indent=2))
        return 0

    def pct(value) -> str:
        return "" if value is None else f"{value:.1%}"

    def money(cents) -> str:
        return "" if cents is None else format_cents(cents)

    print(
        f"{'Month end':<12}{'Net A/R':>15}{'Client':>14}{'Insurance':>14}{'Charges':>14}"
        f"{'Payments':>14}{'Adjustments':>14}{'Days A/R':>10}{'GCR':>8}{'NCR':>8}"
        f"{'>90':>7}{'>120':>7}"
    )
    for m in months:
        days = "" if m["days_in_ar"] is None else f"{m['days_in_ar']:.1f}"
        mark = "*" if m["partial"] else ""
        print(
            f"{m['month_end'].isoformat() + mark:<12}{money(m['net_ar_cents']):>15}"
            f"{money(m['client_cents']):>14}{money(m['insurance_cents']):>14}"
            f"{money(m['charges_cents']):>14}{money(m['payments_cents']):>14}"
            f"{money(m['adjustments_cents']):>14}{days:>10}"
            f"{pct(m['gross_collection_rate']):>8}{pct(m['net_collection_rate']):>8}"
            f"{pct(m['pct_ar_over_90']):>7}{pct(m['pct_ar_over_120']):>7}"
        )
    if months and months[-1]["partial"]:
        print("* this month so far (as of today)")
    return 0


def cmd_send_reminders(args) -> int:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    check_ready(engine)
    try:
        now = parse_instant(args.now, settings.practice_time_zone) if args.now else None
    except ValueError:
        print("--now must be an ISO date and time, like 2026-12-01T09:00.", file=sys.stderr)
        return 2
    done = worker.run_round(
        engine,
        now=now,
        mail_settings=mail.mail_settings(settings.data_dir),
        practice_tz=settings.practice_time_zone,
    )
    print(done.reminders.summary())
    delivery = done.delivery
    print(
        f"Emails sent: {delivery.sent}. Failed, trying again later: {delivery.retrying}. "
        f"Failed for good: {delivery.failed}."
    )
    return 1 if done.reminders.failed or delivery.retrying or delivery.failed else 0


def cmd_worker(args) -> int:
    """Runs until SIGTERM or Ctrl-C, then exits 0 once the message in hand is recorded."""
    if args.interval <= 0 or args.poll <= 0:
        print("--interval and --poll must be positive numbers of seconds.", file=sys.stderr)
        return 2
    settings = load_settings()
    engine = make_engine(settings.database_url)
    check_ready(engine)
    stop = threading.Event()

    def request_stop(_signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker.run_forever(
        engine,
        mail_settings=mail.mail_settings(settings.data_dir),
        practice_tz=settings.practice_time_zone,
        stop=stop,
        interval=args.interval,
        poll=min(args.poll, args.interval),
        say=lambda line: print(line, flush=True),
    )
    engine.dispose()
    return 0


def cmd_backup(args) -> int:
    try:
        done = backup.create_backup(load_settings(), to=Path(args.to) if args.to else None)
    except backup.BackupError as exc:
        print(f"No backup was written: {exc}", file=sys.stderr)
        return 1
    print(
        f"Backup written to {done.path} ({done.engine}, schema {done.revision}, "
        f"{done.files} files, {done.size_bytes / 1e6:.1f} MB) in {done.seconds:.1f} s."
    )
    return 0


def cmd_restore(args) -> int:
    try:
        done = restore.restore_backup(load_settings(), Path(args.file), force=args.force)
    except backup.BackupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    for check in done.checks:
        print(f"  ok  {check}")
    print(
        f"Restored {done.clients:,} clients and {done.ledger_entries:,} ledger entries "
        f"({done.engine}, schema {done.revision}) in {done.seconds:.1f} s."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lib.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("check", help="is the database ready?").set_defaults(func=cmd_check)
    seed = sub.add_parser("seed-demo", help="load the demo practice")
    seed.add_argument("--clients", type=int, default=300)
    seed.add_argument("--seed", type=int, default=20261126)
    seed.add_argument(
        "--if-empty", action="store_true", help="do nothing (exit 0) when clients already exist"
    )
    seed.set_defaults(func=cmd_seed_demo)
    sub.add_parser("reconcile", help="check the ledger against balances and aging").set_defaults(
        func=cmd_reconcile
    )
    trend = sub.add_parser("ar-trend", help="month-end A/R and KPIs for the last N months")
    trend.add_argument("--months", type=int, default=12)
    trend.add_argument("--clinician", type=int, default=None, help="clinician id")
    trend.add_argument("--payer", type=int, default=None, help="payer id (from the payer list)")
    trend.add_argument("--json", action="store_true", help="one JSON object per month")
    trend.set_defaults(func=cmd_ar_trend)
    sub.add_parser("demo-logins", help="print the demo logins").set_defaults(func=cmd_demo_logins)
    remind = sub.add_parser(
        "send-reminders", help="queue due appointment reminders and send the email outbox once"
    )
    remind.add_argument(
        "--now", help="act as if it were this ISO time (no offset: the practice's time zone)"
    )
    remind.set_defaults(func=cmd_send_reminders)
    work = sub.add_parser("worker", help="send email and reminders until stopped (SIGTERM)")
    work.add_argument(
        "--interval",
        type=float,
        default=worker.DEFAULT_INTERVAL,
        help="seconds between reminder rounds and heartbeats (default 60)",
    )
    work.add_argument(
        "--poll",
        type=float,
        default=worker.DEFAULT_POLL,
        help="seconds between looks at the email outbox (default 10)",
    )
    work.set_defaults(func=cmd_worker)
    create = sub.add_parser("create-user", help="create a staff account")
    create.add_argument("--role", required=True, choices=ALL_ROLES)
    create.add_argument("--username", required=True)
    create.add_argument("--name", required=True, help="the person's name, shown in the app")
    create.add_argument("--email")
    create.add_argument("--clinician-id", type=int)
    create.add_argument("--password-stdin", action="store_true")
    create.set_defaults(func=cmd_create_user)
    clin = sub.add_parser("create-clinician", help="add a clinician")
    clin.add_argument("--first", required=True, help="first name")
    clin.add_argument("--last", required=True, help="last name")
    clin.add_argument("--credentials", help="like LCSW or PhD")
    clin.add_argument("--email")
    clin.add_argument("--default-service", metavar="CODE", help="a service code, like 90834")
    clin.add_argument("--username", help="link this staff account to the clinician")
    clin.set_defaults(func=cmd_create_clinician)
    reset = sub.add_parser("reset-password", help="set a new password for an account")
    reset.add_argument("--username", required=True)
    reset.add_argument("--password-stdin", action="store_true")
    reset.set_defaults(func=cmd_reset_password)
    imp = sub.add_parser("import-clients", help="import clients from a CSV or XLSX file")
    imp.add_argument("file", metavar="FILE", help="a .csv or .xlsx file, one client a row")
    imp.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN",
        help="use this column for this field (repeatable); FIELD= ignores the field",
    )
    imp.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    imp.add_argument(
        "--skip-invalid", action="store_true", help="import the valid rows when some are invalid"
    )
    imp.add_argument(
        "--allow-possible-duplicates",
        action="store_true",
        help="import rows that only look like an existing client",
    )
    imp.add_argument(
        "--date-order",
        choices=("MDY", "DMY"),
        default="MDY",
        type=str.upper,
        help="3/7/1985 is March 7 (MDY, the default) or 3 July (DMY)",
    )
    imp.set_defaults(func=cmd_import_clients)
    exp = sub.add_parser("export-all", help="every practice table as CSV in one zip")
    exp.add_argument("--to", required=True, metavar="FILE.zip")
    exp.set_defaults(func=cmd_export_all)
    back = sub.add_parser("backup", help="back up the database and data/ into one archive")
    back.add_argument("--to", metavar="FILE", help="default: data/backups/clientdesk-….tar.gz")
    back.set_defaults(func=cmd_backup)
    restore_cmd = sub.add_parser("restore", help="restore a backup archive (stop the app first)")
    restore_cmd.add_argument("file", metavar="FILE")
    restore_cmd.add_argument(
        "--force", action="store_true", help="replace a database or data/ that holds data"
    )
    restore_cmd.set_defaults(func=cmd_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # the database, backups, uploads and the outbox: owner only
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DatabaseNotReady as exc:
        print(str(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
