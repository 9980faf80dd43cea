"""State of one editable tab of the client record: the version captured when the form was first
shown, the widget values, and where each field's error goes.

The version is captured once and kept until the user saves or reloads; re-reading it on every
rerun would let a stale form overwrite a colleague's change.
"""

from __future__ import annotations

from typing import Any

import streamlit as st


class TabForm:
    def __init__(self, section: str, client_id: int, version: int, values: dict[str, Any]):
        self.section = section
        self.client_id = client_id
        self.prefix = f"tab_{section}_{client_id}_"
        self.version_key = f"{self.prefix}version"
        if self.version_key not in st.session_state:
            st.session_state[self.version_key] = version
            for field, value in values.items():
                st.session_state[self.key(field)] = value
        self.slots: dict[str, Any] = {}

    def key(self, field: str) -> str:
        return f"{self.prefix}{field}"

    def value(self, field: str) -> Any:
        return st.session_state.get(self.key(field))

    def values(self, fields) -> dict[str, Any]:
        return {f: self.value(f) for f in fields}

    @property
    def version(self) -> int:
        return st.session_state[self.version_key]

    def saved(self, new_version: int) -> None:
        st.session_state[self.version_key] = new_version

    def error_slot(self, field: str, container=None) -> None:
        """Reserve the place under a field where its message will appear."""
        self.slots[field] = (container or st).empty()

    def show_errors(self, errors: dict[str, str]) -> None:
        unplaced = []
        for field, message in errors.items():
            if field in self.slots:
                self.slots[field].error(message)
            else:
                unplaced.append(message)
        for message in unplaced:
            st.error(message)

    def reload(self) -> None:
        """Forget this tab's state; the next run shows the database's current values."""
        for key in [k for k in st.session_state if str(k).startswith(self.prefix)]:
            del st.session_state[key]
