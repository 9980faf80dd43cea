"""Client statements as PDF (spec B5): open charges, recent payments, aging and amount due.

Each statement is stored under ``data/statements/`` with a server-made name and logged in the
client's Documents: "generated" when it was made for staff to download or print, or queued and
then sent (or failed) when it was emailed. A batch (by filter) makes one PDF with a page per
client. An emailed statement goes only to the client's own address with email consent, as a
PDF attachment; the email itself names no amount (spec: what an email may carry).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from lib import audit, mail, outbox
from lib.aging import DEFAULT_EDGES, buckets
from lib.documents import Recipient, email_recipient
from lib.ledger import client_state
from lib.models import Client, DocumentLogEntry, LedgerEntry, PracticeSetting, Service
from lib.money import format_cents
from lib.policy import Actor, require, require_client_access
from lib.postings import METHOD_LABELS
from lib.timeutil import practice_now, practice_today, utcnow

FONT_PATHS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
)
RECENT_PAYMENT_DAYS = 90


@dataclass(frozen=True)
class StatementLine:
    service_date: date
    description: str
    charged_cents: int
    owed_cents: int


@dataclass(frozen=True)
class Statement:
    practice_name: str
    statement_date: date
    client_number: int
    client_name: str
    address_lines: list[str]
    open_lines: list[StatementLine]
    payments: list[tuple[date, str, int]]
    aging: list[tuple[str, int]]
    client_due_cents: int
    credit_cents: int
    insurance_pending_cents: int

    @property
    def amount_due_cents(self) -> int:
        return max(self.client_due_cents - self.credit_cents, 0)


def build_statement(
    session: Session, *, actor: Actor, client_id: int, today: date | None = None
) -> Statement:
    """What a statement says, from the ledger itself (not the projections)."""
    client = session.get(Client, client_id)
    require_client_access(actor, "statement.create", client.clinician_id if client else None)
    today = today or practice_today()
    state = client_state(session, client_id)
    entries = {
        e.id: e
        for e in session.scalars(select(LedgerEntry).where(LedgerEntry.client_id == client_id))
    }
    services = {s.id: s for s in session.scalars(select(Service))}
    open_lines = []
    for item in sorted(state.open_items, key=lambda i: (i.service_date, i.charge_entry_id)):
        if item.responsibility != "client":
            continue
        entry = entries.get(item.charge_entry_id)
        service = services.get(entry.service_id) if entry and entry.service_id else None
        if service is not None:
            description = f"{service.code} {service.description}"
        elif entry is not None and entry.kind == "refund":
            description = "Refund in excess of credit"
        else:
            description = (entry.memo if entry else "") or "Charge"
        open_lines.append(
            StatementLine(
                item.service_date,
                description,
                entry.amount_cents if entry else item.open_cents,
                item.open_cents,
            )
        )
    reversed_ids = {e.reverses_entry_id for e in entries.values() if e.kind == "reversal"}
    since = today - timedelta(days=RECENT_PAYMENT_DAYS)
    payments = [
        (e.service_date, METHOD_LABELS.get(e.method, "Payment"), e.amount_cents)
        for e in sorted(entries.values(), key=lambda e: e.id)
        if e.kind == "payment"
        and e.responsibility == "client"
        and e.service_date >= since
        and e.id not in reversed_ids
    ]
    aging = []
    for b in buckets(DEFAULT_EDGES):
        oldest, newest = b.date_range(today)
        cents = sum(
            i.open_cents
            for i in state.open_items
            if i.responsibility == "client"
            and i.service_date <= newest
            and (oldest is None or i.service_date >= oldest)
        )
        aging.append((f"{b.label} days", cents))
    practice = session.get(PracticeSetting, "practice_name")
    address = [
        client.address_line1,
        client.address_line2,
        " ".join(
            p
            for p in (f"{client.city}," if client.city else "", client.state, client.zip_code)
            if p
        ),
    ]
    return Statement(
        practice_name=practice.value if practice else "Your practice",
        statement_date=today,
        client_number=client.client_number,
        client_name=f"{client.first_name} {client.last_name}",
        address_lines=[line for line in address if line.strip()],
        open_lines=open_lines,
        payments=payments,
        aging=aging,
        client_due_cents=state.client_due_cents,
        credit_cents=state.unapplied_credit_cents,
        insurance_pending_cents=state.insurance_pending_cents,
    )


def _pdf() -> tuple[FPDF, str]:
    pdf = FPDF(format="Letter")
    pdf.set_auto_page_break(auto=True, margin=18)
    for path in FONT_PATHS:
        if path.exists():
            pdf.add_font("Body", "", str(path))
            return pdf, "Body"
    return pdf, "Helvetica"


def _safe(text: str, font: str) -> str:
    # The built-in PDF font only has Latin-1; a Unicode font is used when the machine has one.
    return text if font != "Helvetica" else text.encode("latin-1", "replace").decode("latin-1")


def render(statements: list[Statement]) -> bytes:
    """One page (or more) per statement, in order."""
    pdf, font = _pdf()
    for st in statements:
        pdf.add_page()
        pdf.set_font(font, size=16)
        pdf.cell(0, 9, _safe(st.practice_name, font), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(font, size=11)
        pdf.cell(
            0, 6, f"Statement date: {st.statement_date:%m/%d/%Y}", new_x="LMARGIN", new_y="NEXT"
        )
        pdf.cell(0, 6, f"Account number: {st.client_number}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        for line in [st.client_name, *st.address_lines]:
            pdf.cell(0, 6, _safe(line, font), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font(font, size=13)
        pdf.cell(
            0, 8, f"Amount due: {format_cents(st.amount_due_cents)}", new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_font(font, size=10)
        if st.credit_cents:
            pdf.cell(
                0,
                6,
                f"Credit on account: {format_cents(st.credit_cents)}",
                new_x="LMARGIN",
                new_y="NEXT",
            )
        if st.insurance_pending_cents:
            pdf.cell(
                0,
                6,
                "Pending with your insurance (not yet due from you): "
                f"{format_cents(st.insurance_pending_cents)}",
                new_x="LMARGIN",
                new_y="NEXT",
            )
        pdf.ln(3)
        pdf.set_font(font, size=11)
        pdf.cell(0, 7, "Open charges", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(font, size=9)
        widths = (28, 100, 30, 30)
        for text, w in zip(("Date", "Service", "Charged", "Still owed"), widths, strict=True):
            pdf.cell(w, 6, text, border="B")
        pdf.ln()
        for line in st.open_lines:
            pdf.cell(widths[0], 6, f"{line.service_date:%m/%d/%Y}")
            pdf.cell(widths[1], 6, _safe(line.description[:60], font))
            pdf.cell(widths[2], 6, format_cents(line.charged_cents), align="R")
            pdf.cell(widths[3], 6, format_cents(line.owed_cents), align="R")
            pdf.ln()
        if not st.open_lines:
            pdf.cell(0, 6, "No open charges.", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font(font, size=11)
        pdf.cell(
            0, 7, f"Payments in the last {RECENT_PAYMENT_DAYS} days", new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_font(font, size=9)
        for day, method, cents in st.payments:
            pdf.cell(28, 6, f"{day:%m/%d/%Y}")
            pdf.cell(100, 6, method)
            pdf.cell(30, 6, format_cents(cents), align="R")
            pdf.ln()
        if not st.payments:
            pdf.cell(0, 6, "No recent payments.", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font(font, size=11)
        pdf.cell(0, 7, "Aging of the amount you owe", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(font, size=9)
        for label, _ in st.aging:
            pdf.cell(37, 6, label, border="B", align="R")
        pdf.ln()
        for _, cents in st.aging:
            pdf.cell(37, 6, format_cents(cents), align="R")
        pdf.ln()
    return bytes(pdf.output())


def _store(data_dir: Path, content: bytes) -> str:
    folder = data_dir / "statements"
    folder.mkdir(parents=True, exist_ok=True)
    # At most 40 characters: the name is the audit row's entity id (VARCHAR(40)).
    name = f"statement-{practice_now():%Y%m%d-%H%M%S}-{secrets.token_hex(5)}.pdf"
    (folder / name).write_bytes(content)
    return name


def create_statements(
    session: Session,
    *,
    actor: Actor,
    client_ids: list[int],
    data_dir: Path,
    today: date | None = None,
) -> tuple[bytes, str]:
    """Build, store and log statements for the clients; returns (pdf bytes, stored file name).

    Logged as "generated": the PDF is handed to staff, nobody has sent it yet."""
    require(actor, "statement.create")
    if not client_ids:
        raise ValueError("Choose at least one client.")
    statements = [
        build_statement(session, actor=actor, client_id=c, today=today) for c in client_ids
    ]
    content = render(statements)
    name = _store(data_dir, content)
    now = utcnow()
    for client_id, st in zip(client_ids, statements, strict=True):
        session.add(
            DocumentLogEntry(
                client_id=client_id,
                kind="statement",
                sent_at=now,
                sender_user_id=actor.user_id,
                recipient="",
                form_names="Statement",
                attachment_names=name,
                channel="pdf",
                status="generated",
                error="",
            )
        )
        audit.record(
            session,
            actor=actor,
            action="statement.create",
            entity="statement",
            entity_id=name,
            client_id=client_id,
            detail=f"amount_due_cents={st.amount_due_cents}",
        )
    return content, name


class StatementNotEmailed(ValueError):
    """The statement cannot be emailed (no address, no consent); nothing was queued."""


def statement_email_text(practice_name: str) -> tuple[str, str]:
    """(subject, body): the practice and the kind of message, and no amount."""
    return (
        f"Your statement from {practice_name}",
        f"Hello,\n\nYour statement from {practice_name} is attached as a PDF.\n\n"
        "If you have a question about it, please contact us.\n\n"
        f"{practice_name}\n",
    )


def statement_recipient(session: Session, *, actor: Actor, client_id: int) -> Recipient:
    """Where an emailed statement would go, or why it cannot be emailed (for the button)."""
    client = session.get(Client, client_id)
    require_client_access(actor, "statement.create", client.clinician_id if client else None)
    return email_recipient(client)


def email_statement(
    session: Session,
    *,
    actor: Actor,
    client_id: int,
    data_dir: Path,
    mail_settings: mail.MailSettings,
    today: date | None = None,
) -> outbox.Queued:
    """Make the client's statement and queue it, attached, for the client's own address.

    Raises ``StatementNotEmailed`` when the client has no valid address or did not agree to
    be emailed. Logged as queued, then sent or failed by the worker.
    """
    statement = build_statement(session, actor=actor, client_id=client_id, today=today)
    client = session.get(Client, client_id)
    recipient = email_recipient(client)
    if recipient.problem:
        raise StatementNotEmailed(recipient.problem)
    content = render([statement])
    name = _store(data_dir, content)
    subject, body = statement_email_text(statement.practice_name)
    try:
        message = mail.build_message(
            mail_settings,
            to=recipient.address,
            subject=subject,
            body=body,
            attachments=[
                mail.Attachment(
                    f"statement-{statement.statement_date:%Y-%m-%d}.pdf",
                    content,
                    "application/pdf",
                )
            ],
        )
    except mail.MailError as exc:
        raise StatementNotEmailed(str(exc)) from None
    queued = outbox.queue_email(
        session,
        actor=actor,
        client_id=client_id,
        kind="statement",
        what="Statement",
        message=message,
        attachment_names=name,
    )
    audit.record(
        session,
        actor=actor,
        action="statement.email",
        entity="statement",
        entity_id=name,
        client_id=client_id,
        detail=f"document={queued.document_id} amount_due_cents={statement.amount_due_cents}",
    )
    return queued
