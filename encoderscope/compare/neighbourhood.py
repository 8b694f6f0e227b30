"""`neighbours(Xa, Xb, k)`: how much each point's nearest neighbours change between two embeddings of the same set.

Up to `EXACT_LIMIT` points (2·10^5) k-NN is exact, by blocked matrix products on unit vectors (cosine): the
[N, N] similarity matrix is never held, only one `[block, block]` tile at a time and a running top-k per row
`[N, k]`. The matrix is symmetric, so each tile above the diagonal serves both its rows and its columns: half the
products of a plain row-block loop. Memory: the unit vectors (N·D·4 bytes), the running top-k and one tile.
Above it, NN-descent (pynndescent, cosine) finds approximate neighbours; their recall against the exact
neighbours of `RECALL_SAMPLE` random points is measured and reported (`Neighbours.recall`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .checks import CompareError, check_same_n, check_vectors, duplicate_rows
from .metrics import overlap as _overlap

BLOCK = 4096  # rows per tile: a [4096, 4096] float32 tile is 64 MB, large enough for efficient products
EXACT_LIMIT = 200_000  # above this many points the search is approximate (NN-descent), its recall measured
RECALL_SAMPLE = 500  # rows whose exact neighbours measure an approximate search's recall

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Neighbours:
    """Neighbour overlap of N points between embedding a and embedding b.

    overlap:      float64 `[N]`, |kNN_a(i) ∩ kNN_b(i)| / k (cosine, self excluded)
    mutual_knn:   float, the mean of `overlap` (Huh et al. 2024's mutual k-NN alignment)
    neighbours_a: int64 `[N, k]`, row indices of each point's k nearest under a, nearest first
    neighbours_b: int64 `[N, k]`, the same under b
    movers:       `[N]` the ids (or row indices when no ids were given) ordered by overlap, lowest first
                  (ties by position)
    k:            neighbours per point; exact: whether the k-NN is exact (N <= exact_limit); recall: the measured
                  recall of an approximate search (the lower of a's and b's), None when exact; notes: notices
                  (duplicate vectors tie; an approximate search)
    """

    overlap: np.ndarray
    mutual_knn: float
    neighbours_a: np.ndarray
    neighbours_b: np.ndarray
    movers: np.ndarray
    k: int
    exact: bool = True
    recall: float | None = None
    notes: tuple[str, ...] = ()


def _unit_block(x: np.ndarray):
    import torch

    t = torch.from_numpy(np.array(x, dtype=np.float32))  # a copy: memory-mapped blocks are read-only
    return t / t.norm(dim=1, keepdim=True).clamp(min=1e-30)


def _merge(best_v, best_i, rows: slice, v, i, k: int) -> None:
    import torch

    vals = torch.cat([best_v[rows], v], dim=1)
    idx = torch.cat([best_i[rows], i], dim=1)
    top_v, pos = vals.topk(k, dim=1)
    best_v[rows] = top_v
    best_i[rows] = idx.gather(1, pos)


def knn(X: np.ndarray, k: int = 10, block: int = BLOCK, progress: Progress | None = None):
    """Exact k nearest neighbours of every row of `X` `[N, D]` by cosine, self excluded.

    -> (indices int64 `[N, k]`, cosines float32 `[N, k]`), nearest first. `X` may be a memory-mapped array:
    rows are read and normalised one block at a time. `progress(done, total)` counts tiles.
    """
    import torch

    n = len(X)
    k = int(k)
    if not 1 <= k < n:
        raise CompareError(f"k must be between 1 and N - 1 = {n - 1} (got {k}).")
    best_v = torch.full((n, k), -float("inf"))
    best_i = torch.full((n, k), -1, dtype=torch.long)
    starts = list(range(0, n, block))
    units = [_unit_block(X[s : s + block]) for s in starts] if n <= 4 * block else None
    total = len(starts) * (len(starts) + 1) // 2
    done = 0
    with torch.inference_mode():
        for bi, s in enumerate(starts):
            xi = units[bi] if units else _unit_block(X[s : s + block])
            rows_i = slice(s, s + len(xi))
            for bj in range(bi, len(starts)):
                t = starts[bj]
                xj = xi if bj == bi else units[bj] if units else _unit_block(X[t : t + block])
                tile = xi @ xj.T  # [bi, bj] cosines
                if bj == bi:
                    tile.fill_diagonal_(-float("inf"))
                v, i = tile.topk(min(k, tile.shape[1]), dim=1)
                _merge(best_v, best_i, rows_i, v, i + t, k)
                if bj != bi:  # the same tile, read by columns, serves block j's rows (top-k of a transposed
                    # view is 3x slower than of a contiguous copy)
                    v, i = tile.T.contiguous().topk(min(k, tile.shape[0]), dim=1)
                    _merge(best_v, best_i, slice(t, t + len(xj)), v, i + s, k)
                done += 1
                if progress:
                    progress(done, total)
    return best_i.numpy(), best_v.numpy()


def approximate_knn(X: np.ndarray, k: int = 10, seed: int = 0, sample: int = RECALL_SAMPLE):
    """Approximate k-NN of the rows of `X` `[N, D]` by NN-descent (cosine, self excluded): (indices int64
    `[N, k]`, recall) where recall is the share of the exact k nearest neighbours found, over `sample` random
    rows (their exact neighbours from blocked products against all N)."""
    from pynndescent import NNDescent

    from ..projection import first_use

    X = np.asarray(X, np.float32)
    with first_use(("nndescent", "cosine")):  # numba's first compile, never beside another thread's
        index = NNDescent(X, metric="cosine", n_neighbors=k + 1, random_state=seed, low_memory=True)
    found = index.neighbor_graph[0].astype(np.int64)  # [N, k + 1], usually self first
    not_self = found != np.arange(len(X))[:, None]
    found = np.take_along_axis(found, np.argsort(~not_self, axis=1, kind="stable"), axis=1)[:, :k]
    rows = np.random.default_rng(seed).choice(len(X), size=min(sample, len(X)), replace=False)
    unit = _unit_block(X[rows])
    best = np.full((len(rows), k), -np.inf, np.float32), np.zeros((len(rows), k), np.int64)
    for start in range(0, len(X), BLOCK * 8):
        sims = (unit @ _unit_block(X[start : start + BLOCK * 8]).T).numpy()
        sims[rows[:, None] - start == np.arange(sims.shape[1])[None, :]] = -np.inf  # self excluded
        vals = np.concatenate([best[0], sims], axis=1)
        idx = np.concatenate([best[1], np.arange(start, start + sims.shape[1])[None].repeat(len(rows), 0)], axis=1)
        top = np.argpartition(-vals, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(vals, top, axis=1), np.take_along_axis(idx, top, axis=1)
    return found, float(_overlap(found[rows], best[1]).mean())


def neighbours(
    Xa: np.ndarray,
    Xb: np.ndarray,
    k: int = 10,
    ids=None,
    progress: Progress | None = None,
    exact_limit: int = EXACT_LIMIT,
    seed: int = 0,
) -> Neighbours:
    """For each of N points, the share of its k nearest neighbours under a (`Xa` `[N, Da]`) that are also among
    its k nearest under b (`Xb` `[N, Db]`): cosine, self excluded. Da and Db may differ (384 vs 768). Exact for
    N <= `exact_limit`; above it approximate (`approximate_knn`), with `.exact` False and `.recall` measured.

    ids: optional `[N]` ids for `.movers` (default: row indices). progress(done, total) counts tiles of both
    exact searches. Raises CompareError for different N, NaN/inf vectors, k < 1 or N <= k.
    """
    Xa = check_vectors(Xa, "embedding a")
    Xb = check_vectors(Xb, "embedding b")
    check_same_n(len(Xa), len(Xb), "points")
    n, k = len(Xa), int(k)
    if k < 1 or n <= k:
        raise CompareError(
            f"Neighbour overlap with k = {k} needs k >= 1 and more than k points (itself excluded); there are {n}."
        )
    ids = np.arange(n) if ids is None else np.asarray(ids)
    check_same_n(n, len(ids), "ids")
    tiles = 2 * (-(-n // BLOCK)) * (-(-n // BLOCK) + 1) // 2

    def step(offset):
        return (lambda d, _t: progress(offset + d, tiles)) if progress else None

    exact, recall = n <= exact_limit, None
    if exact:
        na, _ = knn(Xa, k, progress=step(0))
        nb, _ = knn(Xb, k, progress=step(tiles // 2))
    else:
        (na, recall_a), (nb, recall_b) = approximate_knn(Xa, k, seed), approximate_knn(Xb, k, seed)
        recall = min(recall_a, recall_b)
    share = _overlap(na, nb)
    notes = [x for x in (duplicate_rows(Xa), duplicate_rows(Xb)) if x]
    if not exact:
        notes.append(
            f"{n:,} points is above the exact limit ({exact_limit:,}): neighbours were found approximately "
            f"(NN-descent); they match the exact ones at a recall of {recall:.3f} on {RECALL_SAMPLE} sampled points."
        )
    return Neighbours(
        overlap=share,
        mutual_knn=float(share.mean()),
        neighbours_a=na,
        neighbours_b=nb,
        movers=ids[np.argsort(share, kind="stable")],
        k=k,
        exact=exact,
        recall=recall,
        notes=tuple(dict.fromkeys(notes)),
    )
