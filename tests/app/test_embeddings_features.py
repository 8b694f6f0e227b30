"""The Embeddings page's Features view with AppTest: refused below the corpus minimum, learned on request, and a
card whose numbers agree with each other (histogram count = frequency x N, top texts are the corpus's texts in
falling activation)."""

from __future__ import annotations

import numpy as np
import pytest

from encoderscope import settings
from tests.app.conftest import app, array, figures, no_exceptions
from tests.unit.features_data import stdlib_docs

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
