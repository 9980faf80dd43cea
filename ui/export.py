"""Download buttons: a file is built only when the user clicks, and every click is audited.

``st.download_button(data=bytes)`` publishes the bytes at a ``/media/…`` URL as soon as the page
renders, before anyone clicks, and that route checks no session. So nothing here hands Streamlit
bytes at render time: the button gets a callable, which Streamlit runs on its download thread
when the button is clicked. That thread has no session state, so everything the click needs
(who is signed in, the engine) is captured while the page renders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import pandas as pd
import streamlit as st

from lib import export
from lib.db import transaction
from lib.timeutil import practice_today
from ui import context

log = logging.getLogger("clientdesk.export")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# A table: the frame on screen, or a callable that builds it (run only on click).
FrameSource = pd.DataFrame | Callable[[], pd.DataFrame]


class DownloadFailed(RuntimeError):
    """A download could not be prepared; the message never carries data."""


def download_button(
    label: str,
    *,
    build: Callable[[], bytes],
    file_name: str,
    mime: str,
    key: str,
    icon: str | None = ":material/download:",
    after_click: Literal["ignore", "rerun"] = "ignore",
    container=None,
) -> None:
    """One button whose file ``build`` makes when it is clicked, never before.

    ``build`` runs outside the script run (no ``st`` calls, no session state): it must capture
    what it needs, and audit or log what it hands over before returning the bytes.
    ``after_click="rerun"`` reruns the page after the click (e.g. to show a new document).
    """

    def on_click() -> bytes:
        try:
            return build()
        except Exception as exc:
            # Streamlit logs the traceback of a failed download: keep data out of it.
            log.error("download %s failed: %s", key, type(exc).__name__)
            raise DownloadFailed("The file could not be prepared.") from None

    (container or st).download_button(
        label,
        data=on_click,
        file_name=file_name,
        mime=mime,
        key=key,
        icon=icon,
        on_click=after_click,
    )


def export_buttons(frame: FrameSource, *, name: str, what: str, action: str) -> None:
    """CSV and XLSX of exactly one on-screen table, built on click and audited per click.

    ``frame`` is the table shown, or a callable that builds it (then nothing is read until a
    button is clicked). ``what`` names the table in the audit log; ``action`` is the policy
    action the export needs (checked again, for the signed-in actor, on every click).
    """
    actor = context.actor()
    engine = context.engine()
    stamp = practice_today().isoformat()

    def build(file_format: str) -> Callable[[], bytes]:
        def make() -> bytes:
            table = frame() if callable(frame) else frame
            data = export.to_csv(table) if file_format == "csv" else export.to_xlsx(table, name)
            with transaction(engine) as session:
                export.record_export(
                    session,
                    actor=actor,
                    what=what,
                    file_format=file_format,
                    rows=len(table),
                    action=action,
                )
            return data

        return make

    c1, c2 = st.columns(2)
    download_button(
        "Export CSV",
        build=build("csv"),
        file_name=f"{name}-{stamp}.csv",
        mime="text/csv",
        key=f"export_csv_{name}",
        container=c1,
    )
    download_button(
        "Export XLSX",
        build=build("xlsx"),
        file_name=f"{name}-{stamp}.xlsx",
        mime=XLSX,
        key=f"export_xlsx_{name}",
        container=c2,
    )
