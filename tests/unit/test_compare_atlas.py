"""`python -m encoderscope atlas compare DIR_A DIR_B`: the stored overlap and aligned map, against brute force."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import procrustes as scipy_procrustes

import encoderscope as es
from encoderscope.__main__ import main

N, K = 300, 8


@pytest.fixture(scope="module")
def atlases(tmp_path_factory):
    """Three atlases built from vectors: a and b of one corpus (b a noisy linear map of a), c of another corpus."""
    root = tmp_path_factory.mktemp("cmp")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, N)
    Va = (3 * rng.normal(size=(5, 16))[labels] + rng.normal(size=(N, 16))).astype(np.float32)
    Vb = (Va @ rng.normal(size=(16, 40)) + 2.0 * rng.normal(size=(N, 40))).astype(np.float32)
    texts = [f"text {i} of group {g}" for i, g in enumerate(labels)]
    pd.DataFrame({"text": texts}).to_csv(root / "m.csv", index=False)
    pd.DataFrame({"text": [t + "!" for t in texts]}).to_csv(root / "other.csv", index=False)
    for name, V, meta in (("a", Va, "m.csv"), ("model-b", Vb, "m.csv"), ("c", Vb, "other.csv")):
        np.save(root / f"{name}.npy", V)
        args = ["atlas", "build", "--vectors", str(root / f"{name}.npy"), "--meta", str(root / meta)]
        assert main(args + ["--out", str(root / name)]) == 0
    return root, Va, Vb


def brute_knn(V, k):
    U = V / np.linalg.norm(V, axis=1, keepdims=True)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1)[:, :k]


def test_compare_stores_overlap_and_the_aligned_map(atlases, capsys):
    root, Va, Vb = atlases
    assert main(["atlas", "compare", str(root / "a"), str(root / "model-b"), "--k", str(K)]) == 0
    assert "mutual k-NN" in capsys.readouterr().out
    assert es.atlas.list_compares(root / "a") == ["model-b"]
    cmp = es.atlas.load_compare(root / "a")
    p, meta = cmp.points, cmp.meta
    assert list(p.columns) == ["id", "overlap", "x_b", "y_b", "neighbours_a", "neighbours_b"]
    na, nb = brute_knn(Va, K), brute_knn(Vb, K)
    expected = np.array([len(set(x) & set(y)) / K for x, y in zip(na, nb, strict=True)])
    np.testing.assert_allclose(p["overlap"], expected, atol=1e-7)
    np.testing.assert_array_equal(np.stack(p["neighbours_a"]), na)
    np.testing.assert_array_equal(np.stack(p["neighbours_b"]), nb)
    assert meta["mutual_knn"] == pytest.approx(expected.mean()) and 0.05 < meta["mutual_knn"] < 0.95
    assert (meta["N"], meta["k"], meta["exact"], meta["format"]) == (N, K, True, 1)
    assert meta["movers"][:5] == list(np.argsort(expected, kind="stable")[:5])
    # b's map, aligned: closest to a's map among similarity transforms (scipy's disparity), in a's frame
    a_map = es.atlas.load(root / "a").points[["x", "y"]].to_numpy(np.float64)
    b_map = es.atlas.load(root / "model-b").points[["x", "y"]].to_numpy(np.float64)
    assert meta["disparity"] == pytest.approx(scipy_procrustes(a_map, b_map)[2], abs=1e-6)
    R = np.array(meta["rotation"])
    mapped = meta["scale"] * (b_map - b_map.mean(0)) @ R + np.array(meta["shift"])
    np.testing.assert_allclose(np.c_[p["x_b"], p["y_b"]], mapped, atol=1e-4)
    assert json.loads((root / "a" / "compare-model-b.json").read_text()) == meta
    assert main(["atlas", "compare", str(root / "a"), str(root / "model-b"), "--k", "3", "--name", "x y",
                 "--out", str(root / "elsewhere")]) == 0
    assert es.atlas.load_compare(root / "elsewhere", "x y").meta["k"] == 3 and es.atlas.list_compares(root / "a") == [
        "model-b"]


def test_different_corpora_and_bad_k_are_refused(atlases, capsys):
    root, _, _ = atlases
    assert main(["atlas", "compare", str(root / "a"), str(root / "c")]) == 2
    assert "different corpora" in capsys.readouterr().err
    assert main(["atlas", "compare", str(root / "a"), str(root / "a")]) == 2
    assert main(["atlas", "compare", str(root / "a"), str(root / "model-b"), "--k", str(N)]) == 2
    assert "more than k" in capsys.readouterr().err
    assert main(["atlas", "compare", str(root / "a"), str(root / "missing")]) == 2
    with pytest.raises(es.UserFacingError, match="No comparison named"):
        es.atlas.load_compare(root / "a", "nothing")
