"""The README's nginx config, as written, in front of two replicas, in Chromium (issue 12 item 3).

A self-signed certificate stands in for the practice's; only ports, certificate paths and the
replica addresses of docs/nginx/clientdesk.conf are replaced. Behind TLS the re-login cookie is
Secure, the download cookie Secure and HttpOnly; sticky sessions keep a browser's downloads on
the replica that holds its session; plain HTTP is redirected to HTTPS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import PAGE_WATCH, ROOT, _free_port, running_server, settle, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e")]

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
CONFIG = ROOT / "docs" / "nginx" / "clientdesk.conf"


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _site_config(folder: Path, *, http: int, https: int, replicas: list[int]) -> Path:
    """docs/nginx/clientdesk.conf with this machine's ports, certificate and replicas."""
    cert, key = _certificate(folder)
    text = CONFIG.read_text()
    replacements = [
        (r"listen 80;", f"listen 127.0.0.1:{http};"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;"),
        (r"ssl_certificate +\S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key +\S+;", f"ssl_certificate_key {key};"),
        (
            r"(    server 127\.0\.0\.1:\d+;\n)+",
            "".join(f"    server 127.0.0.1:{port};\n" for port in replicas),
        ),
    ]
    for pattern, replacement in replacements:
        text, found = re.subn(pattern, replacement, text)
        assert found == 1, f"the README's nginx config changed shape: {pattern}"
    site = folder / "clientdesk.conf"
    site.write_text(text)
    return site


def _main_config(folder: Path, site: Path) -> Path:
    temp = folder / "temp"
    temp.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = folder / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "  access_log off;\n"
        + "".join(
            f"  {kind}_temp_path {temp / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {site};\n"
        "}\n"
    )
    return main


@dataclass(frozen=True)
class Proxy:
    url: str  # https://127.0.0.1:PORT
    http_port: int


@pytest.fixture(scope="module")
def proxy(demo_data_dir: Path, tmp_path_factory) -> Iterator[Proxy]:
    if NGINX is None:
        pytest.skip("nginx is not installed here (.ci/run installs it: apt-get install nginx)")
    folder = tmp_path_factory.mktemp("nginx")
    http, https = _free_port(), _free_port()
    with ExitStack() as stack:
        replicas = [stack.enter_context(running_server(demo_data_dir)) for _ in range(2)]
        ports = [int(r.url.rsplit(":", 1)[1]) for r in replicas]
        main = _main_config(folder, _site_config(folder, http=http, https=https, replicas=ports))
        test = subprocess.run([NGINX, "-t", "-c", str(main)], capture_output=True, text=True)
        assert test.returncode == 0, test.stderr
        nginx = subprocess.Popen(
            [NGINX, "-c", str(main), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"https://127.0.0.1:{https}"
            _wait_for(url + "/_stcore/health", nginx, folder)
            yield Proxy(url=url, http_port=http)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _wait_for(url: str, nginx: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert nginx.poll() is None, (folder / "error.log").read_text()
        try:
            with urllib.request.urlopen(url, timeout=2, context=_insecure()) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nginx did not answer:\n{(folder / 'error.log').read_text()}")


@pytest.fixture
def tls_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        ignore_https_errors=True, accept_downloads=True, viewport={"width": 1400, "height": 900}
    )
    context.add_init_script(PAGE_WATCH)
    page = context.new_page()
    yield page
    context.close()


def _sign_in(page: Page, url: str) -> None:
    page.goto(url + "/")
    settle(page)
    form = page.get_by_test_id("stForm").filter(has_text="Sign in to ClientDesk")
    form.get_by_label("Username").fill("manager")
    form.get_by_label("Password", exact=True).fill("demo-manager-2026")
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_be_visible()
    wait_idle(page)


def test_behind_the_readme_nginx_config_cookies_are_secure_and_sessions_stick(
    tls_page: Page, proxy: Proxy
):
    _sign_in(tls_page, proxy.url)
    tls_page.wait_for_function("document.cookie.includes('clientdesk_auth=')")
    cookies = {c["name"]: c for c in tls_page.context.cookies()}

    relogin = cookies["clientdesk_auth"]
    assert relogin["secure"], "the re-login cookie is sent over plain HTTP too"
    assert relogin["sameSite"] == "Strict"
    assert not relogin["httpOnly"]  # written from JavaScript by the library (README says so)
    download = cookies["clientdesk_download"]
    assert download["secure"] and download["httpOnly"] and download["sameSite"] == "Strict"

    # Each download is a separate request: it must reach the replica holding this session.
    for name in ("Export CSV", "Export XLSX", "Export CSV"):
        with tls_page.expect_download() as info:
            tls_page.get_by_role("button", name=name).first.click()
        assert info.value.failure() is None, name
        assert Path(info.value.path()).stat().st_size > 100
        wait_idle(tls_page)

    # A reload is a new session, on the same replica, signed in again by the Secure cookie.
    tls_page.reload()
    settle(tls_page)
    expect(tls_page.get_by_role("button", name="Sign out").first).to_be_visible()


def test_plain_http_is_redirected_to_https(proxy: Proxy):
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(f"http://127.0.0.1:{proxy.http_port}/clients", timeout=5)
    assert answer.value.code == 301
    assert answer.value.headers["Location"].startswith("https://")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
