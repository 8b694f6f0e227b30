"""k-means clusters of embeddings, and index bookkeeping between a corpus and its projected sample.

A projection may show only a random sample of the corpus (`projection.sample_indices`), while nearest-neighbour
search runs on the whole corpus: `to_sample` maps corpus indices to positions in the sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import numpy as np

V = TypeVar("V")


def kmeans(X: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Cluster ids `[N]` (ints in 0..k-1) from k-means on `X` `[N, D]`; k is capped at N."""
    from sklearn.cluster import KMeans  # sklearn is slow to import; only this page section needs it

    return KMeans(n_clusters=min(k, len(X)), n_init=4, random_state=seed).fit_predict(X)


def cluster_names(ids: np.ndarray) -> list[str]:
    """Legend names `[N]` for cluster ids `[N]`: "cluster 0", "cluster 1", …"""
    return [f"cluster {c}" for c in ids]


def to_sample(items: Mapping[int, V], sample: np.ndarray | None) -> dict[int, V]:
    """Re-key `{corpus index: value}` by position in `sample` (corpus indices `[n]`), dropping the indices
    that are not in the sample. `sample` None means the whole corpus is shown: keys stay as they are."""
    if sample is None:
        return dict(items)
    position = {int(index): p for p, index in enumerate(sample)}
    return {position[int(i)]: value for i, value in items.items() if int(i) in position}


def centroid(coords: np.ndarray, positions) -> np.ndarray | None:
    """Mean of the rows `positions` of `coords` `[n, dim]`: `[dim]`, or None when there are no positions."""
    positions = list(positions)
    return coords[positions].mean(axis=0) if positions else None
