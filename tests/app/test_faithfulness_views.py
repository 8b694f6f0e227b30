"""The deletion tests beside the "why" views draw the library's curves (issue 23).

Expected curves come from the public API (`es.explain_similarity`, `es.faithfulness.*`, `es.embed`), computed here,
never with the views under test. Each test names the bug it catches.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_sample_image

import encoderscope as es
from encoderscope import corpora, settings
from tests.app.conftest import app, array, download, figures, no_exceptions, show
from tests.conftest import VIT_TINY

A = "A man is playing a guitar on stage."
B = "Someone performs music with an instrument."
TIMEOUT = 600  # seconds per script run: the shared 2-core test machine can be many times slower than a laptop


def opened(page: str, query: dict) -> object:
    at = app(page, query, timeout=TIMEOUT)
    at.run()
    no_exceptions(at)
    return at


def _curve_figure(at) -> dict:
    found = [f for f in figures(at) if ((f["layout"].get("title") or {}).get("text") or "").startswith("Deletion test")]
    assert len(found) == 1, [(f["layout"].get("title") or {}).get("text") for f in figures(at)]
    return found[0]


def _traces(fig) -> dict[str, np.ndarray]:
    """name -> y values of each trace."""
    return {t["name"]: array(t["y"]).astype(float) for t in fig["data"]}


def _check_drawn(fig, expected: dict[str, es.faithfulness.Curves]) -> None:
    """Each explanation's line, the random mean and the ± sd band equal the library's curves."""
    drawn = _traces(fig)
    first = next(iter(expected.values()))
    for name, c in expected.items():
        label = es.faithfulness.METHOD_LABELS.get(name, name)
        line = [k for k in drawn if k.startswith(label + " (area")]
        assert len(line) == 1, list(drawn)
        np.testing.assert_allclose(drawn[line[0]], c.deletion, atol=1e-5)
        assert f"area {c.area_deletion:.3f}" in line[0]
    random = [k for k in drawn if k.startswith("random order")]
    np.testing.assert_allclose(drawn[random[0]], first.random, atol=1e-5)
    np.testing.assert_allclose(drawn["random ± sd"], first.random + first.random_sd, atol=1e-5)
    np.testing.assert_allclose(drawn["random − sd"], first.random - first.random_sd, atol=1e-5)
    np.testing.assert_array_equal(array(fig["data"][0]["x"]), first.counts)


@pytest.fixture(scope="module")
def typed():
    at = opened("embeddings", {})
    at.session_state["method"] = "pca"
    at.segmented_control(key="emb_view").set_value("Why are these close?").run()  # only the view shown runs
    at.radio(key="why_mode").set_value("Two texts of my own").run()
    no_exceptions(at)
    return at


def test_nothing_is_tested_until_asked_then_the_curve_is_the_librarys(typed, encoder):
    # Bugs: the curve computed on every page open; side A's curve drawn for side B; the band off by one sd.
    assert not [f for f in figures(typed) if "Deletion" in str(f["layout"].get("title"))]
    typed.toggle(key="emb_why_faith").set_value(True).run()
    no_exceptions(typed)
    ex = es.explain_similarity(encoder, A, B)
    expected = es.faithfulness.similarity(encoder, ex, side="b", steps=10, seeds=5)
    _check_drawn(_curve_figure(typed), {"explanation": expected})
    sentence = " ".join(c.value for c in typed.caption)
    assert ("faster than random removal" if expected.beats_random else "slower than random removal") in sentence
    name, data = download(typed, "Deletion curves (CSV)")
    table = pd.read_csv(io.BytesIO(data))
    assert name == "similarity_deletion.csv"
    np.testing.assert_allclose(table["deletion"], expected.deletion, atol=1e-6)  # float32 forward passes: 1e-7 between thread counts
    np.testing.assert_allclose(table["random_sd"], expected.random_sd, atol=1e-6)
    typed.radio(key="emb_why_faith_side").set_value("a").run()
    side_a = es.faithfulness.similarity(encoder, ex, side="a", steps=10, seeds=5)
    _check_drawn(_curve_figure(typed), {"explanation": side_a})


def test_specific_view_explains_the_cosine_centred_on_the_corpus_mean(typed, encoder):
    # Bugs: the plain cosine shown as centred, the centre not the corpus's mean, the terms not summing to it.
    typed.radio(key="why_view").set_value("What is specific to this pair").run()
    no_exceptions(typed)
    texts = [t for t, _ in next(iter(corpora.CORPORA.values()))]  # the page's default example corpus
    c = es.embed(encoder, texts).astype(np.float64).mean(0)
    u, v = (es.embed(encoder, [t])[0].astype(np.float64) for t in (A, B))
    centred = float((u - c) @ (v - c) / np.linalg.norm(u - c) / np.linalg.norm(v - c))
    assert [m.value for m in typed.metric if m.label == "Centred cosine"] == [f"{centred:.4f}"]
    title = [f["layout"]["title"]["text"] for f in figures(typed)
             if str((f["layout"].get("title") or {}).get("text", "")).startswith("Token × token")]
    assert title == [f"Token × token terms (sum = {centred:.4f})"]
    assert "anisotropy" in " ".join(c.value for c in typed.caption)
    ex = es.explain_similarity(encoder, A, B, centre=c)
    side_a = es.faithfulness.similarity(encoder, ex, side="a", steps=10, seeds=5)  # the side chosen above stays
    _check_drawn(_curve_figure(typed), {"explanation": side_a})


def test_next_token_deletion_test(decoder_model):
    # Bug: the curve of another target or text; log-probabilities read at a padding position.
    at = show(opened("masks", {"text": "The capital of France is"}), "inside_view", "Which tokens made the guess?")
    at.toggle(key="attr_run").set_value(True).run()
    at.toggle(key="attr_faith").set_value(True).run()
    no_exceptions(at)
    steps = int(at.slider(key="attr_steps").value)
    ta = es.token_attribution(decoder_model, "The capital of France is", steps=steps)
    expected = es.faithfulness.next_token(decoder_model, "The capital of France is", ta, steps=10, seeds=5)
    _check_drawn(_curve_figure(at), {"explanation": expected})
    assert f"The scores sum to {ta.total:+.3f}" in " ".join(c.value for c in at.caption)


def test_vision_compares_relevance_cls_attention_and_rollout_on_one_picture():
    # Bugs: the comparison run on another picture or class; methods with different random orders.
    if not (VIT_TINY / "model.safetensors").is_file():
        pytest.fail(f"the real ViT-Ti weights are missing at {VIT_TINY}")
    # Default patch cap: /vision results are cached per server process (settings are fixed there), so a test that
    # changed the cap would read another test's cached relevance for the same photo.
    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(VIT_TINY.parent)})
    try:
        at = opened("vision", {})
        at.toggle(key="v_why_faith").set_value(True).run()
        at.toggle(key="v_why_faith_compare").set_value(True).run()
        no_exceptions(at)
        vit = es.load_image_encoder(str(VIT_TINY))
        rel = es.explain_image(vit, Image.fromarray(load_sample_image("china.jpg")))
        expected = es.faithfulness.image_methods(vit, rel, steps=14, seeds=3)
        _check_drawn(_curve_figure(at), expected)
    finally:
        settings.reload()
