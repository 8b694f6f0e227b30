"""ui.guard: the one error path of every page (a user-facing message, or a short generic one; no traceback)."""

from streamlit.testing.v1 import AppTest

from components import ui
from encoderscope.errors import UserFacingError
from encoderscope.models import ModelLoadError


def test_user_facing_errors_keep_their_own_message():
    # Bug caught: domain errors (written for the user) replaced by "Could not ...: ModelLoadError".
    assert ui.error_message("load the model", ModelLoadError("No model folder at x.")) == "No model folder at x."
    assert ui.error_message("x", UserFacingError("Bad."), context="The second image cannot be used") == (
        "The second image cannot be used: Bad."
    )


def test_other_errors_are_named_and_cut():
    # Bug caught: a raw multi-line exception text (a traceback-like dump) reaching the page.
    message = ui.error_message("run the model on this text", RuntimeError("line one\n   line two " + "x" * 500))
    assert message.startswith("Could not run the model on this text: RuntimeError: line one line two")
    assert len(message) < 260 and "\n" not in message


def _page():
    import streamlit as st

    from components import ui

    with ui.guard("parse <b>this</b>") as run:
        raise ValueError("<script>alert(1)</script>")
    st.markdown(f"after {run.failed}")
    with ui.guard("stop") as ok:
        pass
    st.markdown(f"ok {ok.failed}")


def test_guard_shows_one_escaped_box_and_the_page_goes_on():
    # Bug caught: the exception escaping as a traceback, raw markup in the box, or the page stopping at the error.
    at = AppTest.from_function(_page).run()
    assert not at.exception
    assert len(at.error) == 1
    box = at.error[0].value
    assert "<script>" not in box and "script" in box and "ValueError" in box
    shown = " ".join(m.value for m in at.markdown)
    assert "after True" in shown and "ok False" in shown
