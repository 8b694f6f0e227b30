"""es.query_key: queries and keys whose softmax(q kᵀ·scale + bias) is the model's own attention, for every text model.

Real weights: the bundled MiniLM and SmolLM2 (Llama-style: rotary embeddings, grouped-query attention, causal mask).
Tiny random T5 encoder (relative position bias, no scaling) and CLIP text tower (causal) for plumbing. Expected
weights come from `es.attention`, expected pre-rotary queries from the model's own projection layers.
"""

import numpy as np
import pytest
import torch

import encoderscope as es
from tests.unit.test_text_towers import tiny_clip_text, tiny_t5

TEXT = "The capital of France is Paris, and the bank of the river is steep."


@pytest.fixture(scope="module")
def towers(tmp_path_factory):
    root = tmp_path_factory.mktemp("qk_towers")
    return {"t5": es.load_encoder(str(tiny_t5(root / "t5"))), "clip": es.load_encoder(str(tiny_clip_text(root / "clip")))}


def _models(encoder, decoder_model, towers):
    return {"minilm": encoder, "smollm2": decoder_model, **towers}


@pytest.mark.parametrize("name", ["minilm", "smollm2", "t5", "clip"])
def test_softmax_of_scores_is_the_models_attention(encoder, decoder_model, towers, name):
    # Bug caught: keys of the wrong head (GQA), pre-rotary states, the mask or T5's bias left out, a wrong scale.
    model = _models(encoder, decoder_model, towers)[name]
    text = "a photo of a cat" if name in ("t5", "clip") else TEXT
    res = es.attention(model, text)
    heads = {(0, 0), (model.num_layers - 1, model.num_heads - 1), (1, model.num_heads // 2), (1, 1), (1, 3 % model.num_heads)}
    for layer, head in heads:
        qk = es.query_key(model, text, layer, head)
        assert qk.tokens == res.tokens
        assert qk.q.shape == qk.k.shape and qk.q.shape[0] == len(res.tokens)
        np.testing.assert_allclose(qk.softmax(), res.weights[layer, head], atol=1e-4)
        np.testing.assert_array_equal(qk.weights, res.weights[layer, head])
    assert model.model.config._attn_implementation == "eager"  # the shared model is put back


def test_products_sum_to_the_scores(encoder):
    qk = es.query_key(encoder, TEXT, 2, 3)
    i = 4
    np.testing.assert_allclose(qk.products(i).sum(1), (qk.q[i] @ qk.k.T) * qk.scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(qk.products(i).sum(1), qk.scores()[i], rtol=1e-5, atol=1e-6)  # MiniLM: no bias
    assert qk.bias is None and qk.scale == pytest.approx(32**-0.5)


def test_decoder_bias_is_the_causal_mask_and_keys_follow_grouped_query_attention(decoder_model):
    cfg = decoder_model.config
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    assert group > 1  # SmolLM2-135M: 9 query heads share 3 key heads
    a = es.query_key(decoder_model, TEXT, 3, 0)
    b = es.query_key(decoder_model, TEXT, 3, group - 1)
    c = es.query_key(decoder_model, TEXT, 3, group)
    assert (a.kv_head, b.kv_head, c.kv_head) == (0, 0, 1)
    np.testing.assert_array_equal(a.k, b.k)
    assert not np.allclose(a.k, c.k)
    T = len(a.tokens)
    upper = np.triu(np.ones((T, T), bool), 1)
    assert np.isneginf(a.bias[upper]).all() and (a.bias[~upper] == 0).all()


def test_decoder_queries_are_after_rotary_embeddings(decoder_model):
    # Rotation keeps each vector's length and leaves position 0 alone, and it changes the other positions.
    layer, head = 4, 2
    qk = es.query_key(decoder_model, TEXT, layer, head)
    ids = decoder_model.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    block = decoder_model.model.model.layers[layer]
    with torch.inference_mode():
        h = decoder_model.model(input_ids=ids, output_hidden_states=True).hidden_states[layer]
        d = qk.q.shape[1]
        pre = block.self_attn.q_proj(block.input_layernorm(h))[0, :, head * d : (head + 1) * d].numpy()
    np.testing.assert_allclose(qk.q[0], pre[0], atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(qk.q, axis=1), np.linalg.norm(pre, axis=1), rtol=1e-4)
    assert not np.allclose(qk.q[5], pre[5], atol=1e-2)


def test_t5_bias_is_the_relative_position_bias(towers):
    qk = es.query_key(towers["t5"], "a photo of a cat", 0, 1)
    assert qk.scale == 1.0  # T5 does not scale its scores
    assert qk.bias is not None and np.isfinite(qk.bias).all()  # bidirectional: nothing masked
    # relative position bias: constant along each diagonal, different between diagonals
    assert np.allclose(np.diag(qk.bias, 1), qk.bias[0, 1]) and not np.allclose(qk.bias[0, 1], qk.bias[1, 0])


def test_clip_text_bias_is_causal(towers):
    qk = es.query_key(towers["clip"], "a photo of a cat", 1, 0)
    assert qk.causal and np.isneginf(qk.bias[0, 1:]).all() and (np.diag(qk.bias) == 0).all()


@pytest.mark.parametrize(("layer", "head", "match"), [(6, 0, "Layer 6 does not exist"), (0, 12, "Head 12"), (-1, 0, "Layer -1")])
def test_out_of_range_layer_or_head_is_a_clear_message(encoder, layer, head, match):
    with pytest.raises(es.UserFacingError, match=match):
        es.query_key(encoder, TEXT, layer, head)


def test_empty_text_is_a_clear_message(encoder):
    with pytest.raises(es.UserFacingError, match="empty"):
        es.query_key(encoder, "  ", 0, 0)
