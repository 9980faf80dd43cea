"""Every edit form in ClientDesk: one record, at one version, saved by what the user changed.

A ``RecordForm`` keeps, per form, a snapshot of the record as it was shown: its id, version and
values. Its widgets are keyed by form, record id, version and a generation number that is new
for every snapshot, so a value typed for one record can never appear on another, and nothing
typed survives a reload (the browser keeps a widget's value for as long as its key lives).

Saving sends lib only the fields whose submitted value differs from the value shown
(``lib.edits.user_changes``) with the version shown. When lib refuses because someone else saved
meanwhile (``StaleEdit``), the form keeps the user's typing, says who saved and when, and lists
the edits that were not saved ("Gender identity → Man"). **Reload** shows the stored values
(new keys), and **Put my changes back** reloads with those edits re-applied on top, ready to
save again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import streamlit as st
from sqlalchemy.orm import Session

from lib import db
from lib.edits import StaleEdit, user_changes
from lib.policy import PermissionDenied
from lib.validation import ValidationError
from ui import context
from ui.flash import flash

_STATE = "rf.state."  # + form name: the snapshot of the record the form shows
_COUNTER = "rf.generation"  # never reset, so no two snapshots share widget keys
_PAGE = "rf.page"

Formatter = Callable[[Any], str]


@dataclass
class _Snapshot:
    record_id: Hashable
    version: Hashable
    shown: dict[str, Any]  # what the form showed: the baseline for "changed"
    start: dict[str, Any]  # what the widgets start with (shown, or shown + re-applied edits)
    generation: int
    stale: str = ""  # the refusal message, while the user's typing is still in the form
    unsaved: dict[str, Any] = field(default_factory=dict)  # edits refused by StaleEdit
    unsaved_text: list[str] = field(default_factory=list)
    refresh: bool = False  # the next run reads the record afresh
    reapply: bool = False  # ... and puts the unsaved edits back into the fresh form
    reapplied: bool = False  # the unsaved edits are in the form again


def _next_generation() -> int:
    st.session_state[_COUNTER] = st.session_state.get(_COUNTER, 0) + 1
    return st.session_state[_COUNTER]


def forget(name: str) -> None:
    """The form's next showing reads the record afresh, under new widget keys (after a change
    made elsewhere on the screen, like the status dialog)."""
    snap = st.session_state.get(_STATE + name)
    if snap is not None:
        snap.refresh = True


def forget_all_on_page_change(page: str) -> None:
    """Called by app.py on every run: leaving a page drops every form's snapshot."""
    if st.session_state.get(_PAGE) != page:
        for key in [k for k in st.session_state if str(k).startswith(_STATE)]:
            del st.session_state[key]
        st.session_state[_PAGE] = page


def _text(value: Any, formatter: Formatter | None) -> str:
    if formatter is not None:
        return str(formatter(value))
    if value in (None, ""):
        return "(blank)"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, date):
        return f"{value:%m/%d/%Y}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


class RecordForm:
    """One edit form bound to one record; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        record_id: Hashable,
        version: Hashable,
        values: dict[str, Any],
        labels: dict[str, str],
    ):
        self.name = name
        self.labels = labels
        self.formatters: dict[str, Formatter | None] = {}
        self.slots: dict[str, Any] = {}
        old = st.session_state.get(_STATE + name)
        if old is not None and old.record_id == record_id and not old.refresh:
            snap = old
        else:
            snap = _Snapshot(record_id, version, dict(values), dict(values), _next_generation())
            if old is not None and old.record_id == record_id:  # a reload or a save
                snap.unsaved = dict(old.unsaved)
                snap.unsaved_text = list(old.unsaved_text)
                snap.reapplied = old.reapply
                if old.reapply:
                    snap.start.update(old.unsaved)
            st.session_state[_STATE + name] = snap
        self._snap: _Snapshot = snap
        self.changed_underneath = snap.version != version

    # --- state ----------------------------------------------------------------------------

    @property
    def record_id(self) -> Hashable:
        return self._snap.record_id

    @property
    def version(self) -> Hashable:
        """The version the form shows (what a save is checked against)."""
        return self._snap.version

    @property
    def prefix(self) -> str:
        s = self._snap
        return f"rf.{self.name}.{s.record_id}.v{s.version}.g{s.generation}."

    def key(self, field_name: str) -> str:
        return self.prefix + field_name

    def start(self, field_name: str) -> Any:
        return self._snap.start.get(field_name)

    def shown(self, field_name: str) -> Any:
        return self._snap.shown.get(field_name)

    def value(self, field_name: str) -> Any:
        """What the widget holds now (its starting value until the user changes it)."""
        return st.session_state.get(self.key(field_name), self.start(field_name))

    def set_start(self, field_name: str, value: Any) -> None:
        """Change what the form holds for a value that has no widget (how many coverages):
        it counts as the user's change."""
        self._snap.start[field_name] = value

    def changes(self, fields: Iterable[str]) -> dict[str, Any]:
        """The fields whose value now differs from the value the form showed."""
        return user_changes(self._snap.shown, {f: self.value(f) for f in fields})

    def _reload(self, *, reapply: bool) -> None:
        """The next run reads the stored record; with ``reapply`` the refused edits go back
        into the fresh form (and stay listed until saved or dismissed)."""
        self._snap.refresh = True
        self._snap.reapply = reapply

    # --- messages ---------------------------------------------------------------------------

    def banner(self) -> None:
        """Messages above the form: refused (with the unsaved edits), changed meanwhile. (Saved
        shows at the top of the page: ui/flash.py.)"""
        snap = self._snap
        if snap.stale:
            st.error(snap.stale)  # names a staff member: not user text about a client
        elif self.changed_underneath:
            st.warning(
                "Someone else saved this since you opened it. Reload to see their change; "
                "saving now would be refused.",
                icon=":material/sync_problem:",
            )
        if snap.unsaved_text:
            heading = "Not saved (put back in the form below):" if snap.reapplied else "Not saved:"
            st.text(heading + "\n" + "\n".join(f"  {line}" for line in snap.unsaved_text))
        can_reload = bool(snap.stale or self.changed_underneath)
        can_reapply = bool(snap.unsaved and not snap.reapplied)
        can_dismiss = bool(snap.unsaved_text and not snap.stale)
        if not (can_reload or can_reapply or can_dismiss):
            return
        buttons = st.columns([1, 2, 1, 2])
        if can_reload and buttons[0].button(
            "Reload", key=self.prefix + "reload", icon=":material/refresh:"
        ):
            self._reload(reapply=False)
            st.rerun()
        if can_reapply and buttons[1].button(
            "Reload and put my changes back",
            key=self.prefix + "reapply",
            icon=":material/replay:",
            help="Shows the saved record with your changes filled in again; check, then save.",
        ):
            self._reload(reapply=True)
            st.rerun()
        if can_dismiss and buttons[2].button("Dismiss", key=self.prefix + "dismiss"):
            snap.unsaved, snap.unsaved_text = {}, []
            st.rerun()

    # --- widgets ----------------------------------------------------------------------------

    def error_slot(self, field_name: str, where=None) -> None:
        """Reserve the place under a field where its message will appear."""
        self.slots[field_name] = (where or st).empty()

    def text(self, where, field_name: str, label: str, **kwargs) -> None:
        """A one-line text field. No ``max_chars``: a browser silently drops a longer paste,
        so lengths are checked by lib, which says what is over the limit."""
        where.text_input(
            label, value=self.start(field_name) or "", key=self.key(field_name), **kwargs
        )
        self.error_slot(field_name, where)

    def area(self, where, field_name: str, label: str, **kwargs) -> None:
        where.text_area(
            label, value=self.start(field_name) or "", key=self.key(field_name), **kwargs
        )
        self.error_slot(field_name, where)

    def select(self, where, field_name: str, label: str, options: list, **kwargs) -> None:
        current = self.start(field_name)
        index = options.index(current) if current in options else 0
        self.formatters[field_name] = kwargs.get("format_func")
        where.selectbox(label, options, index=index, key=self.key(field_name), **kwargs)
        self.error_slot(field_name, where)

    def radio(self, where, field_name: str, label: str, options: list, **kwargs) -> None:
        current = self.start(field_name)
        index = options.index(current) if current in options else 0
        self.formatters[field_name] = kwargs.get("format_func")
        where.radio(label, options, index=index, key=self.key(field_name), **kwargs)
        self.error_slot(field_name, where)

    def date(self, where, field_name: str, label: str, **kwargs) -> None:
        where.date_input(
            label,
            value=self.start(field_name),
            key=self.key(field_name),
            format="MM/DD/YYYY",
            **kwargs,
        )
        self.error_slot(field_name, where)

    def check(self, where, field_name: str, label: str, **kwargs) -> None:
        where.checkbox(
            label, value=bool(self.start(field_name)), key=self.key(field_name), **kwargs
        )
        self.error_slot(field_name, where)

    def number(self, where, field_name: str, label: str, **kwargs) -> None:
        where.number_input(label, value=self.start(field_name), key=self.key(field_name), **kwargs)
        self.error_slot(field_name, where)

    def show_errors(self, errors: dict[str, str]) -> None:
        unplaced = []
        for field_name, message in errors.items():
            if field_name in self.slots:
                self.slots[field_name].error(message)
            else:
                unplaced.append(message)
        for message in unplaced:
            st.error(message)

    # --- saving -----------------------------------------------------------------------------

    def describe(self, changes: dict[str, Any]) -> list[str]:
        """Each change as a person reads it: "Gender identity → Man"."""
        return [
            f"{self.labels.get(f, f)} → {_text(v, self.formatters.get(f))}"
            for f, v in changes.items()
        ]

    def save(
        self,
        changes: dict[str, Any],
        write: Callable[[Session, dict[str, Any], Any], Any],
        *,
        saved_notice: str = "Saved.",
        on_saved: Callable[[], None] | None = None,
    ) -> None:
        """Run ``write(session, changes, version_shown)`` in one transaction.

        On success the snapshot is dropped (the next run shows the stored record under new
        keys) and ``saved_notice`` shows at the top of the page (ui/flash.py); ``on_saved``
        runs first (a page that keeps its own confirmation on screen). Field errors go next to
        their fields and nothing is written; a refusal keeps the user's typing and lists the
        unsaved edits.
        """
        if not changes:
            st.info("Nothing changed, so nothing was saved.")
            return
        try:
            # A colleague saving at the same moment makes this wait or run again, never fail.
            db.write(context.engine(), lambda session: write(session, changes, self.version))
        except ValidationError as exc:
            self.show_errors(exc.errors)
            st.error("Nothing was saved: correct the fields marked above.")
            return
        except StaleEdit as exc:
            self._snap.stale = str(exc)
            self._snap.unsaved = dict(changes)
            self._snap.unsaved_text = self.describe(changes)
            st.rerun()
        except PermissionDenied as exc:
            st.error(str(exc))
            return
        if on_saved is not None:
            on_saved()
        self._snap.refresh = True
        if saved_notice:
            flash("success", saved_notice)  # shown after the rerun below (ui/flash.py)
        self._snap.unsaved, self._snap.unsaved_text, self._snap.stale = {}, [], ""
        st.rerun()
