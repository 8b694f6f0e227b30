"""`atlas build`: corpus (or precomputed vectors) -> an atlas folder, stage by stage, with progress and timings.

DIR/points.parquet   id int64 (input row order), x, y float32, cluster int32 (-1 noise), text[, label]
DIR/vectors.npy      float32 [N, D], L2-normalised, row i = id i (open with mmap_mode="r")
DIR/clusters.parquet cluster, size, x, y (centroid), name (top c-TF-IDF terms)
DIR/duplicates.parquet  a, b (ids, a < b), cosine: near-duplicate pairs above the threshold
DIR/atlas.json       model, pooling, N, D, projection and its parameters, seed, versions, seconds per stage

Every file is written atomically and atlas.json last, so a folder with atlas.json is a complete atlas; a killed
or failed build leaves none (and `load` says so). Embedding shards live in DIR/.shards until the build ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from . import corpus as corpus_io
from . import layout as lay
from .engines import ModelSpec, make_engine
from .io import AtlasError, write_atomic
from .shards import ShardStore, fingerprint

Progress = Callable[[str, int, int], None]  # (stage, done, total)
SHARD_SIZE = 1024
THRESHOLD = 0.95
FORMAT = 1
_PACKAGES = ("encoderscope", "numpy", "torch", "transformers", "umap-learn", "pynndescent", "scikit-learn",
             "pyarrow", "dask", "distributed")


def _versions() -> dict:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "encoderscope":
                from .. import __version__

                out[name] = __version__
    return out


def _model_name(ref: str | None) -> str:
    from ..models import BUNDLED_ENCODER

    return BUNDLED_ENCODER if not ref else str(ref)


def build(
    out: str | Path,
    corpus: str | Path | None = None,
    *,
    text_column: str = "text",
    label_column: str | None = None,
    vectors: str | Path | None = None,
    meta: str | Path | None = None,
    model: str | None = None,
    revision: str | None = None,
    pooling: str = "auto",
    engine: str | object = "local",
    scheduler: str | None = None,
    seed: int = 0,
    shard_size: int = SHARD_SIZE,
    batch_size: int = 64,
    threshold: float = THRESHOLD,
    sample_size: int = lay.SAMPLE,
    progress: Progress | None = None,
) -> dict:
    """Build an atlas in `out` from `corpus` (a file), or from `vectors` (.npy `[N, D]`) plus `meta` (a corpus
    file with the text, and label, columns). Returns what atlas.json holds. `engine`: "local", "dask", or an
    engine object (tests). Raises AtlasError (a UserFacingError) for bad input."""
    if (corpus is None) == (vectors is None):
        raise AtlasError("Give either a corpus file or --vectors with --meta.")
    out = Path(out)
    report = progress or (lambda stage, done, total: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        timings[stage] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()
        if stage != "embed":  # embed reports per shard
            report(stage, 1, 1)

    report("read", 0, 1)
    info: dict = {"format": FORMAT, "seed": seed, "engine": None, "shards": None}
    if vectors is not None:
        if meta is None:
            raise AtlasError("--vectors needs --meta: a CSV/Parquet/JSONL file with the text of each row.")
        source = corpus_io.read_vectors(vectors)
        table = corpus_io.read_corpus(meta, text_column, label_column)
        if len(table.texts) != len(source):
            raise AtlasError(
                f"{Path(vectors).name} has {len(source)} rows but {Path(meta).name} has {len(table.texts)}: "
                "row i of the metadata must describe vector i."
            )
        lap("read")
        _start_writing(out)
        _normalised_copy(source, out / "vectors.npy")
        info.update(model=model or None, revision=revision, pooling=pooling if model else None)
        lap("normalise")
    else:
        table = corpus_io.read_corpus(corpus, text_column, label_column)
        lap("read")
        _start_writing(out)
        spec = ModelSpec(model, revision, pooling, batch_size)
        embedded = _embed(out, table.texts, spec, engine, scheduler, shard_size, report)
        info.update(model=_model_name(model), revision=revision, pooling=embedded.pop("pooling"), **embedded)
        lap("embed")
    V = np.load(out / "vectors.npy", mmap_mode="r", allow_pickle=False)
    info.update(N=int(V.shape[0]), D=int(V.shape[1]), notices=table.notices)

    report("reduce", 0, 1)
    Z = lay.reduce(V, seed=seed)
    lap("reduce")
    report("layout", 0, 1)
    result = lay.layout(V, seed=seed, sample_size=sample_size, Z=Z)
    lap("layout")
    report("duplicates", 0, 1)
    dup_a, dup_b, dup_cos = lay.near_duplicates(V, Z, threshold, seed=seed)
    lap("duplicates")
    report("names", 0, 1)
    clusters = lay.cluster_table(result.coords, result.cluster, table.texts, seed)
    lap("names")

    report("write", 0, 1)
    points = {"id": np.arange(len(V), dtype=np.int64), "x": result.coords[:, 0], "y": result.coords[:, 1],
              "cluster": result.cluster.astype(np.int32), "text": table.texts}
    if table.labels is not None:
        points["label"] = table.labels
    _write_parquet(out / "points.parquet", points)
    _write_parquet(out / "clusters.parquet", clusters)
    _write_parquet(out / "duplicates.parquet", {"a": dup_a, "b": dup_b, "cosine": dup_cos})
    lap("write")
    info.update(
        projection=result.params,
        clusters=int((clusters["cluster"] >= 0).sum()),
        noise=int(np.sum(result.cluster == -1)),
        duplicates={"threshold": threshold, "pairs": int(len(dup_a)), "candidates": "k-NN graph (k=8) of the PCA vectors"},
        labelled=table.labels is not None,
        versions=_versions(),
        seconds=timings,
        built=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    write_atomic(out / "atlas.json", lambda tmp: tmp.write_text(json.dumps(info, indent=1, default=_json_default)))
    ShardStore.discard(out / ".shards")  # complete: vectors.npy holds them all
    report("write", 1, 1)
    return info


def _start_writing(out: Path) -> None:
    """Once the input is known good: from here until atlas.json is written, `out` is not a complete atlas (an
    earlier atlas there stays loadable until then, so a bad input never breaks it)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "atlas.json").unlink(missing_ok=True)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _embed(out: Path, texts: list[str], spec: ModelSpec, engine, scheduler, shard_size: int, report: Progress) -> dict:
    """Embed `texts` into out/vectors.npy through resumable shards; returns {pooling, engine, shards}."""
    fp = fingerprint(texts, model=_model_name(spec.ref), revision=spec.revision, pooling=spec.pooling,
                     shard_size=shard_size, format=FORMAT)
    # shards hold length-sorted texts: similar lengths batch with little padding (as sentence-transformers does)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    store = ShardStore(out / ".shards", fp, len(texts), shard_size)
    missing = store.missing()
    todo = {s: [texts[i] for i in order[store.rows(s).start : store.rows(s).stop]] for s in missing}
    runner = make_engine(engine, spec, scheduler) if isinstance(engine, str) else engine
    modes = set()
    report("embed", store.count - len(missing), store.count)
    try:
        for done, (shard, vectors, mode) in enumerate(runner.run(todo), 1):
            store.write(shard, vectors)
            if mode not in modes:
                store.save_info({"pooling": mode})
                modes.add(mode)
            report("embed", store.count - len(missing) + done, store.count)
    finally:
        if isinstance(engine, str):
            runner.close()
    pooling = store.info().get("pooling")
    # the shards stay until atlas.json is written, so a build that fails later resumes without re-embedding
    store.assemble(out / "vectors.npy", order)
    return {"pooling": pooling, "engine": runner.name, "fingerprint": fp,
            "shards": {"size": shard_size, "total": store.count, "computed": len(missing),
                       "resumed": store.count - len(missing)}}


UNIT_TOLERANCE = 1e-5  # a row whose length is within this of 1 is already normalised: kept bit for bit


def normalised(block: np.ndarray) -> np.ndarray:
    """`block` `[n, D]` as float32 unit rows. Rows already of unit length (within UNIT_TOLERANCE) keep their
    float32 values exactly: dividing them again moves about one float in a hundred by one ulp, and UMAP turns
    that into another map (an atlas rebuilt from its own vectors.npy kept 23 % of its cluster ids)."""
    block32 = np.asarray(block, np.float32)
    norm = np.linalg.norm(block32.astype(np.float64), axis=1, keepdims=True)
    unit = np.abs(norm - 1.0) <= UNIT_TOLERANCE
    return np.where(unit, block32, (block32 / norm).astype(np.float32))


def _normalised_copy(source: np.ndarray, path: Path) -> None:
    """`source` `[N, D]` (finite, no zero rows: checked by read_vectors) L2-normalised into a float32 .npy."""

    def write(tmp: Path) -> None:
        full = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=source.shape)
        for start in range(0, len(source), corpus_io.CHUNK):
            full[start : start + corpus_io.CHUNK] = normalised(source[start : start + corpus_io.CHUNK])
        full.flush()
        del full

    write_atomic(path, write)


def _write_parquet(path: Path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))
