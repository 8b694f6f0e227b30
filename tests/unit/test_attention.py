"""Attention extraction on the real bundled MiniLM, and the statistics on hand-built arrays."""

import numpy as np
import pandas as pd
import pytest

import encoderscope as es
from encoderscope.attention_maps import (
    AttentionResult,
    drop_special,
    flag_heads,
    format_attention,
    merge_word_pieces,
    pair_filter,
    token_focus,
)
from encoderscope.tokens import clean_token


@pytest.fixture(scope="module")
def res(encoder):
    return es.attention(encoder, "The bank of the river was steep.")


def test_shapes_and_rows(res, encoder):
    T = len(res.tokens)
    assert res.weights.shape == (6, 12, T, T)
    assert res.weights.dtype == np.float32
    np.testing.assert_allclose(res.weights.sum(-1), 1.0, atol=1e-5)
    assert (res.weights >= 0).all()


def test_tokens_match_tokenizer(res, encoder):
    ids = encoder.tokenizer("The bank of the river was steep.")["input_ids"]
    assert res.tokens == encoder.tokenizer.convert_ids_to_tokens(ids)
    assert res.tokens[0] == "[CLS]" and res.tokens[-1] == "[SEP]"
    assert res.special.tolist() == [True] + [False] * (len(res.tokens) - 2) + [True]
    assert res.sentence_b_start is None and not res.causal and not res.truncated


def test_sentence_pair_boundary(encoder):
    r = es.attention(encoder, "The bank was closed.", "It reopens on Monday.")
    b = r.sentence_b_start
    assert r.tokens[b - 1] == "[SEP]" and r.tokens[b] == "it"
    a_to_b = pair_filter(r, "A→B")
    assert a_to_b[1, b] and not a_to_b[b, 1] and not a_to_b[1, 2]
    assert pair_filter(r, "B→A")[b, 1]


def test_bidirectional_attention_reaches_right_context(res):
    # In every layer, an encoder's heads together put real weight on tokens to the right.
    upper = np.triu(res.weights.mean(axis=1), k=1).sum(axis=-1).mean(axis=-1)  # [L]
    assert (upper > 0.1).all()


def test_truncation_to_model_limit(encoder):
    long = "word " * 700
    r = es.attention(encoder, long)
    assert len(r.tokens) == 512 and r.truncated and r.n_input_tokens > 512


@pytest.mark.parametrize(
    "text",
    ["😀 emoji 🎉", "漢字とかな", "שלום עולם", "e\u0301\u0301 combining", "zero\u200bwidth", "<script>alert(1)</script>"],
)
def test_odd_text_runs(encoder, text):
    r = es.attention(encoder, text)
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-5)


def test_empty_text_is_rejected(encoder):
    with pytest.raises(ValueError, match="empty"):
        es.attention(encoder, "   ")


def test_format_attention_fails_loudly_without_weights():
    with pytest.raises(ValueError, match="output_attentions"):
        format_attention(None, 3)


def _result(weights, tokens, special=None):
    return AttentionResult(tokens=tokens, weights=np.asarray(weights, np.float32),
                           special=np.asarray(special if special is not None else [False] * len(tokens)))


def test_rollout_hand_computed_three_tokens():
    # Two layers, one head each. Layer 0: every token looks at token 0. Layer 1: identity-free shift.
    a0 = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0]], float)
    a1 = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 1]], float)
    res = _result(np.stack([a0[None], a1[None]]), ["a", "b", "c"])
    # Â = (A + I) / row sums
    h0 = np.array([[1, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    h1 = np.array([[0.5, 0.5, 0], [0, 0.5, 0.5], [0, 0, 1]])
    np.testing.assert_allclose(es.rollout(res), h1 @ h0, atol=1e-6)
    np.testing.assert_allclose(es.rollout(res).sum(-1), 1.0, atol=1e-6)


def test_rollout_averages_heads_first():
    a = np.array([np.eye(2), np.array([[0, 1], [1, 0]])])  # two heads
    res = _result(a[None], ["x", "y"])
    mean = np.full((2, 2), 0.5)
    expected = (mean + np.eye(2)) / 2.0
    np.testing.assert_allclose(es.rollout(res), expected, atol=1e-6)


def test_head_stats_known_answers():
    # Tokens: [CLS] a b c , [SEP]. Head 0 = previous token, head 1 = all to [CLS], head 2 = uniform.
    tokens = ["[CLS]", "a", "b", "c", ",", "[SEP]"]
    special = [True, False, False, False, False, True]
    T = len(tokens)
    prev = np.zeros((T, T))
    prev[0, 0] = 1
    for i in range(1, T):
        prev[i, i - 1] = 1
    cls = np.zeros((T, T))
    cls[:, 0] = 1
    uniform = np.full((T, T), 1 / T)
    res = _result(np.stack([prev, cls, uniform])[None], tokens, special)
    stats = es.head_stats(res).set_index("head")
    assert list(es.head_stats(res).columns[:9]) == ["layer", "head", "prev", "next", "self", "cls", "sep", "punct", "entropy"]
    assert stats.loc[0, "prev"] == pytest.approx(1.0)
    assert stats.loc[0, "next"] == pytest.approx(0.0)
    assert stats.loc[0, "distance"] == pytest.approx(1.0)
    assert stats.loc[0, "entropy"] == pytest.approx(0.0)
    # queries a,b,c,"," (1..4): prev attention to [CLS] only from "a"
    assert stats.loc[0, "cls"] == pytest.approx(0.25)
    assert stats.loc[0, "punct"] == pytest.approx(0.0)
    assert stats.loc[1, "cls"] == pytest.approx(1.0)
    assert stats.loc[1, "distance"] == pytest.approx(np.mean([1, 2, 3, 4]))
    assert stats.loc[2, "entropy"] == pytest.approx(np.log(T))
    assert stats.loc[2, "sep"] == pytest.approx(1 / T)
    assert stats.loc[2, "punct"] == pytest.approx(1 / T)
    assert stats.loc[2, "self"] == pytest.approx(1 / T)
    flagged = flag_heads(es.head_stats(res), T).set_index("head")
    assert flagged.loc[0, "pattern"] == "previous-token head"
    assert flagged.loc[1, "pattern"] == "[CLS] sink"
    assert flagged.loc[2, "pattern"] == "broad head"


def test_head_stats_real_model_has_every_head(res):
    stats = es.head_stats(res)
    assert isinstance(stats, pd.DataFrame) and len(stats) == 72
    assert stats[["layer", "head"]].drop_duplicates().shape[0] == 72
    assert stats["layer"].min() == 0 and stats["head"].max() == 11
    assert np.isfinite(stats[["prev", "next", "self", "cls", "sep", "entropy", "distance"]].to_numpy()).all()


def test_merge_word_pieces_keeps_rows_stochastic(encoder):
    r = es.attention(encoder, "Tokenization of unbelievably long words")
    merged = merge_word_pieces(r)
    assert len(merged.tokens) < len(r.tokens)
    assert "tokenization" in merged.tokens and "unbelievably" in merged.tokens
    np.testing.assert_allclose(merged.weights.sum(-1), 1.0, atol=1e-5)


def test_drop_special_renormalises(res):
    d = drop_special(res)
    assert "[CLS]" not in d.tokens and "[SEP]" not in d.tokens
    np.testing.assert_allclose(d.weights.sum(-1), 1.0, atol=1e-5)


def test_token_focus_shape(res):
    assert token_focus(res, 2).shape == (6, len(res.tokens))
    with pytest.raises(IndexError):
        token_focus(res, 99)


def test_clean_token():
    assert clean_token("Ġbank") == " bank"
    assert clean_token("▁bank") == " bank"
    assert clean_token("a\x00b") == "a\\x00b"
