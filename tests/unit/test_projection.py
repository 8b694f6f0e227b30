"""Projections: shapes, determinism and the guards for small or bad inputs."""

import numpy as np
import pytest

import encoderscope as es
from encoderscope import projection


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32))
    return (np.repeat(centres, 20, axis=0) + 0.1 * rng.normal(size=(60, 32))).astype(np.float32)


@pytest.mark.parametrize("method", ["umap", "pca", "tsne"])
@pytest.mark.parametrize("dim", [2, 3])
def test_shapes(X, method, dim):
    assert es.project(X, method=method, dim=dim, seed=0).shape == (60, dim)


def test_umap_is_deterministic(X):
    np.testing.assert_array_equal(es.project(X, "umap", seed=7), es.project(X, "umap", seed=7))


def test_pca_explained_variance(X):
    result = projection.project_with_info(X, "pca", 3)
    assert result.explained_variance.shape == (3,) and 0 < result.explained_variance.sum() <= 1


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_inputs_fall_back_to_pca(n):
    result = projection.project_with_info(np.random.default_rng(0).normal(size=(n, 8)), "umap", 2)
    assert result.method == "pca" and result.coords.shape == (n, 2) and "PCA" in result.notices[0]


def test_parameters_are_clamped():
    data = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    result = projection.project_with_info(data, "umap", 2, n_neighbors=50, min_dist=5)
    assert result.coords.shape == (6, 2) and len(result.notices) == 2
    result = projection.project_with_info(data, "tsne", 2, perplexity=30)
    assert "perplexity" in result.notices[0]


@pytest.mark.parametrize("bad", [np.zeros((0, 4)), np.zeros(4), np.array([[np.nan, 1.0], [1, 2], [3, 4], [5, 6]])])
def test_bad_arrays(bad):
    with pytest.raises(ValueError):
        es.project(bad, "pca")


def test_bad_method_and_dim(X):
    with pytest.raises(ValueError):
        es.project(X, "lda")
    with pytest.raises(ValueError):
        es.project(X, "pca", dim=4)


def test_sampling():
    assert projection.sample_indices(10, 20) is None
    idx = projection.sample_indices(30_000, 20_000, seed=1)
    assert len(idx) == 20_000 and len(np.unique(idx)) == 20_000 and (np.diff(idx) > 0).all()


@pytest.mark.parametrize("method", ["umap", "tsne", "pca"])
def test_identical_points_collapse_to_one_place(method):
    same = np.tile(np.random.default_rng(0).normal(size=(1, 8)).astype(np.float32), (12, 1))
    result = projection.project_with_info(same, method, 2)
    assert result.method == "pca" and np.abs(result.coords).max() == 0
    assert method == "pca" or "all the same" in result.notices[0]


def test_few_distinct_points_fall_back():
    data = np.repeat(np.random.default_rng(0).normal(size=(3, 8)), 40, axis=0)  # duplicates beyond the first rows
    assert "3 distinct" in projection.project_with_info(data, "umap", 2).notices[0]


def test_warm_up_lifespan_starts_the_thread_once(monkeypatch):
    import asyncio
    import threading

    from components.embeddings import warmup

    calls = []
    monkeypatch.setattr(projection, "start_warm_up", lambda: calls.append(1))

    async def serve():
        async with warmup.lifespan(None):
            pass

    # A fresh thread: an earlier test (sync Playwright) may leave an event loop running in this one.
    runner = threading.Thread(target=asyncio.run, args=(serve(),))
    runner.start()
    runner.join(timeout=30)
    assert calls == [1]
    assert projection.ready_event(10) is projection._small_ready
    assert projection.ready_event(projection.LARGE_N) is projection._all_ready
