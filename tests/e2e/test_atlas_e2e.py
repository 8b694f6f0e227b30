"""The Atlas page in real headless Chromium: WebGL draws the points, a box drag selects rows on the server,
a click shows a point's text, a search highlights its hits.

Chromium here has no GPU: WebGL runs on SwiftShader (software): the `gl_page` fixture (tests/conftest.py). The server runs
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
from playwright.sync_api import Error as PlaywrightError

import encoderscope as es
from tests.e2e.conftest import ROOT, SHOTS, _free_port, stop_server, wait_idle

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
    # shown by the server (st.text) once; the hover tooltip over the same point shows it too
    assert page.locator('[data-testid="stText"]').get_by_text(points.text[clicked], exact=True).count() == 1

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


# --- the legible map (issue 16 §1): opening view, labels, hits, hover, through the renderer's data-es-* hooks ---

N_CLUSTERS, PER_CLUSTER, OUTLIERS = 60, 100, 30


def write_crowded(folder, mirror: bool = False) -> pd.DataFrame:
    """60 clusters of 100 points packed in a 10 x 10 patch, plus 30 far outliers, with long cluster names that
    cannot all fit at the opening view. `mirror`: the same atlas (same vectors, so the same search hits) with
    x negated."""
    rng = np.random.default_rng(11)
    centres = rng.random((N_CLUSTERS, 2)) * 10
    sizes = PER_CLUSTER + np.arange(N_CLUSTERS)  # distinct sizes: a clear "biggest first" order
    cluster = np.repeat(np.arange(N_CLUSTERS), sizes)
    xy = centres[cluster] + rng.normal(scale=0.25, size=(len(cluster), 2))
    far = rng.choice([-1, 1], size=(OUTLIERS, 2)) * (400 + rng.random((OUTLIERS, 2)) * 100)
    xy = np.vstack([xy, far])
    cluster = np.concatenate([cluster, np.full(OUTLIERS, -1)])
    if mirror:
        xy[:, 0] = -xy[:, 0]
    n = len(xy)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    points = pd.DataFrame({"id": np.arange(n), "x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32),
                           "cluster": cluster.astype(np.int32), "text": [f"document number {i}" for i in range(n)]})
    folder.mkdir(parents=True)
    points.to_parquet(folder / "points.parquet")
    np.save(folder / "vectors.npy", vectors)
    inner = points[points.cluster >= 0]
    pd.DataFrame({"cluster": np.arange(N_CLUSTERS, dtype=np.int32), "size": sizes,
                  "x": inner.groupby("cluster").x.mean().values, "y": inner.groupby("cluster").y.mean().values,
                  "name": [f"topic {c} · words · here" for c in range(N_CLUSTERS)]}).to_parquet(folder / "clusters.parquet")
    (folder / "atlas.json").write_text(json.dumps({"model": "all-MiniLM-L6-v2 (bundled)", "pooling": "auto", "N": n,
                                                   "D": 384}))
    return points


@pytest.fixture(scope="module")
def crowded_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("atlas_crowded")
    points = write_crowded(base / "atlases" / "crowded")
    mirrored = write_crowded(base / "atlases" / "mirrored", mirror=True)
    vectors = np.load(base / "atlases" / "crowded" / "vectors.npy")
    proc, url = start_atlas_server(base / "atlases", base)
    yield url, points, mirrored, vectors
    stop_server(proc)


def hooks(page) -> dict:
    """The renderer's test hooks after its latest draw."""
    root = page.locator(".atlas-wrap")
    return {"labels": json.loads(root.get_attribute("data-es-labels")), "view": json.loads(root.get_attribute("data-es-view")),
            "hits": int(root.get_attribute("data-es-hits")), "hit_points": json.loads(root.get_attribute("data-es-hit-points")),
            "draws": int(root.get_attribute("data-es-draws"))}


def wait_hook(page, name: str, ok, timeout: float = 60) -> str:
    """Poll the renderer's `name` attribute until `ok(value)` (the component lives in a shadow root, which
    document.querySelector in wait_for_function does not reach; locators do)."""
    root = page.locator(".atlas-wrap")
    deadline = time.monotonic() + timeout
    while True:
        # while Streamlit swaps one atlas's map for another's, both are in the page for a moment
        try:
            value = root.get_attribute(name, timeout=1000) if root.count() == 1 else None
        except PlaywrightError:  # the second map appeared between count() and the read
            value = None
        if value is not None and ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} stayed {value!r}")
        page.wait_for_timeout(100)


def next_draw(page, before: int) -> dict:
    wait_hook(page, "data-es-draws", lambda v: int(v) > before)
    page.wait_for_timeout(200)  # let a burst of wheel events finish drawing
    return hooks(page)


def overlaps(boxes) -> list:
    return [(a[4], b[4]) for i, a in enumerate(boxes) for b in boxes[i + 1 :]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]


def screen(points, ids, view, size) -> np.ndarray:
    """CSS-pixel positions `[k, 2]` of points `ids` in a canvas of `size` (w, h) showing data box `view`."""
    x0, x1, y0, y1 = view
    px = (points.x.to_numpy()[ids] - x0) / (x1 - x0) * size[0]
    py = (y1 - points.y.to_numpy()[ids]) / (y1 - y0) * size[1]
    return np.stack([px, py], axis=1)


def test_the_map_is_legible(crowded_server, gl_page, encoder):
    url, points, mirrored, vectors = crowded_server
    page = gl_page
    page.goto(f"{url}/atlas?atlas=crowded")
    page.wait_for_selector(f"canvas.atlas-gl[data-drawn='{len(points)}']")
    wait_idle(page)
    canvas = page.locator("canvas.atlas-gl").bounding_box()
    size = (canvas["width"], canvas["height"])
    first = hooks(page)

    # Opening view: the 1st-99th percentile box (not the outliers 400 units away), with a small margin.
    p = [np.percentile(points[c], q) for c in ("x", "y") for q in (1, 99)]
    x0, x1, y0, y1 = first["view"]
    assert x0 <= p[0] and x1 >= p[1] and y0 <= p[2] and y1 >= p[3], (first["view"], p)
    fits = min((x1 - x0) / (p[1] - p[0]), (y1 - y0) / (p[3] - p[2]))
    assert 1.0 < fits < 1.25, fits  # the binding axis spans the box plus about 6 % a side

    # Labels: placed without a single overlap, inside the canvas, biggest clusters first.
    labels = first["labels"]
    assert len(labels) >= 8 and overlaps(labels) == []
    assert all(b[0] >= 0 and b[1] >= 0 and b[2] <= size[0] + 0.5 and b[3] <= size[1] + 0.5 for b in labels)
    assert labels[0][4] == f"topic {N_CLUSTERS - 1} · words · here"  # the biggest cluster is placed first
    assert len(labels) < N_CLUSTERS  # not all fit at this zoom: the rest wait for zooming in
    page.screenshot(path=str(SHOTS / "atlas_legible_open.png"))

    # Zoom in around the centre: labels re-placed for the new view, still without overlap, and a larger share
    # of the clusters in view named (room appears as the clusters spread apart).
    def named_share(hook) -> float:
        cx, cy = points[points.cluster >= 0].groupby("cluster")[["x", "y"]].mean().to_numpy().T
        vx0, vx1, vy0, vy1 = hook["view"]
        in_view = ((cx > vx0) & (cx < vx1) & (cy > vy0) & (cy < vy1)).sum()
        return len(hook["labels"]) / max(in_view, 1)

    page.mouse.move(canvas["x"] + size[0] / 2, canvas["y"] + size[1] / 2)
    before = first["draws"]
    for _ in range(2):
        page.mouse.wheel(0, -300)
    page.wait_for_timeout(300)
    zoomed = next_draw(page, before)
    assert zoomed["view"][1] - zoomed["view"][0] < 0.6 * (x1 - x0)
    assert overlaps(zoomed["labels"]) == []
    assert zoomed["labels"] != labels
    assert named_share(zoomed) > named_share(first), (named_share(zoomed), named_share(first))
    page.screenshot(path=str(SHOTS / "atlas_legible_zoomed.png"))

    # Reset view returns to the opening view.
    before = zoomed["draws"]
    page.locator("button[data-act=reset]").click()
    reset = next_draw(page, before)
    np.testing.assert_allclose(reset["view"], first["view"], rtol=1e-6, atol=1e-6)

    # Hover shows the point's own text (the payload carries texts at this size).
    target = 7
    pos = screen(points, [target], reset["view"], size)[0]
    page.mouse.move(float(canvas["x"] + pos[0]), float(canvas["y"] + pos[1]))
    tip = page.locator(".atlas-tip")
    tip.wait_for(state="visible")
    hovered = int(tip.get_attribute("data-id"))
    assert tip.inner_text() == points.text[hovered]
    assert np.hypot(*(screen(points, [hovered], reset["view"], size)[0] - pos)) <= 8

    # Search: the k hits are drawn (count = k) at their own positions, with rings; "Zoom to hits" fits them.
    page.get_by_label("top-k", exact=True).fill("7")
    page.get_by_label("top-k", exact=True).press("Enter")
    wait_idle(page)
    page.get_by_label("Search: type a query", exact=True).fill("a query")
    page.get_by_label("Search: type a query", exact=True).press("Enter")
    wait_hook(page, "data-es-hits", lambda v: v == "7")
    wait_idle(page)
    shown = hooks(page)
    assert shown["hits"] == 7 and len(shown["hit_points"]) == 7
    page.screenshot(path=str(SHOTS / "atlas_legible_hits.png"))
    before = shown["draws"]
    page.locator("button[data-act=hits]").click()
    fitted = next_draw(page, before)
    hx = np.array(fitted["hit_points"])
    assert ((hx[:, 0] >= 0) & (hx[:, 0] <= size[0]) & (hx[:, 1] >= 0) & (hx[:, 1] <= size[1])).all()
    # the hits are the exact cosine top-k, drawn at their own positions (quantised to 1/65,536 of the map)
    hit_ids = np.argsort(-(vectors @ es.embed(encoder, ["a query"])[0]))[:7]
    for view, drawn in ((shown["view"], shown["hit_points"]), (fitted["view"], fitted["hit_points"])):
        np.testing.assert_allclose(sorted(map(tuple, drawn)),
                                   sorted(map(tuple, screen(points, hit_ids, view, size))), atol=1.5)

    # The same hits on another atlas (same vectors, x mirrored) are drawn at that atlas's positions: the
    # renderer's highlight cache must not keep the first atlas's positions.
    page.get_by_label("Atlas", exact=True).click()
    page.get_by_role("option", name="mirrored").click()
    # same N, so wait for the new atlas's opening view (its x is mirrored: the view moves to negative x)
    wait_hook(page, "data-es-view", lambda v: json.loads(v)[0] < -5)
    wait_idle(page)
    wait_hook(page, "data-es-hits", lambda v: v == "7")
    other = hooks(page)
    drawn = np.array(sorted(map(tuple, other["hit_points"])))
    expected = np.array(sorted(map(tuple, screen(mirrored, hit_ids, other["view"], size))))
    np.testing.assert_allclose(drawn, expected, atol=1.5)


def test_the_renderer_redraws_hits_on_new_points(gl_page):
    # Bug: the renderer kept its highlight key across a new payload: the same hit ids on new points were
    # drawn at the old points' positions. Mounted alone (no server): the renderer's own JS in a blank page.
    from components.atlas import payload as atlas_payload

    js = (ROOT / "components" / "atlas" / "renderer" / "atlas.js").read_text(encoding="utf-8")
    css = (ROOT / "components" / "atlas" / "renderer" / "atlas.css").read_text(encoding="utf-8")
    page = gl_page
    page.set_content(f"<html><head><style>{css}</style></head><body style='width:800px'><div id='m'></div></body></html>")
    page.add_script_tag(type="module", content=js.replace("export default function", "window.__mount = function"))
    page.wait_for_function("typeof window.__mount === 'function'")
    rng = np.random.default_rng(5)
    x, y = rng.random(500), rng.random(500)
    hits = [3, 141, 400]
    size = None
    for step, (px, py) in enumerate([(x, y), (1 - x, y[::-1].copy())]):  # the same ids, elsewhere
        data = atlas_payload.points_payload(px, py, np.zeros(500, np.uint8))
        data.update(labels=[], highlight=hits, selection=None, height=400)
        page.evaluate("d => window.__mount({data: d, parentElement: document.getElementById('m'), setStateValue() {}})",
                      data)
        page.wait_for_function(f"document.querySelector('.atlas-wrap')?.getAttribute('data-es-view') && "
                               f"JSON.parse(document.querySelector('canvas.atlas-gl').getAttribute('data-drawn')) == 500 && "
                               f"Number(document.querySelector('.atlas-wrap').getAttribute('data-es-draws')) > {step}")
        page.wait_for_timeout(300)
        root = page.locator(".atlas-wrap")
        box = page.locator("canvas.atlas-gl").bounding_box()
        size = (box["width"], box["height"])
        view = json.loads(root.get_attribute("data-es-view"))
        drawn = sorted(map(tuple, json.loads(root.get_attribute("data-es-hit-points"))))
        frame = pd.DataFrame({"x": px, "y": py})
        expected = sorted(map(tuple, screen(frame, hits, view, size)))
        np.testing.assert_allclose(drawn, expected, atol=1.0)
