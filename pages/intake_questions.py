"""Settings › Intake questions (admins): the questions prospective clients answer on the public
intake page and staff see on Other Information (spec I1), and that page's address.

Every saved change (add, edit, move, retire, restore) makes a new version of the question set;
retiring hides a question from new intakes and keeps every answer given to it.
"""

import streamlit as st

from lib import intake
from lib.db import read_session, transaction
from lib.edits import StaleEdit
from lib.models import QUESTION_TYPES
from lib.timeutil import local_text
from lib.validation import ValidationError
from ui import context
from ui.intake_tab import literal, public_intake_url
from ui.record_form import RecordForm

CHOICE = "iq_choice"
NEXT_CHOICE = "iq_next_choice"  # set by a button; applied before the picker is drawn
NEW = 0
LABELS = {
    "label": "Question",
    "help_text": "Help text (optional)",
    "qtype": "Answer type",
    "required": "Answer required",
    "options": "Options (single and multiple choice only), one per line",
}

actor = context.actor()
engine = context.engine()
tz = context.settings().practice_time_zone

st.title("Intake questions")
url = public_intake_url("intake_questions")
st.write("Prospective clients fill in the active questions on the public intake page:")
c1, c2 = st.columns([3, 1], vertical_alignment="center")
c1.code(url, language=None)
c2.link_button("Open the public page", url, icon=":material/open_in_new:")

with read_session(engine) as session:
    questions = intake.list_questions(session)
    version = intake.current_set_version(session)
if version:
    st.caption(
        literal(
            f"Question set version {version.set_version_id} · {version.active_questions} active "
            f"· saved {local_text(version.saved_at, tz)} by {version.saved_by}"
        )
    )


def _run(change) -> None:
    """Apply one change in its own transaction and rerun; StaleEdit means another admin won."""
    try:
        with transaction(engine) as session:
            change(session)
    except StaleEdit as exc:
        st.error(str(exc))
    except ValidationError as exc:
        st.error(" ".join(exc.errors.values()))
    else:
        st.rerun()


if not questions:
    st.info("No questions yet. Add the first one below.")
for i, q in enumerate(questions):
    with st.container(border=True):
        row = st.columns([8, 1, 1, 1, 1.5], vertical_alignment="center")
        row[0].text(f"{i + 1}. {q.label}")
        facts = [q.type_label, "required" if q.required else "optional"]
        if not q.active:
            facts.append("retired")
        row[0].caption(" · ".join(facts))
        if q.options:
            row[0].text("Options: " + " | ".join(q.options))
        if row[1].button(
            ":material/arrow_upward:", key=f"iq_up_{q.question_id}", help="Move up", disabled=i == 0
        ):
            _run(
                lambda s, q=q: intake.move_question(
                    s, actor=actor, question_id=q.question_id, direction=-1
                )
            )
        if row[2].button(
            ":material/arrow_downward:",
            key=f"iq_down_{q.question_id}",
            help="Move down",
            disabled=i == len(questions) - 1,
        ):
            _run(
                lambda s, q=q: intake.move_question(
                    s, actor=actor, question_id=q.question_id, direction=1
                )
            )
        if row[3].button(":material/edit:", key=f"iq_edit_{q.question_id}", help="Edit"):
            st.session_state[NEXT_CHOICE] = q.question_id
            st.rerun()
        if row[4].button(
            "Retire" if q.active else "Restore",
            key=f"iq_active_{q.question_id}",
            help="Hide from new intakes; answers are kept" if q.active else "Ask it again",
        ):
            _run(
                lambda s, q=q: intake.set_question_active(
                    s,
                    actor=actor,
                    question_id=q.question_id,
                    active=not q.active,
                    expected_version=q.version,
                )
            )

st.subheader("Add or edit a question")
st.caption(
    "Each saved change makes a new version of the question set; answers already given keep "
    "the version they were given under. Retire a question instead of changing what it asks."
)
by_id = {q.question_id: q for q in questions}
if NEXT_CHOICE in st.session_state:
    st.session_state[CHOICE] = st.session_state.pop(NEXT_CHOICE)
if st.session_state.get(CHOICE) not in (NEW, *by_id):
    st.session_state[CHOICE] = NEW
choice = st.selectbox(
    "Question to edit",
    [NEW, *by_id],
    format_func=lambda qid: by_id[qid].label if qid in by_id else "New question (add one)",
    key=CHOICE,
)
current = by_id.get(choice)
form = RecordForm(
    "intake_question",
    record_id=choice,
    version=current.version if current else 0,
    values={
        "label": current.label if current else "",
        "help_text": current.help_text if current else "",
        "qtype": current.qtype if current else QUESTION_TYPES[0],
        "required": current.required if current else False,
        "options": "\n".join(current.options) if current else "",
    },
    labels=LABELS,
)
form.banner()
with st.form(form.prefix + "form"):
    form.text(st, "label", LABELS["label"])
    form.text(st, "help_text", LABELS["help_text"])
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    form.select(
        c1, "qtype", LABELS["qtype"], list(QUESTION_TYPES), format_func=intake.TYPE_LABELS.get
    )
    form.check(c2, "required", LABELS["required"])
    form.area(
        st,
        "options",
        LABELS["options"],
        height=min(400, 40 + 24 * max(3, len(current.options) if current else 0)),
    )
    submitted = st.form_submit_button(
        "Save question" if current else "Add question", type="primary"
    )


def _save(session, changes: dict, version) -> None:
    values = {f: changes.get(f, form.shown(f)) for f in LABELS}
    saved = intake.save_question(
        session,
        actor=actor,
        label=values["label"],
        help_text=values["help_text"],
        qtype=values["qtype"],
        options=(values["options"] or "").splitlines(),
        required=values["required"],
        question_id=current.question_id if current else None,
        expected_version=version if current else None,
    )
    st.session_state[NEXT_CHOICE] = saved.question_id if current else NEW


if submitted:
    changes = form.changes(LABELS) if current else {f: form.value(f) for f in LABELS}
    form.save(changes, _save, saved_notice="Question saved." if current else "Question added.")
