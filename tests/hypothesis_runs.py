"""How many examples the Hypothesis tests try: all of them in `make test-all`, a tenth in
`make test`.

tests/conftest.py registers the two profiles and loads the one named by ``HYPOTHESIS_PROFILE``
(or pytest's ``--hypothesis-profile``); without either, the small one, so a developer's
``pytest tests/test_x.py`` stays quick. A test whose full run needs another number of examples
than the profile's says so through ``scaled``, which keeps its share in the small profile too.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

FULL = "full"
FAST = "fast"
FULL_EXAMPLES = 100
PROFILES = {
    # Every step of these tests may be a real transaction: no per-example deadline.
    FULL: {"max_examples": FULL_EXAMPLES, "deadline": None},
    FAST: {
        "max_examples": FULL_EXAMPLES // 10,
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow],
    },
}


def register() -> None:
    for name, values in PROFILES.items():
        settings.register_profile(name, **values)


def scaled(full_run: int) -> int:
    """``full_run`` examples under the full profile; the same share of the active profile's
    examples otherwise (never fewer than 2)."""
    return max(2, round(full_run * settings().max_examples / FULL_EXAMPLES))
