"""Benchmark: embedding throughput vs sentence-transformers, UMAP cold/warm, end-to-end. Prints JSON.

Usage: python bench/embeddings.py [--repeats 3] [--skip-e2e]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import encoderscope as es  # noqa: E402
from encoderscope import corpora  # noqa: E402

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


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def first_projection_after_start(n: int = 200, delay: float = 10.0) -> dict:
    """Start a real server, open the home page (warm-up starts), then 10 s later time the embeddings page."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_idle

    lines = "\n".join(corpus(n))
    proc, url, _ = start_server()
    started = time.perf_counter()
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
                "opened_at_s": round(t0 - started, 1),
                "paste_to_plot_s": round(time.perf_counter() - t0, 2),
            }
            browser.close()
    finally:
        stop_server(proc)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    enc = es.load_encoder(None)
    st_model = SentenceTransformer(enc.path, device="cpu")
    texts = corpus(1000)
    es.embed(enc, texts[:64])
    st_model.encode(texts[:64])
    # Alternate the two so that load from other processes on a shared machine hits both alike.
    ours_runs, theirs_runs = [], []
    for _ in range(args.repeats):
        ours_runs.append(median_s(lambda: es.embed(enc, texts, batch_size=32), 1))
        theirs_runs.append(median_s(lambda: st_model.encode(texts, batch_size=32, normalize_embeddings=True), 1))
    ours, theirs = statistics.median(ours_runs), statistics.median(theirs_runs)
    out: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
            "torch_threads": torch.get_num_threads(),
        },
        "throughput_sent_per_s": {
            "encoderscope": round(1000 / ours, 1),
            "sentence_transformers": round(1000 / theirs, 1),
            "ratio": round(theirs / ours, 3),
        },
        "umap_s": {},
    }
    rng = np.random.default_rng(0)
    for n in (1000, 5000, 20000):
        cold = fresh_process_umap(n)  # numba's disk cache as `make` left it (warm-up)
        with tempfile.TemporaryDirectory() as empty:  # a first start with nothing compiled yet
            compile_ = fresh_process_umap(n, {"NUMBA_CACHE_DIR": empty})
        X = rng.normal(size=(n, 384)).astype(np.float32)
        es.project(X, "umap")  # compile in this process
        warm = median_s(lambda X=X: es.project(X, "umap"), 1 if n > 5000 else args.repeats)
        out["umap_s"][str(n)] = {
            "fresh_process_empty_numba_cache": round(compile_, 1),
            "fresh_process_disk_cache": round(cold, 1),
            "warm": round(warm, 2),
        }
        print(json.dumps({n: out["umap_s"][str(n)]}), file=sys.stderr)
    t0 = time.perf_counter()
    X = es.embed(enc, texts)
    es.project(X, "umap")
    out["end_to_end_1k_embed_plus_umap_warm_s"] = round(time.perf_counter() - t0, 2)
    if not args.skip_e2e:
        out["first_projection_10s_after_start"] = first_projection_after_start()
    out["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
