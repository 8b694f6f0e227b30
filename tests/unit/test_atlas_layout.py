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


def _clustered(n: int = 1200, d: int = 384, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, d))
    X = centres[rng.integers(0, 12, n)] + 0.6 * rng.normal(size=(n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_the_layout_does_not_depend_on_the_thread_count():
    # Bug: PCA's matrix products split across 1 or 2 BLAS threads round differently, and UMAP turns that into
    # another map (the local engine and --engine dask drew different maps from bit-identical vectors).
    import numba
    from threadpoolctl import threadpool_limits

    V = _clustered()
    runs = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            Z = lay.reduce(V, seed=0)
            result = lay.layout(V, seed=0, sample_size=600, Z=Z)
            runs.append((Z, result.coords, result.cluster, lay.near_duplicates(V, Z, 0.9)))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    (Z1, xy1, c1, d1), (Z2, xy2, c2, d2) = runs
    assert np.array_equal(Z1, Z2)
    assert np.array_equal(xy1, xy2) and np.array_equal(c1, c2)
    for a, b in zip(d1, d2, strict=True):
        assert np.array_equal(a, b)


def test_fixed_threads_restores_the_callers_settings():
    # In a fresh process: libraries that earlier tests loaded and tuned in this one must not decide the outcome.
    from tests.unit.test_compute import run_fresh

    run_fresh("""
import numba
from threadpoolctl import threadpool_info
from encoderscope.atlas import layout as lay
def state():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info()}, numba.get_num_threads()
before = state()
with lay.fixed_threads():
    inside = threadpool_info()
    assert inside and all(i["num_threads"] == 1 for i in inside), inside
    assert numba.get_num_threads() == 1
after = state()
assert {k: v for k, v in after[0].items() if k in before[0]} == before[0] and after[1] == before[1], (before, after)
""")


def test_already_unit_rows_keep_their_bits_and_others_are_normalised():
    # Bug: --vectors divided unit rows by their float64 norm again, moving about one value in a hundred by
    # one ulp: an atlas rebuilt from its own vectors.npy agreed on 23 % of cluster ids.
    from encoderscope.atlas.builder import normalised

    unit = _clustered(200)
    raw = np.random.default_rng(0).normal(size=(5, 384)) * 3
    out = normalised(np.vstack([unit, raw]))
    assert out.dtype == np.float32
    assert np.array_equal(out[:200].view(np.uint32), unit.view(np.uint32))
    np.testing.assert_allclose(np.linalg.norm(out[200:].astype(np.float64), axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(out[200:], raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
