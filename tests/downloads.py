"""Clicking a download button in AppTest: run the file's callable, as the server does on click.

A running server executes a download button's callable when the browser asks for the file
(a click); AppTest has no browser, so the ``downloads`` fixture remembers each callable
Streamlit registers and ``click`` runs the one behind a button, on the test's thread (like
Streamlit's download thread, outside any script run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest


@dataclass(frozen=True)
class File:
    name: str
    mime: str
    content: bytes


@dataclass
class Downloads:
    callables: dict[str, tuple[Callable[[], bytes], str | None, str | None]] = field(
        default_factory=dict
    )

    def button(self, at: AppTest, key: str):
        matches = [b for b in at.download_button if b.key == key]
        assert len(matches) == 1, f"expected one download button {key!r}, found {len(matches)}"
        return matches[0]

    def click(self, at: AppTest, key: str) -> bytes:
        """The bytes a click on ``key`` hands over; the page published none before it."""
        return self.file(at, key).content

    def file(self, at: AppTest, key: str) -> File:
        """What a click on ``key`` hands over: file name, type and bytes."""
        button = self.button(at, key)
        assert button.proto.url == "", "a file was published before the click"
        assert button.proto.deferred_file_id, "the button has no file to build on click"
        build, mime, name = self.callables[button.proto.deferred_file_id]
        return File(name=name or "", mime=mime or "", content=build())


@pytest.fixture
def downloads(monkeypatch) -> Downloads:
    found = Downloads()
    original = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        file_id = original(self, data_callable, mimetype, coordinates, file_name, **kwargs)
        found.callables[file_id] = (data_callable, mimetype, file_name)
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return found
