"""Fuzz the attention page (and the model picker and URL parameters) through AppTest."""

import re

import pytest

from tests.app.conftest import app
from tests.fuzz import corpus
from tests.fuzz.conftest import assert_survived, boxes, url_notice


@pytest.mark.parametrize("text", corpus.texts(), ids=lambda t: f"len{len(t)}")
def test_text(text):
    at = app("attention")
    at.run()
    at.text_area(key="text").set_value(corpus.wire(text)).run()
    assert_survived(at, expect="Type a sentence above" if corpus.blank(text) else None)


@pytest.mark.parametrize("text", corpus.INJECTIONS + corpus.UNICODE[:6])
def test_text_in_url_and_pair(text):
    at = app("attention", {"text": corpus.wire(text), "pair": corpus.wire(text)})
    at.run()
    assert_survived(at)


# What the loader says for each hostile model reference (regex), when custom ids and local paths are allowed.
NO_FOLDER, NO_CONFIG = "No model folder at", "has no config.json"
INVALID, NUL, OFFLINE = "is not a valid model id", "contains a NUL character", "Hugging Face Hub is unreachable"
MODEL_ID_MESSAGES = {
    "../../etc/passwd": NO_FOLDER, "/etc/passwd": NO_FOLDER, "/etc": NO_CONFIG, "~": NO_CONFIG,
    "~/.ssh": f"{NO_FOLDER}|{NO_CONFIG}", "/proc/self/environ": NO_FOLDER, "..": NO_CONFIG, ".": NO_CONFIG,
    "./": NO_CONFIG, "C:\\Windows\\system32": NO_FOLDER, "\\\\server\\share": NO_FOLDER, "file:///etc/passwd": NO_FOLDER,
    "http://127.0.0.1:1/model": NO_FOLDER, "bert-base-uncased/../../x": NO_FOLDER, "a" * 500: INVALID,
    "": None, " ": None, "\x00": NUL, "org/\x00name": NUL, "<script>x</script>": INVALID,
    "no-such-org/no-such-model": OFFLINE, "gpt2": OFFLINE, "bert base": INVALID, "org/name/extra": NO_FOLDER,
    "org//name": NO_FOLDER, "-rf": INVALID, "😀/😀": INVALID, "sentence-transformers/all-MiniLM-L6-v2": None,
    "%2e%2e%2f%2e%2e%2fetc": INVALID,
}
BUNDLED_REFS = ("", " ", "sentence-transformers/all-MiniLM-L6-v2")


def test_every_model_id_has_an_expected_answer():
    assert set(MODEL_ID_MESSAGES) == set(corpus.model_ids())


@pytest.mark.parametrize("public", [False, True])
@pytest.mark.parametrize("ref", corpus.model_ids())
def test_model_id(ref, public):
    """Each reference gets its own message from the loader (a bundled one gets the chart); in public mode a
    custom reference never reaches the loader: the picker keeps the bundled model and says so."""
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_PUBLIC": "1"} if public else {})
    try:
        at = app("attention", {"text": "the bank", "model": corpus.wire(ref)})
        at.run()
        if not public:
            assert_survived(at, expect=MODEL_ID_MESSAGES[ref])
        elif ref in BUNDLED_REFS:
            assert_survived(at)
        else:
            assert_survived(at, expect="not available on this server")
            assert "Other" not in at.selectbox(key="model_select").value
            assert at.get("bidi_component"), "public mode falls back to the bundled model"
    finally:
        settings.reload()


@pytest.mark.parametrize("layer,head", corpus.url_numbers())
def test_url_layer_head(layer, head):
    """Junk in ?layer= / ?head= is named in a notice (never silently replaced), and the heatmap still draws."""
    at = app("attention", {"text": "the bank of the river", "layer": layer, "head": head})
    at.run()
    assert_survived(at)
    shown = " ".join(boxes(at, ("warning",)))
    for notice in (url_notice("layer", layer, 5), url_notice("head", head, 11, allowed=("mean",))):
        if notice:
            assert re.search(notice, shown), f"missing notice {notice!r}; shown: {shown}"
