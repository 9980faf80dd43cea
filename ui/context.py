"""What every page needs from the running session: the engine and the signed-in actor.

Streamlit glue only; business rules live in ``lib``.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import Engine

from lib.config import Settings, load_settings
from lib.db import ensure_ready, make_engine
from lib.policy import Actor

ACTOR_KEY = "cd_actor"


@st.cache_resource(show_spinner=False)
def _engine_for(url: str) -> Engine:
    # Only the engine (a connection pool) is cached and shared; never query results.
    return make_engine(url)


@st.cache_resource(show_spinner=False)
def _ready(url: str, auto_upgrade: bool) -> bool:
    # Runs once per process when it succeeds; a failure is not cached and is retried.
    # Migrations run as CLIENTDESK_MIGRATION_DATABASE_URL's owner role when it is set.
    ensure_ready(_engine_for(url), auto_upgrade=auto_upgrade, settings=load_settings())
    return True


def settings() -> Settings:
    return load_settings()


def engine() -> Engine:
    return _engine_for(settings().database_url)


def ensure_database() -> None:
    """Raise ``DatabaseNotReady`` (a message fit to show) unless the schema is current."""
    s = settings()
    _ready(s.database_url, s.auto_migrate)


def _run_app_first() -> None:
    """Make app.py run before any page, even on a server's very first request.

    With a ``pages/`` folder beside app.py, Streamlit 1.67 starts in its pre-``st.navigation``
    mode and runs a deep-linked page script directly until app.py has called
    ``st.navigation`` once in the process. Turning that mode off and rerunning sends the
    request through app.py (database check, sign-in, role check) with the same URL.
    """
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
    st.rerun()


def actor() -> Actor:
    """The signed-in staff member; app.py guarantees pages only run with one."""
    if ACTOR_KEY not in st.session_state:
        _run_app_first()
    return st.session_state[ACTOR_KEY]
