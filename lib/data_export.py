"""Taking the data out (spec A5, issue 14): every table the practice owns as CSV in one zip,
and one client's whole record for a right-of-access request.

Each zip holds one CSV per table (UTF-8 with a BOM, so spreadsheets show accents; a header
row; dates as YYYY-MM-DD, times in UTC ISO 8601; money in integer cents, as stored) and a
README naming every file's columns. Password hashes, token hashes, sign-in throttles and the
raw text of queued emails are left out. Text that a spreadsheet would run as a formula gets a
leading apostrophe (``lib.export.neutralise``); the import strips it again. Both exports are
audited: who, when, what, how many rows.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import LargeBinary, Table, select
from sqlalchemy.orm import Session

from lib import audit
from lib.export import neutralise
from lib.models import (
    AuditEntry,
    Base,
    Client,
    ClientStatusChange,
    Coverage,
    DocumentLogEntry,
    IntakeAnswer,
    IntakeQuestion,
    LedgerEntry,
)
from lib.policy import Actor, require, require_client_access
from lib.timeutil import utcnow

# Left out entirely: security machinery, not the practice's records.
SKIPPED_TABLES = {
    "sign_in_throttles": "wrong-password counts of typed usernames (security, not data)",
    "intake_rate_events": "hashed addresses of public intake submissions (abuse limits)",
    "worker_status": "the email worker's heartbeat",
}
# Left out of a table: secrets, and the raw bytes of queued emails.
SKIPPED_COLUMNS = {
    ("users", "password_hash"): "password hash (a secret)",
    ("portal_invitations", "token_hash"): "invitation token hash (a secret)",
    ("message_outbox", "claim_token"): "the worker's claim token",
    ("message_outbox", "message"): "the raw email as sent (its text is in the document log)",
}


@dataclass(frozen=True)
class ExportResult:
    data: bytes
    tables: dict[str, int]  # file name -> rows


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(neutralise(value) if isinstance(value, str) else value)


def _columns(table: Table) -> list:
    return [
        c
        for c in table.columns
        if (table.name, c.name) not in SKIPPED_COLUMNS and not isinstance(c.type, LargeBinary)
    ]


def _write_csv(zf: zipfile.ZipFile, name: str, header: list[str], rows: Iterable) -> int:
    count = 0
    with zf.open(name, "w") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
            count += 1
        text.flush()
        text.detach()
    return count


def _describe(table: Table) -> str:
    model = next((m for m in Base.registry.mappers if m.local_table is table), None)
    doc = (model.class_.__doc__ or "").strip().split("\n\n")[0] if model else ""
    return " ".join(doc.split())


def _type_name(column) -> str:
    name = type(column.type).__name__.lower()
    if column.name.endswith("_cents"):
        return "integer cents"
    return {"datetime": "UTC date-time", "string": "text", "biginteger": "integer"}.get(name, name)


def practice_tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def _readme(title: str, intro: list[str], files: list[tuple[str, str, int, list[str]]]) -> str:
    lines = [title, "=" * len(title), "", *intro, ""]
    for name, description, rows, columns in files:
        lines.append(f"{name}  ({rows:,} rows)")
        if description:
            lines.append(f"  {description}")
        lines.append("  Columns: " + ", ".join(columns))
        lines.append("")
    return "\r\n".join(lines) + "\r\n"


def export_all(session: Session, *, actor: Actor | None, source: str = "") -> ExportResult:
    """Every practice table as CSV in one zip, with a README; audited. ``actor`` None is the
    command line (``source`` says who ran it)."""
    if actor is not None:
        require(actor, "data.export_all")
    buffer = io.BytesIO()
    counts: dict[str, int] = {}
    files = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for table in practice_tables():
            columns = _columns(table)
            order = list(table.primary_key.columns) or columns[:1]
            query = select(*columns).order_by(*order).execution_options(yield_per=5000)
            name = f"{table.name}.csv"
            counts[name] = _write_csv(zf, name, [c.name for c in columns], session.execute(query))
            files.append(
                (
                    name,
                    _describe(table),
                    counts[name],
                    [f"{c.name} ({_type_name(c)})" for c in columns],
                )
            )
        intro = [
            f"Everything the practice keeps in ClientDesk, exported {utcnow():%Y-%m-%d %H:%M} UTC.",
            "One CSV file per table, UTF-8 with a byte-order mark, comma-separated, first row",
            "the column names. Dates are YYYY-MM-DD; date-times are UTC (ISO 8601); money is",
            "in integer cents (12050 is $120.50); true/false for yes/no. Rows refer to each",
            "other by id (clients.id = ledger_entries.client_id, and so on). Text that starts",
            "with = + - @ has a leading apostrophe, so a spreadsheet does not run it as a formula.",
            "",
            "Left out: "
            + "; ".join(f"{k} ({v})" for k, v in SKIPPED_TABLES.items())
            + "; "
            + "; ".join(f"{t}.{c} ({v})" for (t, c), v in SKIPPED_COLUMNS.items())
            + ".",
        ]
        zf.writestr("README.txt", _readme("ClientDesk data export", intro, files))
    audit.record(
        session,
        actor=actor,
        action="export",
        entity="all_data",
        after={"files": len(counts), "rows": sum(counts.values())},
        detail=f"format=zip tables={len(counts)} rows={sum(counts.values())}"
        + (f"; run by {source}" if source else ""),
    )
    return ExportResult(buffer.getvalue(), counts)


def export_client_record(session: Session, *, actor: Actor, client_id: int) -> ExportResult:
    """Everything held about one client, for a right-of-access request: the record, status
    history, insurance, intake answers (with their questions), the documents log, the ledger
    and the audit of the record. Audited on the client's history."""
    client = session.get(Client, client_id)
    if client is None:
        raise ValueError("no such client")
    require_client_access(actor, "client.export_record", client.clinician_id)
    buffer = io.BytesIO()
    counts: dict[str, int] = {}
    files = []

    def add(name: str, table: Table, where, order, extra: list | None = None) -> None:
        columns = _columns(table) + list(extra or [])
        query = select(*columns).where(where).order_by(*order)
        if extra:
            query = query.select_from(table).join(
                IntakeQuestion, IntakeQuestion.id == IntakeAnswer.question_id
            )
        counts[name] = _write_csv(zf, name, [c.name for c in columns], session.execute(query))
        files.append((name, _describe(table), counts[name], [c.name for c in columns]))

    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        add("client.csv", Client.__table__, Client.id == client_id, [Client.id])
        add(
            "status_history.csv",
            ClientStatusChange.__table__,
            ClientStatusChange.client_id == client_id,
            [ClientStatusChange.id],
        )
        add(
            "insurance.csv",
            Coverage.__table__,
            Coverage.client_id == client_id,
            [Coverage.rank, Coverage.id],
        )
        add(
            "intake_answers.csv",
            IntakeAnswer.__table__,
            IntakeAnswer.client_id == client_id,
            [IntakeQuestion.position, IntakeAnswer.id],
            extra=[IntakeQuestion.label.label("question")],
        )
        add(
            "documents_log.csv",
            DocumentLogEntry.__table__,
            DocumentLogEntry.client_id == client_id,
            [DocumentLogEntry.id],
        )
        add(
            "ledger.csv",
            LedgerEntry.__table__,
            LedgerEntry.client_id == client_id,
            [LedgerEntry.id],
        )
        add("audit.csv", AuditEntry.__table__, AuditEntry.client_id == client_id, [AuditEntry.id])
        intro = [
            f"Everything ClientDesk holds about client #{client.client_number}, exported "
            f"{utcnow():%Y-%m-%d %H:%M} UTC for a right-of-access request.",
            "UTF-8 CSV files; dates YYYY-MM-DD, date-times UTC; money in integer cents.",
        ]
        zf.writestr("README.txt", _readme("Client record export", intro, files))
    audit.record(
        session,
        actor=actor,
        action="export",
        entity="client_record",
        entity_id=client_id,
        client_id=client_id,
        detail=f"format=zip files={len(counts)} rows={sum(counts.values())}",
    )
    return ExportResult(buffer.getvalue(), counts)
