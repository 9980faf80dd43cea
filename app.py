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
from ui import context, flash, record_form
from ui.login import LAST_ACTIVITY, sign_out, signed_in_actor

st.set_page_config(page_title="ClientDesk", page_icon="🗂️", layout="wide")
log = logging.getLogger("clientdesk")

PUBLIC = "public"  # pages anyone may open without signing in (they show nothing stored)

# (file, title, icon, policy action needed (PUBLIC: none, None: any signed-in user),
#  sidebar section or None when not in the sidebar)
PAGES = (
    ("pages/clients.py", "Clients", ":material/group:", "client.view", "Clients"),
    ("pages/client.py", "Client", ":material/person:", "client.view", None),
    ("pages/client_new.py", "Add client", ":material/person_add:", "client.create", None),
    ("pages/intake_review.py", "Intake review", ":material/inbox:", "intake.review", "Clients"),
    (
        "pages/import_clients.py",
        "Import clients",
        ":material/upload_file:",
        "clients.import",
        "Clients",
    ),
    (
        "pages/balances.py",
        "Outstanding balances",
        ":material/bar_chart:",
        "report.balances",
        "Reports",
    ),
    ("pages/trends.py", "A/R trends", ":material/trending_up:", "report.trends", "Reports"),
    ("pages/collections.py", "Collections", ":material/call:", "collections.work", "Reports"),
    ("pages/reconcile.py", "Reconciliation", ":material/fact_check:", "reconcile.run", "Reports"),
    (
        "pages/document_log.py",
        "Document log",
        ":material/outgoing_mail:",
        "documents.view",
        "Reports",
    ),
    ("pages/services.py", "Services", ":material/medical_services:", "settings.manage", "Settings"),
    ("pages/payers.py", "Payers", ":material/account_balance:", "settings.manage", "Settings"),
    ("pages/forms.py", "Forms library", ":material/description:", "forms.manage", "Settings"),
    (
        "pages/reminder_settings.py",
        "Reminders & portal",
        ":material/notifications:",
        "settings.manage",
        "Settings",
    ),
    (
        "pages/clinicians.py",
        "Clinicians",
        ":material/stethoscope:",
        "clinicians.manage",
        "Settings",
    ),
    (
        "pages/users.py",
        "Staff accounts",
        ":material/admin_panel_settings:",
        "users.manage",
        "Settings",
    ),
    (
        "pages/intake_questions.py",
        "Intake questions",
        ":material/quiz:",
        "intake.questions",
        "Settings",
    ),
    ("pages/audit_log.py", "Audit log", ":material/history:", "audit.view", "Settings"),
    (
        "pages/export_data.py",
        "Export all data",
        ":material/archive:",
        "data.export_all",
        "Settings",
    ),
    ("pages/account.py", "My account", ":material/person:", None, "You"),
    ("pages/intake_public.py", "New client intake", ":material/edit_note:", PUBLIC, None),
    ("pages/portal_accept.py", "Portal invitation", ":material/key:", PUBLIC, None),
)
SECTIONS = ("Clients", "Reports", "Settings", "You")
# Pages whose address is not their file name (public pages get short, stable addresses).
URL_PATHS: dict[str, str] = {
    "pages/intake_public.py": "intake",
    "pages/portal_accept.py": "portal",
}

registered = {
    path: st.Page(path, title=title, icon=icon, default=(i == 0), url_path=URL_PATHS.get(path))
    for i, (path, title, icon, _, _) in enumerate(PAGES)
}
current = st.navigation(list(registered.values()), position="hidden")
needed = next(a for p, _, _, a, _ in PAGES if registered[p] is current)

try:
    context.ensure_database()
except DatabaseNotReady as exc:
    st.title("ClientDesk is not ready")
    st.error(str(exc))
    st.stop()

if needed == PUBLIC:
    try:
        current.run()
    except Exception as exc:  # a public page never shows a traceback either
        log.error("public page %s failed: %s", current.title, type(exc).__name__)
        st.error("Something went wrong. Please try again later.")
    st.stop()

# One run, from here on: a message shown before a rerun is shown again after it (ui/flash.py).
with flash.kept_across_rerun():
    flash.show_flash()
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
        for section in SECTIONS:
            links = [
                (path, title, icon)
                for path, title, icon, action, where in PAGES
                if where == section and (action is None or allowed(actor, action))
            ]
            if links:
                st.caption(section)
            for path, title, icon in links:
                st.page_link(registered[path], label=title, icon=icon)
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            sign_out(authenticator, actor)
            st.rerun()
        _idle_watch()

    if current is not registered["pages/client.py"]:
        st.session_state.pop("cd_client_opened", None)  # the next open of a client is audited
    record_form.forget_all_on_page_change(current.url_path)  # no form state outlives its page

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
