"""A real ClientDesk server on a demo practice, and real Chromium, for end-to-end tests.

The server is started the way `make run` starts it (migrate, seed the demo practice, `streamlit
run serve.py`, i.e. app.py behind ClientDesk's download guard) in a temporary data directory
with SQLite, on a free port, once per test module.
Every test gets a fresh browser context, so cookies never leak from one test to the next.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 60.0
SERVE = "serve.py"  # what `make run` serves: app.py behind the download guard
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"

# Watches the page: script-state changes of stApp, and component values posted to Streamlit.
PAGE_WATCH = """
(() => {
  const watch = {componentValue: false, state: null, lastEvent: performance.now()};
  window.__clientdesk = watch;
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (data && data.isStreamlitMessage && data.type === "streamlit:setComponentValue") {
      watch.componentValue = true;
      watch.lastEvent = performance.now();
    }
  });
  new MutationObserver(() => {
    const app = document.querySelector("[data-testid='stApp']");
    const state = app && app.getAttribute("data-test-script-state");
    if (state !== watch.state) {
      watch.state = state;
      watch.lastEvent = performance.now();
    }
  }).observe(document, {
    subtree: true, childList: true, attributes: true,
    attributeFilter: ["data-test-script-state"],
  });
})();
"""
# The cookie manager has reported, and nothing has happened for half a second since: the rerun
# its value may cause starts within about 0.1 s of it.
SETTLED = """() => {
  const w = window.__clientdesk;
  return w.componentValue && w.state === "notRunning" && performance.now() - w.lastEvent > 500;
}"""

expect.set_options(timeout=30_000)


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path

    @property
    def database(self) -> Path:
        return self.data_dir / "clientdesk.db"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("CLIENTDESK_") or k == "DATABASE_URL")
    }
    env["CLIENTDESK_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def _cli(data_dir: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "lib.cli", *args],
        cwd=ROOT,
        env=_env(data_dir),
        check=True,
        capture_output=True,
        timeout=300,
    )


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"streamlit did not become healthy in {START_TIMEOUT:.0f} s:\n{log.read_text()}"
    )


@contextmanager
def running_server(data_dir: Path, **env: str) -> Iterator[Server]:
    """`streamlit run serve.py` in demo mode on the SQLite database in ``data_dir``.

    ``env`` adds settings (``CLIENTDESK_…`` variables) for this server only.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir / f"streamlit-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                SERVE,
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=_env(data_dir, CLIENTDESK_DEMO="1", **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, proc, log)
        yield Server(url=url, data_dir=data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def demo_data_dir(tmp_path_factory) -> Path:
    """A data directory with a migrated 60-client demo practice, made by the CLI."""
    data_dir = tmp_path_factory.mktemp("e2e_data")
    _cli(data_dir, "migrate")
    _cli(data_dir, "seed-demo", "--clients", "60")
    return data_dir


@pytest.fixture(scope="module")
def server(demo_data_dir: Path) -> Iterator[Server]:
    with running_server(demo_data_dir) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(PAGE_WATCH)
    page = context.new_page()
    yield page
    context.close()


def wait_idle(page: Page) -> None:
    """Wait until the script run the last action started has finished."""
    page.wait_for_selector(IDLE)


def settle(page: Page) -> None:
    """Wait until a freshly loaded page has stopped rerunning by itself.

    streamlit-authenticator renders extra_streamlit_components' CookieManager on every run. Once
    its iframe has loaded (a second or so after the page), it posts the browser's cookies as its
    value, which usually reruns the script; a click that lands during that rerun is lost (the
    form submission never arrives). So tests wait for that value, and for the app to be idle
    for half a second after it, before touching the page.
    """
    page.wait_for_function(SETTLED)


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    settle(page)


def reload_app(page: Page) -> None:
    page.reload()
    settle(page)


def client_heading(page: Page, number: int):
    """The client page's heading: the client's name with "#number" beside it (plain text,
    styled as a heading, so a typed name is never read as Markdown)."""
    return page.locator(".st-key-client_heading_number").get_by_text(f"#{number}", exact=True)
