"""Representation similarity between two stacks of per-layer features (numpy only).

Inputs are feature stacks `[La, N, Da]` and `[Lb, N, Db]` (row n of every layer is the same input); outputs are
`[La, Lb]` float64 matrices.

- linear CKA (Kornblith et al. 2019): HSIC_0(K, L) / sqrt(HSIC_0(K, K) HSIC_0(L, L)) with K = XXᵀ, L = YYᵀ of the
  column-centred features, i.e. ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F);
- debiased CKA (Nguyen et al. 2021, with Song et al. 2012's unbiased HSIC): the same ratio of
  HSIC_1(K, L) = [tr(K̃L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n-1)(n-2)) - 2/(n-2) · 1ᵀK̃L̃1] / (n(n-3)), K̃ = K with a zero
  diagonal (uncentred; the estimator centres itself). Near 0 for unrelated features, unlike linear CKA;
- mutual k-NN (Huh et al. 2024): mean over inputs of |kNN_a(i) ∩ kNN_b(i)| / k, cosine, self excluded.

Gram matrices cost N² per layer, so up to `GRAM_LIMIT` inputs every pair reads two precomputed Grams; above it,
each pair works in feature space (N·Da·Db), with the same formulas.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

METRICS = ("cka", "cka_debiased", "mknn")
GRAM_LIMIT = 2500  # N above which a Gram matrix per layer ([N, N] float64, 50 MB at 2500) costs too much memory

Progress = Callable[[int, int], None]


def _centre(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x - x.mean(axis=0, keepdims=True)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (a constant layer: no structure to share)."""
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


# --- linear CKA -------------------------------------------------------------------------------------------


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA of two feature matrices `[N, Da]`, `[N, Db]`: a float in [0, 1] (1: same up to rotation
    and isotropic scale)."""
    return float(cka_matrix(X[None], Y[None])[0, 0])


def cka_matrix(A: np.ndarray, B: np.ndarray, progress: Progress | None = None) -> np.ndarray:
    """Linear CKA of every layer pair: `[La, N, Da]` x `[Lb, N, Db]` -> float64 `[La, Lb]`."""
    n = A.shape[1]
    if n <= GRAM_LIMIT:
        Ka = _grams(A, centre=True)  # [La, N*N]
        Kb = Ka if B is A else _grams(B, centre=True)
        cross = Ka @ Kb.T  # <K_i, L_j>_F = HSIC_0 numerator, the (n-1)² factors cancel
        na, nb = np.sqrt(np.einsum("ij,ij->i", Ka, Ka)), np.sqrt(np.einsum("ij,ij->i", Kb, Kb))
        return np.clip(_safe_ratio(cross, np.outer(na, nb)), 0.0, 1.0)
    Ac = [_centre(x) for x in A]
    Bc = Ac if B is A else [_centre(y) for y in B]
    na = np.array([np.linalg.norm(x.T @ x) for x in Ac])
    nb = na if B is A else np.array([np.linalg.norm(y.T @ y) for y in Bc])
    out = np.zeros((len(Ac), len(Bc)))
    for i, x in enumerate(Ac):
        for j, y in enumerate(Bc):
            out[i, j] = np.linalg.norm(y.T @ x) ** 2
        if progress:
            progress(i + 1, len(Ac))
    return np.clip(_safe_ratio(out, np.outer(na, nb)), 0.0, 1.0)


def _grams(stack: np.ndarray, centre: bool) -> np.ndarray:
    """Flattened Gram matrices `[L, N*N]` float64 (of centred features when `centre`)."""
    n = stack.shape[1]
    out = np.empty((stack.shape[0], n * n))
    for i, x in enumerate(stack):
        x = _centre(x) if centre else np.asarray(x, np.float64)
        out[i] = (x @ x.T).ravel()
    return out


# --- debiased CKA -----------------------------------------------------------------------------------------


def debiased_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Debiased linear CKA of `[N, Da]`, `[N, Db]` (Nguyen et al. 2021). Unbiased HSIC can be slightly negative
    for unrelated features; so can this value (it is not clipped)."""
    return float(debiased_cka_matrix(X[None], Y[None])[0, 0])


class _Unbiased:
    """Per-layer pieces of HSIC_1: K̃ (zero diagonal, flattened, or None above GRAM_LIMIT), its row sums `[N]`,
    total, and the features (for the feature-space path)."""

    def __init__(self, x: np.ndarray, gram: bool):
        x = np.asarray(x, np.float64)
        sq = np.einsum("ij,ij->i", x, x)  # diag(K)
        self.x = x
        self.rows = x @ x.sum(axis=0) - sq  # K̃1
        self.total = float(self.rows.sum())
        self.sq = sq
        self.flat = None
        if gram:
            k = x @ x.T
            np.fill_diagonal(k, 0.0)
            self.flat = k.ravel()

    def trace(self, other: _Unbiased) -> float:
        """tr(K̃L̃) = <K̃, L̃>_F (both symmetric)."""
        if self.flat is not None and other.flat is not None:
            return float(self.flat @ other.flat)
        return float(np.linalg.norm(other.x.T @ self.x) ** 2 - self.sq @ other.sq)


def _hsic1(p: _Unbiased, q: _Unbiased, n: int) -> float:
    return (p.trace(q) + p.total * q.total / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(p.rows @ q.rows)) / (
        n * (n - 3)
    )


def debiased_cka_matrix(A: np.ndarray, B: np.ndarray, progress: Progress | None = None) -> np.ndarray:
    """Debiased CKA of every layer pair: `[La, N, Da]` x `[Lb, N, Db]` -> float64 `[La, Lb]` (needs N >= 4)."""
    n = A.shape[1]
    gram = n <= GRAM_LIMIT
    pa = [_Unbiased(x, gram) for x in A]
    pb = pa if B is A else [_Unbiased(y, gram) for y in B]
    self_a = np.array([_hsic1(p, p, n) for p in pa])
    self_b = self_a if B is A else np.array([_hsic1(q, q, n) for q in pb])
    out = np.zeros((len(pa), len(pb)))
    for i, p in enumerate(pa):
        for j, q in enumerate(pb):
            out[i, j] = _hsic1(p, q, n)
        if progress:
            progress(i + 1, len(pa))
    # HSIC_1(K, K) is positive for any non-constant layer; a constant one shares nothing (0)
    den = np.sqrt(np.clip(np.outer(self_a, self_b), 0.0, None))
    return _safe_ratio(out, den)


# --- mutual k-NN ------------------------------------------------------------------------------------------


def knn_indices(x: np.ndarray, k: int) -> np.ndarray:
    """Indices `[N, k]` of each row's k nearest other rows by cosine, nearest first (ties: lower index first).

    Exact, by one `[N, N]` product: for the few thousand inputs of a layer map; `neighbourhood.knn` blocks it
    for large N."""
    unit = _unit(x)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    # order the k by score, then index, so equal scores (duplicate inputs) break the same way every time
    scores = np.take_along_axis(sim, part, axis=1)
    order = np.lexsort((part, -scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def overlap(na: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """Per row, |set(na[i]) ∩ set(nb[i])| / k for neighbour lists `[N, k]` (rows hold distinct ids): `[N]`."""
    k = na.shape[1]
    shared = np.zeros(na.shape[0], np.int64)
    for j in range(k):  # k² comparisons per row, k columns at a time: no [N, k, k] temporary
        shared += (nb == na[:, j : j + 1]).any(axis=1)
    return shared / k


def mutual_knn(X: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    """Mutual k-NN alignment of `[N, Da]`, `[N, Db]`: the mean share of shared nearest neighbours, in [0, 1]."""
    return float(overlap(knn_indices(X, k), knn_indices(Y, k)).mean())


def mknn_matrix(A: np.ndarray, B: np.ndarray, k: int = 10, progress: Progress | None = None) -> np.ndarray:
    """Mutual k-NN of every layer pair: `[La, N, Da]` x `[Lb, N, Db]` -> float64 `[La, Lb]`."""
    na = [knn_indices(x, k) for x in A]
    nb = na if B is A else [knn_indices(y, k) for y in B]
    out = np.zeros((len(na), len(nb)))
    for i, p in enumerate(na):
        out[i] = [overlap(p, q).mean() for q in nb]
        if progress:
            progress(i + 1, len(na))
    return out


def matrix(A: np.ndarray, B: np.ndarray, metric: str, k: int = 10, progress: Progress | None = None) -> np.ndarray:
    """`metric` ("cka", "cka_debiased", "mknn") for every layer pair: float64 `[La, Lb]`; B may be A itself."""
    if metric == "cka":
        return cka_matrix(A, B, progress)
    if metric == "cka_debiased":
        return debiased_cka_matrix(A, B, progress)
    return mknn_matrix(A, B, k, progress)
