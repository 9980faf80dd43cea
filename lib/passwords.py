"""The password rule, the same for the Staff accounts page, My account, the CLI and resets.

At least 12 characters and at most 72 bytes (bcrypt ignores or refuses the rest); not a
password on the lists of common and leaked passwords bundled with zxcvbn (no network look-up:
these machines reach only package registries); not built from the person's name, username,
email or the practice's name; not one of the demo passwords the README publishes; and strong
enough by zxcvbn's estimate (score 3 of 4: too many guesses for an offline attack on a slow
hash).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from zxcvbn import zxcvbn

MIN_LENGTH = 12
MAX_BYTES = 72  # bcrypt's limit
MIN_SCORE = 3
RULE = (
    f"At least {MIN_LENGTH} characters. Not a common or leaked password, and not built from "
    "a name (yours, your username or the practice's)."
)


class PasswordRefused(ValueError):
    """The password breaks the rule; the message says which part, and never repeats it."""


def published_demo_passwords() -> frozenset[str]:
    from lib.demo import DEMO_LOGINS  # lib.demo creates accounts through lib.auth

    return frozenset(password for _, _, password, _ in DEMO_LOGINS)


def _name_parts(inputs: Iterable[str]) -> list[str]:
    """The names the password must not be built from, and their words of 4 letters or more
    (shorter words, like "Jo" or "the", are in too many good passwords to refuse)."""
    parts: set[str] = set()
    for text in inputs:
        text = (text or "").strip().lower()
        if not text:
            continue
        whole = text.split("@", 1)[0]  # an email's local part; any other text as is
        if len(whole) >= 3:
            parts.add(whole)
        parts.update(w for w in re.split(r"[\W_]+", whole) if len(w) >= 4)
    return sorted(parts)


def check(password: str, *, names: Iterable[str] = ()) -> None:
    """Raise ``PasswordRefused`` unless ``password`` keeps the rule.

    ``names``: the practice's name and the person's name, username and email.
    """
    if len(password.encode("utf-8")) > MAX_BYTES:
        raise PasswordRefused(
            f"A password can be at most {MAX_BYTES} bytes long (about {MAX_BYTES} letters; "
            "accented letters and emoji count for more)."
        )
    if password != password.strip():
        raise PasswordRefused("A password cannot start or end with a space.")
    if len(password) < MIN_LENGTH:
        raise PasswordRefused(f"Use at least {MIN_LENGTH} characters for the password.")
    demo = published_demo_passwords()
    if any(d in password.lower() for d in demo):
        raise PasswordRefused(
            "That is a demo password published in the README: choose one nobody else knows."
        )
    parts = _name_parts(names)
    result = zxcvbn(password, user_inputs=parts, max_length=MAX_BYTES)
    folded = re.sub(r"[\W_]+", "", password.lower())
    if any(
        part in password.lower() or re.sub(r"[\W_]+", "", part) in folded for part in parts
    ) or any(m.get("dictionary_name") == "user_inputs" for m in result["sequence"]):
        raise PasswordRefused(
            "Do not build the password from a name: yours, your username or the practice's."
        )
    for match in result["sequence"]:
        if match.get("dictionary_name") == "passwords" and len(match["token"]) == len(password):
            raise PasswordRefused(
                "That password is on the lists of common or leaked passwords: choose another."
            )
    if result["score"] < MIN_SCORE:
        raise PasswordRefused(
            "That password is too easy to guess: use a few unrelated words, or more characters."
        )
