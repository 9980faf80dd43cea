"""Reviewing many intake submissions at once (spec I3): the bar over the review queue that
rejects or marks as spam every selected submission, or moves selected spam back to the queue.

Streamlit glue only: ``lib.intake.review_many`` checks the right, validates and audits.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from lib import intake
from lib.db import transaction
from lib.validation import ValidationError
from ui import context


def _apply(action: str, ids: list[int], reason: str, done: Callable[[str], None]) -> None:
    try:
        with transaction(context.engine()) as session:
            result = intake.review_many(
                session,
                actor=context.actor(),
                submission_ids=ids,
                action=action,
                reason=reason,
            )
    except ValidationError as exc:
        st.error(" ".join(exc.errors.values()))
        return
    what = {
        "reject": "Rejected",
        "spam": "Marked as spam",
        "not_spam": "Moved back to Pending",
    }[action]
    message = f"{what}: {result.done} submission(s)."
    if result.skipped:
        message += f" {result.skipped} had been reviewed by someone else first and were left."
    done(message)


def bulk_bar(status: str, ids: list[int], done: Callable[[str], None]) -> None:
    """Actions for the selected submissions of the ``status`` view; ``done(message)`` is
    called after a change (it shows the message and clears the selection)."""
    count = len(ids)
    with st.container(border=True):
        st.text(f"{count} selected")
        if status == "pending":
            reason = st.text_input("Reason for rejecting them", key="ir_bulk_reason")
            c1, c2 = st.columns(2)
            if c1.button(f"Reject {count}", key="ir_bulk_reject", icon=":material/block:"):
                _apply("reject", ids, reason, done)
            if c2.button(f"Mark {count} as spam", key="ir_bulk_spam", icon=":material/report:"):
                _apply("spam", ids, "", done)
        elif status == "spam" and st.button(
            f"Not spam: move {count} back to Pending",
            key="ir_bulk_not_spam",
            icon=":material/undo:",
        ):
            _apply("not_spam", ids, "", done)
