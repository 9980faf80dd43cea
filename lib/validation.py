"""Field validation shared by every form: one rule per kind of value.

Validators return the cleaned value or raise ``FieldError``; ``Validator`` collects messages per
field so a form can show each next to its field and write nothing.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from lib.timeutil import practice_today

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP".split()
)


class FieldError(ValueError):
    """One field's problem, in words a receptionist understands."""


class ValidationError(ValueError):
    """Several fields' problems: ``errors`` maps field name to message. Nothing was written."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def clean_note(value: str | None, *, field: str, label: str, max_len: int = 300) -> str:
    """A free-text note or reason, checked on its own (outside a ``Validator``)."""
    try:
        return clean_text(value, label=label, max_len=max_len)
    except FieldError as exc:
        raise ValidationError({field: str(exc)}) from None


class Validator:
    """Collects cleaned values and per-field messages: ``v.check('email', clean_email, raw)``."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}
        self.values: dict[str, object] = {}

    def check(self, field: str, fn, *args, **kwargs):
        try:
            value = fn(*args, **kwargs)
        except FieldError as exc:
            self.errors[field] = str(exc)
            return None
        self.values[field] = value
        return value

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def clean_text(value: str | None, *, label: str, required: bool = False, max_len: int = 120) -> str:
    text = (value or "").strip()
    if required and not text:
        raise FieldError(f"Enter the {label}.")
    if len(text) > max_len:
        raise FieldError(
            f"The {label} can be at most {max_len:,} characters; this one has {len(text):,}. "
            "Shorten it, then save again."
        )
    if any(ord(c) < 32 for c in text):
        raise FieldError(f"The {label} cannot contain control characters.")
    return text


def clean_email(value: str | None, *, required: bool = False) -> str:
    text = (value or "").strip()
    if not text:
        if required:
            raise FieldError("Enter an email address.")
        return ""
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise FieldError("This is not a valid email address (like name@example.com).") from None


def clean_phone(value: str | None, *, required: bool = False, region: str = "US") -> str:
    """A phone number in any formatting, stored in its national format: (617) 555-0142."""
    text = (value or "").strip()
    if not text:
        if required:
            raise FieldError("Enter a phone number.")
        return ""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise FieldError("This is not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError("This phone number is not valid (check the area code and length).")
    if number.country_code == phonenumbers.country_code_for_region(region):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def clean_dob(
    value: date | None, *, required: bool = True, today: date | None = None
) -> date | None:
    if value is None:
        if required:
            raise FieldError("Enter the date of birth.")
        return None
    today = today or practice_today()
    if value > today:
        raise FieldError("The date of birth cannot be in the future.")
    if value.year < 1900:
        raise FieldError("The date of birth is too far in the past.")
    return value


def clean_choice(value: str | None, choices, *, label: str, allow_blank: bool = True) -> str:
    text = (value or "").strip()
    if not text and allow_blank:
        return ""
    if text not in choices:
        raise FieldError(f"Choose a valid {label}.")
    return text


def clean_state(value: str | None) -> str:
    text = (value or "").strip().upper()
    if text and text not in US_STATES:
        raise FieldError("Use the two-letter state code, like MA.")
    return text


def clean_zip(value: str | None) -> str:
    text = (value or "").strip()
    digits = text.replace("-", "")
    if text and not (digits.isdigit() and len(digits) in (5, 9)):
        raise FieldError("Use a 5-digit ZIP code (or ZIP+4).")
    return f"{digits[:5]}-{digits[5:]}" if len(digits) == 9 else digits


def clean_time_zone(value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        return ""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError("Choose a time zone from the list.") from None
    return text
