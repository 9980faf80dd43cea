"""The one flash message: what an action wants to tell the user on the screen that follows it.

An action that ends in ``st.rerun()`` (a save, a send, a sign-out) cannot show anything itself:
what it draws, a toast included, is replaced by the rerun. So it calls ``flash(kind, text)``,
and ``show_flash()`` (called once, by app.py, at the top of every run) shows what is waiting.
A message is gone only once a run that showed it has ended without being rerun: when that run
is cut short by ``st.rerun()`` / ``st.switch_page()`` (or by the user clicking on), app.py's
``kept_across_rerun()`` puts it back, so it shows on the next run instead of being lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import streamlit as st

# Raised by st.rerun()/st.switch_page() and when a newer run preempts this one. Streamlit has
# no public name for it; it is a BaseException, so page code's `except Exception` never sees it.
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException

PENDING = "cd_flash"  # messages waiting to be shown
SHOWN = "cd_flash_shown"  # messages shown by the current run
KINDS = ("success", "info", "warning", "error")
_ICONS = {"success": ":material/check:", "error": ":material/error:"}


@dataclass(frozen=True)
class Link:
    """A page link under the message, e.g. to the client an action just created."""

    page: str
    label: str
    query_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Flash:
    kind: str  # one of KINDS
    text: str  # our own words (may name a staff member); never markdown from users
    detail: str = ""  # text users typed (file names, addresses): shown literally
    link: Link | None = None
    toast: bool = False  # also pop up a toast


def flash(
    kind: str, text: str, *, detail: str = "", link: Link | None = None, toast: bool = False
) -> None:
    """Show ``text`` on the next run (and after any rerun until it has been shown)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    message = Flash(kind=kind, text=text, detail=detail, link=link, toast=toast)
    st.session_state[PENDING] = [*st.session_state.get(PENDING, []), message]


def show_flash() -> None:
    """Show every waiting message, oldest first. Called once per run, by app.py."""
    waiting: list[Flash] = st.session_state.pop(PENDING, [])
    st.session_state[SHOWN] = [*st.session_state.get(SHOWN, []), *waiting]
    for message in waiting:
        if message.toast:
            st.toast(message.text, icon=_ICONS.get(message.kind))
        getattr(st, message.kind)(message.text, icon=_ICONS.get(message.kind))
        if message.detail:
            st.text(message.detail)
        if message.link:
            st.page_link(
                message.link.page,
                label=message.link.label,
                icon=":material/person:",
                query_params=message.link.query_params,
            )


@contextmanager
def kept_across_rerun() -> Iterator[None]:
    """Around a whole run: messages it showed come back if the run ends in a rerun."""
    st.session_state[SHOWN] = []
    try:
        yield
    except RerunException:
        shown = st.session_state.pop(SHOWN, [])
        st.session_state[PENDING] = [*shown, *st.session_state.get(PENDING, [])]
        raise
    else:
        st.session_state.pop(SHOWN, None)
