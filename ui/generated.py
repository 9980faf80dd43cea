"""Files made for one record or one filter (statement PDFs), kept with what they were made for.

A file is offered for download only while the screen still shows the record or filter it was
made for: a statement made on client #1001 is never offered on #1002, and a batch made for one
filter disappears when the filter changes (spec: "Anything generated for a record belongs to
that record and filter").
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import streamlit as st

_PREFIX = "cd_generated_"


@dataclass(frozen=True)
class Generated:
    owner: Hashable  # the record id, or the filter, the file was made for
    file_name: str
    content: bytes
    mime: str


def keep(slot: str, *, owner: Hashable, file_name: str, content: bytes, mime: str) -> None:
    """Remember a file made just now for ``owner`` (replacing any earlier one in the slot)."""
    st.session_state[_PREFIX + slot] = Generated(owner, file_name, content, mime)


def ready(slot: str, *, owner: Hashable) -> Generated | None:
    """The file in ``slot`` if it was made for ``owner``; a file made for anything else is
    dropped, so it can never be offered for the wrong record or filter."""
    made = st.session_state.get(_PREFIX + slot)
    if made is None:
        return None
    if made.owner != owner:
        del st.session_state[_PREFIX + slot]
        return None
    return made
