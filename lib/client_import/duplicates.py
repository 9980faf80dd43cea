"""The duplicate check of an import (spec C3), for a whole file at once.

The practice's clients are read once, in one query, into lookups by old system id, by name and
date of birth, by date of birth, by email and by phone; each row of the file is then checked
against those and against the rows before it (which are added as they are accepted). A row is
scored (``lib.clients.score_match``, the add-client form's rule) only against clients that
share its date of birth, email or phone: without one of those the score cannot reach
``DUPLICATE_THRESHOLD`` (last name 25 + first name 15 = 40), so no possible duplicate is missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from lib import clients
from lib.clients import DUPLICATE_THRESHOLD, digits, last_name_key
from lib.models import Client


class Known(NamedTuple):
    """A client of the practice (``client_number``) or an accepted row of the file (``row``).
    A tuple: a practice of 100,000 clients makes 100,000 of these."""

    client_number: int | None
    row: int | None
    first_name: str
    last_name: str
    preferred_name: str
    dob: date | None
    email_norm: str
    phone_digits: str
    last_name_key: str
    old_system_id: str | None

    @property
    def label(self) -> str:
        return f"#{self.client_number}" if self.client_number is not None else f"row {self.row}"

    def candidate(self) -> dict:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "preferred_name": self.preferred_name,
            "dob": self.dob,
            "email_norm": self.email_norm,
            "phone_digits": self.phone_digits,
            "last_name_key": self.last_name_key,
        }


@dataclass(frozen=True)
class Verdict:
    kind: str  # "new", "duplicate" or "possible"
    of: Known | None = None
    reasons: tuple[str, ...] = ()
    score: int = 0


def _phones(phone_digits: str) -> list[str]:
    return [p[-10:] for p in phone_digits.split() if len(p) >= 10]


@dataclass
class Index:
    by_old_id: dict[str, Known] = field(default_factory=dict)
    by_dob: dict[date, list[Known]] = field(default_factory=dict)
    by_email: dict[str, list[Known]] = field(default_factory=dict)
    by_phone: dict[str, list[Known]] = field(default_factory=dict)
    # Names repeat across a practice: each distinct one is folded once per import (this cache
    # lives as long as the import's index, no longer).
    fold: object = field(default_factory=lambda: lru_cache(maxsize=None)(clients.fold))

    def add(self, known: Known) -> None:
        if known.old_system_id:
            self.by_old_id.setdefault(known.old_system_id.strip().lower(), known)
        if known.dob is not None:
            self.by_dob.setdefault(known.dob, []).append(known)
        if known.email_norm:
            self.by_email.setdefault(known.email_norm, []).append(known)
        if known.phone_digits:
            for phone in known.phone_digits.split():
                if len(phone) >= 10:
                    self.by_phone.setdefault(phone[-10:], []).append(known)

    def check(self, values: dict) -> Verdict:
        """Duplicate: the same old system id, or else the same name and date of birth.
        Possible duplicate: scored at least ``DUPLICATE_THRESHOLD`` (best match)."""
        old_id = (values.get("old_system_id") or "").strip().lower()
        if old_id and old_id in self.by_old_id:
            return Verdict("duplicate", self.by_old_id[old_id], ("same old system id",), 100)
        dob = values.get("dob")
        if dob is not None and dob in self.by_dob:
            fold = self.fold
            name = (fold(values["first_name"]), fold(values["last_name"]))
            for known in self.by_dob[dob]:
                if (fold(known.first_name), fold(known.last_name)) == name:
                    return Verdict("duplicate", known, ("same name and date of birth",), 100)
        email = (values.get("email") or "").strip().lower()
        phone_digits = " ".join(
            d
            for d in (digits(values.get("phone_mobile", "")), digits(values.get("phone_home", "")))
            if d
        )
        seen: dict[int, Known] = {}
        for known in (
            *(self.by_dob.get(dob, ()) if dob is not None else ()),
            *(self.by_email.get(email, ()) if email else ()),
            *(k for p in _phones(phone_digits) for k in self.by_phone.get(p, ())),
        ):
            seen[id(known)] = known
        best: Verdict = Verdict("new")
        for known in seen.values():
            for phone in _phones(phone_digits) or [""]:
                score, reasons = clients.score_match(
                    first_name=values["first_name"],
                    last_name=values["last_name"],
                    dob=dob,
                    email=email,
                    phone_digits=phone,
                    candidate=known.candidate(),
                )
                if score >= DUPLICATE_THRESHOLD and score > best.score:
                    best = Verdict("possible", known, reasons, score)
        return best


def from_row(number: int, values: dict) -> Known:
    phones = " ".join(
        d
        for d in (digits(values.get("phone_mobile", "")), digits(values.get("phone_home", "")))
        if d
    )
    return Known(
        client_number=None,
        row=number,
        first_name=values["first_name"],
        last_name=values["last_name"],
        preferred_name=values.get("preferred_name") or "",
        dob=values.get("dob"),
        email_norm=(values.get("email") or "").strip().lower(),
        phone_digits=phones,
        last_name_key=last_name_key(values["last_name"]),
        old_system_id=values.get("old_system_id"),
    )


def load_practice(session: Session) -> Index:
    """Every client of the practice, every status, in one streamed query."""
    index = Index()
    query = select(
        Client.client_number,
        Client.first_name,
        Client.last_name,
        Client.preferred_name,
        Client.dob,
        Client.email_norm,
        Client.phone_digits,
        Client.last_name_key,
        Client.old_system_id,
    )
    # A Core result on the session's connection: no ORM row processing for 100,000 rows.
    result = session.connection().execute(query.execution_options(yield_per=10000))
    add = index.add
    for row in result:
        add(Known(row[0], None, *row[1:]))
    return index
