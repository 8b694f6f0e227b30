"""The encoder-vs-decoder page draws the right numbers: masks built by hand with numpy, attention and hidden
states from the library's public functions (or a plain transformers forward pass), never from the page code."""

import html

import numpy as np
import pytest
import torch

import encoderscope as es
from tests.app.conftest import array, figures, no_exceptions, opened

TEXT = "The bank was steep."
PARTNER = "It was closed."  # the page's default second sentence
PROBE_A = "The bank was steep and muddy near the river."
PROBE_B = "The bank was closed for the holiday weekend."
TOL = 1e-5


@pytest.fixture(scope="module")
def page(decoder_model):  # the session fixture converts the bundled decoder before the page needs it
    at = opened("masks", {"text": TEXT})
    return at


def _by_title(at) -> dict:
    return {(f["layout"].get("title") or {}).get("text", ""): f for f in figures(at)}


def _starting(at, prefix: str) -> dict:
    found = [f for t, f in _by_title(at).items() if t.startswith(prefix)]
    assert len(found) == 1, f"{len(found)} figures titled {prefix!r}…"
    return found[0]


def _z(fig, trace: int = 0) -> np.ndarray:
    return array(fig["data"][trace]["z"])


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def _causal_encoder_attention(encoder, text: str) -> np.ndarray:
    """The encoder's attention `[L, H, T, T]` under a causal mask, from a plain forward pass with an additive
    `[1, 1, T, T]` mask (0 on and below the diagonal, -inf above)."""
    enc = encoder.tokenizer(text, return_tensors="pt")
    T = enc["input_ids"].shape[1]
    mask = torch.full((1, 1, T, T), float("-inf")).triu(1)
    inputs = {k: v for k, v in enc.items() if k in ("input_ids", "token_type_ids")}
    with torch.inference_mode():
        out = encoder.model(**inputs, attention_mask=mask, output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).float().numpy()


def test_gallery_masks_by_hand(page, encoder):
    # Bug: a mask built for the wrong length, a causal mask transposed (upper triangle), a prefix-LM that
    # ignores the slider, or a padding mask that blocks the wrong sentence's tail.
    tokens = encoder.tokenizer.convert_ids_to_tokens(encoder.tokenizer(TEXT)["input_ids"])
    T = len(tokens)
    prefix = int(page.slider(key="prefix").value)
    rows, cols = np.indices((T, T))
    lower = rows >= cols
    expected = {
        "Bidirectional (encoder)": np.ones((T, T), bool),
        "Causal (decoder)": lower,
        f"Prefix-LM (prefix = {prefix})": lower | ((rows < prefix) & (cols < prefix)),
    }
    figs = _by_title(page)
    for title, mask in expected.items():
        assert np.array_equal(_z(figs[title]), mask.astype(float)), title
        assert figs[title]["layout"]["xaxis"]["ticktext"] == tokens
    n_partner = len(encoder.tokenizer.tokenize(PARTNER))
    assert np.array_equal(_z(figs["Cross-attention (decoder × encoder)"]), np.ones((n_partner, T)))
    n_batch = len(encoder.tokenizer(PARTNER)["input_ids"])
    width = max(T, n_batch)
    for b, n in enumerate((T, n_batch)):
        valid = np.arange(width) < n
        pad = _z(figs[f"Padding mask, sentence {b + 1} of the batch"])
        assert np.array_equal(pad, (valid[:, None] & valid[None, :]).astype(float))


@pytest.mark.parametrize("prefix", [0, 2, 5])
def test_prefix_slider(page, encoder, prefix):
    # Bug: the prefix off by one (prefix p must open exactly the first p tokens to each other).
    page.slider(key="prefix").set_value(prefix).run()
    no_exceptions(page)
    T = len(encoder.tokenizer(TEXT)["input_ids"])
    rows, cols = np.indices((T, T))
    expected = (rows >= cols) | ((rows < prefix) & (cols < prefix))
    assert np.array_equal(_z(_starting(page, "Prefix-LM")), expected.astype(float))


def test_same_encoder_under_two_masks(page, encoder):
    # Bug: the "causal" run really bidirectional (mask not applied), the wrong head drawn, or blocked cells
    # shown with a weight instead of grey.
    page.slider(key="mask_layer").set_value(3)
    page.slider(key="mask_head").set_value(5).run()
    no_exceptions(page)
    layer, head = int(page.slider(key="mask_layer").value), int(page.slider(key="mask_head").value)
    assert (layer, head) == (3, 5)
    bi = es.attention(encoder, TEXT).weights[layer, head]
    np.testing.assert_allclose(_z(_starting(page, "Bidirectional: layer")), bi, atol=TOL)
    causal = _causal_encoder_attention(encoder, TEXT)[layer, head]
    T = len(causal)
    above = np.triu(np.ones((T, T), bool), 1)
    fig = _starting(page, "Causal mask: layer")
    z, blocked = _z(fig, 0), _z(fig, 1)
    assert np.isnan(z[above]).all() and np.isnan(blocked[~above]).all() and (blocked[above] == 1).all()
    np.testing.assert_allclose(z[~above], causal[~above], atol=TOL)
    assert np.abs(causal[~above] - bi[~above]).max() > 0.01  # the two runs really differ


def test_hidden_state_similarity(page, encoder):
    # Bug: similarity taken between the wrong pairs (tokens vs layers swapped) or of one run with itself.
    expected = _cosine(es.hidden_states(encoder, TEXT, "bidirectional"), es.hidden_states(encoder, TEXT, "causal"))
    z = _z(_by_title(page)["Each token's hidden state: bidirectional vs causal"])
    np.testing.assert_allclose(z, expected, atol=TOL)  # [L + 1, T]
    assert expected.min() < 0.99


def test_context_probe_similarities(page, encoder):
    # Bug: the probe compares a sentence with itself, or positions of A and B misaligned.
    figs = _by_title(page)
    for mask, title in (("causal", "Causal mask"), ("bidirectional", "Bidirectional mask")):
        a, b = es.hidden_states(encoder, PROBE_A, mask), es.hidden_states(encoder, PROBE_B, mask)
        n = min(a.shape[1], b.shape[1])
        np.testing.assert_allclose(_z(figs[title]), _cosine(a[:, :n], b[:, :n]), atol=TOL)


def test_decoder_heatmap_is_the_decoders_lower_triangle(page, encoder, decoder_model):
    # Bug: the decoder map drawn from the encoder, an upper-triangular (transposed) map, or the encoder
    # layer not at the decoder layer's relative depth.
    page.slider(key="dec_layer").set_value(17)
    page.slider(key="dec_head").set_value(4).run()
    no_exceptions(page)
    layer, head = int(page.slider(key="dec_layer").value), int(page.slider(key="dec_head").value)
    assert (layer, head) == (17, 4)
    res = es.attention(decoder_model, TEXT)
    w = res.weights[layer, head]
    T = len(w)
    above = np.triu(np.ones((T, T), bool), 1)
    assert np.abs(w[above]).max() < 1e-6  # the library's decoder weights are lower-triangular
    fig = _starting(page, "Decoder (")
    z = _z(fig)
    assert np.isnan(z[above]).all()
    np.testing.assert_allclose(z[~above], w[~above], atol=TOL)
    assert fig["layout"]["xaxis"]["ticktext"] == [html.escape(t.replace("Ġ", " "), quote=False) for t in res.tokens]
    n_enc, n_dec = encoder.num_layers, decoder_model.num_layers
    enc_layer = round(layer * (n_enc - 1) / (n_dec - 1))
    enc_fig = _starting(page, f"Encoder (all-MiniLM-L6-v2), layer {enc_layer},")
    np.testing.assert_allclose(_z(enc_fig), es.attention(encoder, TEXT).weights[enc_layer].mean(0), atol=TOL)


def test_next_token_bars(page, decoder_model):
    # Bug: probabilities from the wrong position (first token), unnormalised logits, or labels out of order.
    tok = decoder_model.tokenizer
    with torch.inference_mode():
        logits = decoder_model.model(**tok(TEXT, return_tensors="pt")).logits[0, -1].float()
    top = torch.topk(torch.softmax(logits, -1), 5)
    bars = next(f for f in figures(page) if f["data"][0]["type"] == "bar")["data"][0]
    np.testing.assert_allclose(array(bars["x"]), top.values.numpy(), atol=1e-4)
    words = [tok.decode([int(i)]).replace("\n", "\\n") for i in top.indices]
    assert bars["y"] == [f"“{html.escape(w, quote=False)}”" for w in words]
