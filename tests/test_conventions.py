"""Project rules a machine can check, so a whole class of defect cannot come back.

- No ``max_chars`` on a text widget: the browser silently drops a longer paste (issue 10,
  item 9). Lengths are checked in lib, whose message says what is over the limit.
- No ``clear_on_submit``: a refused form would lose what the user typed.
- No ``date.today()`` / naive ``datetime.now()`` outside the time helpers: "today" is the
  practice's day (item 8).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENS = sorted([*ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"])
CODE = sorted([*SCREENS, *ROOT.glob("lib/**/*.py")])


def _offending(files, pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if rx.search(line) and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"max_chars\s*=", "a browser drops a longer paste silently; validate in lib"),
        (r"clear_on_submit\s*=\s*True", "a refused form would lose what was typed"),
    ],
)
def test_screens_never_drop_what_the_user_typed(pattern, why):
    assert _offending(SCREENS, pattern) == [], why


def test_nothing_takes_the_servers_date():
    pattern = r"\bdate\.today\(\)|\bdatetime\.(now|today)\(\s*\)"
    assert _offending(CODE, pattern) == [], "use lib.timeutil.practice_today() / utcnow()"


ENV_READERS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
SETTINGS_MODULE = ROOT / "lib" / "config.py"


def _reads_environment(source: str) -> list[int]:
    """Lines that touch the process environment (``os.environ``, ``os.getenv``, ``from os
    import environ``...)."""

    def reads(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr in ENV_READERS
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            return any(alias.name in ENV_READERS for alias in node.names)
        return False

    return [node.lineno for node in ast.walk(ast.parse(source)) if reads(node)]


def test_the_checker_sees_every_way_of_reading_the_environment():
    assert _reads_environment("import os\nx = os.environ.get('A')") == [2]
    assert _reads_environment("import os\nx = os.getenv('A')") == [2]
    assert _reads_environment("from os import environ") == [1]
    assert _reads_environment("x = settings.idle_minutes") == []


def test_only_lib_config_reads_the_environment():
    """Every setting is declared in lib/config.py's table and read through it (issue 13)."""
    files = sorted(
        [
            *CODE,
            *ROOT.glob("bench/*.py"),
            *ROOT.glob("migrations/**/*.py"),
            ROOT / "serve.py",
        ]
    )
    offending = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in files
        if path != SETTINGS_MODULE
        for line in _reads_environment(path.read_text())
    ]
    assert offending == [], "read settings with lib.config.setting(...) / load_settings()"
