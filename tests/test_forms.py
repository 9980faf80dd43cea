"""The forms library (spec D1): uploads checked by content and size and stored under server-made
names, and the guard that keeps PHI out of form emails. Both engines."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from lib import forms
from lib.client_record import StaleEdit
from lib.db import transaction
from lib.demo import FORMS
from lib.models import AuditEntry, Form, FormAttachment
from lib.policy import ADMIN, ALL_ROLES, PermissionDenied
from lib.validation import ValidationError
from tests.factories import make_user

MB = 1024 * 1024
TODAY = date(2026, 11, 26)


# --- sample files (real formats, built here so the bytes are known) ------------------------


def pdf_bytes(text: str = "Consent for treatment") -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        + f"% {text}\n".encode()
        + b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )


def png_bytes(color: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "navy").save(out, format="JPEG")
    return out.getvalue()


def docx_bytes(*, macro: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        if macro:
            archive.writestr("word/vbaProject.bin", b"\x00macro")
    return out.getvalue()


def exe_bytes() -> bytes:
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64 + b"PE\x00\x00"


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def admin(engine):
    with transaction(engine) as session:
        return make_user(session, ADMIN)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "practice" / "data"


@pytest.fixture
def form_id(engine, admin) -> int:
    with transaction(engine) as session:
        return forms.save_form(
            session,
            actor=admin,
            name="Consent for treatment",
            email_subject="A consent form from Riverbend",
            email_body="Hello {first_name},\n\nPlease sign the attached form.",
        )


def attach(engine, admin, form_id, data_dir, filename, content, max_bytes=10 * MB):
    with transaction(engine) as session:
        return forms.add_attachment(
            session,
            actor=admin,
            form_id=form_id,
            filename=filename,
            content=content,
            data_dir=data_dir,
            max_bytes=max_bytes,
        )


def stored_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.parent.rglob("*") if p.is_file())


def count(engine, model, *where) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


# --- uploads -------------------------------------------------------------------------------


def test_a_renamed_executable_is_refused_and_nothing_is_stored(engine, admin, form_id, data_dir):
    audits = count(engine, AuditEntry)

    with pytest.raises(ValidationError) as refused:
        attach(engine, admin, form_id, data_dir, "consent.pdf", exe_bytes())

    assert "not a PDF, Word (DOCX), PNG or JPEG" in refused.value.errors["attachment"]
    assert count(engine, FormAttachment) == 0
    assert stored_files(data_dir) == []
    assert count(engine, AuditEntry) == audits


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("forms.docx", b"PK\x03\x04" + b"\x00" * 40),  # a broken ZIP
        ("forms.docx", None),  # a real ZIP that is not a Word document
        ("forms.docx", "macro"),  # a macro-enabled Word document renamed .docx
        ("photo.png", b"GIF89a\x01\x00\x01\x00"),
        ("script.pdf", b"#!/bin/sh\nrm -rf /\n"),
    ],
)
def test_other_content_is_refused_whatever_its_name(
    engine, admin, form_id, data_dir, filename, content
):
    if content is None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("payload.exe", exe_bytes())
        content = out.getvalue()
    elif content == "macro":
        content = docx_bytes(macro=True)

    with pytest.raises(ValidationError) as refused:
        attach(engine, admin, form_id, data_dir, filename, content)

    assert "attachment" in refused.value.errors
    assert count(engine, FormAttachment) == 0
    assert stored_files(data_dir) == []


def test_a_real_file_with_the_wrong_ending_is_refused(engine, admin, form_id, data_dir):
    with pytest.raises(ValidationError) as refused:
        attach(engine, admin, form_id, data_dir, "consent.pdf", png_bytes())

    assert "really a PNG image" in refused.value.errors["attachment"]
    assert stored_files(data_dir) == []


def test_an_oversize_file_is_refused_at_the_configured_limit(engine, admin, form_id, data_dir):
    limit = forms.upload_limit_bytes({"CLIENTDESK_MAX_UPLOAD_MB": "1"})
    assert limit == MB
    just_fits = pdf_bytes() + b"%" * (MB - len(pdf_bytes()))
    too_big = just_fits + b"%"

    with pytest.raises(ValidationError) as refused:
        attach(engine, admin, form_id, data_dir, "big.pdf", too_big, max_bytes=limit)
    assert "at most 1 MB" in refused.value.errors["attachment"]
    assert stored_files(data_dir) == []

    row = attach(engine, admin, form_id, data_dir, "fits.pdf", just_fits, max_bytes=limit)
    assert row.size_bytes == MB


def test_the_upload_limit_defaults_to_10_mb():
    assert forms.upload_limit_bytes({}) == 10 * MB
    assert forms.upload_limit_bytes({"CLIENTDESK_MAX_UPLOAD_MB": "not a number"}) == 10 * MB
    assert forms.upload_limit_bytes({"CLIENTDESK_MAX_UPLOAD_MB": "25"}) == 25 * MB


def test_a_path_in_the_name_never_chooses_where_the_file_goes(engine, admin, form_id, data_dir):
    content = pdf_bytes()

    row = attach(engine, admin, form_id, data_dir, "../../x.pdf", content)
    windows = attach(engine, admin, form_id, data_dir, "..\\..\\y.pdf", pdf_bytes("other"))

    assert row.original_name == "x.pdf"
    assert windows.original_name == "y.pdf"
    assert forms.STORED_NAME.match(row.stored_name)
    assert row.stored_name != windows.stored_name
    folder = data_dir / "forms"
    assert stored_files(data_dir) == sorted(
        [folder / row.stored_name, folder / windows.stored_name]
    )
    assert not (data_dir.parent / "x.pdf").exists()
    assert not (data_dir.parent.parent / "x.pdf").exists()
    assert (folder / row.stored_name).read_bytes() == content
    assert row.sha256 == hashlib.sha256(content).hexdigest()
    with transaction(engine) as session:
        saved = session.get(FormAttachment, row.attachment_id)
        assert (saved.original_name, saved.stored_name, saved.size_bytes) == (
            "x.pdf",
            row.stored_name,
            len(content),
        )


@pytest.mark.parametrize(
    ("filename", "make", "content_type"),
    [
        ("consent.pdf", pdf_bytes, "application/pdf"),
        (
            "intake.docx",
            docx_bytes,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("map.png", png_bytes, "image/png"),
        ("card.JPG", jpeg_bytes, "image/jpeg"),
        ("card.jpeg", jpeg_bytes, "image/jpeg"),
    ],
)
def test_each_allowed_kind_is_accepted_by_its_content(
    engine, admin, form_id, data_dir, filename, make, content_type
):
    content = make()
    row = attach(engine, admin, form_id, data_dir, filename, content)

    assert row.content_type == content_type
    assert row.original_name == filename
    assert (data_dir / "forms" / row.stored_name).read_bytes() == content
    with transaction(engine) as session:
        [entry] = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "form.attachment_add")
        ).all()
        assert entry.actor_user_id == admin.user_id
        assert entry.entity_id == str(form_id)


def test_the_same_file_twice_on_one_form_is_refused(engine, admin, form_id, data_dir):
    attach(engine, admin, form_id, data_dir, "consent.pdf", pdf_bytes())
    with pytest.raises(ValidationError) as refused:
        attach(engine, admin, form_id, data_dir, "copy.pdf", pdf_bytes())
    assert "already attached" in refused.value.errors["attachment"]
    assert len(stored_files(data_dir)) == 1


def test_a_rolled_back_upload_leaves_no_file_behind(engine, admin, form_id, data_dir):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction(engine) as session:
        forms.add_attachment(
            session,
            actor=admin,
            form_id=form_id,
            filename="consent.pdf",
            content=pdf_bytes(),
            data_dir=data_dir,
            max_bytes=MB,
        )
        assert len(stored_files(data_dir)) == 1
        raise Boom

    assert stored_files(data_dir) == []
    assert count(engine, FormAttachment) == 0


def test_a_removed_attachment_is_kept_but_no_longer_sent(engine, admin, form_id, data_dir):
    row = attach(engine, admin, form_id, data_dir, "consent.pdf", pdf_bytes())
    with transaction(engine) as session:
        forms.remove_attachment(session, actor=admin, attachment_id=row.attachment_id)

    with transaction(engine) as session:
        [live] = forms.list_forms(session, actor=admin)
        [everything] = forms.list_forms(session, actor=admin, include_inactive=True)
    assert live.attachments == ()
    assert [a.active for a in everything.attachments] == [False]
    assert (data_dir / "forms" / row.stored_name).exists()


def test_a_stored_file_that_changed_is_not_read(engine, admin, form_id, data_dir):
    row = attach(engine, admin, form_id, data_dir, "consent.pdf", pdf_bytes())
    path = data_dir / "forms" / row.stored_name
    path.write_bytes(pdf_bytes("tampered"))

    with pytest.raises(forms.AttachmentUnavailable):
        forms.read_attachment(data_dir, stored_name=row.stored_name, sha256=row.sha256)
    with pytest.raises(forms.AttachmentUnavailable):
        forms.read_attachment(data_dir, stored_name="../clientdesk.db", sha256=row.sha256)


def test_only_admins_manage_the_library(engine, admin, form_id, data_dir):
    for role in ALL_ROLES:
        if role == ADMIN:
            continue
        with transaction(engine) as session:
            someone = make_user(session, role)
        with pytest.raises(PermissionDenied), transaction(engine) as session:
            forms.save_form(
                session, actor=someone, name="Mine", email_subject="Hi", email_body="Hello"
            )
        with pytest.raises(PermissionDenied), transaction(engine) as session:
            forms.add_attachment(
                session,
                actor=someone,
                form_id=form_id,
                filename="x.pdf",
                content=pdf_bytes(),
                data_dir=data_dir,
                max_bytes=MB,
            )
        with transaction(engine) as session:  # but everyone may read it, to send forms
            assert [f.name for f in forms.list_forms(session, actor=someone)] == [
                "Consent for treatment"
            ]
    assert stored_files(data_dir) == []
    assert count(engine, Form) == 1


# --- saving forms and the PHI guard --------------------------------------------------------


def test_saving_and_editing_a_form_is_audited_and_checked_for_concurrent_edits(engine, admin):
    with transaction(engine) as session:
        form_id = forms.save_form(
            session,
            actor=admin,
            name="Release of information",
            email_subject="A form from Riverbend",
            email_body="Hello {first_name},\n\nThe form is attached.",
        )
    with transaction(engine) as session:
        forms.save_form(
            session,
            actor=admin,
            form_id=form_id,
            expected_version=1,
            name="Release of information",
            email_subject="Your release form from Riverbend",
            email_body="Hello {first_name},\n\nThe form is attached.",
        )
    with pytest.raises(StaleEdit), transaction(engine) as session:
        forms.save_form(
            session,
            actor=admin,
            form_id=form_id,
            expected_version=1,  # what an admin who opened the form earlier still has
            name="Release of information",
            email_subject="Something else",
            email_body="Hello {first_name}",
        )
    with pytest.raises(ValidationError) as duplicate, transaction(engine) as session:
        forms.save_form(
            session,
            actor=admin,
            name="release of INFORMATION",
            email_subject="x",
            email_body="y",
        )
    assert "already in the library" in duplicate.value.errors["name"]

    with transaction(engine) as session:
        [form] = forms.list_forms(session, actor=admin)
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity == "form").order_by(AuditEntry.id)
        ).all()
        [update] = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "form.update")
        ).all()
    assert (form.email_subject, form.version) == ("Your release form from Riverbend", 2)
    assert actions == ["form.create", "form.update"]
    assert "Your release form" in update.after_json
    assert "email_body" not in update.after_json  # only what changed


BLOCKED = [
    ("email_body", "Hello {first_name},\n\nYour date of birth on file is 03/07/1985."),
    ("email_body", "Hello {first_name},\nDOB: 1985-03-07"),
    ("email_body", "Hello {first_name}, born March 7, 1985 — happy birthday!"),
    ("email_subject", "Forms for {first_name} {last_name}"),
    ("email_body", "Dear {full_name},\n\nPlease sign."),
    ("email_body", "Dear {client_name},\n\nPlease sign."),
    ("email_subject", "Forms for {dob}"),
    ("email_body", "Hello {first_name},\n\nWe have SSN 123-45-6789 on file."),
    ("email_body", "Hello {first_name},\n\nSocial security ending 6789."),
    ("email_body", "Hello {first_name},\n\nMember ID: XJH4417"),
    ("email_subject", "Claim for policy W123456789"),
    ("email_body", "Hello {first_name},\n\nYour plan number 88817263 is active."),
]


@pytest.mark.parametrize(("field", "text"), BLOCKED)
def test_phi_in_the_subject_or_body_is_refused_and_nothing_saved(engine, admin, field, text):
    values = {
        "name": "Intake packet",
        "email_subject": "Your intake forms",
        "email_body": "Hello {first_name},\n\nPlease fill these in.",
    }
    values[field] = text
    audits = count(engine, AuditEntry)

    with pytest.raises(ValidationError) as refused, transaction(engine) as session:
        forms.save_form(session, actor=admin, **values)

    message = refused.value.errors[field]
    assert message.startswith("No PHI in email")
    assert count(engine, Form) == 0
    assert count(engine, AuditEntry) == audits
    for digits in ("1985", "6789", "4417", "123456789", "88817263"):
        assert digits not in str(refused.value)  # the refusal never repeats the value


ALLOWED = [
    "Hello {first_name},\n\nPlease complete the forms before 12/01/2026.",
    "Questions? Call (617) 555-0142 or 617-555-0199, ext. 12.",
    "Riverbend Counseling Group, 12 Main St, Suite 400, Cambridge, MA 02139-4307",
    "Office hours 9:00-17:00, Monday-Friday. Please bring your insurance card.",
    "Portal: https://riverbend.example/forms",
    "Bring your date of birth and member ID card to the first visit.",
]


@pytest.mark.parametrize("text", ALLOWED + [body for _, _, body in FORMS])
def test_ordinary_practice_text_passes_the_guard(text):
    assert forms.phi_problems(text, today=TODAY) == []


def test_the_demo_forms_pass_the_guard():
    for name, subject, body in FORMS:
        forms.validate_form(name=name, email_subject=subject, email_body=body)


def test_the_guard_names_the_line_not_the_value():
    [problem] = forms.phi_problems("Hello {first_name},\n\nThanks.\nDOB 3/7/1985", today=TODAY)
    assert "line 4" in problem
    assert "1985" not in problem


def test_only_first_name_is_filled_in_and_braces_stay_literal():
    text = "Hi {first_name}! Use code {{x}} and {first_name}."
    assert forms.fill(text, first_name="Zoë") == "Hi Zoë! Use code {{x}} and Zoë."
    assert forms.fill("{first_name.__class__}", first_name="A") == "{first_name.__class__}"


def test_future_dates_and_impossible_dates_are_not_dates_of_birth():
    assert forms.phi_problems("Due 02/30/1990 or 12/31/2027", today=TODAY) == []
    assert forms.phi_problems("Seen 11/25/2026", today=TODAY) != []
