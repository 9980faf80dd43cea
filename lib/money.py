"""The one money parser and formatter. Money is integer cents everywhere in ClientDesk."""

from __future__ import annotations

import re

# What an accountant writes: an optional "$", digits with commas only between groups of
# three (1,250 or 1250, never 1,2,50), and at most two decimals. ASCII digits only.
_AMOUNT_RE = re.compile(r"^\$?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.[0-9]{1,2})?$")


class MoneyError(ValueError):
    """The typed amount is not a usable amount of money; the message says why."""


def parse_amount(text: str, *, allow_zero: bool = False) -> int:
    """Parse what a person types ("125", "125.5", "$1,250.00") into cents.

    Refuses more than two decimals, misplaced thousands separators ("1,0,0"), digits other
    than 0–9 (full-width "１２"), negatives, zero (unless ``allow_zero``) and non-numbers.
    """
    raw = (text or "").strip()
    if not raw:
        raise MoneyError("Enter an amount.")
    if raw.startswith(("-", "(")) or raw.endswith(")") or "-" in raw:
        raise MoneyError("The amount cannot be negative.")
    cleaned = raw.replace("$ ", "$", 1) if raw.startswith("$ ") else raw
    if any(ch.isdigit() and not "0" <= ch <= "9" for ch in cleaned):
        raise MoneyError("Type the amount with the digits 0–9, for example 125.50.")
    if not _AMOUNT_RE.fullmatch(cleaned) or not any(ch.isdigit() for ch in cleaned):
        if re.fullmatch(r"\$?[0-9,]*\.[0-9]{3,}", cleaned):
            raise MoneyError("Use at most two decimals (cents).")
        if "," in cleaned:
            raise MoneyError("Put commas only between groups of three digits, like 1,250.00.")
        raise MoneyError("Enter the amount as a number, for example 125 or 125.50.")
    whole, _, frac = cleaned.lstrip("$").replace(",", "").partition(".")
    cents = int(whole or "0") * 100 + int((frac + "00")[:2])
    if cents == 0 and not allow_zero:
        raise MoneyError("The amount must be more than zero.")
    if cents > 100_000_000_00:
        raise MoneyError("That amount is too large.")
    return cents


def format_cents(cents: int | None) -> str:
    """$1,234.50, or -$12.00 for negative amounts (credits)."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    return f"{sign}${whole:,}.{frac:02d}"


def format_compact(cents: int) -> str:
    """A short form that fits a headline at any practice size: exact up to $9,999.99, then
    $123.4K, $13.52M, $1.35B (negative with a leading minus). Show the exact amount nearby."""
    exact = format_cents(cents)
    value = abs(int(cents)) / 100
    if value < 10_000:
        return exact
    sign = "-" if cents < 0 else ""
    steps = ((1e6, 1e3, "K", 1), (1e9, 1e6, "M", 2), (float("inf"), 1e9, "B", 2))
    for limit, unit, suffix, digits in steps:
        if value < limit:
            scaled = value / unit
            if round(scaled, digits) >= 1000 and suffix != "B":
                continue  # $999.96K would read as $1000.0K: say $1.00M instead
            return f"{sign}${scaled:,.{digits}f}{suffix}"
    return exact
