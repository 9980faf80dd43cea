"""One row of the file to the values of one client, or every reason it cannot be imported.

Messy is normal: dates in several formats, phones in any format, names with accents,
apostrophes and hyphens, addresses outside the US. Each reason is one sentence a practice
manager can act on, naming the field and never echoing the row's personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

import phonenumbers

from lib.clients import STATUS_LABELS, digits, fold
from lib.money import MoneyError, parse_amount
from lib.validation import (
    FieldError,
    clean_email,
    clean_phone,
    clean_state,
    clean_text,
    clean_zip,
)

DATE_ORDERS = {
    "MDY": "month first (3/7/1985 is March 7, 1985)",
    "DMY": "day first (3/7/1985 is 3 July 1985)",
}
DOTTED_NOTE = "dates with dots (07.03.1985) are always day first; 1985-03-07 is year first"

US_NAMES = {"", "us", "usa", "u s", "u s a", "united states", "united states of america", "america"}
COUNTRY_REGIONS = {
    "canada": "CA",
    "united kingdom": "GB",
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "ireland": "IE",
    "germany": "DE",
    "deutschland": "DE",
    "france": "FR",
    "spain": "ES",
    "espana": "ES",
    "italy": "IT",
    "mexico": "MX",
    "australia": "AU",
    "new zealand": "NZ",
    "netherlands": "NL",
    "belgium": "BE",
    "switzerland": "CH",
    "austria": "AT",
    "sweden": "SE",
    "norway": "NO",
    "denmark": "DK",
    "finland": "FI",
    "portugal": "PT",
    "brazil": "BR",
    "india": "IN",
    "japan": "JP",
    "china": "CN",
    "puerto rico": "US",
}
STATE_NAMES = {
    "alabama": "AL",
    "alaska": "AK",
    "arizona": "AZ",
    "arkansas": "AR",
    "california": "CA",
    "colorado": "CO",
    "connecticut": "CT",
    "delaware": "DE",
    "district of columbia": "DC",
    "florida": "FL",
    "georgia": "GA",
    "hawaii": "HI",
    "idaho": "ID",
    "illinois": "IL",
    "indiana": "IN",
    "iowa": "IA",
    "kansas": "KS",
    "kentucky": "KY",
    "louisiana": "LA",
    "maine": "ME",
    "maryland": "MD",
    "massachusetts": "MA",
    "michigan": "MI",
    "minnesota": "MN",
    "mississippi": "MS",
    "missouri": "MO",
    "montana": "MT",
    "nebraska": "NE",
    "nevada": "NV",
    "new hampshire": "NH",
    "new jersey": "NJ",
    "new mexico": "NM",
    "new york": "NY",
    "north carolina": "NC",
    "north dakota": "ND",
    "ohio": "OH",
    "oklahoma": "OK",
    "oregon": "OR",
    "pennsylvania": "PA",
    "rhode island": "RI",
    "south carolina": "SC",
    "south dakota": "SD",
    "tennessee": "TN",
    "texas": "TX",
    "utah": "UT",
    "vermont": "VT",
    "virginia": "VA",
    "washington": "WA",
    "west virginia": "WV",
    "wisconsin": "WI",
    "wyoming": "WY",
    "puerto rico": "PR",
}
SEXES = {
    "f": "F",
    "female": "F",
    "woman": "F",
    "w": "F",
    "m": "M",
    "male": "M",
    "man": "M",
    "x": "X",
    "nonbinary": "X",
    "non binary": "X",
    "other": "X",
    "u": "U",
    "unknown": "U",
}
STATUSES = {
    **{k: k for k in STATUS_LABELS},
    "current": "active",
    "open": "active",
    "closed": "discharged",
    "terminated": "discharged",
    "former": "inactive",
    "lead": "prospective",
    "waitlist": "prospective",
}


@dataclass
class Context:
    """What every row is checked against: the practice's clinicians and payers, the date
    order and the practice's today."""

    today: date
    date_order: str = "MDY"
    clinicians: dict[str, int] = field(default_factory=dict)  # folded name -> id
    clinician_names: list[str] = field(default_factory=list)  # active, for messages
    payers: dict[str, int] = field(default_factory=dict)  # folded name -> id
    cents: set[str] = field(default_factory=set)  # money fields given in cents


@dataclass
class Row:
    number: int
    values: dict  # client columns, cleaned
    opening: dict  # client_due_cents, insurance_pending_cents, payer_id, payer_name, service_date
    errors: list[str]

    @property
    def valid(self) -> bool:
        return not self.errors


_DATE_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DATE_DOTS = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})")
_DATE_SLASH = re.compile(r"(\d{1,2})[/-](\d{1,2})[/-](\d{2}|\d{4})")


def _year(text: str, today: date) -> int:
    year = int(text)
    if len(text) == 2:  # 85 -> 1985, 07 -> 2007: never in the future
        year += 2000
        if year > today.year:
            year -= 100
    return year


def parse_date(text: str, *, order: str = "MDY", today: date) -> date:
    """3/7/1985 (the date order), 1985-03-07, 07.03.1985 (day first), or the ISO date and time
    a spreadsheet cell holds. Raises FieldError with the formats it understands."""
    raw = (text or "").strip()
    raw = raw.split(" ")[0] if re.fullmatch(r"\S+ \d{1,2}:\d{2}(:\d{2})?", raw) else raw
    try:
        if m := _DATE_ISO.fullmatch(raw):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _DATE_DOTS.fullmatch(raw):
            return date(_year(m[3], today), int(m[2]), int(m[1]))
        if m := _DATE_SLASH.fullmatch(raw):
            a, b = int(m[1]), int(m[2])
            month, day = (a, b) if order == "MDY" else (b, a)
            if not (month > 12 and day <= 12):
                return date(_year(m[3], today), month, day)
    except ValueError:
        raise FieldError("is not a real date (check the day and month)") from None
    if _DATE_SLASH.fullmatch(raw):
        other = "DMY" if order == "MDY" else "MDY"
        first, then = ("month", "day") if order == "MDY" else ("day", "month")
        raise FieldError(
            f"is not a date with the {first} first; if the file puts the {then} first, "
            f"import with date order {other}"
        )
    raise FieldError("is not a date ClientDesk understands (use 3/7/1985 or 1985-03-07)")


def _text(label: str, value: str, max_len: int, required: bool = False) -> str:
    text = " ".join((value or "").split())
    return clean_text(text, label=label, required=required, max_len=max_len)


def _amount(value: str, cents: bool = False) -> int:
    raw = (value or "").strip()
    if not raw or raw in ("0", "0.00", "$0.00", "-"):
        return 0
    if cents:
        if not raw.isdigit():
            raise MoneyError("Use a whole number of cents, like 12050 for $120.50.")
        return int(raw)
    return parse_amount(raw, allow_zero=True)


def _international(phone: str, region: str) -> str:
    number = phonenumbers.parse(phone, region)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _region(country: str) -> str:
    key = " ".join(re.sub(r"[^a-z ]", " ", fold(country)).split())
    if key in US_NAMES:
        return "US"
    if len(key) == 2 and key.isalpha():
        return key.upper()
    return COUNTRY_REGIONS.get(key, "")


def parse_row(number: int, cells: dict[str, str], ctx: Context) -> Row:
    """``cells``: field key -> the text of its column in this row (missing: not in the file)."""
    errors: list[str] = []
    values: dict = {}
    opening: dict = {"client_due_cents": 0, "insurance_pending_cents": 0, "credit_cents": 0}

    def check(label: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (FieldError, MoneyError) as exc:
            message = str(exc)
            if message[:1].islower():
                errors.append(f"{label.capitalize()} {message}.")
            else:
                errors.append(f"{label.capitalize()}: {message}")
            return None

    get = lambda k: (cells.get(k) or "").strip()  # noqa: E731
    values["first_name"] = check("first name", _text, "first name", get("first_name"), 80, True)
    values["middle_name"] = check("middle name", _text, "middle name", get("middle_name"), 80)
    values["last_name"] = check("last name", _text, "last name", get("last_name"), 80, True)
    values["preferred_name"] = check(
        "preferred name", _text, "preferred name", get("preferred_name"), 80
    )
    old_id = check("old system id", _text, "old system id", get("old_system_id"), 60)
    values["old_system_id"] = old_id or None

    dob = None
    if get("dob"):
        dob = check("date of birth", parse_date, get("dob"), order=ctx.date_order, today=ctx.today)
        if dob is not None and dob > ctx.today:
            errors.append("Date of birth is in the future.")
        elif dob is not None and dob.year < 1900:
            errors.append("Date of birth is before 1900.")
    elif not old_id:
        errors.append(
            "Date of birth is missing (it is needed to recognise the client when the file is "
            "imported again, unless the row has the old system's id)."
        )
    values["dob"] = dob

    sex = get("sex")
    values["sex"] = ""
    if sex:
        values["sex"] = SEXES.get(" ".join(re.sub(r"[^a-z]", " ", fold(sex)).split()), "")
        if not values["sex"]:
            errors.append("Sex is not one of female, male, X or unknown.")
    values["email"] = check("email", clean_email, get("email")) or ""

    country_text = check("country", _text, "country", get("country"), 60) or ""
    region = _region(country_text)
    us = region == "US"
    values["country"] = "" if us else country_text
    for key, label in (("phone_mobile", "mobile phone"), ("phone_home", "home phone")):
        raw = get(key)
        phone = ""
        if raw:
            phone = check(label, clean_phone, raw, region=region or "US") or ""
            if phone and region not in ("", "US"):  # shown in a US practice: with its +code
                phone = _international(phone, region)
            if not phone and region not in ("", "US") and len(digits(raw)) >= 6:
                errors.pop()  # a number from a country phonenumbers cannot place: keep it as is
                phone = raw[:30]
        values[key] = phone
    values["address_line1"] = check("address line 1", _text, "address", get("address_line1"), 120)
    values["address_line2"] = check("address line 2", _text, "address", get("address_line2"), 120)
    values["city"] = check("city", _text, "city", get("city"), 80)
    state, postal = get("state"), get("zip_code")
    if us:
        state = STATE_NAMES.get(fold(state), state)
        values["state"] = check("state", clean_state, state) or ""
        if postal.isdigit() and 3 <= len(postal) < 5:  # a spreadsheet dropped leading zeros
            postal = postal.zfill(5)
        values["zip_code"] = check("ZIP code", clean_zip, postal) or ""
    else:
        values["state"] = check("state or region", _text, "state or region", state, 60) or ""
        values["zip_code"] = ""
        if postal:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 -]{0,14}", postal):
                errors.append("Postal code may hold only letters, digits, spaces and dashes.")
            else:
                values["zip_code"] = postal.upper()

    status = fold(get("status"))
    values["status"] = STATUSES.get(status, "") if status else "active"
    if not values["status"]:
        errors.append("Status is not one of active, inactive, prospective or discharged.")

    clinician = " ".join(get("clinician").replace(",", " , ").split())
    values["clinician_id"] = None
    if clinician:
        found = ctx.clinicians.get(fold(clinician))
        if found is None and " , " in clinician:  # "Ana Reyes, LCSW"
            found = ctx.clinicians.get(fold(clinician.split(" , ")[0]))
        if found is None:
            names = ", ".join(ctx.clinician_names) or "none yet (add them on the Clinicians page)"
            errors.append(f"Clinician {clinician!r} is not one of the practice's: {names}.")
        values["clinician_id"] = found

    values["client_since"] = None
    if get("client_since"):
        since = check(
            "client since", parse_date, get("client_since"), order=ctx.date_order, today=ctx.today
        )
        if since is not None and since > ctx.today:
            errors.append("Client since is in the future.")
        values["client_since"] = since

    def money(key: str, label: str) -> int:
        return check(label, _amount, get(key), key in ctx.cents) or 0

    due = money("opening_client_due", "opening client due")
    pending = money("opening_insurance_pending", "opening insurance pending")
    credit = money("opening_client_credit", "opening client credit")
    if due and credit:
        errors.append(
            "Opening client due and opening client credit are both given; give one, the difference."
        )
    opening["client_due_cents"], opening["insurance_pending_cents"] = due, pending
    opening["credit_cents"] = credit
    payer = " ".join(get("opening_payer").split())
    opening["payer_id"] = ctx.payers.get(fold(payer)) if payer else None
    opening["payer_name"] = "" if opening["payer_id"] else payer[:120]
    opening["service_date"] = None
    if get("opening_service_date"):
        dos = check(
            "date of service",
            parse_date,
            get("opening_service_date"),
            order=ctx.date_order,
            today=ctx.today,
        )
        if dos is not None and dos > ctx.today:
            errors.append("Date of service is in the future.")
        opening["service_date"] = dos
    elif due or pending:
        errors.append("Date of service of the opening balance is missing.")
    elif credit:
        opening["service_date"] = ctx.today  # a credit is not aged: dated the import's day
    return Row(number, values, opening, errors)


def clinician_lookup(rows: list[tuple[int, str, str, bool]]) -> tuple[dict[str, int], list[str]]:
    """(id, first, last, active) -> folded "first last" and "last, first" -> id; active names."""
    lookup: dict[str, int] = {}
    names = []
    for cid, first, last, active in rows:
        for key in (f"{first} {last}", f"{last} , {first}", f"{last}, {first}", f"{last} {first}"):
            lookup.setdefault(fold(" ".join(key.split())), cid)
        if active:
            names.append(f"{first} {last}")
    return lookup, names
