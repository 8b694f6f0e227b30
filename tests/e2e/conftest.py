"""Real-browser helpers: a `streamlit run` server on a free loopback port (the Chromium fixtures `browser` and `page`,
and `gl_browser` and `gl_page` with software WebGL, are in tests/conftest.py: one Playwright instance and one
browser of each kind for every browser test of the session, whatever the order; a fresh context per test).

With REQUIRE_BROWSER=1 (set by CI) a missing Chromium fails the run instead of skipping.
Screenshots go to screenshots/ (git-ignored): look at them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
# WebGL without a GPU: ANGLE on SwiftShader (software), for the Atlas page's map (the `gl_browser` fixture)
WEBGL_ARGS = ["--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
              "--disable-dev-shm-usage"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env_extra: dict | None = None, timeout: float = 90,
                 cwd: Path | None = None) -> tuple[subprocess.Popen, str, Path]:
    """Start `streamlit run app.py` (of `cwd`, default this checkout) on 127.0.0.1:<free port>; returns (process,
    url, log path)."""
    port = _free_port()
    log = SHOTS / f"server-{port}.log"
    SHOTS.mkdir(exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    shared_models = ROOT.parent / "shared" / "models"
    if shared_models.is_dir():  # the real TAEF2 weights for the VAE page
        env.setdefault("ENCODERSCOPE_MODELS_DIR", str(shared_models))
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=cwd or ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url, log, timeout)
    return proc, url, log


def wait_healthy(proc: subprocess.Popen, url: str, log: Path, timeout: float = 90) -> None:
    """Poll `url`/_stcore/health until it answers 200; kill `proc` and raise with its log's end if it exits or
    times out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"streamlit did not become healthy in {timeout} s: {log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def app_url():
    proc, url, _ = start_server()
    yield url
    stop_server(proc)


def wait_idle(page, timeout: float = 120_000) -> None:
    """Wait until Streamlit has finished the current run (the status widget detaches)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_timeout(300)  # let a rerun triggered by the last action start
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)


def open_page(page, app_url: str, path: str = "", query: str = "") -> None:
    """Open /path?query and wait for the script run to finish."""
    page.goto(f"{app_url}/{path}" + (f"?{query}" if query else ""))
    wait_idle(page)


def pick_view(page, name: str) -> None:
    """Show the view `name` of the page's one-view control (components/ui.py `one_view`: a radio group labelled
    "View"), and wait for the rerun it starts to end (the old view's elements leave then)."""
    page.get_by_role("radiogroup", name="View", exact=True).get_by_role("radio", name=name, exact=True).click()
    wait_idle(page)


def wait_for_chart(page, timeout: float = 120_000) -> None:
    page.wait_for_selector(".js-plotly-plot", timeout=timeout)


# Every plotly chart as Plotly itself holds it after drawing (`_fullData`: base64 typed arrays already decoded),
# so a test reads the values and labels that are on screen, not the figure the page meant to send. Charts left
# over from the previous script run (marked stale until the rerun replaces them) are skipped.
_PLOTS_JS = """() => {
  const list = v => (v === undefined || v === null) ? null : Array.from(v, x =>
      (Array.isArray(x) || ArrayBuffer.isView(x)) ? Array.from(x, y => Number.isNaN(y) ? null : y)
      : (typeof x === 'number' && Number.isNaN(x)) ? null : x);
  const live = [...document.querySelectorAll('.js-plotly-plot')].filter(gd => !gd.closest('[data-stale="true"]'));
  return live.map(gd => ({
    title: (gd.layout.title && gd.layout.title.text) || '',
    xticks: list(gd.layout.xaxis && gd.layout.xaxis.ticktext),
    yticks: list(gd.layout.yaxis && gd.layout.yaxis.ticktext),
    traces: (gd._fullData || []).map(t => ({type: t.type, name: t.name, x: list(t.x), y: list(t.y), z: list(t.z),
                                            source: t.source || null})),
  }));
}"""


def plots(page) -> list[dict]:
    """Every current plotly chart on the page: {title (tags removed), xticks, yticks, traces: [{type, name, x, y, z,
    source}]}.

    `x`, `y` are lists and `z` a list of rows, NaN as None (None when the trace has none); `source` is an image
    trace's data URI."""
    found = page.evaluate(_PLOTS_JS)
    for plot in found:
        plot["title"] = re.sub(r"<[^>]+>", "", plot["title"])
    return found


def wait_for_plot(page, condition: str, timeout: float = 120_000) -> None:
    """Wait until a current (not stale) chart satisfies `condition`, a JavaScript expression over `gd`, then
    until the script run has finished."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some(gd => "
        f"!gd.closest('[data-stale=\"true\"]') && gd.layout && ({condition}))",
        timeout=timeout,
    )
    wait_idle(page)


def plot_titled(page, pattern: str) -> dict:
    """The one chart whose title matches the regex `pattern`."""
    matches = [p for p in plots(page) if re.search(pattern, p["title"])]
    assert len(matches) == 1, f"{len(matches)} charts titled {pattern!r}: {[p['title'] for p in plots(page)]}"
    return matches[0]


def exception_boxes(page) -> int:
    for text in page.locator('[data-testid="stException"]').all_inner_texts():
        print("EXCEPTION BOX:", text[:2000])
    return page.locator('[data-testid="stException"]').count()


def shot(page, name: str, full_page: bool = True) -> Path:
    """Save screenshots/<name>.png. Streamlit scrolls inside its main container, so for a full page the
    viewport is stretched to the content height for the shot and restored afterwards."""
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    size = page.viewport_size
    if full_page and size:
        height = page.evaluate("() => (document.querySelector('[data-testid=stMain]') || document.body).scrollHeight")
        page.set_viewport_size({"width": size["width"], "height": min(max(int(height) + 40, size["height"]), 8000)})
        page.wait_for_timeout(800)  # plotly re-lays out on resize
    page.screenshot(path=str(path))
    if full_page and size:
        page.set_viewport_size(size)
    return path


# The heatmap component (components/heatmap) draws on a canvas inside a shadow root; each of its root elements
# is in window.__esHeatmaps with data-es-heatmap="<tag>" and __esHeatmap.values, the values its colours stand for.
_HEATMAPS_JS = """() => [...(window.__esHeatmaps || [])].filter(r => r.isConnected && r.__esHeatmap).map(r => {
  const h = r.__esHeatmap;
  return {tag: r.dataset.esHeatmap, id: h.id, t: h.t, exact: h.exact, rows: h.rows, cols: h.cols,
          geometry: h.geometry, values: Array.from(h.values, v => Number.isNaN(v) ? null : v)};
})"""
MAIN_HEATMAP = r"^\d+:(\d+|mean)$"  # the attention page's main map: "LAYER:HEAD"


def heatmaps(page) -> list[dict]:
    """Every drawn heatmap: {tag, id, t, exact, rows, cols, geometry (cells' CSS px in the canvas: x0, y0, cw, ch;
    rowStep/colStep: every how many rows/columns a label is drawn), values: `[rows, cols]` (NaN = filtered)}."""
    import numpy as np

    found = page.evaluate(_HEATMAPS_JS)
    for h in found:
        h["values"] = np.array([np.nan if v is None else v for v in h["values"]], float).reshape(h["rows"], h["cols"])
    return found


def heatmap_tagged(page, pattern: str = MAIN_HEATMAP) -> dict:
    """The one drawn heatmap whose tag matches the regex `pattern`."""
    matches = [h for h in heatmaps(page) if re.search(pattern, h["tag"] or "")]
    assert len(matches) == 1, f"{len(matches)} heatmaps tagged {pattern!r}: {[h['tag'] for h in heatmaps(page)]}"
    return matches[0]


def wait_for_heatmap(page, condition: str = "true", timeout: float = 120_000) -> None:
    """Wait until a drawn heatmap root `r` (with `h = r.__esHeatmap`) satisfies the JS `condition`."""
    page.wait_for_function(
        "() => [...(window.__esHeatmaps || [])].some(r => r.isConnected && r.__esHeatmap && "
        f"(h => ({condition}))(r.__esHeatmap))",
        timeout=timeout,
    )
