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


def _failing_page():
    from components import ui

    def parse_upload():
        raise TypeError("unsupported operand in /srv/encoderscope/components/parse.py")

    with ui.guard("parse the upload"):
        parse_upload()


def _capture(name="encoderscope"):
    import logging

    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logging.getLogger(name).addHandler(handler)
    return records, lambda: logging.getLogger(name).removeHandler(handler)


def test_unexpected_errors_are_logged_with_their_traceback():
    # Bug caught: the box says "Could not …: TypeError" and the operator has nothing to debug it with.
    import traceback

    records, stop = _capture()
    try:
        at = AppTest.from_function(_failing_page).run()
    finally:
        stop()
    assert not at.exception and "TypeError" in at.error[0].value
    logged = [r for r in records if r.exc_info and r.exc_info[0] is TypeError]
    assert len(logged) == 1 and logged[0].levelname == "ERROR"
    assert "could not parse the upload" in logged[0].getMessage()
    text = "".join(traceback.format_exception(*logged[0].exc_info))
    assert "parse_upload" in text and "unsupported operand" in text  # the frame where it happened


def test_public_mode_keeps_server_paths_out_of_the_message(monkeypatch):
    # Bug caught: an exception text showing the server's file layout (/srv/..., /root/.cache/...) to the public.
    from encoderscope import settings

    err = FileNotFoundError("No such file: '/root/.cache/encoderscope/models/x/config.json'")
    try:
        settings.reload({"ENCODERSCOPE_PUBLIC": "1"})
        public = ui.error_message("load the model", err)
        hub = ui.error_message("load", ModelLoadError("See https://huggingface.co/org/model or org/model."))
        at = AppTest.from_function(_failing_page).run()
    finally:
        settings.reload()
    assert "/root" not in public and "config.json" not in public and "<server path>" in public
    assert hub == "See https://huggingface.co/org/model or org/model."  # URLs and hub ids are not paths
    assert "/srv" not in at.error[0].value and "server path" in at.error[0].value
    # a local user still sees the path (it is their own machine)
    assert "/root/.cache/encoderscope/models/x/config.json" in ui.error_message("load the model", err)
