"""The Other Information tab of the client record (spec I2), the one widget per question type
that this tab and the public intake page both use (so both validate the same values), and how a
submission is shown for review.

Question labels and help texts are typed by admins and widget labels render Markdown, so they
pass through ``literal`` first and show exactly as typed.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import streamlit as st

from lib import intake
from lib.db import read_session
from lib.policy import allowed
from lib.timeutil import local_text
from ui import context
from ui.record_form import RecordForm

# Only what can start Markdown in a label or caption is escaped: screen readers read the raw
# string (the aria-label), so ordinary punctuation stays as typed.
_ALWAYS = re.compile(r"([\\`*_~\[\]$<])")
_DIRECTIVE = re.compile(r":(?=[A-Za-z/])")  # :smile:, :red[...], :material/icon:
_ENTITY = re.compile(r"&(?=#?\w+;)")  # &amp; and the like
_BLOCK_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])")  # headings, quotes, lists
YES_NO = ("Yes", "No")
RADIO_MAX_OPTIONS = 6  # more options than this get a drop-down instead of radio buttons


def literal(text: str) -> str:
    """``text`` escaped so that Streamlit's Markdown shows it exactly as typed."""
    escaped = _ALWAYS.sub(r"\\\1", text or "")
    escaped = _DIRECTIVE.sub(r"\\:", escaped)
    escaped = _ENTITY.sub(r"\\&", escaped)
    return _BLOCK_START.sub(
        lambda m: m.group(1) + "".join(c if c.isdigit() else "\\" + c for c in m.group(2)),
        escaped,
    )


def widget_value(qtype: str, value: Any) -> Any:
    """A stored answer as its question's widget holds it (see ``question_input``)."""
    if value is None:
        return [] if qtype == "multiple_choice" else None
    if qtype == "number":
        return str(value)
    if qtype == "date":
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            return None
    if qtype == "yes_no":
        return "Yes" if value else "No"
    return value


def question_input(
    question: intake.Question,
    *,
    key: str,
    default: Any = None,
    disabled: bool = False,
    where=st,
) -> Any:
    """Render the widget for one question and return what it holds now.

    The returned value goes to ``lib.intake`` as is (numbers are typed as text, so a wrong
    entry reaches the validation and gets its message). A stored choice that is no longer an
    option stays selectable, so saving the form does not silently drop it.
    """
    label = literal(question.label) + (" *" if question.required else "")
    kind = question.qtype
    if kind == "short_text":
        value = where.text_input(label, value=default or "", key=key, disabled=disabled)
    elif kind == "long_text":
        value = where.text_area(label, value=default or "", key=key, disabled=disabled)
    elif kind == "number":
        value = where.text_input(label, value=default or "", key=key, disabled=disabled)
    elif kind == "date":
        value = where.date_input(
            label,
            value=default,
            min_value=intake.DATE_MIN,
            max_value=intake.DATE_MAX,
            format="MM/DD/YYYY",
            key=key,
            disabled=disabled,
        )
    elif kind == "yes_no":
        value = where.radio(
            label,
            YES_NO,
            index=YES_NO.index(default) if default in YES_NO else None,
            horizontal=True,
            key=key,
            disabled=disabled,
        )
    elif kind == "single_choice":
        options = list(question.options)
        if default and default not in options:
            options.append(default)
        index = options.index(default) if default in options else None
        if len(options) <= RADIO_MAX_OPTIONS:
            value = where.radio(label, options, index=index, key=key, disabled=disabled)
        else:
            value = where.selectbox(
                label,
                options,
                index=index,
                key=key,
                disabled=disabled,
                placeholder="Choose one",
            )
    else:  # multiple_choice
        chosen = list(default or [])
        options = list(question.options) + [c for c in chosen if c not in question.options]
        value = where.multiselect(
            label,
            options,
            default=chosen,
            key=key,
            disabled=disabled,
            placeholder="Choose all that apply",
        )
    if question.help_text:
        where.caption(literal(question.help_text))
    return value


def _blank(value: Any) -> Any:
    """An empty widget reads as None, so an untouched empty field is not a change."""
    return None if value in ("", [], None) else value


def _provenance(row: intake.AnswerRow, tz: str) -> str:
    if not row.source:
        return "Not answered yet"
    who = row.source
    if row.answered_by:
        who = f"{row.source} ({row.answered_by})"
    return f"{who} · {local_text(row.answered_at, tz)}"


def render(client_id: int) -> None:
    actor = context.actor()
    tz = context.settings().practice_time_zone
    with read_session(context.engine()) as session:
        rows = intake.answers_for_client(session, actor=actor, client_id=client_id)
    if not rows:
        st.info("The practice has no intake questions yet (Settings › Intake questions).")
        return
    versions = {r.question_id: r.version for r in rows}
    form = RecordForm(
        "client_intake",
        record_id=client_id,
        # Answer versions only grow, so their sum changes whenever any answer is saved.
        version=sum(versions.values()),
        values={
            **{f"q{r.question_id}": widget_value(r.qtype, r.value) for r in rows},
            "_versions": versions,  # each answer's version as shown: what a save checks
        },
        labels={f"q{r.question_id}": r.question.label for r in rows},
    )
    form.banner()
    answered = sum(1 for r in rows if r.source)
    st.caption(f"{answered} of {len(rows)} questions answered.")
    can_edit = allowed(actor, "intake.edit")
    with st.form(form.prefix + "form", border=False):
        for r in rows:
            field = f"q{r.question_id}"
            question_input(
                r.question,
                key=form.key(field),
                default=form.start(field),
                disabled=not can_edit,
            )
            note = _provenance(r, tz) + ("" if r.active else " · retired question")
            st.caption(literal(note))
            form.error_slot(field)
        submitted = st.form_submit_button(
            "Save other information", type="primary", disabled=not can_edit
        )
    if not submitted:
        return
    changes = {
        field: value
        for field, value in form.changes(f"q{r.question_id}" for r in rows).items()
        if _blank(value) != _blank(form.shown(field))
    }
    shown_versions = form.shown("_versions")
    form.save(
        changes,
        lambda session, changes, _version: intake.save_answers(
            session,
            actor=actor,
            client_id=client_id,
            answers={int(f[1:]): v for f, v in changes.items()},
            expected_versions=shown_versions,
            tz_name=tz,
        ),
    )


def public_intake_url(this_page: str) -> str:
    """The address of the public intake page, as seen from the browser showing ``this_page``
    (a page's url path, like "intake_questions"), so a proxy's host and path prefix carry over.
    """
    url = (st.context.url or "").removesuffix("/").removesuffix(f"/{this_page}")
    return f"{url}/intake" if url else "/intake"


def submission_view(detail: intake.SubmissionDetail, tz: str) -> None:
    """What a person sent on the public page: contact details and answers, shown literally."""
    row = detail.row
    st.subheader(f"Submitted {local_text(row.submitted_at, tz)}")
    dob_text = f"{row.dob:%m/%d/%Y}" if row.dob else "—"
    st.text(
        f"Name: {row.first_name} {row.last_name}\n"
        f"Date of birth: {dob_text}\n"
        f"Email: {row.email or '—'}\n"
        f"Phone: {row.phone or '—'}"
    )
    # Every answer in full, however long: a reviewer reads it all before accepting.
    for a in detail.answers:
        st.caption(literal(a.label + (" (retired)" if a.retired else "")))
        st.text(a.answer_text or "—")
