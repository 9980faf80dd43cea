"""State of one editable tab of the client record: the version and values captured when the form
was first shown, the widgets, and where each field's error goes.

The version is captured once and kept until the user saves or reloads; re-reading it on every
rerun would let a stale form overwrite a colleague's change. Widgets get their starting values
through ``value=``/``index=`` from that snapshot (a form widget pre-filled through
``st.session_state`` is reset by the browser on the next rerun, before its form is submitted),
and their keys carry a generation number so a reload or save starts fresh widgets.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st


class TabForm:
    def __init__(self, section: str, client_id: int, version: int, values: dict[str, Any]):
        self.section = section
        self.client_id = client_id
        self.prefix = f"tab_{section}_{client_id}_"
        self._state_key = f"{self.prefix}state"
        if self._state_key not in st.session_state:
            st.session_state[self._state_key] = {
                "version": version,
                "values": dict(values),
                "generation": 0,
            }
        self.slots: dict[str, Any] = {}

    @property
    def _state(self) -> dict:
        return st.session_state[self._state_key]

    @property
    def version(self) -> int:
        return self._state["version"]

    def key(self, field: str) -> str:
        return f"{self.prefix}g{self._state['generation']}_{field}"

    def default(self, field: str) -> Any:
        return self._state["values"].get(field)

    def value(self, field: str) -> Any:
        """What the widget holds now (its starting value until the user changes it)."""
        return st.session_state.get(self.key(field), self.default(field))

    def values(self, fields) -> dict[str, Any]:
        return {f: self.value(f) for f in fields}

    def set_default(self, field: str, value: Any) -> None:
        self._state["values"][field] = value

    def saved(self, new_version: int, values: dict[str, Any]) -> None:
        """After a successful save: the saved values become the form's starting point."""
        self._state["version"] = new_version
        self._state["values"].update(values)
        self._state["generation"] += 1

    def reload(self) -> None:
        """Forget this tab's state; the next run shows the database's current values."""
        for key in [k for k in st.session_state if str(k).startswith(self.prefix)]:
            del st.session_state[key]

    # --- widgets ----------------------------------------------------------------------------

    def error_slot(self, field: str, container=None) -> None:
        """Reserve the place under a field where its message will appear."""
        self.slots[field] = (container or st).empty()

    def text(self, col, field: str, label: str, max_chars: int = 120, **kwargs) -> None:
        col.text_input(
            label,
            value=self.default(field) or "",
            key=self.key(field),
            max_chars=max_chars,
            **kwargs,
        )
        self.error_slot(field, col)

    def select(self, col, field: str, label: str, options: list, **kwargs) -> None:
        current = self.default(field)
        index = options.index(current) if current in options else 0
        col.selectbox(label, options, index=index, key=self.key(field), **kwargs)
        self.error_slot(field, col)

    def radio(self, col, field: str, label: str, options: list, **kwargs) -> None:
        current = self.default(field)
        index = options.index(current) if current in options else 0
        col.radio(label, options, index=index, key=self.key(field), **kwargs)
        self.error_slot(field, col)

    def date(self, col, field: str, label: str, **kwargs) -> None:
        value: date | None = self.default(field)
        col.date_input(label, value=value, key=self.key(field), format="MM/DD/YYYY", **kwargs)
        self.error_slot(field, col)

    def check(self, col, field: str, label: str) -> None:
        col.checkbox(label, value=bool(self.default(field)), key=self.key(field))
        self.error_slot(field, col)

    def show_errors(self, errors: dict[str, str]) -> None:
        unplaced = []
        for field, message in errors.items():
            if field in self.slots:
                self.slots[field].error(message)
            else:
                unplaced.append(message)
        for message in unplaced:
            st.error(message)


def forget(section: str, client_id: int) -> None:
    """Drop a tab's captured state (after a change made elsewhere, like the status dialog)."""
    prefix = f"tab_{section}_{client_id}_"
    for key in [k for k in st.session_state if str(k).startswith(prefix)]:
        del st.session_state[key]
