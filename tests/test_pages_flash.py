"""The one flash message (ui/flash.py): what an action says survives the rerun that follows it.

An action that ends in ``st.rerun()`` cannot show anything itself, so it calls
``flash(kind, text)`` and app.py shows the message on the next run. A run that showed a message
can itself end in another rerun (a page correcting its own state, ``st.switch_page``, a click
arriving mid-run): the message must then show on the run after that, not vanish.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests import test_pages_login as login_tests
from tests.test_pages_login import sign_in

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app


def _app() -> None:
    """A page shaped like app.py: show_flash at the top of a run kept across reruns."""
    import streamlit as st

    from ui import flash

    with flash.kept_across_rerun():
        flash.show_flash()
        if st.button("Save", key="save"):
            flash.flash("success", "Saved.", detail="report <b>1</b>.pdf", toast=True)
            st.session_state["fix_up_once"] = True
            st.rerun()
        if st.session_state.pop("fix_up_once", False):
            st.rerun()  # the page corrects its own state after the message was shown
        st.text("page body")


def _shown(at: AppTest) -> list[str]:
    return [s.value for s in at.success]


def test_a_message_shown_before_another_rerun_is_shown_after_it_and_then_only_once():
    at = AppTest.from_function(_app, default_timeout=30)
    at.run()
    assert _shown(at) == []

    at.button(key="save").click()
    at.run()

    assert not at.exception
    assert _shown(at) == ["Saved."]
    assert "report <b>1</b>.pdf" in [t.value for t in at.text]  # user text: literal
    assert [t.value for t in at.toast] == ["Saved."]
    at.run()
    assert _shown(at) == [], "a message shows once"


def test_two_messages_before_one_run_both_show_in_order():
    def app() -> None:
        import streamlit as st

        from ui import flash

        with flash.kept_across_rerun():
            flash.show_flash()
            if st.button("Both", key="both"):
                flash.flash("success", "First.")
                flash.flash("error", "Second.")
                st.rerun()

    at = AppTest.from_function(app, default_timeout=30)
    at.run()
    at.button(key="both").click()
    at.run()
    assert [s.value for s in at.success] == ["First."]
    assert [e.value for e in at.error] == ["Second."]


def test_an_unknown_kind_is_refused():
    from ui import flash

    with pytest.raises(ValueError):
        flash.flash("shout", "x")


def test_the_document_log_keeps_a_message_across_its_own_page_correction(demo_app):
    """The log reruns when its page number is past the end (filters shrank it): a message
    waiting for that run (say, "Forms queued") is still shown after it."""
    from ui.flash import Flash

    at = sign_in("manager")
    at.switch_page("pages/document_log.py")
    at.session_state["doclog_page"] = 999
    at.session_state["cd_flash"] = [Flash("success", "Forms queued.", detail="To a@b.example")]
    at.run()

    assert not at.exception
    assert "Forms queued." in [s.value for s in at.success]
    assert "Document log" in [t.value for t in at.title]
