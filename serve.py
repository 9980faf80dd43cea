"""How ClientDesk is served: `streamlit run serve.py` (what `make run` does).

Streamlit finds the ASGI app below and serves app.py through it, with ClientDesk's download
guard in front of Streamlit's own routes: a downloaded file answers only the browser that
clicked for it, for at most a minute (see ui/download_guard.py). `streamlit run app.py` would
serve without the guard, so app.py then switches downloads off.
"""

import streamlit as st
from starlette.middleware import Middleware

from lib.config import load_settings
from ui.download_guard import DownloadGuard

app = st.App(
    "app.py",
    middleware=[Middleware(DownloadGuard, secure_cookie=load_settings().secure_cookies)],
)
