"""`es.faithfulness.similarity` and `next_token` on the real MiniLM and SmolLM2, and the centred decomposition.

Each test names the bug it catches. Independent re-runs use only the tokenizer, the model and numpy.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import encoderscope as es
from encoderscope import corpora
from encoderscope.faithfulness import curves as engine

A = "A man is playing a guitar on stage."
B = "Someone performs music with an instrument."
# sample pairs: the Embeddings page's default pair and word-sense sentences with a neighbour of the same sense
PAIRS = [(A, B), *[(corpora.WORD_SENSES[i][0], corpora.WORD_SENSES[i + 1][0]) for i in (0, 12)]]


def _embed_ids(enc, ids: list[int]) -> np.ndarray:
    """Mean-pooled output vector of one id sequence, written out here (no library pooling)."""
    with torch.inference_mode():
        h = enc.model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    return h.last_hidden_state[0].double().mean(0).numpy()


def _cos(u, v) -> float:
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


@pytest.fixture(scope="module")
def ex(encoder):
    return es.explain_similarity(encoder, A, B)


@pytest.fixture(scope="module")
def curves_b(encoder, ex):
    return es.faithfulness.similarity(encoder, ex, side="b", steps=10, seeds=5)


def test_first_point_is_the_explained_cosine(ex, curves_b):
    # Bug: step 0 already removes a token, or the fixed side is pooled differently from the explanation.
    assert curves_b.counts[0] == 0
    assert curves_b.deletion[0] == pytest.approx(ex.cosine, abs=1e-5)
    assert curves_b.random[0] == pytest.approx(ex.cosine, abs=1e-5)
    assert curves_b.insertion[-1] == pytest.approx(ex.cosine, abs=1e-5)
    n = int((~ex.special_b).sum())
    assert curves_b.counts[-1] == n and len(curves_b.counts) == min(10, n) + 1


def test_one_step_equals_an_independent_rerun(encoder, ex, curves_b):
    # Bugs: the lowest-scored tokens removed, special tokens removed, positions shifted by one.
    tok = encoder.tokenizer
    ids_a, ids_b = tok(A)["input_ids"], tok(B)["input_ids"]
    ordinary = [i for i in range(len(ids_b)) if ids_b[i] not in tok.all_special_ids]
    ranked = sorted(ordinary, key=lambda i: -ex.scores_b[i])
    u = _embed_ids(encoder, ids_a)
    for s in (2, 5):
        k = int(curves_b.counts[s])
        gone = set(ranked[:k])
        deleted = [t for i, t in enumerate(ids_b) if i not in gone]
        assert curves_b.deletion[s] == pytest.approx(_cos(u, _embed_ids(encoder, deleted)), abs=1e-4)
        kept = set(ranked[:k]) | {i for i in range(len(ids_b)) if i not in ordinary}
        inserted = [t for i, t in enumerate(ids_b) if i in kept]
        assert curves_b.insertion[s] == pytest.approx(_cos(u, _embed_ids(encoder, inserted)), abs=1e-4)


def test_mask_removal_writes_the_mask_token(encoder, ex):
    # Bug: "mask" deletes instead of masking (the sequence would get shorter).
    c = es.faithfulness.similarity(encoder, ex, side="a", removal="mask", steps=4, seeds=2)
    tok = encoder.tokenizer
    ids_a, ids_b = tok(A)["input_ids"], tok(B)["input_ids"]
    ordinary = [i for i in range(len(ids_a)) if ids_a[i] not in tok.all_special_ids]
    ranked = sorted(ordinary, key=lambda i: -ex.scores_a[i])
    k = int(c.counts[1])
    masked = [tok.mask_token_id if i in ranked[:k] else t for i, t in enumerate(ids_a)]
    expected = _cos(_embed_ids(encoder, masked), _embed_ids(encoder, ids_b))
    assert c.deletion[1] == pytest.approx(expected, abs=1e-4)
    assert c.removal == "mask"


def test_areas_and_eraser_scores(curves_b):
    # Bugs: an area as a sum, comprehensiveness with the wrong sign, the random mean of the wrong axis.
    c = curves_b
    assert c.area_deletion == pytest.approx(c.deletion.mean())
    assert c.area_random == pytest.approx(c.random_runs.mean())
    np.testing.assert_allclose(c.random, c.random_runs.mean(0))
    np.testing.assert_allclose(c.random_sd, c.random_runs.std(0))
    inner = slice(1, len(c.counts) - 1)
    assert c.comprehensiveness == pytest.approx(np.mean(c.deletion[0] - c.deletion[inner]))
    assert c.sufficiency == pytest.approx(np.mean(c.deletion[0] - c.insertion[inner]))
    table = es.faithfulness.table(c)
    np.testing.assert_allclose(table["deletion"], c.deletion)
    assert list(table["removed"]) == list(c.counts)


@pytest.mark.parametrize("pair", PAIRS[:3])
def test_explanations_beat_random_and_their_reverse_does_not(encoder, pair):
    # Bugs: the order reversed (ascending scores), scores of the other side used, random orders not random.
    ex = es.explain_similarity(encoder, *pair)
    real = es.faithfulness.similarity(encoder, ex, side="b", steps=6, seeds=5)
    margin = real.area_random - real.area_deletion
    assert margin > 0.05 * ex.cosine, (real.area_deletion, real.area_random, ex.cosine)
    assert real.beats_random
    reverse = es.faithfulness.similarity(encoder, dataclasses.replace(ex, scores_b=-ex.scores_b), "b", steps=6, seeds=5)
    assert reverse.area_deletion > real.area_deletion + margin  # the reversed ranking is clearly worse
    assert real.area_random - reverse.area_deletion < margin / 2  # and never better than random by that margin


def test_a_shuffled_explanation_does_not_beat_random_by_the_real_margin(encoder, ex, curves_b):
    # Bug: the curve ignores the scores (any ranking would "pass").
    margin = curves_b.area_random - curves_b.area_deletion
    rng = np.random.default_rng(7)
    shuffled = [
        es.faithfulness.similarity(encoder, dataclasses.replace(ex, scores_b=rng.permutation(ex.scores_b)), "b", steps=10)
        for _ in range(2)
    ]
    gains = [c.area_random - c.area_deletion for c in shuffled]
    assert np.mean(gains) < margin / 2, (gains, margin)


def test_bad_input_is_a_user_facing_error(encoder, ex):
    with pytest.raises(es.UserFacingError, match="side"):
        es.faithfulness.similarity(encoder, ex, side="c")
    with pytest.raises(es.UserFacingError, match="removal"):
        es.faithfulness.similarity(encoder, ex, removal="blur")
    with pytest.raises(es.UserFacingError, match="steps"):
        es.faithfulness.similarity(encoder, ex, steps=0)
    with pytest.raises(es.UserFacingError, match="seeds"):
        es.faithfulness.similarity(encoder, ex, seeds=1000)
    with pytest.raises(es.UserFacingError, match="vocabulary"):
        es.faithfulness.similarity(encoder, dataclasses.replace(ex, tokens_b=["[CLS]", "zzqqxxnotatoken", "[SEP]"],
                                                                special_b=np.array([1, 0, 1], bool),
                                                                scores_b=np.zeros(3)))
    with pytest.raises(es.UserFacingError, match="finite"):
        es.faithfulness.similarity(encoder, dataclasses.replace(ex, scores_b=ex.scores_b * np.nan))


def test_step_counts_never_repeat():
    np.testing.assert_array_equal(engine.step_counts(3, 10), [0, 1, 2, 3])
    np.testing.assert_array_equal(engine.step_counts(20, 4), [0, 5, 10, 15, 20])
    with pytest.raises(es.UserFacingError, match="nothing to remove"):
        engine.step_counts(0, 4)


# --- the centred decomposition ---------------------------------------------------------------------------------


def test_centred_decomposition_sums_to_the_centred_cosine(encoder):
    # Bugs: the centre subtracted from unnormalised vectors, the plain cosine reported, a term dropped.
    texts = [t for t, _ in corpora.TOPICS[:12]]
    c = es.embed(encoder, texts).astype(np.float64).mean(0)
    ex = es.explain_similarity(encoder, A, B, centre=c)
    u, v = (es.embed(encoder, [t])[0].astype(np.float64) for t in (A, B))
    expected = _cos(u - c, v - c)
    assert ex.explains == "centred cosine"
    assert ex.cosine == pytest.approx(expected, abs=1e-5)
    assert ex.pairs.sum() == pytest.approx(ex.cosine, abs=1e-12)
    assert ex.sum_a == pytest.approx(ex.cosine, abs=1e-12) and ex.sum_b == pytest.approx(ex.cosine, abs=1e-12)
    assert ex.plain_cosine == pytest.approx(_cos(u, v), abs=1e-5)
    plain = es.explain_similarity(encoder, A, B)
    assert plain.explains == "cosine" and plain.centre is None
    assert (plain.scores_a > 0).all() and (plain.scores_b > 0).all()  # the "all red" plain view
    assert abs(ex.cosine - plain.cosine) > 0.01  # the centre changed what is explained
    # its deletion test starts at the centred cosine
    curve = es.faithfulness.similarity(encoder, ex, steps=4, seeds=2)
    assert curve.deletion[0] == pytest.approx(ex.cosine, abs=1e-5) and curve.measure == "centred cosine"


def test_centred_integrated_gradients_explain_the_centred_cosine(encoder):
    c = es.embed(encoder, [t for t, _ in corpora.TOPICS[:6]]).astype(np.float64).mean(0)
    ex = es.explain_similarity(encoder, A, B, method="integrated_gradients", steps=8, centre=c)
    u, v = (es.embed(encoder, [t])[0].astype(np.float64) for t in (A, B))
    assert ex.cosine == pytest.approx(_cos(u - c, v - c), abs=1e-4)
    assert ex.sum_a == pytest.approx(ex.cosine - ex.baseline[0], abs=0.05)


def test_bad_centres_are_refused(encoder):
    for bad, words in ((np.zeros(7), "384"), (np.full(384, np.nan), "finite"), (np.ones(384), "norm"),
                       (np.zeros((2, 384)), "one vector"), ("x", "numbers")):
        with pytest.raises(es.UserFacingError, match=words):
            es.explain_similarity(encoder, A, B, centre=bad)


# --- next token ------------------------------------------------------------------------------------------------


def test_next_token_curve(decoder_model):
    # Bugs: logits read at a padding position, the first token (attention sink) removed, the wrong target.
    text = "The Eiffel Tower is in the city of"
    ta = es.token_attribution(decoder_model, text, steps=8)
    c = es.faithfulness.next_token(decoder_model, text, ta, steps=4, seeds=3)
    assert c.deletion[0] == pytest.approx(ta.logprob, abs=1e-3)
    assert c.measure == "log-probability"
    tok = decoder_model.tokenizer
    ids = tok.convert_tokens_to_ids(ta.tokens)
    removable = [i for i in range(1, len(ids)) if not ta.special[i]]
    ranked = sorted(removable, key=lambda i: -ta.scores[i])
    k = int(c.counts[2])
    kept = [t for i, t in enumerate(ids) if i not in ranked[:k]]
    with torch.inference_mode():
        logits = decoder_model.model(input_ids=torch.tensor([kept])).logits[0, -1].float()
    expected = float(torch.log_softmax(logits, -1)[ta.target_id])
    assert c.deletion[2] == pytest.approx(expected, abs=1e-3)
    assert c.counts[-1] == len(removable)
    with pytest.raises(es.UserFacingError, match="empty"):
        es.faithfulness.next_token(decoder_model, "  ", ta)
