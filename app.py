"""ClientDesk entry point: database check, sign-in, role-aware navigation.

Every page is registered on every run, before sign-in, so deep links and refreshes keep their
URL; the role is checked (through lib.policy) before a page runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import streamlit as st

from lib.config import ConfigurationError
from lib.db import DatabaseNotReady
from lib.policy import ROLE_LABELS, PermissionDenied, allowed
from lib.timeutil import utcnow
from ui import context
from ui.login import LAST_ACTIVITY, sign_out, signed_in_actor

st.set_page_config(page_title="ClientDesk", page_icon="🗂️", layout="wide")
log = logging.getLogger("clientdesk")

# (file, title, icon, policy action needed to see it, shown in the sidebar)
PAGES = (
    ("pages/clients.py", "Clients", ":material/group:", "client.view", True),
    ("pages/client.py", "Client", ":material/person:", "client.view", False),
    ("pages/client_new.py", "Add client", ":material/person_add:", "client.create", False),
    ("pages/balances.py", "Outstanding balances", ":material/bar_chart:", "report.balances", True),
    ("pages/services.py", "Services", ":material/medical_services:", "settings.manage", True),
    ("pages/payers.py", "Payers", ":material/account_balance:", "settings.manage", True),
    ("pages/account.py", "My account", ":material/person:", None, True),
    ("pages/users.py", "Staff accounts", ":material/admin_panel_settings:", "users.manage", True),
    ("pages/audit_log.py", "Audit log", ":material/history:", "audit.view", True),
)

registered = {
    path: st.Page(path, title=title, icon=icon, default=(i == 0))
    for i, (path, title, icon, _, _) in enumerate(PAGES)
}
current = st.navigation(list(registered.values()), position="hidden")

try:
    context.ensure_database()
except DatabaseNotReady as exc:
    st.title("ClientDesk is not ready")
    st.error(str(exc))
    st.stop()

settings = context.settings()
try:
    actor, authenticator = signed_in_actor(settings)
except ConfigurationError as exc:
    st.title("ClientDesk is not configured")
    st.error(str(exc))
    st.stop()

if actor is None:
    st.stop()


@st.fragment(run_every=timedelta(seconds=60))
def _idle_watch() -> None:
    """Reruns the app once the idle limit passes, so the sign-out happens on screen."""
    last = st.session_state.get(LAST_ACTIVITY)
    if last and utcnow() - last > timedelta(minutes=settings.idle_minutes):
        st.rerun(scope="app")


with st.sidebar:
    st.markdown("### ClientDesk")
    st.caption(f"{actor.display_name} · {ROLE_LABELS[actor.role]}")
    for path, title, icon, action, in_sidebar in PAGES:
        if in_sidebar and (action is None or allowed(actor, action)):
            st.page_link(registered[path], label=title, icon=icon)
    if st.button("Sign out", key="sign_out", icon=":material/logout:"):
        sign_out(authenticator, actor)
        st.rerun()
    _idle_watch()

if current is not registered["pages/client.py"]:
    st.session_state.pop("cd_client_opened", None)  # the next open of a client is audited

needed = next(a for p, _, _, a, _ in PAGES if registered[p] is current)
if needed is not None and not allowed(actor, needed):
    st.error("Your role does not give access to this page.")
    st.stop()

try:
    current.run()
except PermissionDenied as exc:
    st.error(str(exc))
except DatabaseNotReady as exc:
    st.error(str(exc))
except Exception as exc:  # the user never sees a traceback (st.rerun/stop are not Exception)
    log.error("page %s failed: %s", current.title, type(exc).__name__)
    st.error("Something went wrong on this page and nothing was saved. Please try again.")
