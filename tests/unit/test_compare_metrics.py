"""es.compare's numbers against independent computations written here (numpy only, no models).

CKA from its definition with the centring matrix H, debiased HSIC term by term as Nguyen et al. (2021, eq. in
section 3.1, after Song et al. 2012), mutual k-NN with a full argsort; exact k-NN against brute force; Procrustes
against a known transform and scipy; retrieval ranks against argsort.
"""

import numpy as np
import pytest
from scipy.spatial import procrustes as scipy_procrustes
from scipy.stats import ortho_group

import encoderscope as es
from encoderscope.compare import metrics

RNG = np.random.default_rng(0)


def hsic0(K, L):
    n = len(K)
    H = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2


def cka_reference(X, Y):
    K, L = X @ X.T, Y @ Y.T
    return hsic0(K, L) / np.sqrt(hsic0(K, K) * hsic0(L, L))


def hsic1(K, L):
    n = len(K)
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    term1 = np.trace(Kt @ Lt)
    term2 = (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
    term3 = 2 / (n - 2) * (one @ Kt @ Lt @ one)
    return (term1 + term2 - term3) / (n * (n - 3))


def debiased_reference(X, Y):
    K, L = X @ X.T, Y @ Y.T
    return hsic1(K, L) / np.sqrt(hsic1(K, K) * hsic1(L, L))


def knn_reference(X, k):
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


def mknn_reference(X, Y, k):
    a, b = knn_reference(X, k), knn_reference(Y, k)
    return np.mean([len(set(a[i]) & set(b[i])) / k for i in range(len(X))])


def stacks(n=40, da=12, db=20):
    base = RNG.normal(size=(n, 6))
    A = np.stack([base @ RNG.normal(size=(6, da)) + s * RNG.normal(size=(n, da)) for s in (0.1, 1.0, 3.0)])
    B = np.stack([base @ RNG.normal(size=(6, db)) + s * RNG.normal(size=(n, db)) for s in (0.2, 2.0)])
    return A, B


@pytest.mark.parametrize("metric", ["cka", "cka_debiased", "mknn"])
@pytest.mark.parametrize("gram_limit", [10_000, 5])  # the Gram path and the feature-space path
def test_matrix_equals_independent_computation(metric, gram_limit, monkeypatch):
    monkeypatch.setattr(metrics, "GRAM_LIMIT", gram_limit)
    A, B = stacks()
    ref = {"cka": cka_reference, "cka_debiased": debiased_reference, "mknn": lambda x, y: mknn_reference(x, y, 5)}
    got = es.compare.similarity_matrix(A, B, metric, k=5)
    assert got.matrix.shape == (3, 2) and got.matrix.dtype == np.float64 and got.n == 40 and got.metric == metric
    expected = np.array([[ref[metric](x, y) for y in B] for x in A])
    np.testing.assert_allclose(got.matrix, expected, atol=1e-10)


def test_cka_invariant_to_rotation_and_isotropic_scale_not_to_a_linear_map():
    X = RNG.normal(size=(60, 16)) @ np.diag(np.linspace(0.2, 3, 16))
    R = ortho_group.rvs(16, random_state=1)
    assert metrics.linear_cka(X, 7.5 * X @ R + 3.0) == pytest.approx(1.0, abs=1e-12)  # shift: centring removes it
    assert metrics.debiased_cka(X, 0.1 * X @ R) == pytest.approx(1.0, abs=1e-12)
    M = RNG.normal(size=(16, 16)) @ np.diag(np.geomspace(0.05, 20, 16))  # an arbitrary (anisotropic) linear map
    assert metrics.linear_cka(X, X @ M) < 0.9
    assert metrics.linear_cka(X, X * np.geomspace(0.05, 20, 16)) < 0.9  # anisotropic scaling changes it too


def test_debiased_cka_is_near_zero_for_unrelated_features_where_linear_cka_is_not():
    X, Y = RNG.normal(size=(50, 200)), RNG.normal(size=(50, 200))
    assert metrics.linear_cka(X, Y) > 0.6  # the known bias of linear CKA for few samples in high dimension
    assert abs(metrics.debiased_cka(X, Y)) < 0.05


def test_self_map_has_a_unit_diagonal_and_is_symmetric():
    A, _ = stacks()
    for metric in ("cka", "cka_debiased", "mknn"):
        m = es.compare.similarity_matrix(A, None, metric, k=5).matrix
        np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-12)
        np.testing.assert_allclose(m, m.T, atol=1e-12)


@pytest.mark.parametrize("n, block", [(50, 7), (64, 64), (33, 100)])
def test_blocked_knn_is_exact(n, block):
    X = RNG.normal(size=(n, 9)).astype(np.float32)
    idx, cos = es.compare.knn(X, 4, block=block)
    np.testing.assert_array_equal(idx, knn_reference(X.astype(np.float64), 4))
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    np.testing.assert_allclose(cos, np.take_along_axis(U @ U.T, idx, axis=1), atol=1e-5)


def test_neighbours_overlap_of_a_rotated_copy_is_one_and_of_noise_is_low():
    X = RNG.normal(size=(300, 24))
    nb = es.compare.neighbours(X, X @ ortho_group.rvs(24, random_state=2) * 4.0, k=10)
    np.testing.assert_array_equal(nb.overlap, 1.0)
    assert nb.mutual_knn == 1.0 and nb.exact and nb.recall is None
    Y = RNG.normal(size=(300, 48))
    nb = es.compare.neighbours(X, Y, k=10, ids=np.arange(1000, 1300))
    pairs = zip(knn_reference(X, 10), knn_reference(Y, 10), strict=True)
    expected = np.array([len(set(a) & set(b)) / 10 for a, b in pairs])
    np.testing.assert_array_equal(nb.overlap, expected)
    assert nb.mutual_knn == pytest.approx(expected.mean()) and nb.mutual_knn < 0.15
    assert nb.neighbours_a.shape == nb.neighbours_b.shape == (300, 10)
    assert list(nb.movers[:3]) == list(1000 + np.argsort(expected, kind="stable")[:3])


def test_align_recovers_a_similarity_transform_with_reflection():
    Ya = RNG.normal(size=(80, 2))
    flip = np.array([[0.0, 1.0], [1.0, 0.0]])  # a reflection
    c, s = np.cos(0.7), np.sin(0.7)
    Yb = 3.0 * Ya @ np.array([[c, -s], [s, c]]) @ flip + np.array([10.0, -4.0])
    al = es.compare.align(Ya, Yb)
    np.testing.assert_allclose(al.aligned, Ya, atol=1e-10)
    assert al.disparity == pytest.approx(0.0, abs=1e-12) and al.scale == pytest.approx(1 / 3)
    assert np.linalg.det(al.rotation) == pytest.approx(-1.0)
    Yc = Ya + RNG.normal(scale=0.5, size=Ya.shape)
    assert es.compare.align(Ya, Yc).disparity == pytest.approx(scipy_procrustes(Ya, Yc)[2], abs=1e-10)


def test_retrieval_ranks_and_overlap():
    T = RNG.normal(size=(30, 8))
    Q = RNG.normal(size=(3, 8))
    Tb, Qb = -T, Q  # b reverses every ranking
    r = es.compare.retrieval_from_vectors(Q, T, Qb, Tb, k=5)
    order = np.argsort(-(Q / np.linalg.norm(Q, axis=1)[:, None]) @ (T / np.linalg.norm(T, axis=1)[:, None]).T, axis=1)
    np.testing.assert_array_equal(r.top_a, order[:, :5])
    np.testing.assert_array_equal(r.top_b, order[:, ::-1][:, :5])
    np.testing.assert_array_equal(r.rank_in_b, np.tile(np.arange(30, 25, -1), (3, 1)))  # a's best is b's worst
    np.testing.assert_array_equal(r.overlap, 0.0)
    np.testing.assert_array_equal(r.rank_change[0], [29, 27, 25, 23, 21])
    same = es.compare.retrieval_from_vectors(Q, T, Q, 2 * T, k=5)
    np.testing.assert_array_equal(same.overlap, 1.0)
    table = r.table(0)
    assert len(table) == 10 and list(table.rank_a[:5]) == [1, 2, 3, 4, 5] and table.change.iloc[0] == 29


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: es.compare.similarity_matrix(np.ones((2, 3, 4)), None, "cka"), "at least 4"),
        (lambda: es.compare.similarity_matrix(RNG.normal(size=(2, 10, 4)), None, "mknn", k=10), "more than 10"),
        (lambda: es.compare.similarity_matrix(RNG.normal(size=(2, 10, 4)), RNG.normal(size=(2, 9, 4))), "different"),
        (lambda: es.compare.similarity_matrix(np.full((2, 10, 4), np.nan)), "NaN"),
        (lambda: es.compare.similarity_matrix(RNG.normal(size=(2, 10, 4)), None, "pearson"), "Unknown"),
        (lambda: es.compare.neighbours(RNG.normal(size=(20, 4)), RNG.normal(size=(21, 4))), "different"),
        (lambda: es.compare.neighbours(RNG.normal(size=(5, 4)), RNG.normal(size=(5, 4)), k=5), "more than k"),
        (lambda: es.compare.neighbours(np.array([[1.0, np.inf]] * 20), RNG.normal(size=(20, 4))), "NaN"),
        (lambda: es.compare.align(RNG.normal(size=(5, 2)), RNG.normal(size=(6, 2))), "different"),
        (lambda: es.compare.retrieval_from_vectors(*(RNG.normal(size=(s, 4)) for s in (2, 9, 2, 9)), k=10), "k must"),
    ],
)
def test_bad_input_gets_a_clear_message(call, message):
    with pytest.raises(es.UserFacingError, match=message):
        call()


def test_duplicate_vectors_get_a_notice():
    X = RNG.normal(size=(40, 8))
    X[5] = X[3]
    nb = es.compare.neighbours(X, X * 2, k=3)
    assert nb.notes and "tie in k-NN" in nb.notes[0]
    assert not es.compare.neighbours(RNG.normal(size=(40, 8)), RNG.normal(size=(40, 8)), k=3).notes


def test_constant_layers_are_named_with_the_right_verb():
    # Bug: "Layer 0 of model a give every input the same vector": the plural verb for one layer.
    F = RNG.normal(size=(3, 12, 4))
    F[0] = F[0, :1]  # layer 0: one vector for every input
    one = es.compare.similarity_matrix(F, metric="cka").notes
    assert len(one) == 1 and one[0].startswith("Layer 0 of model a gives every input the same vector (a [CLS]")
    F[2] = 5.0
    two = es.compare.similarity_matrix(F, RNG.normal(size=(2, 12, 4)), metric="cka").notes
    assert len(two) == 1 and two[0].startswith("Layers 0, 2 of model a give every input the same vector")


def test_compare_is_lazy_and_its_numpy_parts_need_no_torch():
    import subprocess
    import sys

    probe = (
        "import sys, numpy as np, encoderscope as es; assert 'encoderscope.compare' not in sys.modules;"
        "es.compare.align(np.eye(3)[:, :2], np.eye(3)[:, :2]); es.compare.similarity_matrix(np.eye(5)[None]);"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0

