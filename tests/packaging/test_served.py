"""`encoderscope serve` from the installed copy, started outside the checkout: Streamlit's health check, and the
Attention page in Chromium with its canvas heatmap drawn (the packaged JS renderer ran), compared with
`es.attention` computed here."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import encoderscope as es
from tests.e2e.conftest import (
    SHOTS,
    _free_port,
    exception_boxes,
    heatmap_tagged,
    open_page,
    shot,
    wait_for_heatmap,
    wait_healthy,
)

pytestmark = pytest.mark.e2e
COLOUR = 1 / 255 + 1e-6  # the heatmap's colour quantisation of the 0-1 scale
# how many elements show each of two primary colours (text, background or border)
_COLOURS_JS = """() => { const n = {'rgb(79, 70, 229)': 0, 'rgb(255, 75, 75)': 0};
  for (const e of document.querySelectorAll('*')) { const s = getComputedStyle(e);
    for (const v of [s.color, s.backgroundColor, s.borderTopColor]) { if (v in n) n[v] += 1; } }
  return n; }"""


@pytest.fixture(scope="module")
def served(installed):
    """(process, url) of `encoderscope serve --port P --atlas-dir atlases --models-dir models`, both relative to
    the folder it was started in."""
    for name in ("atlases", "models"):
        (installed.cwd / name).mkdir(exist_ok=True)
    port = _free_port()
    SHOTS.mkdir(exist_ok=True)
    log = SHOTS / f"server-packaged-{port}.log"
    proc = subprocess.Popen([str(installed.script), "serve", "--port", str(port), "--atlas-dir", "atlases",
                             "--models-dir", "models"], cwd=installed.cwd, env=installed.env(),
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, log, timeout=120)
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_health_and_the_server_runs_the_installed_app(served, installed):
    proc, url = served
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as resp:
        assert resp.read().decode().strip() == "ok"
    # the one process is Streamlit itself (exec), in the installed app's folder, with the options' settings
    # as absolute paths (relative ones would point into the app's folder)
    assert Path(os.readlink(f"/proc/{proc.pid}/cwd")) == installed.target / "encoderscope_app"
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{proc.pid}/environ").read_text().split("\0") if "=" in item)
    assert environ["ENCODERSCOPE_ATLAS_DIR"] == str((installed.cwd / "atlases").resolve())
    assert environ["ENCODERSCOPE_MODELS_DIR"] == str((installed.cwd / "models").resolve())
    assert "streamlit" in Path(f"/proc/{proc.pid}/cmdline").read_text()


def test_attention_page_draws_its_canvas_from_the_installed_copy(served, page, encoder):
    # Bugs: the renderer's JS left out of the wheel (the component never draws, no data-es-heatmap); `import
    # components` resolving to something else than the app's folder; .streamlit/config.toml not found.
    _, url = served
    open_page(page, url, "attention")
    wait_for_heatmap(page, "/^\\d+:/.test(h.tag) && h.exact")
    drawn = heatmap_tagged(page)
    layer, head = drawn["tag"].split(":")
    weights = es.attention(encoder, page.get_by_label("Text").input_value()).weights[int(layer)]
    expected = weights.mean(0) if head == "mean" else weights[int(head)]
    np.testing.assert_allclose(drawn["values"], expected, atol=COLOUR)
    root = page.locator("[data-es-heatmap]").first
    assert root.get_attribute("data-es-heatmap") == drawn["tag"]
    assert exception_boxes(page) == 0
    # the app's own theme from the packaged .streamlit/config.toml (primaryColor #4f46e5, the slider's thumb),
    # not Streamlit's default red (#ff4b4b)
    colours = page.evaluate(_COLOURS_JS)
    assert colours["rgb(79, 70, 229)"] > 0 and colours["rgb(255, 75, 75)"] == 0, colours
    shot(page, "packaged-attention")
