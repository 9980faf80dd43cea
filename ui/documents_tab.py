"""Documents on screen (spec D2, D3): the client's Documents tab, the "Send forms" dialog and
the log table with its filters, shared with the practice-wide Document log page.

Streamlit glue only: composing, sending and logging live in ``lib.documents``. User-typed text
(form texts, names, addresses, errors) is shown with ``st.text`` and tables, never markdown.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import documents, forms, mail
from lib.db import read_session
from lib.policy import PermissionDenied, allowed
from lib.timeutil import local_text, practice_today
from lib.validation import ValidationError
from ui import context
from ui.export import export_buttons
from ui.flash import flash

SEND_STATE = "cd_send_forms"  # {"client_id", "resend_of", "form_ids"} while the dialog is open


def _tz() -> str:
    return context.settings().practice_time_zone


# --- the send dialog -----------------------------------------------------------------------


def open_send_dialog(
    client_id: int, *, resend_of: int | None = None, form_ids: tuple[int, ...] = ()
) -> None:
    """Ask for the send dialog; it opens where ``show_send_dialog`` runs (a session flag, so
    it survives reruns of the whole page)."""
    st.session_state[SEND_STATE] = {
        "client_id": client_id,
        "resend_of": resend_of,
        "form_ids": list(form_ids),
    }


def _close_send_dialog() -> None:
    st.session_state.pop(SEND_STATE, None)


def show_send_dialog(client_id: int | None = None) -> None:
    """Open the dialog if one was asked for (for ``client_id``, when given)."""
    state = st.session_state.get(SEND_STATE)
    if not state:
        return
    if client_id is not None and state["client_id"] != client_id:
        _close_send_dialog()  # asked for on another client's screen
        return
    _send_dialog(state["client_id"], state["resend_of"], tuple(state["form_ids"]))


def _size(size_bytes: int) -> str:
    if size_bytes < 1024 * 1024:
        return f"{max(1, round(size_bytes / 1024))} KB"
    return f"{size_bytes / (1024 * 1024):.1f} MB"


def _show_preview(preview: documents.EmailPreview) -> None:
    with st.container(border=True):
        st.caption("This exact email will be sent")
        st.text(f"To: {preview.recipient}")
        st.text(f"Subject: {preview.subject}")
        st.divider()
        st.text(preview.body)
        if preview.attachments:
            st.divider()
            for a in preview.attachments:
                st.text(f"📎 {a.name} ({_size(a.size_bytes)})")
        else:
            st.caption("No attachments (an administrator adds files in the Forms library).")


@st.dialog("Send forms", width="large", on_dismiss=_close_send_dialog)
def _send_dialog(client_id: int, resend_of: int | None, preset: tuple[int, ...]) -> None:
    actor = context.actor()
    with read_session(context.engine()) as session:
        recipient = documents.recipient_for(session, actor=actor, client_id=client_id)
        library = {f.form_id: f for f in forms.list_forms(session, actor=actor)}
    if resend_of:
        st.caption(f"Resending document #{resend_of} with the forms as they are now.")
    if recipient.problem:
        st.error(recipient.problem)
        return
    if not library:
        st.info("The forms library is empty. An administrator adds forms under Settings.")
        return
    chosen = st.multiselect(
        "Forms",
        list(library),
        default=[f for f in preset if f in library],
        format_func=lambda f: library[f].name,
        key=f"send_forms_choice_{client_id}_{resend_of or 0}",
        placeholder="Choose one or more forms",
    )
    forms_error = st.empty()
    if not chosen:
        return
    try:
        with read_session(context.engine()) as session:
            preview = documents.preview_forms(
                session, actor=actor, client_id=client_id, form_ids=tuple(chosen)
            )
    except ValidationError as exc:
        forms_error.error(" ".join(exc.errors.values()))
        return
    _show_preview(preview)
    if st.button("Send", type="primary", icon=":material/send:", key="send_forms_submit"):
        settings = context.settings()
        try:
            outcome = documents.send_forms(
                context.engine(),
                actor=actor,
                client_id=client_id,
                form_ids=preview.form_ids,
                settings=mail.mail_settings(settings.data_dir),
                data_dir=settings.data_dir,
                expected_fingerprint=preview.fingerprint,
                resend_of_id=resend_of,
            )
        except ValidationError as exc:
            forms_error.error(" ".join(exc.errors.values()))
            return
        except PermissionDenied as exc:
            st.error(str(exc))
            return
        when = local_text(outcome.sent_at, _tz())
        # Addresses and mail errors go in ``detail``: shown literally.
        if outcome.status == "queued":
            flash(
                "success",
                "Forms queued: they are emailed within a minute.",
                detail=f"To {outcome.recipient}, queued at {when}. "
                "The log below shows when they went.",
                toast=True,
            )
        else:
            flash(
                "error",
                "The forms were not sent. The attempt is in the log; you can resend it.",
                detail=f"{when}: {outcome.error}",
                toast=True,
            )
        _close_send_dialog()
        st.rerun()


# --- the log table -------------------------------------------------------------------------


def log_filters(prefix: str, *, with_client: bool, on_change=None) -> dict:
    """Filter widgets; returns keyword arguments for ``documents.search_log``.
    ``on_change`` runs when any filter changes (e.g. to go back to the first page)."""
    actor = context.actor()
    with read_session(context.engine()) as session:
        form_names = [f.name for f in forms.list_forms(session, actor=actor, include_inactive=True)]
        sender_names = dict(documents.senders(session, actor=actor))
    values: dict = {}
    if with_client:
        c0, c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 2, 1, 1])
        values["client_query"] = c0.text_input(
            "Client", key=f"{prefix}_client", placeholder="Client # or name", on_change=on_change
        )
    else:
        c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 1, 1])
    values["form_name"] = c1.selectbox(
        "Form",
        ["", *form_names],
        format_func=lambda n: n or "All forms",
        key=f"{prefix}_form",
        on_change=on_change,
    )
    values["statuses"] = tuple(
        c2.multiselect(
            "Status",
            list(documents.STATUS_LABELS),
            format_func=documents.STATUS_LABELS.get,
            key=f"{prefix}_status",
            placeholder="All statuses",
            on_change=on_change,
        )
    )
    sender = c3.selectbox(
        "Sender",
        ["", *sender_names],
        format_func=lambda s: sender_names.get(s, "Everyone"),
        key=f"{prefix}_sender",
        on_change=on_change,
    )
    values["sender_user_id"] = None if sender == "" else sender
    values["date_from"] = c4.date_input(
        "From",
        value=None,
        max_value=practice_today(),
        format="MM/DD/YYYY",
        key=f"{prefix}_from",
        on_change=on_change,
    )
    values["date_to"] = c5.date_input(
        "To",
        value=None,
        max_value=practice_today(),
        format="MM/DD/YYYY",
        key=f"{prefix}_to",
        on_change=on_change,
    )
    if values["date_from"] and values["date_to"] and values["date_from"] > values["date_to"]:
        st.error("'From' is after 'To': no day is in that range.")
    return values


def log_frame(rows: list[documents.DocumentRow], *, with_client: bool) -> pd.DataFrame:
    """The log exactly as on screen (and exported), times in the practice's time zone."""
    tz = _tz()
    columns = ["#", "Sent"]
    if with_client:
        columns += ["Client #", "Client"]
    columns += ["What", "Forms", "Status", "Sender", "To", "Error", "Attachments", "Channel"]
    columns += ["Resend of"]
    records = [
        {
            "#": r.entry_id,
            "Sent": local_text(r.sent_at, tz),
            "Client #": r.client_number,
            "Client": r.client_name,
            "What": r.kind,
            "Forms": r.forms,
            "Attachments": r.attachments,
            "To": r.recipient,
            "Channel": r.channel,
            "Status": r.status,
            "Error": r.error,
            "Sender": r.sender,
            "Resend of": f"#{r.resend_of_id}" if r.resend_of_id else "",
        }
        for r in rows
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def log_table(
    rows: list[documents.DocumentRow], *, key: str, with_client: bool
) -> documents.DocumentRow | None:
    """The table; returns the row the user clicked, if any."""
    frame = log_frame(rows, with_client=with_client)
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "#": st.column_config.NumberColumn("#", format="%d", width="small"),
            "Client #": st.column_config.NumberColumn("Client #", format="%d"),
        },
    )
    picked = event.selection.rows if event else []
    return rows[picked[0]] if picked and picked[0] < len(rows) else None


def resend_button(row: documents.DocumentRow, *, key: str) -> None:
    """Resend the clicked row: the dialog opens with its forms chosen, for review first."""
    if not row.can_resend:
        return
    if st.button(
        f"Resend #{row.entry_id}", icon=":material/forward_to_inbox:", key=f"{key}_resend"
    ):
        with read_session(context.engine()) as session:
            plan = documents.resend_plan(session, actor=context.actor(), entry_id=row.entry_id)
        if plan.problem:
            st.warning("Some of these forms cannot be resent:")
            st.text(plan.problem)  # form names: shown literally
        if plan.form_ids or not plan.problem:
            open_send_dialog(row.client_id, resend_of=row.entry_id, form_ids=plan.form_ids)


# --- the client's Documents tab ------------------------------------------------------------


def render(client_id: int) -> None:
    """The tab: send button, the client's log with filters, resend and export."""
    actor = context.actor()
    if allowed(actor, "documents.send") and st.button(
        "Send forms", icon=":material/outgoing_mail:", key="documents_send"
    ):
        open_send_dialog(client_id)
    _client_log(client_id)
    show_send_dialog(client_id)


def _client_log(client_id: int) -> None:
    actor = context.actor()
    with read_session(context.engine()) as session:
        anything = documents.search_log(session, actor=actor, client_id=client_id, limit=1).total
    if not anything:
        st.caption("Nothing has been sent to this client yet.")
        return
    filters = log_filters("client_docs", with_client=False)
    with read_session(context.engine()) as session:
        page = documents.search_log(
            session, actor=actor, client_id=client_id, tz_name=_tz(), limit=1000, **filters
        )
    if not page.rows:
        st.caption("Nothing matches these filters.")
        return
    hint = " Click a form's row to resend it." if allowed(actor, "documents.send") else ""
    st.caption(f"{page.total:,} documents, newest first. Times are {_tz()} time.{hint}")
    picked = log_table(page.rows, key="client_docs_table", with_client=False)
    if picked is not None:
        resend_button(picked, key="client_docs")
    if allowed(actor, "client.export"):
        export_buttons(
            log_frame(page.rows, with_client=False),
            name="client-documents",
            what="document_log",
            action="client.export",
        )
