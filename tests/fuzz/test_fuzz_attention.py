"""Fuzz the attention page (and the model picker and URL parameters) through AppTest."""

import pytest

from tests.app.conftest import app
from tests.fuzz import corpus
from tests.fuzz.conftest import assert_survived


@pytest.mark.parametrize("text", corpus.texts(), ids=lambda t: f"len{len(t)}")
def test_text(text):
    at = app("attention")
    at.run()
    at.text_area(key="text").set_value(corpus.wire(text)).run()
    assert_survived(at, expect_message=not text.strip())


@pytest.mark.parametrize("text", corpus.INJECTIONS + corpus.UNICODE[:6])
def test_text_in_url_and_pair(text):
    at = app("attention", {"text": corpus.wire(text), "pair": corpus.wire(text)})
    at.run()
    assert_survived(at)


@pytest.mark.parametrize("public", [False, True])
@pytest.mark.parametrize("ref", corpus.model_ids())
def test_model_id(ref, public, monkeypatch):
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_PUBLIC": "1"} if public else {})
    try:
        at = app("attention", {"text": "the bank", "model": corpus.wire(ref)})
        at.run()
        assert_survived(at)
        if public and ref.strip() and ref not in ("sentence-transformers/all-MiniLM-L6-v2",):
            selected = at.selectbox(key="model_select").value
            # Public mode: a custom id never reaches the loader; the picker falls back, and says so.
            assert "Other" not in selected
            assert "not available on this server" in " ".join(w.value for w in at.warning).replace("\\", "")
    finally:
        settings.reload()


@pytest.mark.parametrize("layer,head", corpus.url_numbers())
def test_url_layer_head(layer, head):
    at = app("attention", {"text": "the bank of the river", "layer": layer, "head": head})
    at.run()
    assert_survived(at)
    assert at.get("plotly_chart")
