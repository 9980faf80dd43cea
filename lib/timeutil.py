"""Time in ClientDesk: stored instants are UTC; "today" is the practice's day.

A practice in New York at 10 pm is still on its own day while UTC is already on the next, so
nothing uses the server's date: every default, label, file name and report asks
``practice_today``. SQLite hands timestamps back naive, PostgreSQL aware; ``as_utc`` evens
that out. Tests move the clock with ``time-machine`` (it patches the interpreter's clock);
there is no clock setting in the app itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from lib.config import load_settings


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def practice_zone(tz_name: str | None = None) -> ZoneInfo:
    """The practice's time zone (``CLIENTDESK_TIME_ZONE``), or ``tz_name`` when given."""
    return ZoneInfo(tz_name or load_settings().practice_time_zone)


def practice_now(tz_name: str | None = None) -> datetime:
    """Now on the practice's wall clock (aware, in the practice's zone)."""
    return utcnow().astimezone(practice_zone(tz_name))


def practice_today(tz_name: str | None = None) -> date:
    """The practice's today: the one answer for defaults, labels, file names and reports."""
    return practice_now(tz_name).date()


def practice_day(value: datetime, tz_name: str | None = None) -> date:
    """The practice's calendar day of a stored instant."""
    return as_utc(value).astimezone(practice_zone(tz_name)).date()


def as_utc(value: datetime | None) -> datetime | None:
    """The same instant as an aware UTC datetime, whatever the engine returned."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def local_text(value: datetime | None, tz_name: str, fmt: str = "%b %d, %Y %I:%M %p %Z") -> str:
    """A stored UTC instant shown in the practice's time zone."""
    if value is None:
        return ""
    return as_utc(value).astimezone(ZoneInfo(tz_name)).strftime(fmt)
