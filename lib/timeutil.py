"""UTC time helpers. Stored timestamps are UTC; SQLite hands them back naive, PostgreSQL aware."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


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
