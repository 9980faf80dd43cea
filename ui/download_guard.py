"""Downloaded files answer only the browser that clicked for them, and only for a minute.

Streamlit serves every file a download button hands over at ``/media/<id>``, and that route
checks no session: anyone holding the URL gets the file, for as long as the file lingers in
memory (minutes, until later reruns of its session). ``DownloadGuard`` is ASGI middleware that
``serve.py`` puts in front of Streamlit's own routes (``st.App(middleware=...)``):

- every page load without one gets a random, HttpOnly ``clientdesk_download`` cookie that
  names the browser;
- a downloadable ``/media`` file is served only if a click granted it (``grant``, called by
  ``ui.export.download_button`` on Streamlit's download thread, after the click's audit row),
  to a request carrying the cookie of the browser that clicked, until the grant expires (60 s
  by default). Anything else gets 404, so a file nobody clicked for is never served at all.

Images and other non-download media pass through untouched. The registry is per process, like
Streamlit's media storage itself (replicas need sticky sessions anyway).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import PlainTextResponse

COOKIE = "clientdesk_download"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
MAX_SECONDS = 60


def _digest(content: bytes, mimetype: str, filename: str | None) -> str:
    h = hashlib.sha256()
    h.update(mimetype.encode())
    h.update(b"\0")
    h.update((filename or "").encode())
    h.update(b"\0")
    h.update(content)
    return h.hexdigest()


@dataclass(frozen=True)
class Grant:
    browser: str
    expires: float  # time.monotonic()


class Grants:
    """Which browser may fetch which file, until when (used from the event loop and threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_file: dict[str, list[Grant]] = {}

    def _prune(self, now: float) -> None:
        for key in list(self._by_file):
            alive = [g for g in self._by_file[key] if g.expires > now]
            if alive:
                self._by_file[key] = alive
            else:
                del self._by_file[key]

    def grant(
        self, *, content: bytes, mimetype: str, filename: str | None, browser: str, seconds: int
    ) -> None:
        now = time.monotonic()
        seconds = max(1, min(seconds, MAX_SECONDS))
        with self._lock:
            self._prune(now)
            self._by_file.setdefault(_digest(content, mimetype, filename), []).append(
                Grant(browser=browser, expires=now + seconds)
            )

    def allows(
        self, *, content: bytes, mimetype: str, filename: str | None, browser: str | None
    ) -> bool:
        if not browser:
            return False
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            grants = self._by_file.get(_digest(content, mimetype, filename), [])
            return any(secrets.compare_digest(g.browser, browser) for g in grants)


GRANTS = Grants()
_installed = threading.Event()


def installed() -> bool:
    """True once a ``DownloadGuard`` is serving this process (``streamlit run serve.py``)."""
    return _installed.is_set()


def browser_token(value: object) -> str | None:
    """The browser's download cookie value, if it is one this guard could have issued."""
    return value if isinstance(value, str) and TOKEN.match(value) else None


def grant(
    *, content: bytes, mimetype: str, filename: str | None, browser: str | None, seconds: int
) -> None:
    """Let ``browser`` fetch this file for ``seconds`` (at most 60). No browser: nobody may."""
    if browser:
        GRANTS.grant(
            content=content,
            mimetype=mimetype,
            filename=filename,
            browser=browser,
            seconds=seconds,
        )


class DownloadGuard:
    """ASGI middleware in front of Streamlit's routes (see the module docstring)."""

    def __init__(self, app, *, base_path: str | None = None, secure_cookie: bool = False) -> None:
        if base_path is None:
            from streamlit import config

            base_path = config.get_option("server.baseUrlPath") or ""
        self.app = app
        self.media_prefix = "/" + "/".join(p for p in (base_path.strip("/"), "media/") if p)
        self.cookie_path = "/" + base_path.strip("/")
        self.secure_cookie = secure_cookie
        _installed.set()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        browser = browser_token(request.cookies.get(COOKIE))
        if scope["path"].startswith(self.media_prefix):
            if self._refused(scope["path"][len(self.media_prefix) :], browser):
                await PlainTextResponse("Not found", status_code=404)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if browser:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self._with_cookie(scope, send))

    def _refused(self, name: str, browser: str | None) -> bool:
        """A downloadable file is refused unless a click granted it to this browser."""
        from streamlit import runtime
        from streamlit.runtime.media_file_storage import MediaFileKind

        if not runtime.exists():
            return True
        manager = runtime.get_instance().media_file_mgr
        if not manager.can_read_files:
            return True
        file = manager.read_file(name)
        if file is None or file.kind != MediaFileKind.DOWNLOADABLE:
            return False  # Streamlit answers 404 itself, or serves an image/audio/video
        return not GRANTS.allows(
            content=file.content, mimetype=file.mimetype, filename=file.filename, browser=browser
        )

    def _with_cookie(self, scope, send):
        """Give a page load (an HTML response) the browser's download cookie."""
        secure = self.secure_cookie or scope.get("scheme") == "https"

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = next(
                    (v for k, v in headers if k.lower() == b"content-type"), b""
                ).lower()
                if content_type.startswith(b"text/html"):
                    cookie = (
                        f"{COOKIE}={secrets.token_urlsafe(32)}; Path={self.cookie_path}; "
                        "HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
                    )
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        return sending
