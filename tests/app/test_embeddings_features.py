"""The Embeddings page's Features view with AppTest: refused below the corpus minimum, learned on request, and a
card whose numbers agree with each other (histogram count = frequency x N, top texts are the corpus's texts in
falling activation)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from encoderscope import settings
from tests.app.conftest import app, array, figures, messages, no_exceptions
from tests.unit.features_data import planted, stdlib_docs

N = 400


@pytest.fixture
def small_minimum():
    settings.reload({"ENCODERSCOPE_FEATURES_MIN_SENTENCES": str(N)})
    yield
    settings.reload()


def test_a_small_corpus_is_told_the_minimum():
    at = app("embeddings", timeout=600)
    at.run()
    assert not any("at least 2,000 sentences" in i.value for i in at.info)  # only the view shown runs
    at.segmented_control(key="emb_view").set_value("Features").run()
    no_exceptions(at)
    assert any("at least 2,000 sentences" in i.value for i in at.info)


def test_a_minimum_below_the_smallest_dictionary_is_raised_to_it():
    # Bug: a configured minimum below 2 x 64 let a corpus through for which no dictionary size exists (an empty
    # slider: a traceback). (That the view survives the new source is checked in the browser: AppTest keeps
    # the state of widgets a run did not draw, Streamlit in a browser does not.)
    settings.reload({"ENCODERSCOPE_FEATURES_MIN_SENTENCES": "10"})
    try:
        at = app("embeddings", timeout=600)
        at.run()
        at.radio(key="source").set_value("Precomputed embeddings").run()
        vectors = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
        buf = io.BytesIO()
        np.save(buf, vectors)
        at.file_uploader(key="vec_upload").set_value(("v.npy", buf.getvalue(), "application/octet-stream")).run()
        at.segmented_control(key="emb_view").set_value("Features").run()
        no_exceptions(at)
        assert any("at least 128 sentences (this one has 100)" in i.value for i in at.info)
    finally:
        settings.reload()


def test_features_are_learned_on_request_and_shown_in_a_card(small_minimum):
    texts = stdlib_docs(N)[0]
    at = app("embeddings", timeout=600)
    at.run()
    at.radio(key="source").set_value("Your sentences").run()
    at.text_area(key="sentences").set_value("\n".join(texts)).run()
    at.segmented_control(key="emb_view").set_value("Features").run()
    no_exceptions(at)
    at.select_slider(key="feat_size").set_value(64)
    at.select_slider(key="feat_k").set_value(4)
    at.button(key="feat_learn").click().run()
    no_exceptions(at)
    caption = " ".join(c.value for c in at.caption)
    assert "64 features, 4 active per sentence" in caption
    options = at.selectbox(key="emb_feature_pick").options
    assert len(options) > 10
    first = int(options[1].split(" ")[0].lstrip("#"))  # "#12 · label · 3.00 %": the most frequent feature
    at.selectbox(key="emb_feature_pick").set_value(first).run()
    no_exceptions(at)
    hist = [f for f in figures(at) if "active in" in f["layout"].get("title", {}).get("text", "")][0]
    active = int(array(hist["data"][0]["y"]).sum())
    share = float([m for m in at.metric if m.label == "Active in"][0].value.split(" %")[0]) / 100
    assert active == pytest.approx(share * N, abs=0.5 / 100 * N + 1)
    top = [d.value for d in at.dataframe if {"activation", "text"} <= set(d.value.columns)][0]
    assert len(top) == min(20, active) and (np.diff(top["activation"].to_numpy()) <= 0).all()
    assert top["text"].tolist() == [texts[i] for i in top["id"]]


def test_training_runs_under_its_own_time_limit_and_says_when_it_is_past():
    # Bug: the training job under the pool's 2-minute job timeout (a 10^4-sentence corpus trains for minutes);
    # here its own limit, set tiny, must be the one that stops it, with the pool's message and no traceback.
    # The job must outlast the pool's watchdog tick (up to 1 s): 2,000 x 384 vectors, the default 512 features.
    settings.reload({"ENCODERSCOPE_FEATURES_MIN_SENTENCES": str(N), "ENCODERSCOPE_FEATURES_TIMEOUT": "0.05"})
    try:
        at = app("embeddings", timeout=600)
        at.run()
        at.segmented_control(key="emb_view").set_value("Features").run()  # first: no 2,000-point projection
        at.radio(key="source").set_value("Precomputed embeddings").run()
        buf = io.BytesIO()
        np.save(buf, planted(2000, 384, seed=5))
        at.file_uploader(key="vec_upload").set_value(("v.npy", buf.getvalue(), "application/octet-stream")).run()
        assert at.select_slider(key="feat_size").value == 512
        at.button(key="feat_learn").click().run()
        no_exceptions(at)
        assert "took more than 0.05 s, the limit on this server" in messages(at)
    finally:
        settings.reload()
