"""How `make run` serves ClientDesk (issue 12 items 1 and 3, spec A8).

It listens on 127.0.0.1 unless told otherwise, and serves app.py through serve.py, whose ASGI
app (found by `streamlit run`) puts the download guard in front of Streamlit's routes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from streamlit.web.server.app_discovery import discover_asgi_app

ROOT = Path(__file__).resolve().parent.parent


def _streamlit_command(**env: str) -> list[str]:
    """The command `make run` would run (make -n prints it without running anything)."""
    shown = subprocess.run(
        ["make", "-n", "--no-print-directory", "run"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.replace("\\\n", " ")
    [line] = [line for line in shown.splitlines() if "streamlit run" in line]
    words = shlex.split(line)  # the recipe also starts the worker: keep streamlit's own words
    start = next(
        i for i, w in enumerate(words) if w.endswith("streamlit") and words[i + 1] == "run"
    )
    return words[start : words.index("&", start) if "&" in words[start:] else None]


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_make_run_listens_on_this_machine_only_by_default():
    command = _streamlit_command()
    assert _option(command, "--server.address") == "127.0.0.1"


def test_make_run_listens_elsewhere_only_when_told():
    assert _option(_streamlit_command(ADDRESS="0.0.0.0"), "--server.address") == "0.0.0.0"


def test_make_run_serves_the_app_behind_the_download_guard():
    command = _streamlit_command()
    assert command[1:3] == ["run", "serve.py"]
    # `streamlit run` finds the st.App there and serves it (tests/e2e: the guard answers).
    found = discover_asgi_app(ROOT / "serve.py")
    assert found.is_asgi_app and found.app_name == "app"
