"""Fuzz the attribution views: hostile texts in "Why are these close?" and hostile next-token targets on the masks
page. Each case ends with a result or its own message, and no user HTML reaches markdown or a chart."""

import pytest

from tests.app.conftest import app
from tests.fuzz import corpus
from tests.fuzz.conftest import assert_survived

TEXTS = [corpus.wire(t) for t in corpus.INJECTIONS[:4] + corpus.UNICODE[3:8] + corpus.SIZES[:5] + [corpus.UNICODE[-1]]]
# the page's other views are not under test here
OTHER_TABS = "appears in none of the sentences"


def _why_page():
    at = app("embeddings")
    at.session_state["method"] = "pca"  # fuzzing the explanation, not UMAP
    at.run()
    at.segmented_control(key="emb_view").set_value("Why are these close?").run()  # only the view shown runs
    at.radio(key="why_mode").set_value("Two texts of my own").run()
    return at


@pytest.fixture(scope="module")
def why_page():
    return _why_page()


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: f"len{len(t)}")
def test_why_view_text(why_page, text):
    why_page.text_area(key="why_a").set_value(text).run()
    expect = "Type two texts to compare" if corpus.blank(text) else None
    assert_survived(why_page, expect=expect, allow=OTHER_TABS)
    if expect is None:  # the explanation is on the page: its cosine metric
        assert [m for m in why_page.metric if m.label == "Cosine"]


@pytest.fixture(scope="module")
def masks_page():
    at = app("masks", {"text": "The capital of France is"})
    at.run()
    at.segmented_control(key="inside_view").set_value("Which tokens made the guess?").run()  # only the view shown runs
    at.toggle(key="attr_run").set_value(True).run()
    at.slider(key="attr_steps").set_value(4).run()
    return at


TARGETS = [corpus.wire(t) for t in corpus.INJECTIONS[:4] + corpus.UNICODE[:3] + ["", "  ", "\x00"]]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"len{len(t)}")
def test_next_token_target(masks_page, target):
    masks_page.text_input(key="attr_target").set_value(target).run()
    assert_survived(masks_page)
    assert [m for m in masks_page.metric if m.label == "Next token"]
