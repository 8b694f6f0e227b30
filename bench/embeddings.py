"""Benchmark: embedding throughput vs sentence-transformers, UMAP cold/warm, end-to-end. Prints JSON.

throughput_sent_per_s: 1,000 sentences, batch 32, from the median of `runs` runs of each library (taking turns);
umap_s: per size, one fresh process with an empty numba cache, one with the disk cache, and the median of
  `runs` warm calls in this process;
first_projection_10s_after_start: `runs` times, a fresh server each: the clock starts when `streamlit run` is
  launched (server start-up included), the embeddings page opens 10 s later, and 200 pasted sentences are timed
  to the plot; medians with every run listed.
Usage: python bench/embeddings.py [--runs 3] [--skip-e2e] [--quick]
  (--quick: 200 sentences, UMAP at 1k only, 1 run; the browser part still runs unless --skip-e2e)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import ROOT, arguments, emit, machine, median_time, parse, progress, round_robin

import encoderscope as es
from encoderscope import corpora

COLD_UMAP = (  # a fresh process: import + numba compile + fit
    "import sys, time, numpy as np; t = time.perf_counter(); from encoderscope import projection;"
    "x = np.random.default_rng(0).normal(size=(int(sys.argv[1]), 384)).astype('float32');"
    "projection.project(x, 'umap'); print(time.perf_counter() - t)"
)


def fresh_process_umap(n: int, env: dict | None = None) -> float:
    cmd = [sys.executable, "-c", COLD_UMAP, str(n)]
    return float(subprocess.check_output(cmd, cwd=ROOT, env={**os.environ, **(env or {})}))


def corpus(n: int) -> list[str]:
    base = [t for c in corpora.CORPORA.values() for t, _ in c]
    return [f"{base[i % len(base)]} (variant {i})" for i in range(n)]


def first_projection_after_start(n: int = 200, delay: float = 10.0) -> dict:
    """Launch a real server, open the home page (warm-up starts), then `delay` s after the launch time the
    embeddings page from opening to the plot. The launch is the start: server start-up counts."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_idle

    lines = "\n".join(corpus(n))
    started = time.perf_counter()
    proc, url, _ = start_server()
    healthy = time.perf_counter() - started
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(300_000)
            page.goto(url)
            wait_idle(page)
            time.sleep(max(0.0, delay - (time.perf_counter() - started)))
            t0 = time.perf_counter()
            page.goto(f"{url}/embeddings")
            page.get_by_text("Your sentences").click()
            box = page.get_by_label("Sentences (one per line)")
            box.fill(lines)
            box.press("Control+Enter")
            page.wait_for_function(
                f"() => document.body.innerText.includes('{n} vectors')"
                " && document.querySelector('.js-plotly-plot .scatterlayer')"
            )
            wait_idle(page)
            result = {
                "sentences": n,
                "server_healthy_s": round(healthy, 1),
                "opened_at_s": round(t0 - started, 1),
                "paste_to_plot_s": round(time.perf_counter() - t0, 2),
            }
            browser.close()
    finally:
        stop_server(proc)
    return result


def first_projections(runs: int, n: int) -> dict:
    """`first_projection_after_start` in `runs` fresh servers: medians, and every run."""
    each = [first_projection_after_start(n) for _ in range(runs)]
    return {
        "runs": runs,
        "sentences": n,
        "median_opened_at_s": round(statistics.median(r["opened_at_s"] for r in each), 1),
        "median_paste_to_plot_s": round(statistics.median(r["paste_to_plot_s"] for r in each), 2),
        "each": each,
    }


def main() -> None:
    parser = arguments(__doc__, runs=3)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parse(parser)
    from sentence_transformers import SentenceTransformer

    n_texts = 200 if args.quick else 1000
    enc = es.load_encoder(None)
    st_model = SentenceTransformer(enc.path, device="cpu")
    texts = corpus(n_texts)
    es.embed(enc, texts[:64])
    st_model.encode(texts[:64])
    # Taking turns, so that load from other processes on a shared machine hits both alike.
    times = round_robin(
        {
            "ours": lambda: es.embed(enc, texts, batch_size=32),
            "theirs": lambda: st_model.encode(texts, batch_size=32, normalize_embeddings=True),
        },
        args.runs,
        warm=False,  # warmed above on 64 sentences
    )
    ours, theirs = statistics.median(times["ours"]), statistics.median(times["theirs"])
    out: dict = {
        "machine": machine(),
        "runs": args.runs,
        "quick": args.quick,
        "throughput_sent_per_s": {
            "sentences": n_texts,
            "encoderscope": round(n_texts / ours, 1),
            "sentence_transformers": round(n_texts / theirs, 1),
            "ratio": round(theirs / ours, 3),
        },
        "umap_s": {},
    }
    rng = np.random.default_rng(0)
    for n in (1000,) if args.quick else (1000, 5000, 20000):
        cold = fresh_process_umap(n)  # numba's disk cache as `make` left it (warm-up)
        with tempfile.TemporaryDirectory() as empty:  # a first start with nothing compiled yet
            compile_ = fresh_process_umap(n, {"NUMBA_CACHE_DIR": empty})
        X = rng.normal(size=(n, 384)).astype(np.float32)
        warm, _ = median_time(lambda X=X: es.project(X, "umap"), args.runs)  # the warm-up call compiles
        out["umap_s"][str(n)] = {
            "fresh_process_empty_numba_cache": round(compile_, 1),
            "fresh_process_disk_cache": round(cold, 1),
            "warm": round(warm, 2),
        }
        progress({n: out["umap_s"][str(n)]})
    end_to_end, _ = median_time(lambda: es.project(es.embed(enc, texts), "umap"), args.runs, warm=False)
    out["end_to_end_embed_plus_umap_warm_s"] = round(end_to_end, 2)  # the throughput's sentences
    if not args.skip_e2e:
        out["first_projection_10s_after_start"] = first_projections(args.runs, 200)
    emit(out)


if __name__ == "__main__":
    main()
