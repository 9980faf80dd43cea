"""Clients › Intake review (managers, admins): submissions from the public intake page (I3).

Accept one as a new Prospective client (after the add-client duplicate check, which offers to
attach it to an existing client instead) or reject it with a reason. Select several to reject
them or mark them as spam at once. Rejected and spam submissions are kept and stay listed under
"Rejected" and "Spam" (what filled in the public page's hidden field lands there by itself).
"""

import pandas as pd
import streamlit as st

from lib import clients, intake
from lib.db import read_session, transaction
from lib.timeutil import local_text
from lib.validation import ValidationError
from ui import context
from ui.flash import Link, flash
from ui.intake_review import bulk_bar
from ui.intake_tab import public_intake_url, submission_view

GENERATION = "ir_generation"  # bumped after each review, so the table's selection starts afresh
DUPLICATES = "ir_duplicates"  # matches found when accepting, per submission id

actor = context.actor()
engine = context.engine()
tz = context.settings().practice_time_zone

st.title("Intake review")
st.caption("Prospective clients sign up on the public intake page:")
st.code(public_intake_url("intake_review"), language=None)

with read_session(engine) as session:
    waiting = intake.pending_count(session, actor=actor)
status = st.radio(
    "Show",
    list(intake.STATUS_LABELS),
    format_func=lambda s: f"Pending ({waiting})" if s == "pending" else intake.STATUS_LABELS[s],
    horizontal=True,
    key="ir_status",
)
with read_session(engine) as session:
    rows = intake.list_submissions(session, actor=actor, status=status)
if not rows:
    st.info(f"No {intake.STATUS_LABELS[status].lower()} submissions.")
    st.stop()

reviewed = status != "pending"
columns = ["Submitted", "Name", "Date of birth", "Email", "Phone"]
if reviewed:
    columns += ["Reviewed", "Reviewed by", "Client #", "Reason"]
frame = pd.DataFrame(
    [
        {
            "Submitted": local_text(r.submitted_at, tz),
            "Name": r.name,
            "Date of birth": r.dob,
            "Email": r.email,
            "Phone": r.phone,
            "Reviewed": local_text(r.reviewed_at, tz),
            "Reviewed by": r.reviewed_by,
            "Client #": r.client_number,
            "Reason": r.reject_reason,
        }
        for r in rows
    ],
    columns=columns,
)
event = st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config={
        "Date of birth": st.column_config.DateColumn("Date of birth", format="MM/DD/YYYY"),
        "Client #": st.column_config.NumberColumn("Client #", format="%d"),
    },
    key=f"ir_table_{status}_{st.session_state.get(GENERATION, 0)}",
    on_select="rerun",
    selection_mode="multi-row",
)
selected = [rows[i] for i in event.selection.rows if i < len(rows)]


def _bulk_done(message: str) -> None:
    flash("success", message)
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1
    st.rerun()


if selected and status in ("pending", "spam"):
    bulk_bar(status, [r.submission_id for r in selected], _bulk_done)
if len(selected) > 1:
    st.stop()  # one submission at a time below
if selected:
    chosen = selected[0]
elif not reviewed:
    chosen = rows[0]
    st.caption(
        "Showing the oldest submission. Click a row to review another, or select several to "
        "reject them or mark them as spam at once."
    )
else:
    st.caption("Click a row to see the submission.")
    st.stop()

with read_session(engine) as session:
    detail = intake.get_submission(session, actor=actor, submission_id=chosen.submission_id)
    matches = []
    if not reviewed:
        matches = intake.submission_duplicates(
            session, actor=actor, submission_id=chosen.submission_id
        )
        clinicians = dict(clients.clinician_choices(session))
sid = chosen.submission_id
row = detail.row

submission_view(detail, tz)
if reviewed:
    outcome = (
        f"{row.status_label} by {row.reviewed_by or 'ClientDesk'} {local_text(row.reviewed_at, tz)}"
    )
    if row.client_number:
        outcome += f" · client #{row.client_number}"
    st.text(outcome)
    if row.reject_reason:
        st.text(f"Reason: {row.reject_reason}")
    st.stop()


def _done(message: str, client_number: int | None = None) -> None:
    link = None
    if client_number:
        link = Link(
            "pages/client.py", f"Open client #{client_number}", {"client": str(client_number)}
        )
    flash("success", message, link=link)
    st.session_state.get(DUPLICATES, {}).pop(sid, None)
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1
    st.rerun()


def _accept(**kwargs) -> None:
    try:
        with transaction(engine) as session:
            result = intake.accept_submission(
                session, actor=actor, submission_id=sid, tz_name=tz, **kwargs
            )
    except clients.PossibleDuplicates as dup:
        st.session_state.setdefault(DUPLICATES, {})[sid] = dup.matches
        st.rerun()
    except (intake.AlreadyReviewed, ValidationError) as exc:
        st.error(" ".join(exc.errors.values()) if isinstance(exc, ValidationError) else str(exc))
    else:
        how = "as a new Prospective client" if result.created else "to an existing client"
        _done(
            f"Accepted {how}: client #{result.client_number}, "
            f"{result.answers_copied} answer(s) copied to Other Information.",
            result.client_number,
        )


matches = st.session_state.get(DUPLICATES, {}).get(sid) or matches
if matches:
    st.warning(
        f"{len(matches)} existing client(s) look like this person. Attach the submission to one "
        "of them, or accept it as a new client anyway. Answers it gives replace that client's "
        "answers to the same questions."
    )
    for m in matches:
        line = st.columns([3, 2, 1, 3, 2], vertical_alignment="center")
        line[0].text(f"#{m.client_number}  {m.name}")
        line[1].text(f"DOB {m.dob:%m/%d/%Y}" if m.dob else "DOB —")
        line[2].text(m.status)
        line[3].text(", ".join(m.reasons))
        if line[4].button("Attach here", key=f"ir_attach_{sid}_{m.client_id}"):
            _accept(attach_to_client_number=m.client_number)

c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
clinician_id = c1.selectbox(
    "Assign a clinician to the new client",
    [0, *clinicians],
    format_func=lambda c: clinicians.get(c, "Not yet"),
    key=f"ir_clinician_{sid}",
)
label = "Accept as a new client anyway" if matches else "Accept as new Prospective client"
if c2.button(label, type="primary", key=f"ir_accept_{sid}", icon=":material/person_add:"):
    _accept(
        clinician_id=clinician_id or None,
        acknowledged_duplicates=tuple(m.client_id for m in matches),
    )

with st.expander("Attach to another client, or reject"):
    number = st.text_input("Attach to client #", key=f"ir_number_{sid}")
    if st.button("Attach", key=f"ir_attach_number_{sid}"):
        if number.strip().isdigit():
            _accept(attach_to_client_number=int(number.strip()))
        else:
            st.error("Enter the client's number, like 1042.")
    reason = st.text_input("Reason for rejecting", key=f"ir_reason_{sid}")
    if st.button("Reject", key=f"ir_reject_{sid}", icon=":material/block:"):
        try:
            with transaction(engine) as session:
                intake.reject_submission(session, actor=actor, submission_id=sid, reason=reason)
        except ValidationError as exc:
            st.error(" ".join(exc.errors.values()))
        except intake.AlreadyReviewed as exc:
            st.error(str(exc))
        else:
            _done("Submission rejected. It stays listed under Rejected.")
