"""The attention page in real headless Chromium against a real `streamlit run` server: time from an action to
the main heatmap drawn, and the bytes the server sends, for a bert-base-sized encoder (BertConfig() defaults,
random weights saved to a temporary folder and loaded as a local model folder, the bundled tokenizer).

    python bench/attention_page.py               # 64, 256 and 512 tokens, median of 3
    python bench/attention_page.py --quick       # 64 tokens, 1 run
    python bench/attention_page.py --old-page a0d5f91   # also the former Plotly page, in the same run

Per length, on one page of one server, after one untimed warm-up of each action:
- new text: type a new text (Ctrl+Enter) -> the main map of that text drawn (the renderer's own mark:
  `__esHeatmap.t`, ms since navigation, set after the canvas draw; the clock starts in the page before the key press);
- layer change: the layer slider moved one step with the keyboard -> the new layer's map drawn; the bytes the
  browser received over the websocket from the key press until the run finished (`ws_bytes`), and the two
  payloads (the selected head first, then the layer's other heads with the exact low bytes);
- head change: a head button clicked in the map -> drawn (in the browser, next animation frame).
The bare forward pass with attentions (the model's own call, as `es.attention` makes it, on new texts) is timed
in this process, taking turns with the new-text runs, and every page figure is also given as a multiple of its
median; `server_attention_job_ms` is the page's own `es.attention` call for those texts, from the server's log
(one line per compute-pool job), and `new_text_x_server_job` the new-text time as a multiple of it. Every text is new to the
server (no cache hits). The JSON records the machine's load average at the start and the end: the machine is
shared, read the figures with it.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import _common
from attention import bert_base_folder, forward, text_of

import encoderscope as es
from components.attention import payloads
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_idle

MAIN = "[...(window.__esHeatmaps || [])].find(r => r.isConnected && /^\\d+:(\\d+|mean)$/.test(r.dataset.esHeatmap || ''))"
# The canvas page: the renderer's own mark, set after the draw.
NEW_STATE = (f"(() => {{ const r = {MAIN}; if (!r) return null; const h = r.__esHeatmap; "
             "return {tag: r.dataset.esHeatmap, id: h.id, t: h.t, exact: h.exact}; })()")
# The former Plotly page (--old-page): the main chart as Plotly holds it; `t` is when the poll saw it.
OLD_STATE = """(() => {
  const title = g => ((g.layout && g.layout.title || {}).text || '').replace(/<[^>]+>/g, '');  // Streamlit adds <b>
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => !g.closest('[data-stale="true"]') &&
      /^Layer \\d+, /.test(title(g)));
  if (!gd) return null;
  const m = title(gd).match(/^Layer (\\d+), (?:head (\\d+)|mean)/), tt = gd.layout.xaxis.ticktext || [];
  return {tag: m[1] + ':' + (m[2] === undefined ? 'mean' : m[2]), id: tt.length + ':' + tt.slice(0, 12).join(','),
          t: performance.now(), exact: true};
})()"""
# The old page, measured earlier in Chromium on this machine (issue 15), bert-base size at 512 tokens.
OLD_PAGE_512 = {"new_text_s": [3.5, 3.9], "layer_change_s": [0.63, 0.71], "head_change_s": 0.65, "forward_s": 0.65}


def main_state(page, state: str) -> dict | None:
    return page.evaluate(f"() => {state}")


def wait_main(page, state: str, condition: str, timeout_s: float = 180) -> dict:
    """The main map's state `s` ({tag, id, t, exact}) once `condition` (JS over `s`) holds."""
    handle = page.wait_for_function(f"() => {{ const s = {state}; return s && ({condition}) ? s : null; }}",
                                    timeout=timeout_s * 1000)
    return handle.json_value()


def settle(page, state: str) -> None:
    """The run finished and, on the canvas page, the layer's store arrived (the map redrawn with exact values)."""
    wait_idle(page)
    wait_main(page, state, "s.exact")


def new_text(page, state: str, text: str) -> float:
    """ms from the key press that submits `text` to the new text's map drawn."""
    before = main_state(page, state)["id"]
    box = page.get_by_label("Text")
    box.fill(text)
    t0 = page.evaluate("() => performance.now()")
    box.press("Control+Enter")
    drawn = wait_main(page, state, f"s.id !== {before!r}")
    settle(page, state)
    return drawn["t"] - t0


def slider_step(page, state: str, index: int, part: int, frames: list[int] | None = None) -> tuple[float, int]:
    """(ms from a key press on slider `index` to the map whose tag part `part` moved one step drawn, websocket
    bytes received until the run finished). Slider 0 is the layer; on the old page slider 1 is the head."""
    now = main_state(page, state)["tag"].split(":")
    value = int(now[part])
    key, target = ("ArrowRight", value + 1) if value < 11 else ("ArrowLeft", value - 1)
    want = f"{target}:{now[1]}" if part == 0 else f"{now[0]}:{target}"
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]').nth(index)
    thumb.focus()
    if frames is not None:
        frames.clear()
    t0 = page.evaluate("() => performance.now()")
    thumb.press(key)
    drawn = wait_main(page, state, f"s.tag === '{want}'")
    settle(page, state)
    return drawn["t"] - t0, sum(frames or [])


def head_button(page, head: str) -> float:
    """ms from a head button's click to its map drawn (in the browser; measured in the page)."""
    return page.evaluate(
        f"""async () => {{
          const r = {MAIN};
          const button = r.querySelector('button[data-view="{head}"]');
          const t0 = performance.now();
          button.click();
          await new Promise(ok => requestAnimationFrame(() => ok()));
          if (!r.dataset.esHeatmap.endsWith(':{head}')) throw new Error('not drawn: ' + r.dataset.esHeatmap);
          return performance.now() - t0;
        }}"""
    )


def payload_sizes(model, text: str) -> dict:
    """Bytes of the two payloads of one layer (the page's own builders), the first one alone being drawn."""
    res = es.attention(model, text)
    q = payloads.layer_quantised(res.weights[0])
    first = payloads.main_map(res, q, 0, "0", "x", "all")
    store = payloads.layer_store(q, res.num_heads, "x")
    return {"first_payload_bytes": len(first), "store_payload_bytes": len(store)}


def server_jobs(log: Path) -> list[float]:
    """Seconds of every `es.attention` job the server ran, from its log (the compute pool logs one line a job)."""
    return [float(m) for m in re.findall(r"job attention done: waited [0-9.]+ s, ran ([0-9.]+) s", log.read_text())]


def measure(browser, url: str, folder: str, model, tokenizer, n: int, runs: int, old: bool = False,
            log: Path | None = None) -> dict:
    """One length on one page: new texts (taking turns with the bare forward pass), layer and head changes."""
    state = OLD_STATE if old else NEW_STATE
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, device_scale_factor=1)
    frames: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda p: frames.append(len(p))))
    try:
        query = urlencode({"model": folder, "text": text_of(tokenizer, n), "layer": 0, "head": 0})
        page.goto(f"{url}/attention?{query}")
        wait_main(page, state, "true", timeout_s=300)  # loads the model
        settle(page, state)
        texts = iter(text_of(tokenizer, n, shift=i + 1) for i in range(2 * runs + 2))
        forward(model, next(texts))  # warm-up of both
        new_text(page, state, next(texts))
        fwd_times, open_ms = [], []
        for _ in range(runs):  # taking turns, so the machine's load hits both alike
            start = time.perf_counter()
            forward(model, next(texts))
            fwd_times.append(time.perf_counter() - start)
            open_ms.append(new_text(page, state, next(texts)))
        # The canvas page's server logs each es.attention job: the same forward pass, timed where the page runs it.
        jobs = server_jobs(log)[-runs:] if log is not None and not old else []
        slider_step(page, state, 0, 0, frames)  # warm-up
        layers = [slider_step(page, state, 0, 0, frames) for _ in range(runs)]
        if old:
            slider_step(page, state, 1, 1)
            heads = [slider_step(page, state, 1, 1)[0] for _ in range(runs)]
        else:
            head_button(page, "1")  # warm-up
            heads = [head_button(page, str(h)) for h in range(2, 2 + runs)]
            wait_idle(page)  # the head change's own rerun (server state, URL)
        fwd = statistics.median(fwd_times)
        out = {
            "tokens": n,
            "forward_ms": _common.ms(fwd),
            "new_text_ms": _common.summary_ms([t / 1000 for t in open_ms]),
            "layer_change_ms": _common.summary_ms([t / 1000 for t, _ in layers]),
            "head_change_ms": _common.summary_ms([t / 1000 for t in heads]),
            "ws_bytes_per_layer_change": int(statistics.median(b for _, b in layers)),
        }
        if not old:
            out.update(payload_sizes(model, text_of(tokenizer, n)))
        if len(jobs) == runs:
            out["server_attention_job_ms"] = _common.summary_ms(jobs)
            out["new_text_x_server_job"] = round(out["new_text_ms"]["median_ms"] / (1000 * statistics.median(jobs)), 2)
        out["new_text_x_forward"] = round(out["new_text_ms"]["median_ms"] / out["forward_ms"], 2)
        out["layer_change_x_forward"] = round(out["layer_change_ms"]["median_ms"] / out["forward_ms"], 2)
        if n == 512:
            shots = _common.ROOT / "screenshots"
            shots.mkdir(exist_ok=True)
            page.screenshot(path=str(shots / f"bench_attention_512{'_old' if old else ''}.png"), full_page=True)
        return out
    finally:
        page.close()


def old_tree(commit: str, folder: Path) -> Path:
    """This repository's page at `commit` (the Plotly page before the canvas heatmaps), exported with git archive."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(_common.ROOT), "archive", commit], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def main() -> None:
    parser = _common.arguments(__doc__, runs=3)
    parser.add_argument("--lengths", type=int, nargs="+", default=None)
    parser.add_argument("--old-page", metavar="COMMIT", default=None,
                        help="also measure the page at this commit (the Plotly page: a0d5f91), on its own server, "
                             "length by length, taking turns with the canvas page")
    args = _common.parse(parser)
    lengths = args.lengths or ([64] if args.quick else [64, 256, 512])
    out: dict = {"machine": _common.machine(), "runs": args.runs, "model": "bert-base size (BertConfig(), random)",
                 "old_page_512_issue_15": OLD_PAGE_512, "results": [], "old_page": []}
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = bert_base_folder(Path(tmp) / "bert-base")
        model = es.load_encoder(folder)  # the same loader as the page: eager attention, eval mode
        servers = {}
        try:
            servers["new"] = start_server()
            if args.old_page:
                old_dir = old_tree(args.old_page, Path(tmp) / "old")
                servers["old"] = start_server(cwd=old_dir)
                out["old_page_commit"] = args.old_page
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                for n in lengths:
                    for name, (_, url, log) in servers.items():
                        start = time.perf_counter()
                        row = measure(browser, url, folder, model, model.tokenizer, n, args.runs, old=name == "old",
                                      log=log)
                        row["bench_s"] = round(time.perf_counter() - start, 1)
                        out["results" if name == "new" else "old_page"].append(row)
                        _common.progress({name: row})
                browser.close()
        finally:
            for proc, _, _ in servers.values():
                stop_server(proc)
    _common.emit(out)


if __name__ == "__main__":
    main()
