"""The atlas layout at (small) scale: cluster structure survives the sample-fit + placement, duplicates are
found with exact cosines, clusters get c-TF-IDF names."""

from __future__ import annotations

import numpy as np

from encoderscope.atlas import layout as lay


def gaussian_mixture(n: int, d: int, k: int, spread: float, seed: int = 0):
    """L2-normalised points `[n, d]` around k random centres, and their labels `[n]`."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    labels = rng.integers(0, k, n)
    X = centres[labels] + spread * rng.normal(size=(n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), labels


def test_cluster_structure_survives_sample_fit_and_placement():
    X, labels = gaussian_mixture(5000, 384, 20, spread=3.5)
    original = lay.knn_label_accuracy(X, labels, queries=2000)
    assert 0.5 < original < 1.0  # hard enough that a bad layout shows
    result = lay.layout(X, seed=0, sample_size=1500)  # 3,500 points placed from the sample, not fitted
    assert result.coords.shape == (5000, 2) and result.coords.dtype == np.float32
    assert len(result.sample) == 1500
    placed = np.setdiff1d(np.arange(5000), result.sample)
    laid_out = lay.knn_label_accuracy(result.coords, labels, queries=2000)
    assert laid_out >= 0.9 * original, (laid_out, original)
    # placed points alone (the transform path) keep the structure too
    assert lay.knn_label_accuracy(result.coords[placed], labels[placed], queries=2000) >= 0.9 * original
    # the clusters found agree with the true ones: most points of a true cluster share one found cluster
    found = result.cluster
    purity = np.mean([np.bincount(found[labels == c] + 1).max() / np.sum(labels == c) for c in range(20)])
    assert purity > 0.8


def test_near_duplicates_are_exact_pairs_above_threshold():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 32)).astype(np.float32)
    X[10] = X[3] + 0.01 * rng.normal(size=32)  # near-duplicate of 3
    X[200] = X[50]  # exact duplicate
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    a, b, cos = lay.near_duplicates(X, lay.reduce(X), threshold=0.95)
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(50, 200), (3, 10)]
    np.testing.assert_allclose(cos, [X[50] @ X[200], X[3] @ X[10]], rtol=1e-6)


def test_cluster_names_are_the_distinctive_terms():
    texts = ["football goal match"] * 5 + ["pasta sauce recipe"] * 5 + ["the a of"] * 2
    cluster = np.array([0] * 5 + [1] * 5 + [-1] * 2)
    coords = np.arange(24, dtype=np.float32).reshape(12, 2)
    table = lay.cluster_table(coords, cluster, texts)
    assert table["cluster"].tolist() == [-1, 0, 1]
    assert table["size"].tolist() == [2, 5, 5]
    assert table["name"][0] == "noise"
    assert set(table["name"][1].split(" · ")) == {"football", "goal", "match"}
    assert set(table["name"][2].split(" · ")) == {"pasta", "sauce", "recipe"}
    np.testing.assert_allclose(table["x"][1], coords[:5, 0].mean())
