"""What es.compare finds on real models: MiniLM (6 layers, 384-d) against MPNet (12 layers, 768-d), and their
untrained twins, on 52 real sentences (the topic and paraphrase corpora). One forward pass per model for the
whole module; every metric then works from those features.
"""

import numpy as np
import pytest
import torch

import encoderscope as es
from encoderscope import corpora

TEXTS = [t for t, _ in corpora.TOPICS] + [t for t, _ in corpora.PARAPHRASES]


@pytest.fixture(scope="module")
def feats(encoder, mpnet):
    return {
        "minilm": es.compare.layer_features(encoder, TEXTS),
        "mpnet": es.compare.layer_features(mpnet, TEXTS),
        "untrained": es.compare.layer_features(es.compare.untrained(encoder, seed=0), TEXTS),
    }


def test_features_are_every_layer_pooled_as_the_model_pools(feats, encoder, mpnet):
    # Bug caught: the pooling of one layer only, padding leaking into the mean, rows out of input order.
    assert feats["minilm"].shape == (7, len(TEXTS), 384) and feats["mpnet"].shape == (13, len(TEXTS), 768)
    for name, model in (("minilm", encoder), ("mpnet", mpnet)):
        last = feats[name][-1] / np.linalg.norm(feats[name][-1], axis=1, keepdims=True)
        np.testing.assert_allclose(last, es.embed(model, TEXTS), atol=2e-5)
    # layer 3 of one text, from its own hidden states (the masked mean over its tokens)
    np.testing.assert_allclose(feats["minilm"][3, 5], es.hidden_states(encoder, TEXTS[5])[3].mean(0), atol=2e-5)


@pytest.mark.parametrize("name", ["minilm", "mpnet"])
@pytest.mark.parametrize("metric", ["cka", "cka_debiased", "mknn"])
def test_self_map_has_a_unit_diagonal_and_a_band(feats, name, metric):
    m = es.compare.similarity_matrix(feats[name], None, metric, k=5).matrix
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-9)
    by_distance = [np.diag(m, d).mean() for d in range(1, len(m))]
    assert by_distance[0] > np.mean(by_distance[2:]) + 0.05  # adjacent layers closer than distant ones
    assert by_distance[0] > by_distance[1] > by_distance[2]


@pytest.mark.parametrize("metric", ["cka", "cka_debiased"])
def test_final_layers_of_minilm_and_mpnet_are_each_others_best_match(feats, metric):
    sim = es.compare.similarity_matrix(feats["minilm"], feats["mpnet"], metric)
    assert sim.matrix.shape == (7, 13)
    assert sim.best_match_a[-1] == 12 and sim.best_match_b[-1] == 6


def test_trained_against_trained_beats_trained_against_untrained_by_a_wide_margin(feats):
    # Measured on this corpus: debiased CKA 0.80 against 0.19, mutual 5-NN 0.59 against 0.17.
    def final(metric, other):
        return es.compare.similarity_matrix(feats["minilm"], feats[other], metric, k=5).matrix[-1, -1]

    assert final("cka_debiased", "mpnet") > final("cka_debiased", "untrained") + 0.4
    assert final("mknn", "mpnet") > 2 * final("mknn", "untrained")
    # and the untrained model is still far from nothing at its embedding layer (what the baseline is for)
    early = es.compare.similarity_matrix(feats["minilm"], feats["untrained"], "cka").matrix[0, 0]
    assert early > 0.5


def test_layer_similarity_runs_each_model_once_and_matches_the_feature_path(encoder, mpnet, feats):
    calls = {"a": 0, "b": 0}
    hooks = [
        encoder.model.register_forward_hook(lambda *_: calls.__setitem__("a", calls["a"] + 1)),
        mpnet.model.register_forward_hook(lambda *_: calls.__setitem__("b", calls["b"] + 1)),
    ]
    try:
        sim = es.compare.layer_similarity(encoder, mpnet, TEXTS[:12], metric="cka_debiased")
        self_map = es.compare.layer_similarity(encoder, encoder, TEXTS[:12], metric="mknn", k=3)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"a": 2, "b": 1}  # 12 short texts fit one batch; the self-map runs the model once
    assert sim.matrix.dtype == np.float64 and sim.n == 12 and sim.metric == "cka_debiased"
    assert sim.name_a == encoder.name and sim.name_b == mpnet.name
    expected = es.compare.similarity_matrix(feats["minilm"][:, :12], feats["mpnet"][:, :12], "cka_debiased")
    np.testing.assert_allclose(sim.matrix, expected.matrix, atol=1e-4)
    assert self_map.matrix.shape == (7, 7)


def test_rotated_final_layer_keeps_every_neighbour(feats):
    X = feats["mpnet"][-1]
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(768, 768)))
    nb = es.compare.neighbours(X, 3.0 * X @ q, k=5)
    assert nb.mutual_knn == 1.0
    real = es.compare.neighbours(feats["minilm"][-1], X, k=5)
    assert 0.3 < real.mutual_knn < 1.0  # two real models agree on many neighbours, not all


def test_batching_does_not_change_the_features(encoder):
    # Bug caught: padding counted in the mean, or rows scattered to the wrong texts when batched by length.
    texts = [TEXTS[0], "short", TEXTS[3] + " " + TEXTS[4], "Another one, of middling length."]
    one_by_one = es.compare.layer_features(encoder, texts, token_budget=1)
    together = es.compare.layer_features(encoder, texts)
    np.testing.assert_allclose(together, one_by_one, atol=2e-5)


def test_untrained_is_a_labelled_fresh_copy(encoder):
    state = torch.random.get_rng_state()
    u = es.compare.untrained(encoder, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is left alone
    assert "untrained" in u.name and u.source == "untrained" and es.compare.is_untrained(u)
    assert not es.compare.is_untrained(encoder) and u.tokenizer is encoder.tokenizer
    w, w0 = u.model.embeddings.word_embeddings.weight, encoder.model.embeddings.word_embeddings.weight
    assert w.shape == w0.shape and not torch.allclose(w, w0)
    again = es.compare.untrained(encoder, seed=3)
    assert torch.equal(again.model.embeddings.word_embeddings.weight, w)
    assert es.attention(u, "A sentence.").weights.shape[:2] == (6, 12)  # usable wherever a model is
    with pytest.raises(es.UserFacingError, match="already"):
        es.compare.untrained(u)


def test_bad_texts_get_clear_messages(encoder):
    with pytest.raises(es.UserFacingError, match="at least 4"):
        es.compare.layer_similarity(encoder, encoder, TEXTS[:3])
    with pytest.raises(es.UserFacingError, match="more than 10"):
        es.compare.layer_similarity(encoder, encoder, TEXTS[:10], metric="mknn", k=10)
    with pytest.raises(es.UserFacingError, match="empty"):
        es.compare.layer_features(encoder, ["one", "  ", "three", "four"])
    dup = es.compare.layer_similarity(encoder, encoder, TEXTS[:6] + TEXTS[:2])
    assert any("tie in k-NN" in n for n in dup.notes)
