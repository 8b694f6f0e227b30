"""Issue 24 §11: numbers the attention page shows, computed in the library (the page only draws them)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import encoderscope as es
from encoderscope.attention_maps import context_split, token_focus
from encoderscope.attribution.tables import query_key_scores

TEXT = "The bank of the river was steep."


def test_context_split_by_hand():
    # token 1 of 4, two layers: layer 0 gives 0.5 left, 0.2 itself, 0.3 right; layer 1 0.1, 0.6, 0.3
    focus = np.array([[0.5, 0.2, 0.1, 0.2], [0.1, 0.6, 0.3, 0.0]])
    assert context_split(focus, 1) == pytest.approx((0.3, 0.4, 0.3))
    assert context_split(focus, 0) == pytest.approx((0.0, 0.3, 0.7))
    assert context_split(focus, 3) == pytest.approx((0.9, 0.1, 0.0))


def test_context_split_of_a_causal_decoder_has_no_right_context(decoder_model):
    res = es.attention(decoder_model, TEXT)
    for index in (1, len(res.tokens) // 2):
        left, itself, right = context_split(token_focus(res, index), index)
        assert right == pytest.approx(0.0, abs=1e-6) and left + itself == pytest.approx(1.0, abs=1e-5)


def test_query_key_scores_are_the_models_scores(encoder):
    qk = es.query_key(encoder, TEXT, 2, 3)
    i = 2
    table = query_key_scores(qk, i, [f"{j}" for j in range(len(qk.tokens))])
    np.testing.assert_allclose(table["score"], qk.scores()[i], rtol=1e-6)
    np.testing.assert_allclose(table["q·k·scale"] + table["bias"], table["score"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(table["weight"], qk.weights[i])
    soft = np.exp(table["score"] - table["score"].max())
    np.testing.assert_allclose(soft / soft.sum(), table["weight"], atol=1e-5)


def test_the_score_column_follows_query_key_scores(encoder):
    # Bug: the score recomputed as Σ products + bias: a model whose scores() adds more (a relative-position term
    # the capture reports through scores()) would show a score that is not the one the softmax reads.
    qk = es.query_key(encoder, TEXT, 2, 3)
    extra = np.linspace(-1, 1, len(qk.tokens), dtype=np.float32)

    @dataclasses.dataclass(frozen=True)
    class Shifted(type(qk)):
        def scores(self):
            return super().scores() + extra[None, :]

    shifted = Shifted(**{f.name: getattr(qk, f.name) for f in dataclasses.fields(qk)})
    table = query_key_scores(shifted, 0, list(qk.tokens))
    np.testing.assert_allclose(table["score"], qk.scores()[0] + extra, rtol=1e-6)
