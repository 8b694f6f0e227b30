"""The Atlas page's Features panel with AppTest: the map coloured by a chosen feature, its card, a clicked point's
features, keyword search, and refusals (no features, another atlas's features). Expected values are read from
the feature files independently of the page code."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

import encoderscope as es
from encoderscope import settings
from encoderscope.features import atlas_files
from tests.app.conftest import array, figures, messages, no_exceptions
from tests.app.test_atlas_page import TEXTS, component_data, decoded, map_key, page, set_map_state, write_atlas

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
    assert "feature" not in component_data(at)  # refused features colour nothing
    at = page({"atlas": "plain"})
    assert any("no features yet" in c.value for c in at.caption)
    assert "feature" not in component_data(at)
    meta = json.loads((root / "faq" / "features.json").read_text())
    assert meta["config"]["atlas_fingerprint"] == atlas_files.fingerprint(es.atlas.load(root / "faq"))
