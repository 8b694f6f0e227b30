"""The Atlas page's Features panel with AppTest: the map coloured by a chosen feature, its card, a clicked point's
features, keyword search, "why is this a hit" in features, and refusals (no features, another atlas's features, an
atlas or an upload without vectors). Expected values are read from
the feature files independently of the page code."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import encoderscope as es
from encoderscope import settings
from encoderscope.features import atlas_files
from tests.app.conftest import app, array, figures, messages, no_exceptions
from tests.app.test_atlas_page import TEXTS, component_data, decoded, map_key, page, set_map_state, table, write_atlas

N = 240


@pytest.fixture(scope="module")
def root(tmp_path_factory, encoder):
    """An atlas folder "faq" (N points: the page tests' texts, real MiniLM vectors plus a little noise) with
    features trained by the library, and a copy "other" whose vectors differ (so its features are refused)."""
    root = tmp_path_factory.mktemp("atlases")
    base = es.embed(encoder, TEXTS)
    rng = np.random.default_rng(0)
    vectors = base[np.arange(N) % len(TEXTS)] + 0.02 * rng.normal(size=(N, base.shape[1]))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    write_atlas(root / "faq", vectors.astype(np.float32), n=N)
    atlas_files.train_atlas(root / "faq", n_features=48, k=4, epochs=5)
    shutil.copytree(root / "faq", root / "other")
    np.save(root / "other" / "vectors.npy", vectors[::-1].astype(np.float32).copy())
    write_atlas(root / "plain", vectors.astype(np.float32), n=N)
    write_atlas(root / "novec", None, n=N)  # points and atlas.json, but no vectors.npy
    return root


@pytest.fixture(autouse=True)
def atlas_dir(root):
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(root)})
    yield root
    settings.reload()


def codes_of(root, name: str = "faq"):
    points = pq.read_table(root / name / "point_features.parquet").to_pandas()
    table = pq.read_table(root / name / "features.parquet").to_pandas()
    return np.stack(points["features"]), np.stack(points["values"]), table


def choose(at, feature: int):
    at.selectbox(key="feature_pick").set_value(feature).run()
    no_exceptions(at)
    return at


def test_a_chosen_feature_colours_the_map_and_fills_its_card(root):
    ids, values, table = codes_of(root)
    feature = int(table.sort_values("frequency", ascending=False)["feature"].iloc[0])
    at = choose(page({"atlas": "faq"}), feature)
    data = component_data(at)
    assert data["feature"] == feature
    activation = np.where((ids == feature) & (values > 0), values, 0).max(axis=1)
    want = np.full(N, 62)
    active = activation > 0
    want[active] = np.rint(activation[active] / activation.max() * 61)
    np.testing.assert_array_equal(decoded(data)[2], want)
    assert data["palette"][62] != data["palette"][61]  # inactive points are drawn apart (dimmed)
    hist = [f for f in figures(at) if "active in" in f["layout"]["title"]["text"]][0]
    assert array(hist["data"][0]["y"]).sum() == active.sum()
    assert f"active in {active.sum():,} of {N:,} points" in hist["layout"]["title"]["text"]
    top = [d.value for d in at.dataframe if {"activation", "text"} <= set(d.value.columns)][0]
    order = np.lexsort((np.arange(N), -activation))[: min(20, active.sum())]
    assert top["id"].tolist() == order.tolist()
    assert top["text"].tolist() == [TEXTS[i % len(TEXTS)] for i in order]
    np.testing.assert_allclose(top["activation"], np.round(activation[order], 4), atol=1e-4)
    assert table["label"].iloc[feature] in " ".join(m.value for m in at.markdown)


def test_search_narrows_the_features_and_a_click_lists_a_points_features(root):
    ids, values, table = codes_of(root)
    word = table.sort_values("frequency", ascending=False)["label"].iloc[0].split(" · ")[0]
    at = page({"atlas": "faq"})
    at.text_input(key="feature_query").input(word.upper()).run()
    options = at.selectbox(key="feature_pick").options
    want = table[table["label"].str.lower().str.contains(word)]
    assert len(options) == len(want) + 1  # plus "(colour by cluster or label)"
    at = set_map_state(at, map_key(at), clicked=5)
    listed = [d.value for d in at.dataframe if {"feature", "label", "value"} <= set(d.value.columns)][0]
    active = values[5] > 0
    assert listed["feature"].tolist() == ids[5][active].tolist()
    np.testing.assert_allclose(listed["value"], np.round(values[5][active], 4), atol=1e-4)


def test_features_of_another_atlas_and_an_atlas_without_features(root):
    at = page({"atlas": "other"})
    assert "made for another atlas" in messages(at)
    assert "atlas features other`" in messages(at) and str(root) not in messages(at)  # its name, not its path
    assert "feature" not in component_data(at)  # refused features colour nothing
    at = page({"atlas": "plain"})
    assert any("no features yet" in c.value for c in at.caption)
    assert "feature" not in component_data(at)
    meta = json.loads((root / "faq" / "features.json").read_text())
    assert meta["config"]["atlas_fingerprint"] == atlas_files.fingerprint(es.atlas.load(root / "faq"))


def _shared_split(sae, q: np.ndarray, y: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """The features active in both `q` and `y` with a_f b_f / (|q| |y|) (unit decoder rows), and the cosine's
    parts, counted here from the codes and the decoder (not through es.features.explain)."""
    (ia,), (va,) = sae.encode(q[None])
    (ib,), (vb,) = sae.encode(y[None])
    a = {int(f): float(v) for f, v in zip(ia, va, strict=True) if v > 0}
    b = {int(f): float(v) for f, v in zip(ib, vb, strict=True) if v > 0}
    scale = float(np.linalg.norm(q.astype(np.float64)) * np.linalg.norm(y.astype(np.float64)))
    both = sorted(set(a) & set(b), key=lambda f: -a[f] * b[f])
    shared = pd.DataFrame({"feature": both, "value_a": [a[f] for f in both], "value_b": [b[f] for f in both],
                           "contribution": [a[f] * b[f] / scale for f in both]})
    D = sae.W_dec.astype(np.float64)
    pairs = sum(a[i] * b[j] * float(D[i] @ D[j]) for i in a for j in b) / scale
    cosine = float(q.astype(np.float64) @ y.astype(np.float64)) / scale
    return shared, {"shared": float(shared["contribution"].sum()), "cosine": cosine, "pairs": pairs}


def test_why_a_hit_shows_the_features_it_shares_with_the_query(root, encoder):
    # Bugs: the shared features of another hit (the first row, the table's pick instead of the clicked point),
    # of the query with itself, contributions not a_f b_f / (|q| |y|), shares of another total, a residual that
    # does not close the sum to the cosine.
    query = "I forgot my password"
    vectors = np.load(root / "faq" / "vectors.npy")
    sae = es.features.load(root / "faq" / "features.safetensors")
    labels = pq.read_table(root / "faq" / "features.parquet").column("label").to_pylist()
    q = es.embed(encoder, [query])[0].astype(np.float32)
    at = page({"atlas": "faq"})
    at.text_input(key="query").set_value(query).run()
    no_exceptions(at)
    hits = table(at, "hits")
    hit = int(hits["id"].iloc[2])  # neither the first row nor the query's nearest copy
    assert not [d for d in at.dataframe if "contribution" in d.value.columns]  # nothing before a click
    at = set_map_state(at, map_key(at), clicked=hit)
    shown = [d.value for d in at.dataframe if "contribution" in d.value.columns]
    assert len(shown) == 1
    shown = shown[0]
    want, parts = _shared_split(sae, q, vectors[hit])
    assert len(want) >= 2  # enough shared features for the comparison to mean something
    assert shown["feature"].tolist() == want["feature"].tolist()
    assert shown["label"].tolist() == [labels[f] for f in want["feature"]]
    for column in ("value_a", "value_b", "contribution"):
        np.testing.assert_allclose(shown[column], want[column], atol=2e-4)
    np.testing.assert_allclose(shown["share"], want["contribution"] / parts["cosine"], atol=2e-4)
    text = " ".join(m.value for m in at.markdown)
    assert (f"point {hit} share**: {len(want)} of them carry {parts['shared']:+.3f} of the cosine "
            f"{parts['cosine']:.3f} (other feature pairs {parts['pairs'] - parts['shared']:+.3f}, bias and "
            f"reconstruction error {parts['cosine'] - parts['pairs']:+.3f})") in text
    np.testing.assert_allclose(parts["cosine"], hits["cosine"].iloc[2], atol=1e-3)  # the hit's own cosine
    # the test tells hits apart: another hit's shared features are not these
    other, _ = _shared_split(sae, q, vectors[int(hits["id"].iloc[0])])
    assert (other["feature"].tolist() != want["feature"].tolist()
            or not np.allclose(other["contribution"], want["contribution"], atol=1e-3))


def test_an_atlas_or_an_upload_without_vectors_says_so(root):
    at = page({"atlas": "novec"})
    assert "has no vectors (vectors.npy is missing)" in messages(at)
    assert str(root) not in messages(at)  # the folder's name only, never the server path
    at = app("atlas")
    at.run()
    at.radio(key="source").set_value("Upload points.parquet").run()
    at.file_uploader(key="points_upload").set_value(
        ("points.parquet", (root / "faq" / "points.parquet").read_bytes(), "application/octet-stream")).run()
    no_exceptions(at)
    assert component_data(at)["n"] == N
    assert any("Features are off: an uploaded points.parquet has no vectors" in c.value for c in at.caption)
