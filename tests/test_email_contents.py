"""Every email (and text or voice reminder) ClientDesk can send, against the spec's "What an
email may carry" and the README's "What each email contains" (issue 12 item 11).

Each template is rendered by the function that builds it, for a client whose every detail is
distinctive, so any detail that leaks into a subject or body is found: a last name, a date of
birth, a client number, a phone number, an email address or a balance. Subjects carry the
practice's name and the kind of message, and nothing about the client, not even the first name.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from lib import (
    collection_reminders,
    digest,
    documents,
    forms,
    portal,
    receipts,
    reminder_sender,
    statements,
)
from lib.demo import FORMS as DEMO_FORMS
from lib.models import Client, LedgerEntry
from lib.validation import ValidationError

ROOT = Path(__file__).resolve().parent.parent
PRACTICE = "Riverbend Counseling Group"
CLIENT = Client(
    id=4242,
    client_number=50917,
    first_name="Marisol",
    last_name="Quintanilla",
    preferred_name="",
    dob=date(1984, 3, 7),
    phone_mobile="(617) 555-0199",
    email="marisol.q@example.org",
)
BALANCE = "$1,234.56"  # what this client owes: never in an email
NEVER = [
    CLIENT.last_name,
    "03/07/1984",
    "3/7/1984",
    "1984-03-07",
    "March 7, 1984",
    "1984",
    str(CLIENT.client_number),
    "555-0199",
    "5550199",
    CLIENT.email,
    BALANCE,
    "1234.56",
]
RECEIPT = LedgerEntry(
    id=8812,
    client_id=CLIENT.id,
    kind="payment",
    responsibility="client",
    amount_cents=12_500,
    service_date=date(2026, 11, 20),
    method="card",
    reference="VISA 4242 auth 881234",
)
APPOINTMENT = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # 10:30 AM in New York


def _form(form_id: int, name: str, subject: str, body: str) -> forms.FormRow:
    return forms.FormRow(form_id, name, subject, body, True, 1, ())


def _emails() -> dict[str, tuple[str, str]]:
    """(subject, body) of every message, by kind. Text and voice reminders have no subject."""
    first = portal.greeting_name(CLIENT)
    found = {}
    receipt = receipts.receipt_text(PRACTICE, RECEIPT)
    found["receipt"] = (receipt.subject, receipt.body)
    invite = portal.invitation_text(
        practice_name=PRACTICE,
        first_name=first,
        url="https://clientdesk.example.org/portal?token=Zq8LmVr4",
        expires_text="Dec 5, 2026 05:00 PM EST",
    )
    found["invitation"] = (invite.subject, invite.body)
    for channel in ("email", "sms", "voice"):
        text = reminder_sender.reminder_text(
            channel=channel,
            practice=PRACTICE,
            first_name=first,
            starts_at=APPOINTMENT,
            tz_name="America/New_York",
            telehealth=True,
            cancellation_hours=24,
        )
        found[f"reminder-{channel}"] = (text.subject, text.body)
    library = [_form(i, name, subject, body) for i, (name, subject, body) in enumerate(DEMO_FORMS)]
    for one in library:
        found[f"form-{one.name}"] = documents.compose(
            [one], first_name=first, practice_name=PRACTICE
        )
    found["forms-several"] = documents.compose(library, first_name=first, practice_name=PRACTICE)
    # A subject saved before subjects refused {first_name}, and one without the practice's name.
    legacy = _form(9, "Legacy", "Forms for {first_name}", "Hello {first_name},\n\nAttached.")
    found["form-legacy"] = documents.compose([legacy], first_name=first, practice_name=PRACTICE)
    found["statement"] = statements.statement_email_text(PRACTICE)
    found["account-reminder"] = collection_reminders.reminder_text(PRACTICE)
    return found


EMAILS = _emails()


@pytest.mark.parametrize("kind", list(EMAILS))
def test_no_email_carries_client_details_beyond_the_first_name(kind):
    subject, body = EMAILS[kind]
    for detail in NEVER:
        assert detail not in subject and detail not in body, f"{kind} carries {detail!r}"
    assert not re.search(r"\$\d", body) or kind == "receipt", f"{kind} carries an amount"


@pytest.mark.parametrize("kind", [k for k, (subject, _) in EMAILS.items() if subject])
def test_every_subject_names_the_practice_and_the_kind_and_nothing_about_the_client(kind):
    subject, _ = EMAILS[kind]
    assert PRACTICE in subject
    assert CLIENT.first_name not in subject
    assert re.search(r"receipt|invitation|reminder|form|statement", subject, re.I), subject


def test_a_receipt_carries_amount_date_method_reference_and_number_only():
    subject, body = EMAILS["receipt"]
    assert subject == f"Payment receipt from {PRACTICE}"
    for part in ("$125.00", "11/20/2026", "Card", RECEIPT.reference, "8812"):
        assert part in body
    assert CLIENT.first_name not in body


@pytest.mark.parametrize("channel", ["email", "sms", "voice"])
def test_a_reminder_carries_first_name_time_video_and_the_practice(channel):
    _, body = EMAILS[f"reminder-{channel}"]
    assert CLIENT.first_name in body and PRACTICE in body
    assert "10:30 AM" in body and "Dec" in body
    assert "video" in body.lower()
    if channel != "sms":  # one text message: "please call us" instead
        assert "24 hours" in body


def test_an_invitation_carries_the_link_and_the_first_name():
    subject, body = EMAILS["invitation"]
    assert subject == f"Your client portal invitation from {PRACTICE}"
    assert "https://clientdesk.example.org/portal?token=Zq8LmVr4" in body
    assert f"Hello {CLIENT.first_name}," in body


def test_a_forms_subject_is_the_practice_and_the_admins_words():
    assert EMAILS["form-legacy"][0] == f"{PRACTICE}: Forms for"
    assert EMAILS["forms-several"][0] == f"3 forms from {PRACTICE}"


def test_a_form_subject_cannot_be_saved_with_the_clients_name():
    with pytest.raises(ValidationError) as refused:
        forms.validate_form(
            name="Consent", email_subject="Consent for {first_name}", email_body="Hello"
        )
    assert "client's name" in refused.value.errors["email_subject"]


def test_every_module_that_builds_an_email_is_covered_here():
    """A new kind of email must be added to this test and to the README."""
    builders = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "lib").glob("*.py")
        if re.search(r"build_message\(|EmailMessage\(", path.read_text())
    }
    assert builders == {
        "lib/mail.py",  # the one mailer
        "lib/receipts.py",
        "lib/portal.py",
        "lib/reminder_sender.py",
        "lib/documents.py",
        "lib/statements.py",
        "lib/collection_reminders.py",  # the account reminder from the collections worklist
        "lib/digest.py",  # to staff: aggregates only (tests/test_digest.py)
    }


def test_an_account_reminder_names_no_amount_and_not_even_the_first_name():
    subject, body = EMAILS["account-reminder"]
    assert subject == f"A reminder from {PRACTICE}"
    assert "$" not in body and CLIENT.first_name not in body and PRACTICE in body


def test_a_statement_email_says_a_statement_is_attached_and_nothing_more():
    subject, body = EMAILS["statement"]
    assert subject == f"Your statement from {PRACTICE}"
    assert "attached" in body and "$" not in body
    assert CLIENT.first_name not in body


def test_the_readme_says_what_each_email_contains():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## What each email contains", 1)[1].split("\n## ", 1)[0]
    subjects = {
        "receipt": receipts.receipt_text("<practice>", RECEIPT).subject,
        "invitation": portal.invitation_text(
            practice_name="<practice>", first_name="x", url="u", expires_text="t"
        ).subject,
        "reminder": reminder_sender.reminder_text(
            channel="email",
            practice="<practice>",
            first_name="x",
            starts_at=APPOINTMENT,
            tz_name="UTC",
            telehealth=False,
            cancellation_hours=0,
        ).subject,
        "forms": documents.compose(
            [_form(1, "f", "<the form's subject>", "b")], first_name="x", practice_name="<practice>"
        )[0],
        "statement": statements.statement_email_text("<practice>")[0],
        "account reminder": collection_reminders.reminder_text("<practice>")[0],
        "weekly digest": digest.digest_text(
            "<practice>", digest.Figures(APPOINTMENT.date(), 0, 0, None, 0), "u"
        )[0],
        "several forms": documents.compose(
            [_form(1, "f", "s", "b"), _form(2, "g", "s", "b")],
            first_name="x",
            practice_name="<practice>",
        )[0].replace("2", "N"),
    }
    for kind, subject in subjects.items():
        assert f"`{subject}`" in section, f"the README does not give the {kind} subject {subject!r}"
    for words in ("first name", "receipt number", "statement", "email consent", "never"):
        assert words in section.lower()
    assert "never goes into email bodies" not in readme  # the old, untrue sentence
