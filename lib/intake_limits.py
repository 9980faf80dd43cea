"""How often the public intake page accepts a submission (spec I3), counted in the database.

Two limits, both shared by every replica because they are rows in ``intake_rate_events``:

- per client address: ``ADDRESS_PER_HOUR`` submissions an hour from one address, so one script
  cannot turn real prospective clients away;
- practice-wide: ``PRACTICE_PER_MINUTE`` a minute from all addresses together, high enough that
  one address (which gets at most ``ADDRESS_PER_HOUR``) can never fill it.

The address is what Streamlit reports (``st.context.ip_address``): the TCP peer, or behind a
reverse proxy the address in X-Forwarded-For when uvicorn trusts that proxy (the README says
how: ``FORWARDED_ALLOW_IPS``). An IPv6 address counts by its /64 network, which one home or
phone usually has to itself. Streamlit reports no address for the machine itself (loopback):
someone on the server, such as a kiosk in the waiting room, counts only towards the
practice-wide limit. Only a hash of the address is stored, and only for ``KEEP``.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from lib.models import IntakeRateEvent

ADDRESS_PER_HOUR = 5
PRACTICE_PER_MINUTE = 30
KEEP = timedelta(days=1)
NO_ADDRESS = ""  # the key of submissions from the server itself
_LOCK = 7_420_601  # PostgreSQL advisory lock: one submission counts at a time


class RateLimited(Exception):
    """Too many submissions; the message is safe to show on the public page."""


def address_key(address: str | None) -> str:
    """The key an address is counted under: a hash of the IPv4 address, or of the IPv6 /64
    (an IPv4 address written as IPv6 counts as the IPv4 address); ``NO_ADDRESS`` when there is
    none. A hash is not readable at a glance, but an IPv4 one could be found by trying every
    address: that is why events are kept only ``KEEP``."""
    if not address:
        return NO_ADDRESS
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return NO_ADDRESS
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return NO_ADDRESS
    network = str(ip) if ip.version == 4 else str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return hashlib.sha256(f"clientdesk-intake:{network}".encode()).hexdigest()


def count_submission(session: Session, *, address: str | None, now: datetime) -> None:
    """Refuse (``RateLimited``) or count one submission from ``address``, in the caller's
    transaction: call it just before the submission is stored, so a refused one leaves
    nothing behind and a stored one is always counted."""
    if session.get_bind().dialect.name == "postgresql":
        # Count and insert one at a time (SQLite's BEGIN IMMEDIATE already serialises writers).
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
    key = address_key(address)
    if key != NO_ADDRESS:
        from_here = session.scalar(
            select(func.count()).where(
                IntakeRateEvent.address_key == key, IntakeRateEvent.at > now - timedelta(hours=1)
            )
        )
        if from_here >= ADDRESS_PER_HOUR:
            raise RateLimited(
                "This form was already sent several times from your internet connection in the "
                "last hour. Please try again later, or call the practice; what you typed is "
                "still here."
            )
    everyone = session.scalar(
        select(func.count()).where(IntakeRateEvent.at > now - timedelta(minutes=1))
    )
    if everyone >= PRACTICE_PER_MINUTE:
        raise RateLimited(
            "The practice received many forms in the last minute. Please wait a minute and "
            "send yours again; what you typed is still here."
        )
    session.execute(delete(IntakeRateEvent).where(IntakeRateEvent.at < now - KEEP))
    session.add(IntakeRateEvent(address_key=key, at=now))
