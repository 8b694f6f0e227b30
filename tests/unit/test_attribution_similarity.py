"""es.explain_similarity on the real bundled MiniLM (mean pooling) and a [CLS]-pooled sentence-transformers folder.

Expected values come from `es.embed` and `es.hidden_states` (the public API), never from the code under test.
"""

import json
import threading

import numpy as np
import pytest

import encoderscope as es
from encoderscope import settings
from tests.conftest import tiny_bert

A = "My cat sleeps all day on the sofa."
B = "Kittens are cute pets."


@pytest.fixture(scope="module")
def exact(encoder):
    return es.explain_similarity(encoder, A, B)


def test_auto_is_the_exact_decomposition_for_mean_pooling(exact):
    assert exact.method == "decomposition" and exact.completeness == 0.0 and exact.steps is None


def test_pairs_sum_to_the_cosine_of_embed(encoder, exact):
    # Bug caught: a wrong normaliser (n·m missing, norms of the sums instead of the means) or a cosine that is not
    # the one es.embed gives (different pooling or truncation).
    E = es.embed(encoder, [A, B])
    assert exact.pairs.shape == (len(exact.tokens_a), len(exact.tokens_b))
    assert exact.pairs.sum() == pytest.approx(float(E[0] @ E[1]), abs=1e-5)
    assert exact.cosine == pytest.approx(float(E[0] @ E[1]), abs=1e-5)


def test_scores_are_row_and_column_sums(exact):
    # Bug caught: scores_a and scores_b swapped (rows are text A's tokens).
    np.testing.assert_allclose(exact.scores_a, exact.pairs.sum(1), atol=1e-12)
    np.testing.assert_allclose(exact.scores_b, exact.pairs.sum(0), atol=1e-12)
    assert len(exact.scores_a) == len(exact.tokens_a) != len(exact.tokens_b)


def test_pairs_are_dot_products_of_the_last_hidden_states(encoder, exact):
    # Hand-computed from es.hidden_states: h_i · g_j / (n · m · |u| · |v|).
    h = es.hidden_states(encoder, A)[-1].astype(np.float64)
    g = es.hidden_states(encoder, B)[-1].astype(np.float64)
    u, v = h.mean(0), g.mean(0)
    expected = h @ g.T / (len(h) * len(g) * np.linalg.norm(u) * np.linalg.norm(v))
    np.testing.assert_allclose(exact.pairs, expected, atol=1e-5)


def test_tokens_are_the_tokenizers_own_with_special_marks(encoder, exact):
    ids = encoder.tokenizer(A)["input_ids"]
    assert exact.tokens_a == encoder.tokenizer.convert_ids_to_tokens(ids)
    assert exact.special_a.tolist() == [t in ("[CLS]", "[SEP]") for t in exact.tokens_a]


@pytest.mark.parametrize("method", ["decomposition", "integrated_gradients"])
def test_the_shared_word_gets_the_largest_score(encoder, method):
    # Semantics: "cat" is what makes a sentence about a sleeping cat close to one about kittens.
    ex = es.explain_similarity(encoder, A, B, method=method, steps=64)
    assert ex.tokens_a[int(np.argmax(ex.scores_a))] == "cat"


def test_integrated_gradients_completeness_at_64_steps(encoder):
    # Bug caught: scores not multiplied by (x − baseline), a missing 1/steps, the baseline replacing [CLS]/[SEP].
    ex = es.explain_similarity(encoder, A, B, method="integrated_gradients", steps=64)
    E = es.embed(encoder, [A, B])
    assert ex.pairs is None and ex.steps == 64
    assert ex.cosine == pytest.approx(float(E[0] @ E[1]), abs=1e-5)
    assert ex.completeness <= 0.05
    assert ex.scores_a.sum() == pytest.approx(ex.cosine - ex.baseline[0], rel=0.05)
    assert ex.scores_b.sum() == pytest.approx(ex.cosine - ex.baseline[1], rel=0.05)
    # special tokens are kept in the baseline, so they get exactly 0
    assert ex.scores_a[0] == 0.0 and ex.scores_a[-1] == 0.0


def test_integrated_gradients_leaves_no_gradient_on_the_shared_model(encoder):
    # Bug caught: loss.backward() instead of autograd.grad, filling .grad on a model every session shares.
    es.explain_similarity(encoder, A, B, method="integrated_gradients", steps=4)
    assert all(p.grad is None for p in encoder.model.parameters())


def test_other_threads_keep_their_own_embeddings_during_integrated_gradients(encoder):
    # Bug caught: the embedding hook acting on every forward pass of the shared model, so a concurrent
    # es.embed from another session would get the interpolated embeddings (or crash on the batch shape).
    expected = es.embed(encoder, ["The river bank was muddy."])
    seen = []
    stop = threading.Event()

    def other_session():
        while not stop.is_set():
            seen.append(es.embed(encoder, ["The river bank was muddy."]))

    worker = threading.Thread(target=other_session)
    worker.start()
    try:
        es.explain_similarity(encoder, A, B, method="integrated_gradients", steps=16)
    finally:
        stop.set()
        worker.join()
    assert seen and all(np.allclose(s, expected, atol=1e-5) for s in seen)


@pytest.fixture(scope="module")
def cls_model(tmp_path_factory):
    """A tiny random BERT saved as a sentence-transformers folder whose pooling config says [CLS]."""
    folder = tiny_bert(tmp_path_factory.mktemp("cls_st"))
    (folder / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 16, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    return es.load_encoder(str(folder))


def test_cls_pooled_model_goes_through_integrated_gradients(cls_model):
    # Bug caught: "auto" ignoring the pooling config (a decomposition of a mean the model never computes).
    ex = es.explain_similarity(cls_model, A, B, steps=64)
    E = es.embed(cls_model, [A, B])
    assert ex.method == "integrated_gradients" and ex.pooling == "cls"
    assert ex.cosine == pytest.approx(float(E[0] @ E[1]), abs=1e-5)
    # random weights: plumbing only (the completeness bound is checked on MiniLM); the sums still close
    assert ex.scores_a.sum() == pytest.approx(ex.cosine - ex.baseline[0], abs=1e-6)
    with pytest.raises(es.UserFacingError, match="mean pooling"):
        es.explain_similarity(cls_model, A, B, method="decomposition")


@pytest.mark.parametrize(("a", "b", "which"), [("", B, "first"), ("   \n", B, "first"), (A, "\t", "second")])
def test_empty_text_is_a_clear_message(encoder, a, b, which):
    with pytest.raises(es.UserFacingError, match=f"The {which} text is empty"):
        es.explain_similarity(encoder, a, b)


def test_unknown_method_is_refused(encoder):
    with pytest.raises(es.UserFacingError, match="Unknown method"):
        es.explain_similarity(encoder, A, B, method="lime")


def test_long_texts_are_capped_with_a_note(encoder):
    long = " ".join(["cats and dogs"] * 40)
    ex = es.explain_similarity(encoder, long, B, method="integrated_gradients", steps=4, max_tokens=16)
    assert len(ex.tokens_a) == 16 and len(ex.scores_a) == 16
    assert any("only the first 16" in note for note in ex.notes)
    assert not any("second text" in note for note in ex.notes)


@pytest.fixture
def public_mode():
    settings.reload({"ENCODERSCOPE_PUBLIC": "1"})
    yield settings.get()
    settings.reload()


def test_public_mode_lowers_steps_and_the_token_cap(encoder, public_mode):
    long = " ".join(["cats and dogs"] * 40)
    ex = es.explain_similarity(encoder, long, B, method="integrated_gradients", steps=32)
    assert ex.steps == public_mode.attribution_max_steps < 32
    assert len(ex.tokens_a) == public_mode.attribution_max_tokens
    assert any("asked for 32" in note for note in ex.notes)
