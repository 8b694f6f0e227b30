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


def test_first_uses_of_umap_and_nn_descent_run_one_thread_at_a_time(monkeypatch):
    # Bug: the UMAP warm-up thread's first fit and an atlas layout's first fit and NN-descent index compiled numba
    # code in two threads at once, and numba failed ("no compiled object yet for _transpose_csr"). Each numba
    # entry point is timed here, with a pause that widens the window a race needs.
    import threading
    import time

    import pynndescent
    import umap

    from encoderscope.atlas import layout as lay

    monkeypatch.setattr(projection, "_first_done", set())  # as in a fresh process: nothing has run yet
    spans = []

    def timed(original, name):
        def run(self, *args, **kwargs):
            start = time.perf_counter()
            time.sleep(0.3)
            try:
                return original(self, *args, **kwargs)
            finally:
                spans.append((threading.current_thread().name, name, start, time.perf_counter()))

        return run

    monkeypatch.setattr(umap.UMAP, "fit_transform", timed(umap.UMAP.fit_transform, "umap"))
    monkeypatch.setattr(pynndescent.NNDescent, "__init__", timed(pynndescent.NNDescent.__init__, "nndescent"))
    rng = np.random.default_rng(0)
    together = threading.Barrier(2)
    failed = []

    def warm_up():  # what projection.warm_up runs first: a small cosine fit
        together.wait()
        try:
            projection.project(rng.normal(size=(64, 16)).astype(np.float32), "umap", 2, n_neighbors=10)
        except Exception as err:
            failed.append(err)

    def atlas():  # a layout fitted on a sample (euclidean UMAP), the rest placed by NN-descent
        X = rng.normal(size=(300, 16)).astype(np.float32)
        together.wait()
        try:
            lay.layout(X / np.linalg.norm(X, axis=1, keepdims=True), sample_size=100)
        except Exception as err:
            failed.append(err)

    threads = [threading.Thread(target=warm_up, name="warm-up"), threading.Thread(target=atlas, name="atlas")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failed, failed
    assert {(thread, name) for thread, name, *_ in spans} >= {("warm-up", "umap"), ("atlas", "umap"),
                                                              ("atlas", "nndescent")}
    for a in spans:
        for b in spans:
            if a[0] < b[0]:  # two threads: their first uses never overlap
                assert a[3] <= b[2] or b[3] <= a[2], (a, b)
    assert {("umap", "cosine", False), ("umap", "euclidean", False), ("nndescent", "euclidean")} <= projection._first_done
