"""Aging buckets by date of service (spec B4). Bucket edges are days past the date of service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

DEFAULT_EDGES = (30, 60, 90, 120)


@dataclass(frozen=True)
class Bucket:
    key: str
    label: str
    min_days: int
    max_days: int | None  # None: open-ended

    def date_range(self, as_of: date) -> tuple[date | None, date]:
        """Service dates (oldest, newest) that fall in this bucket on ``as_of``."""
        newest = as_of - timedelta(days=self.min_days)
        oldest = None if self.max_days is None else as_of - timedelta(days=self.max_days)
        return oldest, newest


def buckets(edges: tuple[int, ...] = DEFAULT_EDGES) -> list[Bucket]:
    """0-30, 31-60, 61-90, 91-120, 120+ for the default edges."""
    result = []
    low = 0
    for edge in edges:
        label = f"{low}–{edge}" if low == 0 else f"{low + 1}–{edge}"
        result.append(
            Bucket(
                key=f"{low}_{edge}",
                label=label,
                min_days=low if low == 0 else low + 1,
                max_days=edge,
            )
        )
        low = edge
    result.append(Bucket(key=f"{low}_plus", label=f"{low}+", min_days=low + 1, max_days=None))
    return result


def bucket_by_key(key: str, edges: tuple[int, ...] = DEFAULT_EDGES) -> Bucket:
    for b in buckets(edges):
        if b.key == key:
            return b
    raise KeyError(key)
