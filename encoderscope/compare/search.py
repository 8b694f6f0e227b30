"""`retrieval(a, b, queries, texts, k)`: the same searches under two models, side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .checks import CompareError, check_same_n, check_texts, check_vectors, duplicate_notice

if TYPE_CHECKING:
    import pandas as pd

    from ..models import LoadedModel


@dataclass(frozen=True)
class Retrieval:
    """Top-k search results of Q queries over N texts under model a and model b. Ranks are 1-based over all N.

    top_a, top_b:       int64 `[Q, k]` text indices, best first (ties: lower index first)
    scores_a, scores_b: float32 `[Q, k]` their cosines under that model
    rank_in_b:          int64 `[Q, k]` the rank under b of each of a's hits (top_a)
    rank_in_a:          int64 `[Q, k]` the rank under a of each of b's hits (top_b)
    overlap:            float64 `[Q]` |top_a ∩ top_b| / k (overlap@k)
    k:                  hits per query; notes: notices (duplicate texts tie)
    """

    top_a: np.ndarray
    top_b: np.ndarray
    scores_a: np.ndarray
    scores_b: np.ndarray
    rank_in_b: np.ndarray
    rank_in_a: np.ndarray
    overlap: np.ndarray
    k: int
    notes: tuple[str, ...] = ()

    @property
    def rank_change(self) -> np.ndarray:
        """int64 `[Q, k]`: for each of a's hits, rank under b minus rank under a (> 0: b ranks it lower)."""
        return self.rank_in_b - np.arange(1, self.k + 1)[None, :]

    def table(self, q: int) -> pd.DataFrame:
        """Query `q`'s hits under either model, one row per text: columns text (index), rank_a, rank_b,
        change (rank_b - rank_a), in_a, in_b (in that model's top-k); ordered by rank under a, then b."""
        import pandas as pd

        rank_a = {int(t): r + 1 for r, t in enumerate(self.top_a[q])}
        rank_a.update({int(t): int(r) for t, r in zip(self.top_b[q], self.rank_in_a[q], strict=True)})
        rank_b = {int(t): r + 1 for r, t in enumerate(self.top_b[q])}
        rank_b.update({int(t): int(r) for t, r in zip(self.top_a[q], self.rank_in_b[q], strict=True)})
        rows = [
            dict(text=t, rank_a=rank_a[t], rank_b=rank_b[t], change=rank_b[t] - rank_a[t],
                 in_a=rank_a[t] <= self.k, in_b=rank_b[t] <= self.k)
            for t in rank_a
        ]
        return pd.DataFrame(rows).sort_values(["rank_a", "rank_b"], kind="stable").reset_index(drop=True)


def _ranking(Q: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order `[Q, N]` best first, ties by index; cosines `[Q, N]`) of unit-normalised rows."""
    def unit(x):
        x = np.asarray(x, np.float32)
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, n, out=np.zeros_like(x), where=n > 0)

    scores = unit(Q) @ unit(T).T
    return np.argsort(-scores, axis=1, kind="stable"), scores


def retrieval_from_vectors(
    Qa: np.ndarray, Ta: np.ndarray, Qb: np.ndarray, Tb: np.ndarray, k: int = 10, notes: tuple[str, ...] = ()
) -> Retrieval:
    """:func:`retrieval` from embeddings: queries `[Q, Da]`, texts `[N, Da]` under a; `[Q, Db]`, `[N, Db]` under b."""
    Qa, Ta = check_vectors(Qa, "the queries under a"), check_vectors(Ta, "the texts under a")
    Qb, Tb = check_vectors(Qb, "the queries under b"), check_vectors(Tb, "the texts under b")
    check_same_n(len(Qa), len(Qb), "queries")
    check_same_n(len(Ta), len(Tb), "texts")
    n, k = len(Ta), int(k)
    if not 1 <= k <= n:
        raise CompareError(f"k must be between 1 and the number of texts ({n}); got {k}.")
    order_a, sa = _ranking(Qa, Ta)
    order_b, sb = _ranking(Qb, Tb)
    rank_a, rank_b = np.empty_like(order_a), np.empty_like(order_b)  # rank (1-based) of every text per query
    rows = np.arange(len(Qa))[:, None]
    rank_a[rows, order_a] = np.arange(1, n + 1)[None, :]
    rank_b[rows, order_b] = np.arange(1, n + 1)[None, :]
    top_a, top_b = order_a[:, :k], order_b[:, :k]
    shared = (rank_b[rows, top_a] <= k).sum(axis=1)
    return Retrieval(
        top_a=top_a.astype(np.int64),
        top_b=top_b.astype(np.int64),
        scores_a=np.take_along_axis(sa, top_a, axis=1),
        scores_b=np.take_along_axis(sb, top_b, axis=1),
        rank_in_b=rank_b[rows, top_a].astype(np.int64),
        rank_in_a=rank_a[rows, top_b].astype(np.int64),
        overlap=shared / k,
        k=k,
        notes=notes,
    )


def retrieval(a: LoadedModel, b: LoadedModel, queries: list[str], texts: list[str], k: int = 10) -> Retrieval:
    """Search `texts` with each of `queries` under model a and under model b (each model's own sentence embedding,
    `es.embed`, cosine) -> Retrieval: per query the top-k under each model with ranks, overlap@k and rank changes.

    Raises CompareError for empty queries or texts, or k outside 1..N."""
    from ..embeddings import embed

    queries, texts = check_texts(queries), check_texts(texts)
    if not 1 <= int(k) <= len(texts):
        raise CompareError(f"k must be between 1 and the number of texts ({len(texts)}); got {k}.")
    note = duplicate_notice(texts)
    return retrieval_from_vectors(
        embed(a, queries), embed(a, texts), embed(b, queries), embed(b, texts), k, (note,) if note else ()
    )
