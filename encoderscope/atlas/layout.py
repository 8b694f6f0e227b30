"""The atlas layout at scale: PCA to 50-D, UMAP on a seeded sample, every other point placed from its sample
neighbours; HDBSCAN clusters of the sample's 2-D layout; c-TF-IDF cluster names; near-duplicate pairs.

Why this shape (measured in bench/atlas.py):
- UMAP on 10^6 points takes far beyond 10 minutes on 2 cores; fitted on a 20,000-point sample it takes
  about a minute, and placing the rest is a k-NN query (pynndescent) plus a weighted mean, which is UMAP's own
  `transform` initialisation without its refinement epochs.
- PCA to 50-D first makes both the UMAP fit and the k-NN queries cheap; on L2-normalised vectors Euclidean
  distance orders neighbours exactly as cosine does.
- HDBSCAN (not k-means): the number of topics is unknown and a corpus has outliers (cluster -1). It runs on
  the sample's 2-D layout (fast: 20,000 points in 2-D) and every other point takes the weighted vote of its
  sample neighbours, so clusters agree with what the map shows. scikit-learn's HDBSCAN on 10^6 raw 384-D
  vectors would not finish in the time budget.

Determinism: the same vectors and seed give a bit-identical layout whatever the core count, the thread
settings or the engine that embedded the vectors. OpenBLAS splits a matrix product differently with 1 or 2
threads, so PCA's floats change in the last bits (measured: up to 1.8e-5 on 6,000 Debian descriptions) and
UMAP turns that into a different map (0 % of positions and 22 % of cluster ids kept). Dask's LocalCluster sets
OMP/MKL/OPENBLAS_NUM_THREADS=1 in the client's own environment, so a BLAS loaded after it (scipy's, which
PCA uses) ran single-threaded: that is why `--engine dask` drew another map from bit-identical vectors. Every
numeric stage here therefore runs under `fixed_threads()`: one BLAS/OpenMP thread and one numba thread.
(Another CPU architecture may still pick other BLAS kernels; the thread count no longer matters.)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

PCA_DIM = 50
SAMPLE = 20_000
NEIGHBOURS = 10  # sample neighbours that place (and label) each other point
CHUNK = 50_000


@dataclass
class Layout:
    """coords `[N, 2]` float32; cluster `[N]` int32 (-1 noise); sample `[S]` sorted ids UMAP was fitted on;
    params: what atlas.json records."""

    coords: np.ndarray
    cluster: np.ndarray
    sample: np.ndarray
    params: dict


@contextmanager
def fixed_threads() -> Iterator[None]:
    """One BLAS/OpenMP thread (threadpoolctl) and one numba thread inside, restored after: float results that
    do not depend on the machine's core count or on thread variables that another library set.

    threadpoolctl only reaches the libraries already loaded, so the ones the layout uses are imported first
    (a BLAS loaded later would start with every core)."""
    import numba
    import pynndescent  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import umap  # noqa: F401
    from threadpoolctl import threadpool_limits

    previous = numba.get_num_threads()
    with threadpool_limits(limits=1):
        numba.set_num_threads(1)
        try:
            yield
        finally:
            numba.set_num_threads(previous)


def _single_threaded(func):
    """Run `func` under fixed_threads() (see the module docstring: why)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with fixed_threads():
            return func(*args, **kwargs)

    return wrapper


@_single_threaded
def reduce(vectors: np.ndarray, dim: int = PCA_DIM, seed: int = 0, fit_rows: int = 100_000) -> np.ndarray:
    """`[N, D]` -> `[N, min(dim, D)]` float32: PCA fitted on a seeded sample of `fit_rows`, applied in chunks."""
    from sklearn.decomposition import PCA

    n, d = vectors.shape
    if d <= dim or n <= 2:
        return np.asarray(vectors, np.float32).copy()
    rows = sample_ids(n, fit_rows, seed)
    pca = PCA(n_components=min(dim, len(rows)), svd_solver="randomized", random_state=seed)
    pca.fit(np.asarray(vectors[rows], np.float32))
    out = np.empty((n, pca.n_components_), np.float32)
    for start in range(0, n, CHUNK):
        out[start : start + CHUNK] = pca.transform(np.asarray(vectors[start : start + CHUNK], np.float32))
    return out


def sample_ids(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted ids of a seeded uniform sample of `size` out of `n` (all ids when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _neighbours(Z: np.ndarray, sample: np.ndarray, k: int, seed: int):
    """(indices into `sample` `[N, k]`, distances `[N, k]`) of each row of `Z`'s nearest sample points."""
    import pynndescent

    from .. import projection

    projection._cache_compiles()  # pynndescent's numba code from the disk cache, as the Embeddings page does
    k = min(k, len(sample))
    idx = np.empty((len(Z), k), np.int64)
    dist = np.empty((len(Z), k), np.float32)
    # the first index and query of a process compile numba code: never beside another thread's first compile
    with warnings.catch_warnings(), projection.first_use(("nndescent", "euclidean")):
        warnings.simplefilter("ignore")  # numba: some pynndescent functions cannot use the disk cache
        index = pynndescent.NNDescent(Z[sample], n_neighbors=max(2, min(15, len(sample) - 1)), metric="euclidean",
                                      random_state=seed, n_jobs=1)
        index.prepare()
        for start in range(0, len(Z), CHUNK):
            idx[start : start + CHUNK], dist[start : start + CHUNK] = index.query(Z[start : start + CHUNK], k=k)
    return idx, dist


@_single_threaded
def layout(vectors: np.ndarray, seed: int = 0, sample_size: int = SAMPLE, n_neighbors: int = 15,
           min_dist: float = 0.1, min_cluster_size: int | None = None, Z: np.ndarray | None = None) -> Layout:
    """2-D coordinates and clusters for L2-normalised `vectors` `[N, D]` (see the module docstring)."""
    from sklearn.cluster import HDBSCAN

    from ..projection import project_with_info

    n = len(vectors)
    Z = reduce(vectors, seed=seed) if Z is None else Z
    sample = sample_ids(n, sample_size, seed)
    proj = project_with_info(Z[sample], "umap", 2, seed, n_neighbors=n_neighbors, min_dist=min_dist,
                             metric="euclidean")
    sample_xy = proj.coords
    mcs = min_cluster_size or max(5, len(sample) // 400)
    if len(sample) > mcs:
        sample_cluster = HDBSCAN(min_cluster_size=mcs, min_samples=min(mcs, 10), copy=True).fit_predict(sample_xy)
    else:
        sample_cluster = np.full(len(sample), -1)
    coords = np.empty((n, 2), np.float32)
    cluster = np.empty(n, np.int32)
    if len(sample) == n:
        coords[:], cluster[:] = sample_xy, sample_cluster
    else:
        idx, dist = _neighbours(Z, sample, NEIGHBOURS, seed)
        weights = 1.0 / (dist.astype(np.float64) + 1e-6)
        weights /= weights.sum(axis=1, keepdims=True)
        coords[:] = np.einsum("nk,nkd->nd", weights, sample_xy[idx])
        cluster[:] = _vote(sample_cluster[idx], weights)
        coords[sample], cluster[sample] = sample_xy, sample_cluster  # the fitted points keep their own place
    params = {
        "method": "PCA, then UMAP fitted on a seeded sample; other points placed at the inverse-distance weighted "
        "mean of their nearest sample points",
        "pca_dim": int(Z.shape[1]), "umap_method_used": proj.method, "sample_size": int(len(sample)),
        "n_neighbors": n_neighbors, "min_dist": min_dist, "metric": "euclidean on PCA of L2-normalised vectors",
        "placement_neighbors": NEIGHBOURS, "clustering": "HDBSCAN on the sample's 2-D layout, others by weighted vote",
        "min_cluster_size": mcs, "notices": proj.notices,
    }
    return Layout(coords, cluster, sample, params)


def _vote(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the label `[N, k]` with the largest total weight `[N, k]`."""
    best = np.full(len(labels), -1, np.int32)
    best_weight = np.full(len(labels), -1.0)
    for value in np.unique(labels):
        total = np.where(labels == value, weights, 0).sum(axis=1)
        better = total > best_weight
        best[better], best_weight[better] = value, total[better]
    return best


def knn_label_accuracy(X: np.ndarray, labels: np.ndarray, k: int = 10, queries: int = 5000, seed: int = 0) -> float:
    """Leave-one-out k-NN majority-vote label accuracy of `X` `[N, d]` on a seeded sample of query rows."""
    from sklearn.neighbors import NearestNeighbors

    rows = sample_ids(len(X), queries, seed)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X[rows])
    neighbour_labels = labels[idx[:, 1:]]
    votes = np.array([np.bincount(row).argmax() for row in neighbour_labels])
    return float((votes == labels[rows]).mean())


def cluster_table(coords: np.ndarray, cluster: np.ndarray, texts: list[str] | None, seed: int = 0,
                  top: int = 3, docs_per_cluster: int = 2000) -> dict[str, np.ndarray | list]:
    """Columns of clusters.parquet: cluster, size, x, y (centroid), name (top c-TF-IDF terms; noise is -1)."""
    ids, sizes = np.unique(cluster, return_counts=True)
    centre = np.stack([np.bincount(cluster - ids.min(), weights=coords[:, j])[ids - ids.min()] / sizes
                       for j in (0, 1)], axis=1)
    names = ctfidf_names(cluster, ids, texts, seed, top, docs_per_cluster) if texts is not None else None
    if names is None:
        names = [f"cluster {c}" for c in ids]
    names = ["noise" if c == -1 else name for c, name in zip(ids, names, strict=True)]
    return {"cluster": ids.astype(np.int32), "size": sizes.astype(np.int64), "x": centre[:, 0].astype(np.float32),
            "y": centre[:, 1].astype(np.float32), "name": names}


def ctfidf_names(cluster: np.ndarray, ids: np.ndarray, texts: list[str], seed: int, top: int,
                 docs_per_cluster: int) -> list[str] | None:
    """Class-based TF-IDF names (see `ctfidf_terms`): each cluster's sampled texts are one document."""
    rng = np.random.default_rng(seed)
    docs = []
    for c in ids:
        members = np.flatnonzero(cluster == c)
        if len(members) > docs_per_cluster:
            members = rng.choice(members, docs_per_cluster, replace=False)
        docs.append(" ".join(texts[i] for i in members))
    terms = ctfidf_terms(docs, top)
    if terms is None:
        return None
    return [" · ".join(best) if best else f"cluster {c}" for best, c in zip(terms, ids, strict=True)]


def ctfidf_terms(docs: list[str], top: int) -> list[list[str]] | None:
    """Class-based TF-IDF (Grootendorst 2022): the `top` distinctive terms of each class document in `docs`
    (best first; fewer, or none, for a document without scoring words). A term's weight is its frequency in the
    class times log(1 + mean words per class / its frequency over all classes). Sparse throughout, so thousands
    of classes (a feature dictionary's) fit in memory. None when no document holds a word that is not a stop word."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        counts = CountVectorizer(stop_words="english", max_features=50_000).fit(docs)
    except ValueError:  # only stop words or no words at all
        return None
    return ctfidf_rank(counts.transform(docs), counts.get_feature_names_out(), top)


def ctfidf_rank(tf, vocab, top: int, keep=None) -> list[list[str]]:
    """The c-TF-IDF ranking of `ctfidf_terms` on a term-count matrix `tf` `[classes, terms]` (sparse) with its
    `vocab` `[terms]`. `keep` (sparse boolean, the shape of tf): only those entries may be chosen (the weights
    still count every entry)."""
    tf = tf.tocsr().astype(np.float64)
    words = np.asarray(tf.sum(axis=1)).ravel()  # [classes]
    idf = np.log(1 + words.mean() / np.maximum(np.asarray(tf.sum(axis=0)).ravel(), 1))  # [terms]
    pick = tf if keep is None else tf.multiply(keep).tocsr()  # the entries that may be chosen, with tf's values
    out = []
    for row in range(tf.shape[0]):
        lo, hi = pick.indptr[row], pick.indptr[row + 1]
        cols = pick.indices[lo:hi]
        score = pick.data[lo:hi] / max(words[row], 1) * idf[cols]
        best = np.lexsort((cols, -score))[:top]  # ties: the alphabetically first term
        out.append([str(vocab[cols[j]]) for j in best if score[j] > 0])
    return out


@_single_threaded
def near_duplicates(vectors: np.ndarray, Z: np.ndarray, threshold: float = 0.95, k: int = 8,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a < b) with cosine >= `threshold`: candidates from a k-NN graph of `Z` `[N, d]` (pynndescent),
    cosines exact from `vectors` `[N, D]` (L2-normalised). Returns (a, b, cosine), sorted by cosine descending."""
    import pynndescent

    from .. import projection

    n = len(vectors)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    k = min(k, n - 1)
    if n <= 4096:  # exact and faster than building an index
        from sklearn.neighbors import NearestNeighbors

        _, idx = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z)
    else:
        projection._cache_compiles()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idx, _ = pynndescent.NNDescent(Z, n_neighbors=k + 1, metric="euclidean", random_state=seed,
                                           n_jobs=1, low_memory=True).neighbor_graph
    a = np.repeat(np.arange(n), idx.shape[1])
    b = idx.reshape(-1).astype(np.int64)
    keep = (a != b) & (b >= 0)
    a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    cos = np.empty(len(pairs), np.float32)
    for start in range(0, len(pairs), CHUNK):
        p = pairs[start : start + CHUNK]
        cos[start : start + CHUNK] = np.einsum("nd,nd->n", np.asarray(vectors[p[:, 0]], np.float32),
                                               np.asarray(vectors[p[:, 1]], np.float32))
    hit = cos >= threshold
    pairs, cos = pairs[hit], cos[hit]
    order = np.argsort(-cos, kind="stable")
    return pairs[order, 0], pairs[order, 1], cos[order]
