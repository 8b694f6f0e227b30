"""Benchmark: the corpus atlas. Prints JSON.

embedding: sentences/s of the atlas's local engine (length-sorted shards, `embeddings.embed`) against
  sentence-transformers `encode` (same model, batch 64), taking turns; and the Dask engine on a 2-worker
  LocalCluster (127.0.0.1) against the local engine, cluster start-up and model loading excluded (warmed first);
layout: N precomputed 384-d vectors (seeded Gaussian mixture of 50 clusters, L2-normalised, memory-mapped)
  through PCA -> UMAP on a 20,000 sample -> placement -> HDBSCAN -> near-duplicates, seconds per stage, and the
  10-NN label accuracy of the 2-D layout vs the original vectors (on a seeded 50,000-point subsample), and the
  share of 1,000 planted near-duplicate pairs (cosine about 0.995) that the duplicate search finds;
search: exact cosine top-10 over the N vectors: the first query after opening, then the median warm query;
rss_mb: peak resident memory of this process.
real (--real DIR): a real corpus, the short descriptions of every Debian bookworm package (63,440, with the
  archive section as a label), read from this machine's apt lists (`apt-get update` fetches them): `atlas build`
  with the local engine (seconds per stage), the 10-NN agreement of the section label in the 384-d vectors and
  in 2-D, and determinism: the same atlas rebuilt with --vectors from its own vectors.npy must give a
  bit-identical points.parquet (x, y, cluster). The atlas is kept in DIR for bench/atlas_page.py --atlas.
Usage: python bench/atlas.py [--runs 3] [--quick] [--n 1000000] [--skip-embedding] [--skip-layout] [--real DIR]
  (--quick: 1,000 sentences, layout and search at 100,000 points, 1 run)
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import arguments, emit, machine, parse, progress, round_robin, summary_ms

from encoderscope import corpora


def sentences(n: int) -> list[str]:
    base = [t for c in corpora.CORPORA.values() for t, _ in c]
    return [f"{base[i % len(base)]} (variant {i})" for i in range(n)]


def embedding(n: int, runs: int) -> dict:
    from sentence_transformers import SentenceTransformer

    from encoderscope.atlas.engines import DaskEngine, LocalEngine, ModelSpec
    from encoderscope.models import bundled_encoder_path

    texts = sentences(n)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    shard = 128  # enough shards for every Dask worker to have work (one 1,024-row shard would idle one of two)
    shards = {s: [texts[i] for i in order[s * shard : (s + 1) * shard]] for s in range(-(-n // shard))}
    st = SentenceTransformer(str(bundled_encoder_path()), device="cpu")
    local = LocalEngine(ModelSpec())
    times = round_robin({
        "sentence_transformers": lambda: st.encode(texts, batch_size=64),
        "local_engine": lambda: list(local.run(shards)),
    }, runs)
    out = {f"{k}_sent_per_s": round(n / min(v), 1) for k, v in times.items()}
    out["local_vs_st"] = round(min(times["sentence_transformers"]) / min(times["local_engine"]), 3)
    progress({"embedding": out})
    dask = DaskEngine(ModelSpec())  # its own LocalCluster: 2 workers x 1 thread on 127.0.0.1
    try:
        list(dask.run({0: texts[:64], 1: texts[64:128]}))  # load the model on both workers
        times = round_robin({"dask_engine": lambda: list(dask.run(shards)),
                             "local_engine": lambda: list(local.run(shards))}, runs, warm=False)
    finally:
        dask.close()
    out["dask_sent_per_s"] = round(n / min(times["dask_engine"]), 1)
    out["dask_vs_local"] = round(min(times["local_engine"]) / min(times["dask_engine"]), 3)
    out["sentences"], out["runs"] = n, runs
    return out


PLANTED = 1000


def mixture(path: Path, n: int, d: int = 384, k: int = 50, spread: float = 3.5, seed: int = 0):
    """A memory-mapped L2-normalised Gaussian mixture `[n, d]` float32 written in chunks, with PLANTED
    near-duplicate pairs; returns (labels `[n]`, planted pairs `[PLANTED, 2]`)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)).astype(np.float32)
    labels = rng.integers(0, k, n)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for start in range(0, n, 100_000):
        lab = labels[start : start + 100_000]
        block = centres[lab] + spread * rng.normal(size=(len(lab), d)).astype(np.float32)
        out[start : start + len(lab)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    # planted near-duplicates (cosine about 0.99): the pairs a RAG index is crowded with
    pairs = rng.choice(n, size=(PLANTED, 2), replace=False)
    for a, b in pairs:
        near = out[a] + 0.1 / np.sqrt(d) * rng.normal(size=d).astype(np.float32)
        out[b] = near / np.linalg.norm(near)
        labels[b] = labels[a]
    out.flush()
    return labels, pairs


def _recall(planted: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Share of the planted pairs among the found pairs (a < b)."""
    found = set(zip(a.tolist(), b.tolist(), strict=True))
    return round(np.mean([(min(p), max(p)) in found for p in planted.tolist()]), 4)


def layout_and_search(n: int, runs: int) -> dict:
    from encoderscope.atlas import layout as lay
    from encoderscope.atlas import store

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.npy"
        labels, planted = mixture(path, n)
        V = np.load(path, mmap_mode="r", allow_pickle=False)
        seconds = {}
        t = time.perf_counter()
        Z = lay.reduce(V)
        seconds["pca"] = time.perf_counter() - t
        t = time.perf_counter()
        result = lay.layout(V, Z=Z)
        seconds["umap_sample_place_cluster"] = time.perf_counter() - t
        progress({"layout_s": seconds})
        t = time.perf_counter()
        dup = lay.near_duplicates(V, Z)
        seconds["duplicates"] = time.perf_counter() - t
        seconds = {k: round(v, 1) for k, v in seconds.items()}
        seconds["total"] = round(sum(seconds.values()), 1)
        sub = lay.sample_ids(n, 50_000, 1)
        original = lay.knn_label_accuracy(np.asarray(V[sub]), labels[sub])
        laid_out = lay.knn_label_accuracy(result.coords[sub], labels[sub])
        layout = {"n": n, "seconds": seconds, "knn10_accuracy_original": round(original, 4),
                  "knn10_accuracy_2d": round(laid_out, 4), "preserved": round(laid_out / original, 4),
                  "clusters_found": int(result.cluster.max() + 1), "noise": int((result.cluster == -1).sum()),
                  "duplicate_pairs": int(len(dup[0])),
                  "planted_duplicates_found": _recall(planted, dup[0], dup[1])}
        progress({"layout": layout})
        del Z
        fresh = store.Atlas(Path(tmp), None, np.load(path, mmap_mode="r", allow_pickle=False), None, None, {"model": None})
        q = np.random.default_rng(5).normal(size=384).astype(np.float32)
        t = time.perf_counter()
        store.search(fresh, q, 10)
        first = time.perf_counter() - t
        warm = round_robin({"search": lambda: store.search(fresh, q, 10)}, max(runs, 5), warm=False)["search"]
        search = {"n": n, "first_ms": round(first * 1000, 1), "warm": summary_ms(warm),
                  "note": "first query after np.load(mmap); the vectors were just written, so the page cache is warm"}
    return {"layout": layout, "search": search}


APT_LISTS = Path("/var/lib/apt/lists")


def debian_corpus(path: Path) -> int:
    """CSV (text = "package: short description", label = archive section) of every package in the apt lists;
    returns the row count. The lists are lz4-compressed: apt's own helper reads them."""
    import subprocess

    import pandas as pd

    rows = []
    for packages in sorted(APT_LISTS.glob("*_Packages*")):
        raw = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", str(packages)], capture_output=True,
                             check=True).stdout.decode("utf-8", "replace")
        for block in raw.split("\n\n"):
            fields = dict(line.split(":", 1) for line in block.split("\n") if line[:1].strip() and ":" in line)
            if "Package" in fields and "Description" in fields:
                rows.append({"text": f"{fields['Package'].strip()}: {fields['Description'].strip()}",
                             "label": fields.get("Section", "none").strip().split("/")[-1]})
    if not rows:
        raise SystemExit(f"no package lists under {APT_LISTS}: run apt-get update first")
    pd.DataFrame(rows).to_csv(path, index=False)
    return len(rows)


def real_corpus(folder: Path) -> dict:
    import pandas as pd

    from encoderscope.atlas import builder
    from encoderscope.atlas import layout as lay

    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "debian.csv"
    n = debian_corpus(csv)
    out: dict = {"corpus": "Debian bookworm package descriptions", "n": n}
    t = time.perf_counter()
    info = builder.build(folder / "debian", csv, text_column="text", label_column="label")
    out["build_s"] = round(time.perf_counter() - t, 1)
    out["stage_s"] = info["seconds"]
    out.update(clusters=info["clusters"], noise_share=round(info["noise"] / n, 3))
    progress({"real": out})
    points = pd.read_parquet(folder / "debian" / "points.parquet")
    labels = pd.factorize(points["label"])[0]
    V = np.load(folder / "debian" / "vectors.npy", mmap_mode="r", allow_pickle=False)
    out["knn10_section_agreement"] = {
        "vectors_384d": round(lay.knn_label_accuracy(np.asarray(V), labels), 4),
        "map_2d": round(lay.knn_label_accuracy(points[["x", "y"]].to_numpy(), labels), 4),
    }
    progress({"real": out})
    t = time.perf_counter()
    builder.build(folder / "debian_vectors", vectors=folder / "debian" / "vectors.npy", meta=csv, text_column="text",
                  label_column="label")
    again = pd.read_parquet(folder / "debian_vectors" / "points.parquet")
    out["rebuild_from_vectors_s"] = round(time.perf_counter() - t, 1)
    out["rebuild_from_vectors_identical"] = all(np.array_equal(points[c].to_numpy(), again[c].to_numpy())
                                                for c in ("x", "y", "cluster"))
    return out


def main() -> None:
    parser = arguments(__doc__, runs=3)
    parser.add_argument("--n", type=int, default=None, help="points for layout and search (default 1,000,000)")
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument("--skip-layout", action="store_true", help="no synthetic layout and search figures")
    parser.add_argument("--real", type=Path, default=None, help="build the Debian corpus atlas in this folder")
    args = parse(parser)
    n = args.n or (100_000 if args.quick else 1_000_000)
    out: dict = {"machine": machine()}
    if args.real:
        out["real"] = real_corpus(args.real)
    if not args.skip_embedding:
        out["embedding"] = embedding(1000 if args.quick else 5000, args.runs)
    if not args.skip_layout:
        out.update(layout_and_search(n, args.runs))
    out["rss_mb_peak"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    emit(out)


if __name__ == "__main__":
    main()
