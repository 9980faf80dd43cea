"""Which column holds which field: guessed from the header names old systems use, overridden
by the user (``--map FIELD=COLUMN`` or the page's mapping table)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lib.clients import fold


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    names: tuple[str, ...]  # header names that mean this field (any case, spacing, punctuation)


FIELDS: tuple[Field, ...] = (
    Field(
        "old_system_id",
        "old system's client id",
        (
            "old system id",
            "old id",
            "client id",
            "id",
            "client #",
            "client no",
            "client number",
            "patient id",
            "patient #",
            "chart",
            "chart number",
            "chart #",
            "account number",
            "account #",
            "record number",
            "mrn",
            "external id",
            "legacy id",
        ),
    ),
    Field(
        "first_name",
        "first name",
        (
            "first name",
            "first",
            "firstname",
            "fname",
            "given name",
            "forename",
            "client first name",
            "patient first name",
            "legal first name",
        ),
    ),
    Field(
        "middle_name",
        "middle name",
        (
            "middle name",
            "middle",
            "mi",
            "middle initial",
            "client middle name",
        ),
    ),
    Field(
        "last_name",
        "last name",
        (
            "last name",
            "last",
            "lastname",
            "lname",
            "surname",
            "family name",
            "client last name",
            "patient last name",
            "legal last name",
        ),
    ),
    Field(
        "preferred_name",
        "preferred name",
        (
            "preferred name",
            "preferred",
            "nickname",
            "goes by",
            "preferred first name",
        ),
    ),
    Field(
        "dob",
        "date of birth",
        (
            "dob",
            "date of birth",
            "birthdate",
            "birth date",
            "birthday",
            "born",
            "d o b",
        ),
    ),
    Field("sex", "sex", ("sex", "gender", "legal sex", "sex at birth", "sex on insurance")),
    Field("email", "email", ("email", "e mail", "email address", "e mail address", "mail")),
    Field(
        "phone_mobile",
        "mobile phone",
        (
            "cell",
            "mobile",
            "mobile phone",
            "cell phone",
            "cellphone",
            "mobile number",
            "cell number",
            "phone",
            "phone number",
            "primary phone",
            "telephone",
        ),
    ),
    Field("phone_home", "home phone", ("home phone", "home", "home number", "home telephone")),
    Field(
        "address_line1",
        "address line 1",
        (
            "address",
            "address 1",
            "address line 1",
            "address1",
            "street",
            "street address",
            "street 1",
            "addr1",
        ),
    ),
    Field(
        "address_line2",
        "address line 2",
        (
            "address 2",
            "address line 2",
            "address2",
            "street 2",
            "apt",
            "suite",
            "unit",
            "addr2",
        ),
    ),
    Field("city", "city", ("city", "town", "locality", "city town")),
    Field(
        "state",
        "state or region",
        (
            "state",
            "region",
            "province",
            "state province",
            "state region",
            "county",
            "st",
        ),
    ),
    Field(
        "zip_code",
        "postal code",
        (
            "zip",
            "zip code",
            "zipcode",
            "postal code",
            "postcode",
            "post code",
            "postal",
            "zip postal code",
        ),
    ),
    Field("country", "country", ("country", "country code", "nation")),
    Field("status", "status", ("status", "client status", "active status")),
    Field(
        "clinician",
        "clinician",
        (
            "clinician",
            "therapist",
            "provider",
            "assigned clinician",
            "primary clinician",
            "counselor",
            "counsellor",
            "rendering provider",
            "assigned therapist",
        ),
    ),
    Field(
        "client_since",
        "client since",
        (
            "client since",
            "since",
            "first visit",
            "start date",
            "intake date",
            "date added",
            "created",
            "created date",
            "admission date",
        ),
    ),
    Field(
        "opening_client_due",
        "opening client due",
        (
            "opening client due",
            "client due",
            "client balance",
            "patient balance",
            "balance",
            "opening balance",
            "amount due",
            "balance due",
            "client owes",
            "patient due",
        ),
    ),
    Field(
        "opening_insurance_pending",
        "opening insurance pending",
        (
            "opening insurance pending",
            "insurance pending",
            "insurance balance",
            "ins balance",
            "pending insurance",
            "insurance due",
            "insurance owes",
            "ins pending",
        ),
    ),
    Field(
        "opening_client_credit",
        "opening client credit",
        (
            "opening client credit",
            "client credit",
            "unapplied credit",
            "credit",
            "credit balance",
            "opening credit",
            "prepaid",
        ),
    ),
    Field(
        "opening_payer",
        "payer of the opening insurance balance",
        (
            "payer",
            "insurance",
            "insurance company",
            "primary insurance",
            "insurance payer",
            "carrier",
            "insurance name",
            "payer name",
        ),
    ),
    Field(
        "opening_service_date",
        "date of service of the opening balances",
        (
            "date of service",
            "dos",
            "service date",
            "balance date",
            "opening balance date",
            "as of",
            "as of date",
            "oldest unpaid dos",
            "oldest unpaid date of service",
        ),
    ),
)
BY_KEY = {f.key: f for f in FIELDS}
REQUIRED = ("first_name", "last_name")
PREFIXES = ("client", "patient", "legal", "primary")


def normalise(header: str) -> str:
    """'Client First Name', 'FIRST_NAME', 'first-name ' → 'client first name' / 'first name'."""
    text = fold(header).replace("#", " # ")
    text = re.sub(r"[^a-z0-9#]+", " ", text)
    return " ".join(text.split())


_LOOKUP: dict[str, str] = {}
for _field in FIELDS:
    for _name in (_field.key.replace("_", " "), *_field.names):
        _LOOKUP.setdefault(normalise(_name), _field.key)
        _LOOKUP.setdefault(normalise(_name).replace(" ", ""), _field.key)


def _field_for(header: str) -> str | None:
    key = normalise(header)
    if key.endswith(" cents"):  # "client_due_cents": the same field, counted in cents
        key = key[: -len(" cents")]
    if not key:
        return None
    for candidate in (key, key.replace(" ", "")):
        if candidate in _LOOKUP:
            return _LOOKUP[candidate]
    words = key.split()
    if len(words) > 1 and words[0] in PREFIXES:  # "Client Email", "Patient DOB"
        return _field_for(" ".join(words[1:]))
    return None


@dataclass(frozen=True)
class Mapping:
    columns: dict[str, int]  # field key -> column index
    headers: list[str]

    @property
    def cents(self) -> set[str]:
        """Money fields whose column holds cents, not dollars ("client_due_cents")."""
        return {
            k
            for k, i in self.columns.items()
            if k.startswith("opening_") and normalise(self.headers[i]).endswith("cents")
        }

    @property
    def unmatched(self) -> list[str]:
        used = set(self.columns.values())
        return [h for i, h in enumerate(self.headers) if i not in used and h]

    def describe(self) -> list[str]:
        return [
            f"{self.headers[i]!r} → {BY_KEY[k].label}"
            for k, i in sorted(self.columns.items(), key=lambda kv: kv[1])
        ]


class MappingProblem(ValueError):
    """An override names a field or column that does not exist; the message says which."""


def guess(headers: list[str]) -> dict[str, int]:
    """Each field's column from its header name; the first column that means a field wins."""
    columns: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = _field_for(header)
        if key is not None and key not in columns:
            columns[key] = index
    return columns


def field_key(name: str) -> str:
    """A field as the user names it: its key (``dob``) or its label (``date of birth``)."""
    wanted = normalise(name).replace(" ", "")
    for f in FIELDS:
        if wanted in (f.key.replace("_", ""), normalise(f.label).replace(" ", "")):
            return f.key
    raise MappingProblem(f"There is no field {name!r}. Fields: {', '.join(f.key for f in FIELDS)}.")


def column_index(headers: list[str], column: str) -> int:
    """A column by its header (any case) or its position (1, 2, …)."""
    exact = [i for i, h in enumerate(headers) if h == column]
    if exact:
        return exact[0]
    loose = [i for i, h in enumerate(headers) if normalise(h) == normalise(column)]
    if loose:
        return loose[0]
    if column.isdigit() and 1 <= int(column) <= len(headers):
        return int(column) - 1
    raise MappingProblem(
        f"The file has no column {column!r}. Its columns: "
        + ", ".join(repr(h) for h in headers if h)
        + "."
    )


def build(headers: list[str], overrides: dict[str, str | None] | None = None) -> Mapping:
    """The guessed mapping with the user's overrides applied. An override maps a field to a
    column (its header) or, with None or "", to no column; the column it takes is taken from
    any other field that had guessed it."""
    columns = guess(headers)
    for name, column in (overrides or {}).items():
        key = field_key(name)
        columns.pop(key, None)
        if column:
            index = column_index(headers, column)
            for other in [k for k, i in columns.items() if i == index]:
                del columns[other]
            columns[key] = index
    return Mapping(columns, headers)


def parse_overrides(pairs: list[str]) -> dict[str, str | None]:
    """``FIELD=COLUMN`` pairs from the command line."""
    result: dict[str, str | None] = {}
    for pair in pairs:
        if "=" not in pair:
            raise MappingProblem(f"--map takes FIELD=COLUMN, like dob=Birthdate; got {pair!r}.")
        name, column = pair.split("=", 1)
        result[name.strip()] = column.strip() or None
    return result
