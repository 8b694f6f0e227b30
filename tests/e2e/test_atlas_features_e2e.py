"""The Atlas page's Features panel in real Chromium: choosing a feature recolours the WebGL map, and the
renderer reports which feature it coloured (`data-es-feature`); the active points are drawn in the feature's
colours and the others dimmed."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

import encoderscope as es
from encoderscope.features import atlas_files
from tests.e2e.conftest import SHOTS, stop_server, wait_idle
from tests.e2e.test_atlas_e2e import N_SIDE, TEXTS, canvas_pixels, start_atlas_server, write_two_groups


@pytest.fixture(scope="module")
def features_server(tmp_path_factory, encoder):
    base = tmp_path_factory.mktemp("features_e2e")
    n = 2 * N_SIDE
    vectors = es.embed(encoder, [f"{TEXTS[i % 3]} #{i}" for i in range(n)]).astype(np.float32)
    folder = base / "atlases" / "two"
    write_two_groups(folder, vectors)
    atlas_files.train_atlas(folder, n_features=32, k=4, epochs=5)
    proc, url = start_atlas_server(base / "atlases", base)
    yield url, folder
    stop_server(proc)


def test_choosing_a_feature_recolours_the_map(features_server, gl_page):
    url, folder = features_server
    table = pq.read_table(folder / "features.parquet").to_pandas()
    points = pq.read_table(folder / "point_features.parquet").to_pandas()
    ids, values = np.stack(points["features"]), np.stack(points["values"])
    feature = int(table.sort_values("frequency", ascending=False)["feature"].iloc[0])
    active = ((ids == feature) & (values > 0)).any(axis=1)
    assert 0 < active.sum() < len(active)
    page = gl_page
    page.goto(f"{url}/atlas?atlas=two")
    page.wait_for_selector(f"canvas.atlas-gl[data-drawn='{len(points)}']")
    wait_idle(page)
    assert page.locator("[data-es-feature]").first.get_attribute("data-es-feature") == ""  # clusters first

    picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Feature")
    picker.click()
    page.locator('[role="option"]').filter(has_text=f"#{feature} ·").first.click()
    page.wait_for_selector(f"[data-es-feature='{feature}']")
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    label = table["label"].iloc[feature]
    assert any(label in t for t in page.locator('[data-testid="stMarkdown"]').all_inner_texts())

    # the map: the dimmed grey of inactive points, and the feature's colours where it is active
    rgb = canvas_pixels(page)
    dim = (np.abs(rgb - 225).sum(axis=2) <= 12)
    strong = (rgb.max(axis=2) - rgb.min(axis=2) > 40) & (np.abs(rgb - 255).sum(axis=2) > 60)
    assert strong.sum() > 100, strong.sum()
    if (~active).sum() > 20:
        assert dim.sum() > 100, dim.sum()
    page.screenshot(path=str(SHOTS / "atlas_features_map.png"))
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "atlas_features_card.png"))
