"""Settings › Forms library (admins, spec D1): forms staff email to clients, with attachments.

The texts go to clients by plain email, so lib refuses anything that looks like PHI; uploads
are checked by content and size in lib before anything is stored.
"""

import pandas as pd
import streamlit as st

from lib import forms
from lib.db import read_session, transaction
from lib.validation import ValidationError
from ui import context
from ui.export import download_button
from ui.flash import flash
from ui.record_form import RecordForm

LABELS = {
    "name": "Form name",
    "email_subject": "Email subject",
    "email_body": "Email body",
    "active": "Active (offered when sending forms)",
}

actor = context.actor()
engine = context.engine()
data_dir = context.settings().data_dir
limit = forms.upload_limit_bytes()
st.title("Forms library")
st.caption(
    f"Write {forms.PLACEHOLDER} where the client's first name goes; no other client detail "
    "can be put in an email, and text that looks like a date of birth, an SSN or a member ID "
    "is refused. Attachments: PDF, Word (DOCX), PNG or JPEG, up to "
    f"{limit // (1024 * 1024)} MB each."
)

with read_session(engine) as session:
    library = forms.list_forms(session, actor=actor, include_inactive=True)
st.dataframe(
    pd.DataFrame(
        [
            {
                "Name": f.name,
                "Subject": f.email_subject,
                "Attachments": f.attachment_names,
                "Active": f.active,
            }
            for f in library
        ],
        columns=["Name", "Subject", "Attachments", "Active"],
    ),
    hide_index=True,
    width="stretch",
)

by_id = {f.form_id: f for f in library}
if "forms_next_choice" in st.session_state:  # the form just created becomes the one shown
    st.session_state["forms_choice"] = st.session_state.pop("forms_next_choice")
choice = st.selectbox(
    "Add or edit",
    [0, *by_id],
    format_func=lambda fid: by_id[fid].name if fid in by_id else "+ New form",
    key="forms_choice",
)
current = by_id.get(choice)
form = RecordForm(
    "library_form",
    record_id=choice,
    version=current.version if current else 0,
    values={
        "name": current.name if current else "",
        "email_subject": current.email_subject if current else "",
        "email_body": current.email_body if current else f"Hello {forms.PLACEHOLDER},\n\n",
        "active": current.active if current else True,
    },
    labels=LABELS,
)
form.banner()
with st.form(form.prefix + "form"):
    form.text(st, "name", LABELS["name"])
    form.text(st, "email_subject", LABELS["email_subject"])
    form.area(st, "email_body", LABELS["email_body"], height=220)
    form.check(st, "active", LABELS["active"])
    submitted = st.form_submit_button("Save form", type="primary")


def _save(session, changes: dict, version) -> int:
    values = {f: changes.get(f, form.shown(f)) for f in LABELS}
    saved = forms.save_form(
        session,
        actor=actor,
        name=values["name"],
        email_subject=values["email_subject"],
        email_body=values["email_body"],
        active=values["active"],
        form_id=current.form_id if current else None,
        expected_version=version if current else None,
        tz_name=context.settings().practice_time_zone,
    )
    st.session_state["forms_next_choice"] = saved  # the form just saved stays chosen
    return saved


if submitted:
    changes = form.changes(LABELS) if current else {f: form.value(f) for f in LABELS}
    form.save(changes, _save, saved_notice="Form saved." if current else "Form added.")

if current is None:
    st.caption("Save the form first, then add its attachments.")
    st.stop()

st.subheader("Attachments")


def _loader(attachment_id: int):
    """Reads the file only when the download is clicked (on Streamlit's download thread)."""

    def load() -> bytes:
        with read_session(engine) as session:
            return forms.attachment_content(
                session, actor=actor, attachment_id=attachment_id, data_dir=data_dir
            )[1]

    return load


attached = [a for a in current.attachments if a.active]
if not attached:
    st.caption("No attachments yet.")
for a in attached:
    c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="center")
    c1.text(f"{a.original_name} · {a.content_type} · {a.size_bytes:,} bytes")
    download_button(
        "Download",
        build=_loader(a.attachment_id),
        file_name=a.original_name,
        mime=a.content_type,
        key=f"form_att_dl_{a.attachment_id}",
        container=c2,
    )
    if c3.button("Remove", key=f"form_att_rm_{a.attachment_id}", icon=":material/delete:"):
        with transaction(engine) as session:
            forms.remove_attachment(session, actor=actor, attachment_id=a.attachment_id)
        flash("success", "Attachment removed.", detail=a.original_name)  # a typed file name
        st.rerun()

nonce = st.session_state.setdefault("forms_upload_nonce", 0)
uploads = st.file_uploader(
    "Add attachments",
    type=list(forms.UPLOAD_TYPES),
    accept_multiple_files=True,
    max_upload_size=max(1, limit // (1024 * 1024)),
    key=f"forms_upload_{current.form_id}_{nonce}",
)
upload_errors = st.container()
if uploads and st.button(
    "Attach", type="primary", key="forms_attach", icon=":material/attach_file:"
):
    added, refused = [], []
    for upload in uploads:  # one transaction each: a bad file does not block the good ones
        try:
            with transaction(engine) as session:
                row = forms.add_attachment(
                    session,
                    actor=actor,
                    form_id=current.form_id,
                    filename=upload.name,
                    content=upload.getvalue(),
                    data_dir=data_dir,
                    max_bytes=limit,
                )
            added.append(row.original_name)
        except ValidationError as exc:
            refused.append(exc.errors.get("attachment", "This file cannot be attached."))
    if added and not refused:
        st.session_state["forms_upload_nonce"] = nonce + 1  # empties the uploader
        flash("success", "Attached.", detail=", ".join(added))
        st.rerun()
    if added:
        upload_errors.success("Attached:")
        upload_errors.text(", ".join(added))
    upload_errors.error("Not attached — nothing was stored for these files:")
    for message in refused:
        upload_errors.text(message)
