"""The forms library (spec D1): named forms with an email subject, body and attachments.

Admins keep the library; everyone who sends forms reads it. Two guards live here because a
form's text and files go to clients by plain email:

- Uploads are judged by their content (magic bytes), not their name, limited in size, and
  stored under ``<data_dir>/forms/`` with a server-made name and a SHA-256, never under a name
  or path the browser sent.
- A subject or body that looks like it carries health information (a date of birth, a name
  placeholder beyond ``{first_name}``, an SSN- or member-ID-like number) is refused, because
  email is not a safe channel for PHI.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from lib import audit
from lib.config import ConfigurationError, default_of, setting
from lib.edits import StaleEdit, last_change, refuse_if_stale
from lib.models import Form, FormAttachment
from lib.policy import Actor, require
from lib.timeutil import practice_today, utcnow
from lib.validation import FieldError, ValidationError, Validator, clean_text

PLACEHOLDER = "{first_name}"
DEFAULT_MAX_UPLOAD_MB: float = default_of("CLIENTDESK_MAX_UPLOAD_MB")
MAX_ATTACHMENTS_PER_FORM = 10
MAX_BODY_CHARS = 10_000
FORMS_FOLDER = "forms"

# kind -> (content type, file-name endings that may carry it, ending used on disk)
FILE_KINDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "pdf": ("application/pdf", (".pdf",), ".pdf"),
    "docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (".docx",),
        ".docx",
    ),
    "png": ("image/png", (".png",), ".png"),
    "jpeg": ("image/jpeg", (".jpg", ".jpeg"), ".jpg"),
}
KIND_LABELS = {"pdf": "PDF", "docx": "Word (DOCX)", "png": "PNG image", "jpeg": "JPEG image"}
UPLOAD_TYPES = ("pdf", "docx", "png", "jpg", "jpeg")  # for the browser's file picker
STORED_NAME = re.compile(r"^[0-9a-f]{32}\.(pdf|docx|png|jpg)$")
_NEW_FILES = "clientdesk_new_form_files"


class AttachmentUnavailable(RuntimeError):
    """A stored attachment is missing or no longer matches its checksum. Names no client."""


# --- uploads -------------------------------------------------------------------------------


def upload_limit_bytes(env: Mapping[str, str] | None = None) -> int:
    """The per-file limit from ``CLIENTDESK_MAX_UPLOAD_MB`` (default 10 MB); a value that
    makes no sense falls back to the default."""
    try:
        megabytes = setting("CLIENTDESK_MAX_UPLOAD_MB", env)
    except ConfigurationError:
        megabytes = DEFAULT_MAX_UPLOAD_MB
    if megabytes <= 0:
        megabytes = DEFAULT_MAX_UPLOAD_MB
    return int(megabytes * 1024 * 1024)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def sniff(content: bytes) -> str | None:
    """The kind of file the bytes really are (``pdf``, ``docx``, ``png``, ``jpeg``) or None.

    A DOCX is a ZIP holding a Word document part; a macro-enabled one (``vbaProject.bin``) or
    any other ZIP is refused. Only the ZIP directory is read, nothing is decompressed.
    """
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if content.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = {n.lower() for n in archive.namelist()}
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
        if "[content_types].xml" in names and "word/document.xml" in names:
            if any(n.endswith("vbaproject.bin") for n in names):
                return None
            return "docx"
    return None


def display_name(filename: str) -> str:
    """The file's own name without any folders a browser or attacker put in front of it."""
    name = PureWindowsPath(PurePosixPath(filename or "").name).name
    name = "".join(c for c in name if ord(c) >= 32 and c not in '<>:"/\\|?*').strip(" .")
    return name[-200:] if len(name) > 200 else name


@dataclass(frozen=True)
class CheckedUpload:
    original_name: str
    kind: str
    content_type: str
    size_bytes: int
    sha256: str


def check_upload(*, filename: str, content: bytes, max_bytes: int) -> CheckedUpload:
    """Accept a PDF, DOCX, PNG or JPEG whose content matches its name; raise ``FieldError``."""
    name = display_name(filename)
    if not name:
        raise FieldError("The file needs a name.")
    if not content:
        raise FieldError(f"{name} is empty.")
    if len(content) > max_bytes:
        raise FieldError(
            f"{name} is {_megabytes(len(content))}; files can be at most {_megabytes(max_bytes)}."
        )
    kind = sniff(content)
    if kind is None:
        raise FieldError(
            f"{name} is not a PDF, Word (DOCX), PNG or JPEG file, whatever its name says. "
            "Only those can be attached."
        )
    content_type, endings, _ = FILE_KINDS[kind]
    if not name.lower().endswith(endings):
        raise FieldError(
            f"{name} is really a {KIND_LABELS[kind]} file; rename it to end in {endings[0]} "
            "so clients can open it."
        )
    return CheckedUpload(
        original_name=name,
        kind=kind,
        content_type=content_type,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )


def forms_folder(data_dir: Path) -> Path:
    return Path(data_dir) / FORMS_FOLDER


def _discard_new_files(session: Session) -> None:
    for path in session.info.pop(_NEW_FILES, []):
        path.unlink(missing_ok=True)


def _keep_new_files(session: Session) -> None:
    session.info.pop(_NEW_FILES, None)


def _store(session: Session, data_dir: Path, content: bytes, kind: str) -> str:
    """Write the bytes under a new random name; the file goes away if the transaction fails."""
    folder = forms_folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = secrets.token_hex(16) + FILE_KINDS[kind][2]
    path = folder / stored_name
    with path.open("xb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    if not event.contains(session, "after_rollback", _discard_new_files):
        event.listen(session, "after_rollback", _discard_new_files)
        event.listen(session, "after_commit", _keep_new_files)
    session.info.setdefault(_NEW_FILES, []).append(path)
    return stored_name


def read_attachment(data_dir: Path, *, stored_name: str, sha256: str) -> bytes:
    """The stored bytes, only if the name is one we made and the checksum still matches."""
    if not STORED_NAME.match(stored_name or ""):
        raise AttachmentUnavailable("an attachment has an invalid stored name")
    try:
        content = (forms_folder(data_dir) / stored_name).read_bytes()
    except OSError:
        raise AttachmentUnavailable("an attachment file is missing on the server") from None
    if hashlib.sha256(content).hexdigest() != sha256:
        raise AttachmentUnavailable("an attachment file changed on the server")
    return content


# --- the PHI guard -------------------------------------------------------------------------

_MONTHS = {
    m: i
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for m in names
}
_MONTH = r"(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_PLACEHOLDER = re.compile(r"\{([^{}\n]{0,60})\}")
_MDY = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})\b")
_YMD = re.compile(r"\b(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})\b")
_MONTH_DAY_YEAR = re.compile(_MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I)
_DAY_MONTH_YEAR = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r",?\s+(\d{4})\b", re.I)
_BIRTH_WORD = re.compile(r"\b(d\.?o\.?b|date\s+of\s+birth|birth\s*date|birthday|born)\b", re.I)
_SSN = re.compile(r"\b\d{3}([- ]?)\d{2}\1\d{4}\b")
_SSN_WORD = re.compile(r"\b(ssn|social\s+security)\b", re.I)
_MEMBER_WORD = re.compile(
    r"\b(member|subscriber|policy|group|insurance|medicaid|medicare|insured)\s*"
    r"(id|#|no\.?|number|num)\b",
    re.I,
)
_PHONE = re.compile(
    r"(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[.-]\d{4}\b"  # (617) 555-0142
    r"|\b\d{3}[.-]\d{4}\b"  # 555-0142
)
_ZIP4 = re.compile(r"\b\d{5}-\d{4}\b")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_NAMEISH = ("name", "client", "patient", "last", "middle", "full", "preferred", "initial")
_DATEISH = ("dob", "birth", "date", "age")


def _dates(text: str, today: date) -> list[tuple[int, date]]:
    """(offset, date) of every complete calendar date written in the text."""
    found = []

    def add(pos: int, year: int, month: int, day: int) -> None:
        if year < 100:
            year += 1900 if year > today.year % 100 else 2000
        with contextlib.suppress(ValueError):  # 02/30/1990 is not a date
            found.append((pos, date(year, month, day)))

    for m in _MDY.finditer(text):
        month, day = int(m[1]), int(m[2])
        if month > 12:  # only day-first writing makes sense of it
            month, day = day, month
        add(m.start(), int(m[3]), month, day)
    for m in _YMD.finditer(text):
        add(m.start(), int(m[1]), int(m[2]), int(m[3]))
    for m in _MONTH_DAY_YEAR.finditer(text):
        add(m.start(), int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    for m in _DAY_MONTH_YEAR.finditer(text):
        add(m.start(), int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    return found


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def phi_problems(text: str, *, today: date | None = None) -> list[str]:
    """Why this email text looks like it carries PHI; empty when it looks safe.

    Messages say what and on which line, never the matched value (it may be PHI itself).
    """
    today = today or practice_today()
    problems: list[str] = []
    for m in _PLACEHOLDER.finditer(text):
        token = m[1].strip().lower()
        if token == "first_name":
            continue
        where = f"line {_line(text, m.start())}"
        if any(w in token for w in _DATEISH):
            problems.append(f"A date-of-birth placeholder is not allowed ({where}).")
        elif any(w in token for w in _NAMEISH):
            problems.append(
                f"Only the client's first name may be used: write {PLACEHOLDER}, "
                f"not a fuller name placeholder ({where})."
            )
        else:
            problems.append(f"Unknown placeholder; only {PLACEHOLDER} can be used ({where}).")
    birth = next(
        (m for m in _BIRTH_WORD.finditer(text) if re.search(r"\d", text[m.end() : m.end() + 25])),
        None,
    )
    if birth is not None:
        problems.append(f"A date of birth is not allowed (line {_line(text, birth.start())}).")
    else:
        past = next((pos for pos, day in _dates(text, today) if day < today), None)
        if past is not None:
            problems.append(
                f"A date in the past looks like a date of birth (line {_line(text, past)}); "
                "remove it."
            )
    ssn = _SSN.search(text)
    if ssn is None:
        for m in _SSN_WORD.finditer(text):
            if re.search(r"\d{4}", text[m.end() : m.end() + 25]):
                ssn = m
                break
    if ssn is not None:
        problems.append(
            f"A Social Security number is not allowed (line {_line(text, ssn.start())})."
        )
    member = None
    for m in _MEMBER_WORD.finditer(text):
        if re.search(r"\d", text[m.end() : m.end() + 25]):
            member = m
            break
    if member is None:
        # Phone numbers, ZIP+4 codes and dates are expected in an email; a long number that is
        # none of those is how insurance member and policy numbers look.
        blanked = text
        for pattern in (_PHONE, _ZIP4, _MDY, _YMD, _SSN):
            blanked = pattern.sub(lambda m: " " * len(m[0]), blanked)
        for m in _TOKEN.finditer(blanked):
            if sum(c.isdigit() for c in m[0]) >= 6:
                member = m
                break
    if member is not None:
        problems.append(
            "A member-ID-like or other long number is not allowed "
            f"(line {_line(text, member.start())})."
        )
    return problems


# --- the library ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentRow:
    attachment_id: int
    form_id: int
    original_name: str
    content_type: str
    size_bytes: int
    sha256: str
    stored_name: str
    uploaded_at: datetime
    active: bool


@dataclass(frozen=True)
class FormRow:
    form_id: int
    name: str
    email_subject: str
    email_body: str
    active: bool
    version: int
    attachments: tuple[AttachmentRow, ...]

    @property
    def attachment_names(self) -> str:
        return ", ".join(a.original_name for a in self.attachments if a.active)


def _attachment_row(a: FormAttachment) -> AttachmentRow:
    return AttachmentRow(
        attachment_id=a.id,
        form_id=a.form_id,
        original_name=a.original_name,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        sha256=a.sha256,
        stored_name=a.stored_name,
        uploaded_at=a.uploaded_at,
        active=a.active,
    )


def list_forms(
    session: Session,
    *,
    actor: Actor,
    include_inactive: bool = False,
    form_ids: tuple[int, ...] | None = None,
) -> list[FormRow]:
    """Forms by name with their attachments (retired attachments only with
    ``include_inactive``). The library is practice material, not client data: every role that
    sees documents may read it."""
    require(actor, "documents.view")
    query = select(Form).order_by(func.lower(Form.name), Form.id)
    if not include_inactive:
        query = query.where(Form.active.is_(True))
    if form_ids is not None:
        query = query.where(Form.id.in_(form_ids))
    forms = list(session.scalars(query))
    attachments: dict[int, list[AttachmentRow]] = {f.id: [] for f in forms}
    if forms:
        a_query = (
            select(FormAttachment)
            .where(FormAttachment.form_id.in_(list(attachments)))
            .order_by(FormAttachment.id)
        )
        if not include_inactive:
            a_query = a_query.where(FormAttachment.active.is_(True))
        for a in session.scalars(a_query):
            attachments[a.form_id].append(_attachment_row(a))
    return [
        FormRow(
            form_id=f.id,
            name=f.name,
            email_subject=f.email_subject,
            email_body=f.email_body,
            active=f.active,
            version=f.version,
            attachments=tuple(attachments[f.id]),
        )
        for f in forms
    ]


def validate_form(*, name: str, email_subject: str, email_body: str) -> dict[str, str]:
    """Clean the three texts or raise ``ValidationError`` with a message per field."""
    v = Validator()
    v.check("name", clean_text, name, label="form name", required=True, max_len=120)
    v.check("email_subject", clean_text, email_subject, label="subject", required=True, max_len=200)
    body = (email_body or "").replace("\r\n", "\n").strip()
    if not body:
        v.fail("email_body", "Enter the email body.")
    elif len(body) > MAX_BODY_CHARS:
        v.fail(
            "email_body",
            f"The email body can be at most {MAX_BODY_CHARS:,} characters; this one has "
            f"{len(body):,}.",
        )
    elif any(ord(c) < 32 and c not in "\n\t" for c in body):
        v.fail("email_body", "The email body cannot contain control characters.")
    v.values["email_body"] = body
    if "name" in v.values and ";" in v.values["name"]:
        v.fail("name", "A form name cannot contain a semicolon.")
    for field in ("name", "email_subject", "email_body"):
        if field in v.values and field not in v.errors:
            problems = phi_problems(str(v.values[field]))
            if problems:
                v.fail(field, "No PHI in email: " + " ".join(problems))
    if "email_subject" not in v.errors and PLACEHOLDER in str(v.values.get("email_subject", "")):
        # Subjects show on lock screens and in shared inboxes: nothing about the client.
        v.fail(
            "email_subject",
            f"The subject cannot carry the client's name: use {PLACEHOLDER} in the body only.",
        )
    v.raise_if_errors()
    return {k: str(v.values[k]) for k in ("name", "email_subject", "email_body")}


def save_form(
    session: Session,
    *,
    actor: Actor,
    name: str,
    email_subject: str,
    email_body: str,
    active: bool = True,
    form_id: int | None = None,
    expected_version: int | None = None,
    tz_name: str | None = None,
) -> int:
    """Create (``form_id`` None) or update a form (only at ``expected_version``, else
    ``StaleEdit``); returns its id. Forms are never deleted
    (the document log names them): clear ``active`` to retire one."""
    require(actor, "forms.manage")
    clean = validate_form(name=name, email_subject=email_subject, email_body=email_body)
    same_name = session.scalar(
        select(Form.id).where(func.lower(Form.name) == clean["name"].lower())
    )
    if same_name is not None and same_name != form_id:
        raise ValidationError({"name": "A form with this name is already in the library."})
    if form_id is None:
        form = Form(**clean, active=active, created_at=utcnow(), version=1)
        session.add(form)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="form.create",
            entity="form",
            entity_id=form.id,
            after={**clean, "active": active},
        )
        return form.id
    form = session.get(Form, form_id)
    if form is None:
        raise ValidationError({"name": "This form no longer exists; reload the page."})
    refuse_if_stale(
        session,
        current_version=form.version,
        expected_version=expected_version,
        entity="form",
        entity_id=form_id,
        tz_name=tz_name,
    )
    before = {k: getattr(form, k) for k in (*clean, "active")}
    result = session.execute(
        update(Form)
        .where(Form.id == form_id, Form.version == expected_version)
        .values(**clean, active=active, version=Form.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StaleEdit(*last_change(session, entity="form", entity_id=form_id), tz_name)
    session.expire(form)
    old, new = audit.changed_fields(before, {**clean, "active": active})
    audit.record(
        session,
        actor=actor,
        action="form.update",
        entity="form",
        entity_id=form_id,
        before=old,
        after=new,
    )
    return form_id


def _bump(session: Session, form_id: int) -> None:
    # What a form sends changed: anyone editing it from an older screen gets StaleEdit.
    session.execute(
        update(Form)
        .where(Form.id == form_id)
        .values(version=Form.version + 1)
        .execution_options(synchronize_session=False)
    )


def add_attachment(
    session: Session,
    *,
    actor: Actor,
    form_id: int,
    filename: str,
    content: bytes,
    data_dir: Path,
    max_bytes: int,
) -> AttachmentRow:
    """Check an uploaded file and attach it to the form. Raises ``ValidationError`` on the
    ``attachment`` field (nothing stored, nothing written) or ``PermissionDenied``."""
    require(actor, "forms.manage")
    form = session.scalar(select(Form).where(Form.id == form_id).with_for_update())
    if form is None:
        raise ValidationError({"attachment": "This form no longer exists; reload the page."})
    try:
        checked = check_upload(filename=filename, content=content, max_bytes=max_bytes)
    except FieldError as exc:
        raise ValidationError({"attachment": str(exc)}) from None
    current = list(
        session.scalars(
            select(FormAttachment).where(
                FormAttachment.form_id == form_id, FormAttachment.active.is_(True)
            )
        )
    )
    if len(current) >= MAX_ATTACHMENTS_PER_FORM:
        raise ValidationError(
            {"attachment": f"A form can have at most {MAX_ATTACHMENTS_PER_FORM} attachments."}
        )
    if any(a.sha256 == checked.sha256 for a in current):
        raise ValidationError({"attachment": f"{checked.original_name} is already attached."})
    stored_name = _store(session, data_dir, content, checked.kind)
    row = FormAttachment(
        form_id=form_id,
        original_name=checked.original_name,
        stored_name=stored_name,
        content_type=checked.content_type,
        size_bytes=checked.size_bytes,
        sha256=checked.sha256,
        uploaded_at=utcnow(),
        active=True,
    )
    session.add(row)
    session.flush()
    _bump(session, form_id)
    audit.record(
        session,
        actor=actor,
        action="form.attachment_add",
        entity="form",
        entity_id=form_id,
        after={
            "attachment_id": row.id,
            "original_name": row.original_name,
            "content_type": row.content_type,
            "size_bytes": row.size_bytes,
            "sha256": row.sha256,
        },
    )
    return _attachment_row(row)


def remove_attachment(session: Session, *, actor: Actor, attachment_id: int) -> None:
    """Take an attachment off its form. The row and file stay: past sends name them."""
    require(actor, "forms.manage")
    row = session.get(FormAttachment, attachment_id)
    if row is None or not row.active:
        return
    row.active = False
    _bump(session, row.form_id)
    audit.record(
        session,
        actor=actor,
        action="form.attachment_remove",
        entity="form",
        entity_id=row.form_id,
        before={"attachment_id": row.id, "original_name": row.original_name},
    )


def attachment_content(
    session: Session, *, actor: Actor, attachment_id: int, data_dir: Path
) -> tuple[str, bytes, str]:
    """(name, bytes, content type) of an attachment, so staff can check what clients get."""
    require(actor, "documents.view")
    row = session.get(FormAttachment, attachment_id)
    if row is None:
        raise AttachmentUnavailable("there is no such attachment")
    content = read_attachment(data_dir, stored_name=row.stored_name, sha256=row.sha256)
    return row.original_name, content, row.content_type


def fill(text: str, *, first_name: str) -> str:
    """The one substitution forms allow. Not ``str.format``: braces in text stay literal."""
    return text.replace(PLACEHOLDER, first_name)
