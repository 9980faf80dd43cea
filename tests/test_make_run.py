"""`make run` starts the worker next to the app, and stopping `make run` stops both (spec A7).

The README's own command runs here on a fresh SQLite data directory and a free port, with the
already installed virtualenv (``-o .venv/.runtime -o .venv/.installed``: installing is the
``venv`` targets' job, not what this checks). Once the app answers and the worker has written
its heartbeat, `make run` is stopped the two ways people stop it: Ctrl-C in its terminal
(SIGINT to the whole process group) and `kill <pid of make>` (SIGTERM to make alone). Nothing
of it may be left running, and the worker must have stopped cleanly (its heartbeat says
"stopped").
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_WITHIN = 300  # seconds: migrate, seed a small demo practice, start two Python processes
STOP_WITHIN = 120  # a worker round in progress finishes first; slow on a busy machine

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("make_run")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_pids(sid: int) -> set[int]:
    """Every live process of the session ``make run`` leads."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            pids.add(int(entry.name))
    return pids


def _heartbeat(database: Path) -> tuple | None:
    if not database.exists():
        return None
    try:
        with sqlite3.connect(database, timeout=5) as conn:
            return conn.execute(
                "SELECT pid, stopped_at, last_summary FROM worker_status"
            ).fetchone()
    except sqlite3.Error:  # not migrated yet, or no worker_status table at all
        return None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().decode().strip() == "ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.mark.parametrize(
    ("how", "stop"),
    [
        ("ctrl_c", lambda make: os.killpg(make.pid, signal.SIGINT)),
        ("kill_make", lambda make: make.send_signal(signal.SIGTERM)),
    ],
)
def test_make_run_starts_the_worker_and_stopping_it_stops_both(tmp_path, how, stop):
    data_dir, port = tmp_path / "data", _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("CLIENTDESK_") or k in ("DATABASE_URL", "MAKEFLAGS", "MFLAGS"))
    }
    env.update(CLIENTDESK_DATA_DIR=str(data_dir), CLIENTDESK_DEMO="1", CLIENTS="20", PORT=str(port))
    log = tmp_path / "make.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "-o", ".venv/.runtime", "-o", ".venv/.installed", "run"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session and process group, as in a terminal
        )
    try:
        deadline = time.monotonic() + START_WITHIN
        while not (_healthy(f"http://127.0.0.1:{port}") and _heartbeat(data_dir / "clientdesk.db")):
            if make.poll() is not None:
                pytest.fail(f"make run exited with {make.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no app and worker within {START_WITHIN} s:\n{log.read_text()}")
            time.sleep(0.5)
        worker_pid, stopped_at, _ = _heartbeat(data_dir / "clientdesk.db")
        running = _session_pids(make.pid)
        assert worker_pid in running and stopped_at is None
        assert len(running) >= 4, running  # make, its shell, the worker, streamlit

        stop(make)

        deadline = time.monotonic() + STOP_WITHIN
        while _session_pids(make.pid):
            if time.monotonic() > deadline:
                pytest.fail(f"still running after {how}: {_session_pids(make.pid)}")
            time.sleep(0.2)
        make.wait(timeout=STOP_WITHIN)
        _, stopped_at, summary = _heartbeat(data_dir / "clientdesk.db")
        assert stopped_at is not None and summary == "stopped", log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        if make.poll() is None or _session_pids(make.pid):
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=STOP_WITHIN)
