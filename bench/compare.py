"""Benchmark: es.compare against its targets. Prints JSON.

layer_similarity: MiniLM vs MPNet on `--texts` sentences (default 1,000), metric CKA, against the two models'
  plain forward passes with hidden states on the same texts (batch 32, sorted by length, output_hidden_states):
  the two take turns (round robin), each timed run on texts no earlier run saw; ratio of medians, target <= 1.25.
neighbours: `es.compare.neighbours` at `--points` (default 100,000) 384-d against 768-d vectors (clustered
  synthetic vectors, b a noisy linear map of a: real embeddings of 10^5 texts would take hours to compute here),
  k = 10, exact; target <= 180 s at 10^5, <= 1,800 s and RSS <= 4 GB at 10^6. Peak RSS and the CPU seconds
  (cpu_s: on a shared machine, cpu_s / 2 estimates the time on two idle cores) are reported.
Every figure carries the load average (the machine is shared). A target missed is listed under "misses".
Usage: python bench/compare.py [--runs 3] [--texts 1000] [--points 100000 ...] [--skip-layers] [--quick]
  (--quick: 100 texts, 5,000 points, 1 run)
"""

from __future__ import annotations

import itertools
import resource
import time

import numpy as np
import torch
from _common import arguments, emit, load_avg, machine, parse, progress, round_robin, summary_ms

import encoderscope as es
from encoderscope import corpora

TARGET_LAYERS = 1.25
TARGET_NEIGHBOURS_S = {100_000: 180.0, 1_000_000: 1800.0}


def texts(n: int, run: int) -> list[str]:
    base = [t for c in corpora.CORPORA.values() for t, _ in c]
    return [f"{base[i % len(base)]} (take {run}, variant {i})" for i in range(n)]


@torch.inference_mode()
def forward_passes(model, items: list[str], batch_size: int = 32) -> None:
    """The baseline: the model's forward passes with hidden states, batched as es.embed batches."""
    order = np.argsort([-len(t) for t in items], kind="stable")
    for start in range(0, len(items), batch_size):
        batch = [items[i] for i in order[start : start + batch_size]]
        enc = model.tokenizer(batch, padding=True, truncation=True, max_length=model.max_length, return_tensors="pt")
        model.model(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}, output_hidden_states=True)


def bench_layers(n: int, runs: int) -> dict:
    a, b = es.load_encoder(None), es.load_encoder("sentence-transformers/all-mpnet-base-v2")
    takes = {"forward": itertools.count(1), "layer_similarity": itertools.count(1)}
    warm = texts(16, 0)
    forward_passes(a, warm), forward_passes(b, warm), es.compare.layer_similarity(a, b, warm)  # untimed warm-up

    def forward():
        items = texts(n, next(takes["forward"]))
        forward_passes(a, items)
        forward_passes(b, items)

    def similarity():
        es.compare.layer_similarity(a, b, texts(n, next(takes["layer_similarity"])), metric="cka")

    load_before = load_avg()
    times = round_robin({"forward": forward, "layer_similarity": similarity}, runs, warm=False)
    fwd, sim = (float(np.median(times[k])) for k in ("forward", "layer_similarity"))
    return {
        "texts": n,
        "forward_passes": summary_ms(times["forward"]),
        "layer_similarity": summary_ms(times["layer_similarity"]),
        "ratio": round(sim / fwd, 3),
        "target_ratio": TARGET_LAYERS,
        "load_avg": [load_before, load_avg()],
    }


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered 384-d vectors and a noisy 768-d linear image of them (neighbours partly kept)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, 384)).astype(np.float32)
    a = 2.0 * centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, 384)).astype(np.float32)
    mix = rng.normal(size=(384, 768)).astype(np.float32) / np.sqrt(384)
    b = a @ mix + 0.7 * rng.normal(size=(n, 768)).astype(np.float32)
    return a, b


def bench_neighbours(n: int) -> dict:
    Xa, Xb = synthetic(n)
    load_before = load_avg()
    start, cpu_start = time.perf_counter(), time.process_time()
    shown = set()

    def tiles(done: int, total: int) -> None:  # a line per tenth of the tiles, so a long run shows its pace
        tenth = 10 * done // total
        if tenth not in shown:
            shown.add(tenth)
            progress({"points": n, "tiles": f"{done}/{total}", "s": round(time.perf_counter() - start, 1)})

    nb = es.compare.neighbours(Xa, Xb, k=10, progress=tiles)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "points": n,
        "dims": [384, 768],
        "k": 10,
        "seconds": round(seconds, 1),
        # CPU seconds of this process (all threads): on a shared machine, cpu_s / 2 estimates the wall time the
        # two cores would take if they were ours alone
        "cpu_s": round(cpu, 1),
        "exact": nb.exact,
        "mutual_knn": round(nb.mutual_knn, 4),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "target_s": TARGET_NEIGHBOURS_S.get(n),
        "load_avg": [load_before, load_avg()],
    }


def main() -> None:
    parser = arguments(__doc__, runs=3)
    parser.add_argument("--texts", type=int, default=None)
    parser.add_argument("--points", type=int, nargs="*", default=None)
    parser.add_argument("--skip-layers", action="store_true")
    args = parse(parser)
    n_texts = args.texts or (100 if args.quick else 1000)
    points = args.points if args.points is not None else ([5000] if args.quick else [100_000])
    out: dict = {"machine": machine(), "torch_threads": torch.get_num_threads(), "runs": args.runs}
    misses = []
    if not args.skip_layers:
        out["layer_similarity"] = layers = bench_layers(n_texts, args.runs)
        progress(layers)
        if layers["ratio"] > TARGET_LAYERS:
            misses.append(f"layer_similarity ratio {layers['ratio']} > {TARGET_LAYERS}")
    out["neighbours"] = []
    for n in points:
        res = bench_neighbours(n)
        progress(res)
        out["neighbours"].append(res)
        target = TARGET_NEIGHBOURS_S.get(n)
        if target and res["seconds"] > target:
            misses.append(f"neighbours at {n}: {res['seconds']} s > {target} s (load {res['load_avg']})")
    out["misses"] = misses
    emit(out)


if __name__ == "__main__":
    main()
