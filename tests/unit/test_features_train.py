"""Training: the Gao et al. recipe's invariants (decoder bias at the data mean, unit decoder rows, determinism,
AuxK), and on real MiniLM embeddings of a real corpus, reconstruction and features that are about something."""

from __future__ import annotations

import numpy as np
import pytest

import encoderscope as es
from tests.unit.features_data import planted, stdlib_docs


@pytest.fixture(scope="module")
def docs(encoder):
    """(vectors [1200, 384], texts, module labels) of stdlib docstring lines, embedded with the bundled MiniLM."""
    texts, labels = stdlib_docs()
    pick = np.sort(np.random.default_rng(0).choice(len(texts), 1200, replace=False))
    texts, labels = [texts[i] for i in pick], [labels[i] for i in pick]
    return es.embed(encoder, texts, batch_size=64), texts, np.array(labels)


def test_decoder_bias_starts_at_the_data_mean():
    X = planted(600)
    sae = es.features.train(X, 32, 4, epochs=1, lr=0.0)  # no step moves anything: the initialisation itself
    np.testing.assert_allclose(sae.b_dec, X.astype(np.float64).mean(axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sae.W_enc, sae.W_dec.T, atol=1e-6)  # encoder starts as the decoder's transpose


def test_decoder_rows_stay_unit_norm_and_training_is_deterministic():
    X = planted(1500)
    steps = []
    a = es.features.train(X, 64, 4, seed=3, epochs=3, progress=lambda i, n: steps.append((i, n)))
    b = es.features.train(X, 64, 4, seed=3, epochs=3)
    c = es.features.train(X, 64, 4, seed=4, epochs=3)
    np.testing.assert_allclose(np.linalg.norm(a.W_dec, axis=1), 1, atol=1e-5)
    for got, want in zip(a.encode(X), b.encode(X), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(a.W_enc, b.W_enc)
    assert not np.array_equal(a.encode(X)[0], c.encode(X)[0])  # the seed matters
    assert steps[-1] == (18, 18) and len(steps) == 18  # 3 epochs x ceil(1500 / 256) batches, each reported
    assert a.fvu(X) < 0.75 * es.features.train(X, 64, 4, seed=3, epochs=1, lr=0.0).fvu(X)  # it learned


def test_real_minilm_embeddings_reconstruct_and_features_are_about_something(docs):
    X, texts, labels = docs
    sae = es.features.train(X, 192, 16, seed=0, epochs=12)
    fvu = sae.fvu(X)
    untrained = es.features.train(X, 192, 16, seed=0, epochs=1, lr=0.0).fvu(X)
    assert fvu < 0.45 and fvu < 0.6 * untrained, (fvu, untrained)
    assert len(sae.dead(X)) <= 0.2 * 192
    table = es.features.describe(sae, X, texts, top=10)
    live = table[table["top_ids"].map(len) == 10]
    purity = np.mean([np.bincount(np.unique(labels, return_inverse=True)[1][ids]).max() / 10 for ids in live["top_ids"]])
    rng = np.random.default_rng(0)
    codes = np.unique(labels, return_inverse=True)[1]
    chance = np.mean([np.bincount(codes[rng.choice(len(X), 10, replace=False)]).max() / 10 for _ in range(500)])
    assert purity > 1.5 * chance, (purity, chance)  # top examples share a module far more often than random sets
    # labels are words from the examples themselves
    row = live.iloc[0]
    words = set(" ".join(texts[i] for i in row["top_ids"]).lower().split())
    assert any(term in " ".join(words) for term in row["label"].split(" · "))



def test_auxk_revives_features_that_a_large_step_kills(docs):
    # A large Adam step kills features on real embeddings (without AuxK, nothing ever moves a feature that stopped
    # firing); AuxK trains them on what the live features miss, and they come back.
    X = docs[0]
    off = es.features.train(X, 256, 8, seed=0, epochs=12, lr=1e-2, aux_weight=0.0)
    on = es.features.train(X, 256, 8, seed=0, epochs=12, lr=1e-2)
    dead_off, dead_on = len(off.dead(X)), len(on.dead(X))
    assert dead_off >= 5 and dead_on <= dead_off / 2, (dead_off, dead_on)


def test_the_time_estimate_follows_the_benchmark_and_the_work():
    # 12,000 x 384 with 2,048 features is the benchmarked case (50 epochs by default); work grows with the vectors
    # seen, the features and the dimensions
    assert es.features.estimate_seconds(12_000, 384, 2048) == pytest.approx(66)
    assert es.features.estimate_seconds(63_000, 384, 4096) == pytest.approx(66 * 10 * 63_000 * 2 / 600_000)
    assert es.features.estimate_seconds(12_000, 384, 2048, epochs=5) == pytest.approx(6.6)
