"""The Atlas page in real headless Chromium: WebGL draws the points, a box drag selects rows on the server,
a click shows a point's text, a search highlights its hits.

Chromium here has no GPU: WebGL runs on SwiftShader (software), which needs the flags below. The server runs
a small wrapper that routes /atlas to views/atlas.py, so the test does not depend on app.py's routes."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import encoderscope as es
from tests.e2e.conftest import CHROMIUM, ROOT, SHOTS, _free_port, stop_server, wait_idle

WEBGL_ARGS = [
    "--no-sandbox",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-dev-shm-usage",
]
N_SIDE = 200  # points per group; two groups far apart (left and right)
TEXTS = ["How do I reset my password?", "Bread needs flour, water and salt.", "The striker scored twice."]

WRAPPER = f"""
import sys
import time
import urllib.request
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
st.set_page_config(page_title="Encoderscope", layout="wide")
home = st.Page(lambda: st.write("home"), title="Home", default=True)
atlas = st.Page({str(ROOT / "views" / "atlas.py")!r}, title="Corpus atlas", icon="🌌", url_path="atlas")
st.navigation([home, atlas]).run()
"""


def write_two_groups(folder, vectors: np.ndarray) -> pd.DataFrame:
    """Group 0 at x in [-10, -9], group 1 at x in [9, 10]; texts cycle through TEXTS."""
    rng = np.random.default_rng(3)
    n = 2 * N_SIDE
    group = np.repeat([0, 1], N_SIDE)
    x = np.where(group == 0, -10, 9) + rng.random(n)
    y = rng.random(n) * 4
    texts = [f"{TEXTS[i % 3]} #{i}" for i in range(n)]
    points = pd.DataFrame(
        {
            "id": np.arange(n),
            "x": x.astype(np.float32),
            "y": y.astype(np.float32),
            "cluster": group.astype(np.int32),
            "text": texts,
        }
    )
    folder.mkdir(parents=True)
    points.to_parquet(folder / "points.parquet")
    np.save(folder / "vectors.npy", vectors)
    pd.DataFrame(
        {"cluster": [0, 1], "size": [N_SIDE, N_SIDE], "x": [-9.5, 9.5], "y": [2.0, 2.0], "name": ["left", "right"]}
    ).to_parquet(folder / "clusters.parquet")
    (folder / "atlas.json").write_text(
        json.dumps({"model": "all-MiniLM-L6-v2 (bundled)", "pooling": "auto", "N": n, "D": vectors.shape[1]})
    )
    return points


def start_atlas_server(atlas_dir: Path, workdir: Path, wrapper: str | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run` on a wrapper routing /atlas (ENCODERSCOPE_ATLAS_DIR=atlas_dir), on a free loopback port;
    returns (process, url) once healthy. Also used by bench/atlas_page.py."""
    (workdir / "wrap.py").write_text(wrapper or WRAPPER)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ENCODERSCOPE_ATLAS_DIR": str(atlas_dir)}
    SHOTS.mkdir(exist_ok=True)
    log = SHOTS / f"server-atlas-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(workdir / "wrap.py"),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"streamlit did not become healthy: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def atlas_server(tmp_path_factory, encoder):
    base = tmp_path_factory.mktemp("atlas_e2e")
    n = 2 * N_SIDE
    vectors = es.embed(encoder, [f"{TEXTS[i % 3]} #{i}" for i in range(n)]).astype(np.float32)
    points = write_two_groups(base / "atlases" / "two", vectors)
    proc, url = start_atlas_server(base / "atlases", base)
    yield url, points, vectors
    stop_server(proc)


@pytest.fixture(scope="module")
def gl_page():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=WEBGL_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1400}, device_scale_factor=1)
        page.set_default_timeout(90_000)
        yield page
        browser.close()


def canvas_pixels(page) -> np.ndarray:
    """The WebGL canvas as the user sees it: RGB `[H, W, 3]` from a screenshot of the element."""
    return np.asarray(Image.open(io.BytesIO(page.locator("canvas.atlas-gl").screenshot())).convert("RGB")).astype(int)


def drag(page, start, end) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    for t in np.linspace(0, 1, 8)[1:]:
        page.mouse.move(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
    page.mouse.up()


def test_atlas_in_chromium(atlas_server, gl_page, encoder):
    url, points, vectors = atlas_server
    page = gl_page
    page.goto(f"{url}/atlas?atlas=two")
    page.wait_for_selector(f"canvas.atlas-gl[data-drawn='{len(points)}']")
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0

    # Drawn: two coloured groups on a white background, on the left and right halves of the canvas.
    rgb = canvas_pixels(page)
    coloured = (np.abs(rgb - 255).sum(axis=2) > 60) & (rgb.max(axis=2) - rgb.min(axis=2) > 30)
    half = rgb.shape[1] // 2
    assert coloured[:, :half].sum() > 200 and coloured[:, half:].sum() > 200, coloured.sum()
    page.screenshot(path=str(SHOTS / "atlas_e2e_drawn.png"))

    # Box over the left half of the canvas: exactly the left group, selected on the server.
    box = page.locator("canvas.atlas-gl").bounding_box()
    page.locator("button[data-mode=box]").click()
    drag(page, (box["x"] + 5, box["y"] + 5), (box["x"] + box["width"] / 2, box["y"] + box["height"] - 5))
    page.get_by_text(f"{N_SIDE:,} points", exact=False).first.wait_for()
    wait_idle(page)
    text = page.locator('[data-testid="stMarkdown"]').all_inner_texts()
    assert any(f"Selection (box): {N_SIDE:,} points" in t for t in text), text

    # Lasso around the right half: exactly the right group.
    page.locator("button[data-mode=lasso]").click()
    left, top = box["x"] + box["width"] / 2 + 5, box["y"] + 5
    right, bottom = box["x"] + box["width"] - 5, box["y"] + box["height"] - 5
    corners = [(left, top), (right, top), (right, bottom), (left, bottom), (left, top + 20)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(corners[:-1], corners[1:], strict=True):
        for t in np.linspace(0, 1, 6)[1:]:
            page.mouse.move(float(x0 + t * (x1 - x0)), float(y0 + t * (y1 - y0)))
    page.mouse.up()
    lasso = page.get_by_text(re.compile(r"^Selection \(lasso of \d+ vertices\)"))
    lasso.wait_for()
    wait_idle(page)
    assert lasso.inner_text().endswith(f": {N_SIDE:,} points")

    # Click a point in pan mode: its text appears.
    page.locator("button[data-mode=pan]").click()
    right = rgb[:, half:]
    ys, xs = np.nonzero(np.abs(right - 255).sum(axis=2) > 60)
    page.mouse.click(float(box["x"] + half + xs[len(xs) // 2]), float(box["y"] + ys[len(ys) // 2]))
    heading = page.get_by_text(re.compile(r"^Point \d+ · cluster"))
    heading.wait_for()
    wait_idle(page)
    clicked = int(heading.inner_text().split()[1])
    assert clicked >= N_SIDE  # a right-group point
    assert page.get_by_text(points.text[clicked], exact=True).count() == 1

    # Search: the top-k hits are drawn large in red.
    page.get_by_label("Search: type a query", exact=True).fill("I forgot my password")
    page.get_by_label("Search: type a query", exact=True).press("Enter")
    page.wait_for_selector("canvas.atlas-gl[data-highlighted='10']")
    wait_idle(page)
    rgb = canvas_pixels(page)
    red = (rgb[:, :, 0] > 200) & (rgb[:, :, 1] < 60) & (rgb[:, :, 2] < 60)
    assert red.sum() > 50
    top = np.argsort(-(vectors @ es.embed(encoder, ["I forgot my password"])[0]))[:10]
    assert all(points.text[i].startswith(TEXTS[0]) for i in top)  # the fixture is sensible: hits are password texts
    page.screenshot(path=str(SHOTS / "atlas_e2e_search.png"), full_page=True)
