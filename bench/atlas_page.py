"""Atlas page (/atlas) in real headless Chromium (SwiftShader WebGL): time from page open to points drawn,
payload size, and the server's memory, at 100k and 1M points; plotly Scattergl once at 100k for comparison.

    python bench/atlas_page.py            # 100k and 1M (a few minutes: writes two atlases, starts servers)
    python bench/atlas_page.py --quick    # 20k only, no plotly
    python bench/atlas_page.py --atlas /tmp/realbench/debian --sizes   # a built atlas only (bench/atlas.py --real)

"Drawn" is the renderer's own mark: after the first gl.drawArrays of all points and gl.finish(), it sets
`data-drawn` on the canvas and `window.__atlasDrawn` (ms since navigation start). Each size is opened twice on
one server: `cold` reads the atlas and builds the payload; `warm` finds both cached (a second visitor).
Positions: a seeded mixture of 50 Gaussian blobs; texts ~100 characters; vectors 16-d (the page maps them but
never reads them unless a search runs, so their width does not change these figures).

Legibility, from the renderer's data-es-* hooks after its draws (every size, and `--atlas DIR`, a built atlas):
labels drawn at the opening view and their pairwise overlaps (goal 0); the opening view against the 1st-99th
percentile box; and, over 5 wheel zooms, the time from the wheel event to labels re-placed (the draw that
follows it: points, labels, hooks; median) with the label placement alone (`data-es-label-ms`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import _common
import numpy as np
import pandas as pd

from components.atlas import payload as atlas_payload
from tests.e2e.conftest import CHROMIUM, stop_server
from tests.e2e.test_atlas_e2e import WEBGL_ARGS, start_atlas_server

PLOTLY_WRAPPER = """
import sys
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd, plotly.graph_objects as go, streamlit as st
pts = pd.read_parquet({points!r})
fig = go.Figure(go.Scattergl(x=pts.x.to_numpy(), y=pts.y.to_numpy(), mode="markers", text=pts.text,
                marker=dict(size=3, color=pts.cluster.to_numpy(), colorscale="Turbo"), hoverinfo="text"))
st.plotly_chart(fig, key="scatter")
"""


def write_atlas(folder: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, 2)) * 10
    cluster = rng.integers(0, 50, n)
    xy = (centres[cluster] + rng.normal(size=(n, 2))).astype(np.float32)
    filler = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore"
    texts = [f"{i} topic {c}: {filler}" for i, c in enumerate(cluster)]
    folder.mkdir(parents=True)
    pd.DataFrame(
        {"id": np.arange(n), "x": xy[:, 0], "y": xy[:, 1], "cluster": cluster.astype(np.int32), "text": texts}
    ).to_parquet(folder / "points.parquet")
    vectors = np.lib.format.open_memmap(folder / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, 16))
    for start in range(0, n, 200_000):  # chunked: no [n, 16] float64 temporaries
        block = rng.normal(size=(min(200_000, n - start), 16)).astype(np.float32)
        vectors[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    vectors.flush()
    sizes = np.bincount(cluster, minlength=50)
    pd.DataFrame(
        {
            "cluster": np.arange(50, dtype=np.int32),
            "size": sizes,
            "x": centres[:, 0],
            "y": centres[:, 1],
            "name": [f"topic {c}" for c in range(50)],
        }
    ).to_parquet(folder / "clusters.parquet")
    (folder / "atlas.json").write_text(json.dumps({"model": None, "N": n, "D": 16}))


def payload_bytes(folder: Path) -> int:
    pts = pd.read_parquet(folder / "points.parquet", columns=["x", "y", "cluster"])
    colours = atlas_payload.colouring(pts["cluster"])
    return len(json.dumps(atlas_payload.points_payload(pts.x.to_numpy(), pts.y.to_numpy(), colours.codes)))


def rss_mb(pid: int) -> dict:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: round(int(fields[k].split()[0]) / 1024) for k in ("VmRSS", "VmHWM")}


def open_timed(browser, url: str, selector: str, js_mark: str | None, shot: Path | None, timeout_s: float) -> dict:
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, device_scale_factor=1)
    try:
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(selector, timeout=timeout_s * 1000)
        out = {"wall_s": round(time.perf_counter() - start, 2)}
        if js_mark:
            out["browser_s"] = round(page.evaluate(js_mark) / 1000, 2)
        if shot:
            page.wait_for_timeout(500)
            page.screenshot(path=str(shot), full_page=True)
        return out
    finally:
        page.close()


def _hooks(page) -> dict:
    root = page.locator(".atlas-wrap")
    return {k: root.get_attribute(f"data-es-{k}") for k in ("labels", "view", "hits", "label-ms", "draws")}


def legibility(browser, url: str, name: str, points: pd.DataFrame, shot: Path | None) -> dict:
    """Labels and overlaps at the opening view, the view against the percentile box, zoom -> labels re-placed."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, device_scale_factor=1)
    try:
        page.goto(f"{url}/atlas?atlas={name}")
        page.wait_for_selector(f"canvas.atlas-gl[data-drawn='{len(points)}']", timeout=180_000)
        page.wait_for_timeout(1000)
        hooks = _hooks(page)
        labels = json.loads(hooks["labels"])
        overlaps = sum(1 for i, a in enumerate(labels) for b in labels[i + 1 :]
                       if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
        box = [float(np.percentile(points[c], q)) for c in ("x", "y") for q in (1, 99)]
        view = json.loads(hooks["view"])
        out = {"labels_at_opening_view": len(labels), "label_overlaps": overlaps,
               "view": [round(v, 3) for v in view], "p1_p99_box": [round(v, 3) for v in box]}
        if shot:
            page.screenshot(path=str(shot))
        canvas = page.locator("canvas.atlas-gl").bounding_box()
        page.mouse.move(canvas["x"] + canvas["width"] * 0.45, canvas["y"] + canvas["height"] * 0.5)
        times, place = [], []
        for _ in range(5):
            before = int(_hooks(page)["draws"])
            # the wheel event and the wait for the next draw's hooks both in the page: one clock
            ms = page.evaluate(
                """([x, y, before]) => new Promise((done) => {
                     const root = document.querySelector('.atlas-wrap') ||
                       [...document.querySelectorAll('*')].map((e) => e.shadowRoot?.querySelector('.atlas-wrap')).find(Boolean);
                     const stage = root.querySelector('.atlas-stage');
                     const t0 = performance.now();
                     stage.dispatchEvent(new WheelEvent('wheel', {deltaY: -240, clientX: x, clientY: y, bubbles: true, cancelable: true}));
                     const poll = () => Number(root.getAttribute('data-es-draws')) > before
                       ? done(performance.now() - t0) : requestAnimationFrame(poll);
                     poll();
                   })""",
                [canvas["x"] + canvas["width"] * 0.45, canvas["y"] + canvas["height"] * 0.5, before],
            )
            times.append(ms)
            place.append(float(_hooks(page)["label-ms"]))
        zoomed = json.loads(_hooks(page)["labels"])
        out.update(zoom_to_labels_replaced_ms=_common.summary_ms([t / 1000 for t in times]),
                   label_placement_ms_median=round(float(np.median(place)), 2),
                   labels_after_5_zooms=len(zoomed))
        return out
    finally:
        page.close()


def built_atlas(browser, folder: Path) -> dict:
    """Legibility figures for an atlas already built (its folder's parent is served as the atlas folder)."""
    folder = folder.resolve()
    proc, url = start_atlas_server(folder.parent, Path(tempfile.mkdtemp(prefix="atlas_bench_")))
    try:
        points = pd.read_parquet(folder / "points.parquet", columns=["x", "y"])
        row = {"n": len(points), "first_open": open_timed(browser, f"{url}/atlas?atlas={folder.name}",
                                                          f"canvas.atlas-gl[data-drawn='{len(points)}']",
                                                          "() => window.__atlasDrawn", None, 180)}
        row.update(legibility(browser, url, folder.name, points, Path("/tmp/shots") / f"atlas_{folder.name}.png"))
        row["server_rss_mb"] = rss_mb(proc.pid)
        return row
    finally:
        stop_server(proc)


def main() -> None:
    parser = _common.arguments(__doc__, runs=None)
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--no-plotly", action="store_true")
    parser.add_argument("--atlas", type=Path, default=None, help="also measure this built atlas folder")
    args = _common.parse(parser)
    sizes = args.sizes if args.sizes is not None else ([20_000] if args.quick else [100_000, 1_000_000])
    shots = Path("/tmp/shots")
    shots.mkdir(exist_ok=True)
    out: dict = {
        "machine": _common.machine(),
        "renderer": "encoderscope WebGL (gl.POINTS, uint16 x/y + uint8 colour)",
        "sizes": {},
    }
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="atlas_bench_"))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=WEBGL_ARGS)
            for n in sizes:
                name = f"n{n}"
                write_atlas(work / "atlases" / name, n)
                row: dict = {"payload_mb": round(payload_bytes(work / "atlases" / name) / 1e6, 2)}
                proc, url = start_atlas_server(work / "atlases", work)
                try:
                    row["server_rss_before_mb"] = rss_mb(proc.pid)
                    # Streamlit's own start-up in this browser: a page that only writes one word.
                    row["baseline_empty_page"] = open_timed(browser, f"{url}/", "text=home", None, None, 60)
                    for run in ("cold", "warm"):
                        row[run] = open_timed(
                            browser,
                            f"{url}/atlas?atlas={name}",
                            f"canvas.atlas-gl[data-drawn='{n}']",
                            "() => window.__atlasDrawn",
                            shots / f"atlas_{name}.png" if run == "warm" else None,
                            timeout_s=120,
                        )
                        _common.progress({n: row})
                    row["server_rss_after_mb"] = rss_mb(proc.pid)
                    points = pd.read_parquet(work / "atlases" / name / "points.parquet", columns=["x", "y"])
                    row["legibility"] = legibility(browser, url, name, points, None)
                    _common.progress({n: row})
                finally:
                    stop_server(proc)
                if n == 100_000 and not args.no_plotly:
                    points = work / "atlases" / name / "points.parquet"
                    proc, url = start_atlas_server(
                        work / "atlases", work, PLOTLY_WRAPPER.format(root=str(_common.ROOT), points=str(points))
                    )
                    try:
                        row["plotly_scattergl"] = {
                            run: open_timed(
                                browser,
                                url,
                                ".js-plotly-plot canvas",
                                None,
                                shots / "atlas_plotly_100k.png" if run == "warm" else None,
                                120,
                            )
                            for run in ("cold", "warm")
                        }
                    finally:
                        stop_server(proc)
                out["sizes"][n] = row
                shutil.rmtree(work / "atlases" / name)
            if args.atlas:
                out["atlas"] = built_atlas(browser, args.atlas)
            browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _common.emit(out)


if __name__ == "__main__":
    main()
