"""Bringing a practice's clients over from another system (spec A5, issue 14).

``run_import`` reads a CSV or XLSX file (``reading``), matches its columns to fields
(``headers``), checks every row (``rows``) and the duplicate rule (``duplicates``), and — unless
it is a dry run — writes the accepted rows in one transaction (``writing``): all of them, or,
when a row is invalid, none, unless ``skip_invalid``. Opening balances become ledger entries
("Opening balance", with their date of service), so aging, statements and reconciliation are
right from the first day. Every import that writes is audited: who, when, the file, counts.
Importing the same file again creates nothing: each row is then a duplicate (by the old
system's id, or by name and date of birth, which every row must have without an id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib import audit, db
from lib.clients import fold
from lib.models import Clinician, Payer
from lib.policy import Actor, require
from lib.timeutil import practice_day, utcnow

from . import duplicates, headers, rows, writing
from .headers import Mapping, MappingProblem
from .reading import FileProblem, Table, read_table

__all__ = [
    "FileProblem",
    "ImportReport",
    "MappingProblem",
    "Outcome",
    "prepare",
    "run_import",
]


@dataclass(frozen=True)
class Outcome:
    row: int
    kind: str  # "new", "duplicate", "possible", "invalid"
    reasons: tuple[str, ...] = ()
    of: str = ""  # "#1042" (a client) or "row 7" (an earlier row of the file)
    client_number: int | None = None  # the client it became (a real run)

    def text(self, *, dry_run: bool, allow_possible: bool) -> str:
        if self.kind == "new":
            done = f"imported as #{self.client_number}" if self.client_number else "new"
            return f"Row {self.row}: {done}" if not dry_run else f"Row {self.row}: new"
        if self.kind == "duplicate":
            return f"Row {self.row}: duplicate of {self.of} ({', '.join(self.reasons)}), skipped"
        if self.kind == "possible":
            if allow_possible:
                done = f"imported as #{self.client_number}" if self.client_number else "imported"
                what = "would be imported" if dry_run else done
                return (
                    f"Row {self.row}: possible duplicate of {self.of} "
                    f"({', '.join(self.reasons)}), {what} (--allow-possible-duplicates)"
                )
            return (
                f"Row {self.row}: possible duplicate of {self.of} ({', '.join(self.reasons)}), "
                "not imported (check it; --allow-possible-duplicates imports it)"
            )
        return f"Row {self.row}: invalid: " + " ".join(self.reasons)


@dataclass
class ImportReport:
    filename: str
    description: str
    date_order: str
    mapping: list[str]
    unmatched: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    dry_run: bool = False
    skip_invalid: bool = False
    allow_possible: bool = False
    written: bool = False
    imported: int = 0
    opening_entries: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for o in self.outcomes if o.kind == kind)

    @property
    def invalid(self) -> int:
        return self.count("invalid")

    @property
    def skipped_duplicates(self) -> int:
        possible = 0 if self.allow_possible else self.count("possible")
        return self.count("duplicate") + possible

    @property
    def would_import(self) -> int:
        return self.count("new") + (self.count("possible") if self.allow_possible else 0)

    @property
    def stopped(self) -> bool:
        """Invalid rows stopped a real run (nothing was written)."""
        return not self.dry_run and bool(self.invalid) and not self.skip_invalid

    @property
    def exit_code(self) -> int:
        if self.dry_run:
            return 1 if self.invalid else 0
        return 1 if self.stopped else 0

    def summary(self) -> str:
        return (
            f"{self.imported} imported, {self.skipped_duplicates} duplicates skipped, "
            f"{self.invalid} invalid"
        )

    def header_lines(self) -> list[str]:
        lines = [
            f"File: {self.filename} ({self.description}), {len(self.outcomes)} rows.",
            f"Date order: {rows.DATE_ORDERS[self.date_order]}; {rows.DOTTED_NOTE}.",
            "Columns: " + "; ".join(self.mapping) + ".",
        ]
        if self.unmatched:
            lines.append(
                "Not imported (no matching field): "
                + ", ".join(repr(h) for h in self.unmatched)
                + ". Use --map FIELD=COLUMN to use one."
            )
        return lines

    def lines(self) -> list[str]:
        """What the command prints; the last line is the summary."""
        out = self.header_lines()
        out += [
            o.text(dry_run=self.dry_run, allow_possible=self.allow_possible) for o in self.outcomes
        ]
        if self.dry_run:
            out.append(
                f"Dry run, nothing was written: {self.would_import} would be imported, "
                f"{self.skipped_duplicates} duplicates would be skipped, {self.invalid} invalid."
            )
        elif self.stopped:
            out.append(
                f"Nothing was imported: {self.invalid} "
                f"{'row is' if self.invalid == 1 else 'rows are'} invalid. Correct them, or "
                "import the valid rows with --skip-invalid."
            )
        elif self.opening_entries:
            out.append(f"Opening balances posted: {self.opening_entries} ledger entries.")
        out.append(self.summary())
        return out


def prepare(
    data: bytes, filename: str, overrides: dict[str, str | None] | None = None
) -> tuple[Table, Mapping]:
    """Read the file and match its columns (raises FileProblem or MappingProblem)."""
    table = read_table(data, filename)
    mapping = headers.build(table.headers, overrides)
    missing = [headers.BY_KEY[k].label for k in headers.REQUIRED if k not in mapping.columns]
    if missing:
        raise MappingProblem(
            "No column was recognised as the "
            + " or the ".join(missing)
            + ". Name it with --map (like --map first_name='Given') or in the mapping table. "
            + "The file's columns: "
            + ", ".join(repr(h) for h in table.headers if h)
            + "."
        )
    return table, mapping


def _context(session: Session, date_order: str) -> rows.Context:
    found = session.execute(
        select(Clinician.id, Clinician.first_name, Clinician.last_name, Clinician.active).order_by(
            Clinician.last_name, Clinician.first_name
        )
    ).all()
    lookup, names = rows.clinician_lookup([tuple(r) for r in found])
    payers = {fold(name): pid for pid, name in session.execute(select(Payer.id, Payer.name))}
    return rows.Context(
        today=practice_day(utcnow()),
        date_order=date_order,
        clinicians=lookup,
        clinician_names=names,
        payers=payers,
    )


def _check(
    session: Session, table: Table, mapping: Mapping, report: ImportReport
) -> list[rows.Row]:
    """Every row's outcome into ``report``; returns the rows to write."""
    ctx = _context(session, report.date_order)
    ctx.cents = mapping.cents
    index = duplicates.load_practice(session)
    accepted: list[rows.Row] = []
    for number, cells in table.rows:
        values = {k: (cells[i] if i < len(cells) else "") for k, i in mapping.columns.items()}
        row = rows.parse_row(number, values, ctx)
        if not row.valid:
            report.outcomes.append(Outcome(number, "invalid", tuple(row.errors)))
            continue
        verdict = index.check(row.values)
        of = verdict.of.label if verdict.of else ""
        report.outcomes.append(Outcome(number, verdict.kind, verdict.reasons, of))
        if verdict.kind == "new" or (verdict.kind == "possible" and report.allow_possible):
            index.add(duplicates.from_row(number, row.values))
            accepted.append(row)
    return accepted


def run_import(
    engine,
    *,
    actor: Actor | None,
    data: bytes,
    filename: str,
    overrides: dict[str, str | None] | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    allow_possible_duplicates: bool = False,
    date_order: str = "MDY",
    source: str = "",
) -> ImportReport:
    """Check (and unless ``dry_run`` write) one file; see the module docstring. ``actor`` None
    is the command line (``source`` says who ran it, for the audit). Raises FileProblem or
    MappingProblem before anything is read from the database when the file cannot be used."""
    if actor is not None:
        require(actor, "clients.import")
    if date_order not in rows.DATE_ORDERS:
        raise MappingProblem("The date order is MDY (month first) or DMY (day first).")
    table, mapping = prepare(data, filename, overrides)

    def new_report() -> ImportReport:
        return ImportReport(
            filename=filename,
            description=table.description,
            date_order=date_order,
            mapping=mapping.describe(),
            unmatched=mapping.unmatched,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            allow_possible=allow_possible_duplicates,
        )

    if dry_run:
        report = new_report()
        with db.read_session(engine) as session:
            _check(session, table, mapping, report)
        return report

    digest = hashlib.sha256(data).hexdigest()

    def work(session: Session) -> ImportReport:
        report = new_report()  # afresh on every attempt (db.write may run this again)
        accepted = _check(session, table, mapping, report)
        if report.stopped:
            return report
        now = utcnow()
        numbers, entries = writing.write_rows(
            session, rows=accepted, actor=actor, now=now, filename=filename
        )
        report.outcomes = [
            Outcome(o.row, o.kind, o.reasons, o.of, numbers.get(o.row)) for o in report.outcomes
        ]
        report.imported, report.opening_entries, report.written = len(accepted), entries, True
        audit.record(
            session,
            actor=actor,
            action="clients.import",
            entity="import",
            entity_id=digest[:16],
            after={
                "file": filename,
                "sha256": digest,
                "rows": len(report.outcomes),
                "imported": report.imported,
                "duplicates_skipped": report.skipped_duplicates,
                "invalid": report.invalid,
                "opening_balance_entries": entries,
                "date_order": date_order,
                "skip_invalid": skip_invalid,
                "allow_possible_duplicates": allow_possible_duplicates,
            },
            detail=f"{filename}: {report.summary()}" + (f"; run by {source}" if source else ""),
            at=now,
        )
        return report

    return db.write(engine, work)
