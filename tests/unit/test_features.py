"""The SAE's inference side, exactly: encode/decode against brute force, explain's split of the cosine against an
independent computation, describe's statistics and names, save/load, and the messages for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

import encoderscope as es
from encoderscope.features import SAE, FeaturesError
from tests.unit.features_data import random_sae


def brute_codes(sae: SAE, x: np.ndarray) -> dict[int, float]:
    """{feature: value} of the k largest pre-activations of one vector, clipped at 0 (zeros dropped)."""
    pre = (x.astype(np.float64) - sae.b_dec) @ sae.W_enc + sae.b_enc
    top = np.argsort(-pre)[: sae.k]
    return {int(f): float(pre[f]) for f in top if pre[f] > 0}


def test_encode_is_the_top_k_of_the_preactivations_clipped_at_zero():
    sae = random_sae()
    X = np.random.default_rng(1).normal(size=(50, 16)).astype(np.float32)
    ids, values = sae.encode(X)
    assert ids.shape == values.shape == (50, 5) and ids.dtype == np.int32 and values.dtype == np.float32
    assert (values >= 0).all() and (np.diff(values, axis=1) <= 0).all()  # largest first
    for row in range(50):
        want = brute_codes(sae, X[row])
        got = {int(f): float(v) for f, v in zip(ids[row], values[row], strict=True) if v > 0}
        assert got.keys() == want.keys()
        np.testing.assert_allclose([got[f] for f in want], list(want.values()), rtol=1e-4, atol=1e-5)


def test_decode_adds_the_bias_to_the_weighted_decoder_rows():
    sae = random_sae()
    ids = np.array([[3, 7, 0], [39, 39, 1]])
    zeros = np.zeros((2, 3), np.float32)
    np.testing.assert_array_equal(sae.decode(ids, zeros), np.tile(sae.b_dec, (2, 1)))
    values = np.array([[1.0, 2.0, 0.5], [0.25, 0.25, 3.0]], np.float32)
    want = sae.b_dec + np.stack([sum(v * sae.W_dec[f] for f, v in zip(i, w, strict=True))
                                 for i, w in zip(ids, values, strict=True)])
    np.testing.assert_allclose(sae.decode(ids, values), want, rtol=1e-5, atol=1e-6)


def test_fvu_and_dead_match_their_definitions():
    sae = random_sae()
    X = np.random.default_rng(2).normal(size=(300, 16)).astype(np.float32)
    recon = sae.decode(*sae.encode(X)).astype(np.float64)
    want = ((X - recon) ** 2).sum() / ((X - X.mean(axis=0)) ** 2).sum()
    assert sae.fvu(X) == pytest.approx(want, rel=1e-6)
    fired = {f for row in X for f in brute_codes(sae, row)}
    assert sae.dead(X).tolist() == sorted(set(range(40)) - fired)


def test_explain_splits_the_cosine_exactly_and_each_term_is_its_pair():
    sae = random_sae(D=16, F=40, k=6)
    rng = np.random.default_rng(3)
    for _ in range(5):
        x, y = rng.normal(size=16), rng.normal(size=16)
        ex = es.features.explain(sae, x, y)
        cos = x @ y / (np.linalg.norm(x) * np.linalg.norm(y))
        assert ex.cosine == pytest.approx(cos, abs=1e-12)
        assert ex.terms["value"].sum() + ex.residual == pytest.approx(cos, abs=1e-12)
        a, b = brute_codes(sae, x.astype(np.float32)), brute_codes(sae, y.astype(np.float32))
        assert len(ex.terms) == len(a) * len(b)
        scale = np.linalg.norm(x) * np.linalg.norm(y)
        for row in ex.terms.itertuples():
            want = a[row.feature_a] * b[row.feature_b] * (sae.W_dec[row.feature_a] @ sae.W_dec[row.feature_b]) / scale
            assert row.value == pytest.approx(want, rel=1e-3, abs=1e-6)
        # the residual is everything the active pairs leave out: bias and errors, computed from the vectors
        sa = sum(v * sae.W_dec[f].astype(np.float64) for f, v in a.items())
        sb = sum(v * sae.W_dec[f].astype(np.float64) for f, v in b.items())
        assert ex.residual == pytest.approx((x @ y - sa @ sb) / scale, rel=1e-3, abs=1e-5)
        both = sorted(set(a) & set(b))
        assert sorted(ex.shared["feature"].tolist()) == both
        for row in ex.shared.itertuples():
            assert row.contribution == pytest.approx(a[row.feature] * b[row.feature] / scale, rel=1e-3)
        assert ex.shared_total == pytest.approx(ex.shared["contribution"].sum())


def test_explain_refuses_a_zero_or_wrong_sized_vector():
    sae = random_sae()
    with pytest.raises(FeaturesError, match="all zeros"):
        es.features.explain(sae, np.zeros(16), np.ones(16))
    with pytest.raises(FeaturesError, match=r"\[16\] vector"):
        es.features.explain(sae, np.ones(8), np.ones(16))


def _topic_sae() -> tuple[SAE, np.ndarray, list[str]]:
    """Three features that read one coordinate each (k = 1): rows on axis f are about topic f."""
    eye = np.eye(3, dtype=np.float32)
    sae = SAE(eye.copy(), np.zeros(3, np.float32), eye.copy(), np.zeros(3, np.float32), 1)
    topics = ["football goal match striker", "pasta sauce recipe basil", "violin orchestra concerto"]
    X = np.zeros((12, 3), np.float32)
    texts = []
    for i in range(12):
        X[i, i % 2] = 1 + i  # axes 0 and 1 only: feature 2 never fires
        texts.append(f"the {topics[i % 2]} of the week {i}")
    return sae, X, texts


def test_describe_counts_ranks_and_names_each_feature():
    sae, X, texts = _topic_sae()
    table = es.features.describe(sae, X, texts, top=4)
    assert table["feature"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(table["frequency"], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(table["mean_activation"], [np.mean([1, 3, 5, 7, 9, 11]), np.mean([2, 4, 6, 8, 10, 12]), 0])
    assert table["top_ids"][0].tolist() == [10, 8, 6, 4]  # strongest first
    np.testing.assert_allclose(table["top_values"][1], [12, 10, 8, 6])
    assert set(table["label"][0].split(" · ")) <= {"football", "goal", "match", "striker"}
    assert set(table["label"][1].split(" · ")) <= {"pasta", "sauce", "recipe", "basil"}
    assert table["label"][2] == "(never active)" and len(table["top_ids"][2]) == 0
    assert sae.labels == table["label"].tolist()
    hits = es.features.search_labels(table, "RECIPE")
    assert hits["feature"].tolist() == [1]
    ex = es.features.explain(sae, X[1], X[3])
    assert ex.shared["label"].tolist() == [table["label"][1]]
    with pytest.raises(FeaturesError, match="12 vectors but 2 texts"):
        es.features.describe(sae, X, texts[:2])


def test_save_and_load_round_trip_gives_identical_codes(tmp_path):
    sae = random_sae()
    sae.labels = [f"name {i}" for i in range(40)]
    sae.config = {"seed": 7}
    path = sae.save(tmp_path / "features.safetensors")
    info = json.loads((tmp_path / "features.json").read_text())
    assert info["k"] == 5 and info["config"] == {"seed": 7}
    assert (tmp_path / "features.safetensors").read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    back = es.features.load(path)
    X = np.random.default_rng(4).normal(size=(100, 16)).astype(np.float32)
    for got, want in zip(back.encode(X), sae.encode(X), strict=True):
        np.testing.assert_array_equal(got, want)
    assert back.labels == sae.labels and back.k == 5


def test_load_explains_missing_and_damaged_files(tmp_path):
    with pytest.raises(FeaturesError, match="No features"):
        es.features.load(tmp_path / "none.safetensors")
    path = random_sae().save(tmp_path / "f.safetensors")
    path.write_bytes(b"garbage")
    with pytest.raises(FeaturesError, match="damaged"):
        es.features.load(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_vectors_are_refused_with_the_row(bad):
    X = np.ones((400, 8), np.float32)
    X[123, 2] = bad
    with pytest.raises(FeaturesError, match="NaN or infinite values.*row 123"):
        es.features.train(X, 16, 4)
    with pytest.raises(FeaturesError, match="row 123"):
        random_sae(D=8).encode(X)


def test_too_few_vectors_says_how_many_are_needed():
    X = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    with pytest.raises(FeaturesError, match="64 features need at least 128 vectors.*there are 100.*at most 50"):
        es.features.train(X, 64, 4)


@pytest.mark.parametrize("k", [16, 20, 0])
def test_k_must_be_below_the_number_of_features(k):
    X = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    with pytest.raises(FeaturesError, match="k .* below the number of features"):
        es.features.train(X, 16, k)


def test_features_subpackage_imports_without_torch():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import sys, encoderscope as es\nes.features.SAE\n"
                          "print('torch' in sys.modules, 'encoderscope.features.sae' in sys.modules)"],
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert out == ["False", "True"]


def test_a_label_word_must_be_in_several_top_examples():
    """One example's rare, repeated word (a package name) outweighs a topic word under plain c-TF-IDF; a label
    word must be in several of the feature's top examples."""
    from encoderscope.atlas.layout import ctfidf_terms
    from encoderscope.features.describe import supported_terms

    sport = [f"the striker scored a goal in match {i}" for i in range(9)] + [" ".join(["zyzzyva"] * 12)]
    food = [f"simmer the pasta sauce with basil, step {i}" for i in range(10)]
    texts = sport + food
    top_ids = [np.arange(10), np.arange(10, 20), np.zeros(0, np.int64)]
    plain = ctfidf_terms([" ".join(texts[i] for i in ids) for ids in top_ids], 3)
    assert plain[0][0] == "zyzzyva"  # the failure this guards against
    got = supported_terms(texts, top_ids, 3)
    assert "zyzzyva" not in got[0] and set(got[0]) <= {"striker", "scored", "goal", "match"}
    assert set(got[1]) <= {"simmer", "pasta", "sauce", "basil", "step"} and got[2] == []
    # a feature whose words are each in one example only keeps plain c-TF-IDF's words rather than none
    odd = supported_terms(["alpha beta", "gamma delta", "pasta sauce"] * 2, [np.array([0, 1]), np.array([2, 5])], 2)
    assert odd[0] and set(odd[0]) <= {"alpha", "beta", "gamma", "delta"}
