"""Projections keep the structure they are meant to show: three well-separated clusters stay separated.

The shape tests in test_projection.py pass for any array of the right size; these fail when a projection
shuffles rows against their labels, returns noise, or collapses the clusters into one.
"""

import numpy as np
import pytest

import encoderscope as es

PER_CLUSTER = 30


@pytest.fixture(scope="module")
def clusters():
    """90 points in 32-D: three Gaussian blobs (std 1) whose centres are about 20 apart. Returns (X, labels)."""
    rng = np.random.default_rng(0)
    centres = 10 * rng.normal(size=(3, 32))
    labels = np.repeat(np.arange(3), PER_CLUSTER)
    X = centres[labels] + rng.normal(size=(3 * PER_CLUSTER, 32))
    return X.astype(np.float32), labels


def knn_accuracy(coords: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour label accuracy (Euclidean, majority vote)."""
    dist = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    np.fill_diagonal(dist, np.inf)
    neighbours = np.argsort(dist, axis=1)[:, :k]
    votes = np.array([np.bincount(labels[row], minlength=3).argmax() for row in neighbours])
    return float((votes == labels).mean())


def test_the_clusters_are_separable_in_the_input(clusters):
    X, labels = clusters
    assert knn_accuracy(X, labels) == 1.0


# Not t-SNE in 3-D: on 90 points sklearn's 3-D t-SNE (2 degrees of freedom) spreads each cluster about as
# wide as the gaps between them (k-NN accuracy ~0.89); it separates them from a few hundred points on.
@pytest.mark.parametrize("method,dim", [("umap", 2), ("umap", 3), ("pca", 2), ("pca", 3), ("tsne", 2)])
def test_clusters_stay_separated(clusters, method, dim):
    X, labels = clusters
    coords = es.project(X, method=method, dim=dim, seed=0)
    assert coords.shape == (len(X), dim) and np.isfinite(coords).all()
    assert knn_accuracy(coords, labels) >= 0.95


@pytest.mark.parametrize("method", ["umap", "pca", "tsne"])
def test_clusters_do_not_collapse(clusters, method):
    """Each cluster's centre lies farther from the other centres than its points lie from it."""
    X, labels = clusters
    coords = es.project(X, method=method, dim=2, seed=0)
    centres = np.array([coords[labels == c].mean(axis=0) for c in range(3)])
    spread = max(np.linalg.norm(coords[labels == c] - centres[c], axis=1).mean() for c in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 2 * spread
