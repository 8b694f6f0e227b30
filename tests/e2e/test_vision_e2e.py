"""Real browser on a real server: the image encoders page with a tiny random ViT from a local folder.

Upload a picture through the file chooser, click a patch of the overlay and a head thumbnail, and check that what
Plotly draws is the library's attention of that patch and head.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from encoderscope import vision
from tests import vision_fixtures as vf
from tests.e2e.conftest import (
    ROOT,
    SHOTS,
    exception_boxes,
    open_page,
    shot,
    start_server,
    stop_server,
    wait_for_chart,
    wait_idle,
)


@pytest.fixture(scope="module")
def vision_server(tmp_path_factory):
    """(url, ViT folder): a server whose ENCODERSCOPE_MODELS_DIR holds a tiny random ViT (8-pixel patches)."""
    if 'url_path="vision"' not in (ROOT / "app.py").read_text():
        pytest.fail("app.py has no /vision route: add st.Page('views/vision.py', ..., url_path='vision')")
    models = tmp_path_factory.mktemp("e2e_vision")
    vit = vf.tiny_vit(models / "vit")
    proc, url, _ = start_server({"ENCODERSCOPE_MODELS_DIR": str(models)})
    yield url, str(vit)
    stop_server(proc)


# The one chart on screen whose title (tags removed) matches `pattern`, ignoring the stale copies Streamlit keeps
# in the page while a rerun replaces them; null unless exactly one matches.
_CHART_JS = """(pattern) => {
  const re = new RegExp(pattern);
  const title = gd => ((gd.layout && gd.layout.title && gd.layout.title.text) || '').replace(/<[^>]+>/g, '');
  const found = [...document.querySelectorAll('.js-plotly-plot')]
    .filter(gd => !gd.closest('[data-stale="true"]') && gd._fullData && re.test(title(gd)));
  return found.length === 1 ? found[0] : null;
}"""


def _chart(page, pattern: str, timeout: float = 60_000):
    """A handle on the one live chart titled `pattern` (waits for it)."""
    return page.wait_for_function(_CHART_JS, arg=pattern, timeout=timeout).as_element()


# Screen position of a point (x, y) in a chart's data coordinates, through Plotly's own axis mapping.
_TO_SCREEN_JS = """(gd, [x, y]) => {
  const box = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return [box.left + xa._offset + xa.l2p(x), box.top + ya._offset + ya.l2p(y)];
}"""

# What a chart draws: its heatmap's z (rows) and its click targets (the scatter trace's x, y, customdata).
_DRAWN_JS = """(gd) => {
  const heat = gd._fullData.find(d => d.type === 'heatmap'), t = gd._fullData.find(d => d.type === 'scatter');
  return {z: heat ? Array.from(heat.z, row => Array.from(row)) : null,
          x: Array.from(t.x), y: Array.from(t.y), ids: Array.from(t.customdata || [])};
}"""

MAIN = r"^Layer (\d+), (?:head (\d+)|mean over heads): attention from (.+)$"
GRID = r"^$"  # the per-head thumbnails: the only chart without a title


def _click(page, pattern: str, x: float, y: float, until: str) -> None:
    """Click the point (x, y) of the chart titled `pattern` until a chart titled `until` shows (up to 3 tries:
    a click that lands while Plotly redraws after a rerun is lost, and then nothing at all happens)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        chart = _chart(page, pattern)
        chart.scroll_into_view_if_needed()
        sx, sy = chart.evaluate(_TO_SCREEN_JS, [x, y])
        page.mouse.move(sx - 3, sy - 3)  # Plotly picks the clicked point from the latest hover: let it see the
        page.mouse.move(sx, sy)  # pointer arrive first
        page.wait_for_timeout(300)
        page.mouse.click(sx, sy)
        try:
            _chart(page, re.escape(until), timeout=20_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    wait_idle(page)


def _assert_drawn(page, expected: np.ndarray, timeout: float = 30) -> None:
    """The main overlay's heatmap, as Plotly holds it, equals `expected` `[rows, cols]`. Plotly redraws a moment
    after the script run ends, so this polls before failing."""
    deadline = time.monotonic() + timeout
    while True:
        z = np.asarray(_chart(page, MAIN).evaluate(_DRAWN_JS)["z"], dtype=float)
        if (z.shape == expected.shape and np.allclose(z, expected, atol=1e-6)) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(300)
    np.testing.assert_allclose(z, expected, atol=1e-6)


def _no_messages(page) -> None:
    """No error, warning or info box on screen (stale ones of the previous run aside): say what it is instead of
    waiting for a chart."""
    shown = page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=stAlert], [data-testid=stException]')]"
        ".filter(el => !el.closest('[data-stale=\"true\"]')).map(el => el.innerText)"
    )
    assert not shown, shown


def test_upload_click_a_patch_then_a_head(page, vision_server):
    url, vit = vision_server
    SHOTS.mkdir(exist_ok=True)
    upload = SHOTS / "vision_upload.png"
    picture = vf.photo(96, 64, seed=3)  # 3:2, so the grid is 4 × 6 patches: rows and columns cannot be confused
    picture.save(upload)
    enc = vision.load_image_encoder(vit)
    res = vision.image_attention(enc, Image.open(upload))
    assert res.grid == (4, 6)
    last = res.num_layers - 1

    open_page(page, url, "vision", f"model={quote(vit)}")
    _no_messages(page)
    wait_for_chart(page)
    page.get_by_text("Upload", exact=True).click()
    wait_idle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    page.get_by_text("4×6 patches of 8 px").wait_for(timeout=60_000)
    wait_idle(page)
    _no_messages(page)
    _assert_drawn(page, vision.patch_map(res, last, "mean", None))

    # Click inside patch (row 2, column 4), off its centre: the nearest click target is that patch's.
    p = res.patch_size
    _click(page, MAIN, 4 * p + 2, 2 * p + 5, until="attention from patch (2, 4)")
    _assert_drawn(page, vision.patch_map(res, last, "mean", (2, 4)))
    inputs = page.locator('[data-testid="stNumberInput"] input')
    assert [inputs.nth(i).input_value() for i in range(2)] == ["2", "4"]
    assert page.get_by_label("the chosen patch (click the picture)").is_checked()

    # Click the thumbnail of head 1 in the all-heads grid: the main overlay shows head 1 for the same patch.
    targets = _chart(page, GRID).evaluate(_DRAWN_JS)
    first = targets["ids"].index(1)
    _click(page, GRID, targets["x"][first], targets["y"][first], until="Layer 1, head 1: attention from patch (2, 4)")
    _assert_drawn(page, vision.patch_map(res, last, 1, (2, 4)))
    assert "head=1" in page.url
    assert exception_boxes(page) == 0
    shot(page, "vision_e2e")
