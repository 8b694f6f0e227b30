"""k-means on separated blobs, and the corpus ↔ projected-sample index remapping on hand-built cases."""

import numpy as np

from encoderscope import clustering


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.01, size=(10, 3)) for c in (0.0, 5.0, -5.0)])
    ids = clustering.kmeans(X, 3, seed=0)
    assert ids.shape == (30,)
    # Each blob is one cluster, and the three clusters differ.
    assert [len(set(ids[i : i + 10])) for i in (0, 10, 20)] == [1, 1, 1]
    assert len({ids[0], ids[10], ids[20]}) == 3


def test_k_is_capped_at_the_number_of_points():
    ids = clustering.kmeans(np.array([[0.0, 0.0], [1.0, 1.0]]), 5)
    assert sorted(ids) == [0, 1]


def test_cluster_names():
    assert clustering.cluster_names(np.array([2, 0])) == ["cluster 2", "cluster 0"]


def test_to_sample_remaps_and_drops_unsampled():
    # The projection shows corpus rows 7, 2 and 9 (in that order); neighbours were found in the whole corpus.
    sample = np.array([7, 2, 9])
    found = {9: "#1", 4: "#2", 7: "#3"}
    assert clustering.to_sample(found, sample) == {2: "#1", 0: "#3"}  # row 4 is not drawn


def test_to_sample_without_a_sample_keeps_indices():
    assert clustering.to_sample({3: "a", 0: "b"}, None) == {3: "a", 0: "b"}


def test_centroid():
    coords = np.array([[0.0, 0.0], [2.0, 4.0], [4.0, 0.0]])
    np.testing.assert_allclose(clustering.centroid(coords, [1, 2]), [3.0, 2.0])
    assert clustering.centroid(coords, []) is None
