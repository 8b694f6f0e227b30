"""UMAP / PCA / t-SNE projections of embeddings `[N, D]` to `[N, dim]`, with the guards small inputs need.

UMAP compiles with numba on first use (~12 s, and ~30 s more the first time N >= 4096, when
pynndescent takes over); `warm_up()` pays that up front. NUMBA_CACHE_DIR is pointed at our cache folder and
`_cache_compiles()` turns on numba's disk cache for every UMAP/pynndescent function (only a few opt in), so
a later process loads the machine code instead of compiling: 200 points in 0.2 s instead of 9 s.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import settings

METHODS = ("umap", "pca", "tsne")
NAMES = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(settings.get().cache_dir) / "numba"))


@dataclass
class Projection:
    """coords `[N, dim]`; method actually used; notices for the user; PCA explained variance ratios."""

    coords: np.ndarray
    method: str
    notices: list[str] = field(default_factory=list)
    explained_variance: np.ndarray | None = None


def _pca(X: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    n = min(dim, X.shape[0], X.shape[1])
    if X.shape[0] < 2 or _spread(X) == 0:  # one point, or identical points (PCA would magnify float noise)
        return np.zeros((X.shape[0], dim), np.float32), np.zeros(dim)
    pca = PCA(n_components=n, random_state=0)
    coords = pca.fit_transform(X)
    ratio = np.nan_to_num(pca.explained_variance_ratio_)  # all-identical points: 0/0
    if n < dim:  # pad so the caller always gets [N, dim]
        coords = np.hstack([coords, np.zeros((X.shape[0], dim - n))])
        ratio = np.concatenate([ratio, np.zeros(dim - n)])
    return coords.astype(np.float32), ratio


def _spread(X: np.ndarray) -> float:
    """Largest distance of a point from the mean, with float noise (below 1e-6 of the scale) counted as 0."""
    centred = X - X.mean(axis=0)
    scale = float(np.abs(X).max()) or 1.0
    spread = float(np.abs(centred).max())
    return 0.0 if spread <= 1e-6 * scale else spread


def _distinct(X: np.ndarray, limit: int) -> int:
    """Number of distinct rows (rounded to 6 decimals), counting only up to `limit` + 1 cheaply."""
    if _spread(X) == 0:
        return 1
    head = np.unique(np.round(X[: 4 * limit + 64], 6), axis=0).shape[0]
    if head > limit or len(X) <= 4 * limit + 64:
        return min(head, limit + 1)
    return min(np.unique(np.round(X, 6), axis=0).shape[0], limit + 1)


def project_with_info(
    X: np.ndarray,
    method: str = "umap",
    dim: int = 2,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    perplexity: float = 30.0,
    metric: str = "cosine",
) -> Projection:
    """Project `X` `[N, D]` to `[N, dim]`; clamps parameters that the data size makes invalid, with a notice."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"expected a non-empty [N, D] array, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("the embeddings contain NaN or infinite values")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if dim not in (2, 3):
        raise ValueError("dim must be 2 or 3")
    N = X.shape[0]
    notices: list[str] = []
    if method != "pca" and N <= 3:
        notices.append(f"{N} point(s) are too few for {NAMES[method]}; showing PCA instead.")
        method = "pca"
    elif method != "pca" and (distinct := _distinct(X, 3)) <= 3:
        what = "all the same" if distinct == 1 else f"only {distinct} distinct vectors"
        notices.append(f"The {N} points are {what}: too few for {NAMES[method]}; showing PCA instead.")
        method = "pca"
    if method == "pca":
        coords, ratio = _pca(X, dim)
        return Projection(coords, "pca", notices, ratio)
    if method == "umap":
        import umap

        _cache_compiles()
        _mark_use()
        k = min(max(2, int(n_neighbors)), N - 1)
        if k != n_neighbors:
            notices.append(f"n_neighbors was set to {k} (it must be between 2 and N − 1 = {N - 1}).")
        md = float(np.clip(min_dist, 0.0, 0.99))
        if md != min_dist:
            notices.append(f"min_dist was clamped to {md} (valid range 0–0.99).")
        reducer = umap.UMAP(
            n_components=dim,
            n_neighbors=k,
            min_dist=md,
            metric=metric,
            random_state=seed,
            n_jobs=1,
            init="spectral" if N > dim + 1 else "random",
        )
        with warnings.catch_warnings(), first_use(("umap", metric, N >= LARGE_N)):
            warnings.simplefilter("ignore")  # n_jobs/random_state and small-graph warnings
            coords = reducer.fit_transform(X)
        return Projection(coords.astype(np.float32), "umap", notices)
    from sklearn.manifold import TSNE

    p = float(np.clip(perplexity, 1.0, max(1.0, (N - 1) / 3)))
    if p != perplexity:
        notices.append(f"perplexity was set to {p:.1f} (it must be below N / 3).")
    tsne = TSNE(n_components=dim, perplexity=p, random_state=seed, init="pca", metric=metric)
    return Projection(tsne.fit_transform(X).astype(np.float32), "tsne", notices)


def project(X: np.ndarray, method: str = "umap", dim: int = 2, seed: int = 0, **kwargs) -> np.ndarray:
    """`[N, D]` -> `[N, dim]` with UMAP (cosine metric), PCA or t-SNE; deterministic for a fixed seed."""
    return project_with_info(X, method, dim, seed, **kwargs).coords


def sample_indices(n: int, cap: int, seed: int = 0) -> np.ndarray | None:
    """Sorted indices of a uniform sample of `cap` out of `n` items, or None when no sampling is needed."""
    if n <= cap:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


# --- warm-up --------------------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache_enabled = [False]


def _cache_compiles() -> None:
    """Enable numba's on-disk cache (NUMBA_CACHE_DIR) for every jitted UMAP and pynndescent function.

    Compiled code is keyed by source file and modification time, so an upgraded package recompiles.
    Idempotent; any failure only costs speed, never the projection.
    """
    with _cache_lock:
        if _cache_enabled[0]:
            return
        _cache_enabled[0] = True
        try:
            import importlib
            import sys

            from numba.core.caching import NullCache
            from numba.core.registry import CPUDispatcher

            for name in (
                "umap.umap_",
                "umap.layouts",
                "umap.spectral",
                "umap.distances",
                "umap.sparse",
                "pynndescent.pynndescent_",
            ):
                importlib.import_module(name)
            modules = [m for n, m in list(sys.modules.items()) if n.split(".")[0] in ("umap", "pynndescent") and m]
            for module in modules:
                for value in list(vars(module).values()):
                    if isinstance(value, CPUDispatcher) and isinstance(value._cache, NullCache):
                        value.enable_caching()
        except Exception as err:  # a numba internals change: run uncached
            warnings.warn(f"numba disk cache not enabled for UMAP: {err}", stacklevel=2)


# numba compiles each UMAP/pynndescent function (or loads it from its disk cache) on its first call in a process.
# Two threads doing that at once (the warm-up thread and a page's projection or an atlas layout) once failed
# inside numba ("no compiled object yet for _transpose_csr"), so the first run of each code path holds one
# process-wide lock; a path that has run once (its functions compiled for its types) runs in parallel.
_first_lock = threading.RLock()
_first_done: set[Hashable] = set()


@contextmanager
def first_use(path: Hashable) -> Iterator[None]:
    """Run the block alone among first uses while `path` (a code path: ("umap", metric, large) for a UMAP fit,
    ("nndescent", metric) for an NN-descent index and its queries) has not yet completed once in this process."""
    if path in _first_done:
        yield
        return
    with _first_lock:
        yield
        _first_done.add(path)


LARGE_N = 4096  # from here on UMAP builds its kNN graph with pynndescent: a second, slower compile
IDLE_BEFORE_LARGE_S = 20.0  # the large-N compile waits for a quiet moment so it never slows a user's projection
_small_ready, _all_ready, _large_wanted = threading.Event(), threading.Event(), threading.Event()
_warm_lock = threading.Lock()
_warm_started = False
_last_use = [0.0]


def _mark_use() -> None:
    _last_use[0] = time.monotonic()


def warm_up(idle_before_large: float = IDLE_BEFORE_LARGE_S) -> None:
    """Compile UMAP's numba code for both paths: small N first (what most users need), then N >= 4096
    once no projection has run for `idle_before_large` seconds (or at once if a user is waiting for it)."""
    global _warm_started
    with _warm_lock:
        if _warm_started:
            _all_ready.wait()
            return
        _warm_started = True
    rng = np.random.default_rng(0)
    try:
        project(rng.normal(size=(64, 16)).astype(np.float32), "umap", 2, n_neighbors=10)
        _small_ready.set()
        _last_use[0] = max(_last_use[0], time.monotonic())  # the idle wait counts from now: users come first
        while not _large_wanted.is_set() and time.monotonic() - _last_use[0] < idle_before_large:
            _large_wanted.wait(1.0)
        project(rng.normal(size=(LARGE_N + 100, 16)).astype(np.float32), "umap", 2, n_neighbors=10)
    finally:
        _small_ready.set()
        _all_ready.set()


def start_warm_up() -> None:
    """Start `warm_up()` in a daemon thread, once per process."""
    with _warm_lock:
        started = _warm_started
    if not started:
        threading.Thread(target=warm_up, name="umap-warm-up", daemon=True).start()


def ready_event(n_points: int) -> threading.Event:
    """The event to wait on before projecting `n_points` with UMAP (set once that code path is compiled)."""
    if n_points >= LARGE_N:
        _large_wanted.set()
        return _all_ready
    return _small_ready
