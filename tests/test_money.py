"""The one money formatter's short form for headlines (issue 11 item 3)."""

from __future__ import annotations

import pytest

from lib.money import format_cents, format_compact


@pytest.mark.parametrize(
    ("cents", "shown"),
    [
        (0, "$0.00"),
        (999_999, "$9,999.99"),  # exact while it is short
        (1_000_000, "$10.0K"),
        (9_300_500, "$93.0K"),
        (99_994_999, "$999.9K"),
        (99_996_000, "$1.00M"),  # never "$1000.0K"
        (1_352_012_345, "$13.52M"),
        (99_999_999_999, "$1.00B"),
        (-273_634_000, "-$2.74M"),
    ],
)
def test_headline_money_is_short_at_any_size(cents, shown):
    assert format_compact(cents) == shown
    assert len(format_compact(cents)) <= 9
    assert format_compact(cents) == format_cents(cents) or abs(cents) >= 1_000_000
