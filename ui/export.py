"""Download buttons: a file is built only when the user clicks, and every click is audited.

``st.download_button(data=bytes)`` publishes the bytes at a ``/media/…`` URL as soon as the page
renders, before anyone clicks, and that route checks no session. So nothing here hands Streamlit
bytes at render time: the button gets a callable, which Streamlit runs on its download thread
when the button is clicked. That thread has no session state, so everything the click needs
(who is signed in, the engine, the browser's download cookie) is captured while the page
renders. The file the click builds is then served by ``ui.download_guard`` only to that
browser, for at most a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import pandas as pd
import streamlit as st
from streamlit import config as streamlit_config

from lib import export, statements
from lib.db import transaction
from lib.timeutil import local_text, practice_today, utcnow
from ui import context, download_guard

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

    where = container or st
    if not (download_guard.installed() or streamlit_config.get_option("global.appTest")):
        # `streamlit run app.py` serves /media to anyone: refuse rather than leak. (AppTest
        # has no HTTP server at all, so nothing to guard.)
        where.caption(
            f"{label}: downloads are off because ClientDesk was started without its download "
            "guard. Start it with `make run` (`streamlit run serve.py`)."
        )
        return
    browser = download_guard.browser_token(st.context.cookies.get(download_guard.COOKIE))
    seconds = context.settings().download_seconds

    def on_click() -> bytes:
        try:
            data = build()
        except Exception as exc:
            # Streamlit logs the traceback of a failed download: keep data out of it.
            log.error("download %s failed: %s", key, type(exc).__name__)
            raise DownloadFailed("The file could not be prepared.") from None
        download_guard.grant(
            content=data, mimetype=mime, filename=file_name, browser=browser, seconds=seconds
        )
        return data

    where.download_button(
        label,
        data=on_click,
        file_name=file_name,
        mime=mime,
        key=key,
        icon=icon,
        on_click=after_click,
    )


def export_buttons(
    frame: FrameSource,
    *,
    name: str,
    what: str,
    action: str,
    about: export.About | None = None,
) -> None:
    """CSV and XLSX of exactly one on-screen table, built on click and audited per click.

    ``frame`` is the table shown, or a callable that builds it (then nothing is read until a
    button is clicked). ``what`` names the table in the audit log; ``action`` is the policy
    action the export needs (checked again, for the signed-in actor, on every click). A report
    passes ``about`` (as-of date, bucket edges, filters): the file names and the XLSX's About
    sheet carry it, and its money columns are formatted as money.
    """
    actor = context.actor()
    engine = context.engine()
    time_zone = context.settings().practice_time_zone
    stem = about.file_stem(name) if about else f"{name}-{practice_today().isoformat()}"
    money = about.money_columns if about else ()

    def build(file_format: str) -> Callable[[], bytes]:
        def make() -> bytes:
            table = frame() if callable(frame) else frame
            if file_format == "csv":
                data = export.to_csv(table, money_columns=money)
            else:
                info = None
                if about is not None:
                    generated = local_text(utcnow(), time_zone)
                    info = about.rows(generated=generated, row_count=len(table))
                data = export.to_xlsx(table, sheet=name, money_columns=money, about=info)
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
        file_name=f"{stem}.csv",
        mime="text/csv",
        key=f"export_csv_{name}",
        container=c1,
    )
    download_button(
        "Export XLSX",
        build=build("xlsx"),
        file_name=f"{stem}.xlsx",
        mime=XLSX,
        key=f"export_xlsx_{name}",
        container=c2,
    )


def scoped_export_buttons(
    page: pd.DataFrame,
    everything: Callable[[], pd.DataFrame],
    *,
    total: int,
    noun: str,
    name: str,
    what: str,
    action: str,
) -> None:
    """Export buttons with a choice: the page on screen, or all ``total`` matching rows.

    ``everything`` builds the whole filtered, sorted list (in the order on screen) and runs
    only when a button is clicked; the audit entry counts the rows it held.
    """
    if total <= len(page):
        export_buttons(page, name=name, what=what, action=action)
        return
    scope = st.radio(
        "Export",
        ["page", "all"],
        format_func=lambda s: (
            f"This page ({len(page):,} rows)" if s == "page" else f"All {total:,} matching {noun}"
        ),
        horizontal=True,
        key=f"export_scope_{name}",
    )
    if scope == "all":
        export_buttons(everything, name=name, what=what, action=action)
    else:
        export_buttons(page, name=name, what=what, action=action)


def statements_button(
    label: str, *, client_ids: list[int], key: str, container=None, icon: str | None = None
) -> None:
    """One PDF of statements for these clients, made (stored, logged, audited) on click."""
    actor = context.actor()
    engine = context.engine()
    data_dir = context.settings().data_dir
    ids = list(client_ids)

    def build() -> bytes:
        with transaction(engine) as session:
            pdf, _stored_as = statements.create_statements(
                session, actor=actor, client_ids=ids, data_dir=data_dir
            )
        return pdf

    download_button(
        label,
        build=build,
        file_name=f"statements-{practice_today().isoformat()}.pdf",
        mime="application/pdf",
        key=key,
        icon=icon or ":material/description:",
        after_click="rerun",  # the new statements show in the Documents tab
        container=container,
    )
