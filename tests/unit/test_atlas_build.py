"""`atlas build` end to end: the file contract, load/search, bad input and faults (disk full, a killed build)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import encoderscope as es
from encoderscope.__main__ import main
from encoderscope.atlas import builder
from encoderscope.atlas.io import AtlasError
from encoderscope.atlas.shards import ShardStore, fingerprint

ROOT = Path(__file__).resolve().parents[2]


def _vectors_and_meta(tmp_path, n=400, d=24, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, d))
    labels = rng.integers(0, 4, n)
    V = (3 * centres[labels] + rng.normal(size=(n, d))).astype(np.float32)
    words = ["alpha", "beta", "gamma", "delta"]
    texts = [f"{words[c]} item {i}" for i, c in enumerate(labels)]
    np.save(tmp_path / "v.npy", V)
    pd.DataFrame({"text": texts, "label": [words[c] for c in labels]}).to_csv(tmp_path / "m.csv", index=False)
    return V, texts, [words[c] for c in labels]


def test_vectors_build_writes_the_contract_and_searches_exactly(tmp_path):
    V, texts, labels = _vectors_and_meta(tmp_path)
    assert main(["atlas", "build", "--vectors", str(tmp_path / "v.npy"), "--meta", str(tmp_path / "m.csv"),
                 "--label-column", "label", "--out", str(tmp_path / "a")]) == 0
    atlas = es.atlas.load(tmp_path / "a")
    p = atlas.points
    assert list(p.columns) == ["id", "x", "y", "cluster", "text", "label"]
    assert [str(t) for t in p.dtypes[:4]] == ["int64", "float32", "float32", "int32"]
    assert p["id"].tolist() == list(range(400)) and p["text"].tolist() == texts and p["label"].tolist() == labels
    expected = V / np.linalg.norm(V, axis=1, keepdims=True)
    assert isinstance(atlas.vectors, np.memmap) and atlas.vectors.dtype == np.float32
    np.testing.assert_allclose(atlas.vectors, expected, atol=1e-6)
    assert atlas.clusters["size"].sum() == 400
    assert set(atlas.clusters["cluster"]) == set(p["cluster"])
    meta = atlas.meta
    assert (meta["N"], meta["D"], meta["model"], meta["seed"]) == (400, 24, None, 0)
    assert {"read", "reduce", "layout", "duplicates", "names", "write"} <= set(meta["seconds"])
    # search by vector: exact top-k by brute force
    q = V[7] + 0.5
    ids, cos = es.atlas.search(atlas, q, k=5)
    brute = expected @ (q / np.linalg.norm(q))
    np.testing.assert_array_equal(ids, np.argsort(-brute)[:5])
    np.testing.assert_allclose(cos, np.sort(brute)[::-1][:5], rtol=1e-5)
    ids, cos = es.atlas.search(atlas, 7, k=1)  # a point: itself first
    assert ids.tolist() == [7] and cos[0] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(AtlasError, match="search needs a vector or a point"):
        es.atlas.search(atlas, "alpha", k=3)
    with pytest.raises(AtlasError, match="3 dimensions but the atlas holds 24"):
        es.atlas.search(atlas, [1.0, 2.0, 3.0], k=3)


def test_search_spans_chunks(tmp_path, monkeypatch):
    """The running top-k across chunks equals one global sort (a merge bug would drop the best of a chunk)."""
    from encoderscope.atlas import store

    V, _, _ = _vectors_and_meta(tmp_path)
    builder.build(tmp_path / "a", vectors=tmp_path / "v.npy", meta=tmp_path / "m.csv")
    atlas = es.atlas.load(tmp_path / "a")
    monkeypatch.setattr(store, "SEARCH_CHUNK", 7)
    q = np.random.default_rng(3).normal(size=24)
    ids, _ = es.atlas.search(atlas, q, k=12)
    np.testing.assert_array_equal(ids, np.argsort(-(np.asarray(atlas.vectors) @ q))[:12])


def test_row_mismatch_is_refused_and_nothing_is_written(tmp_path, capsys):
    _vectors_and_meta(tmp_path)
    pd.DataFrame({"text": ["only", "three", "rows"]}).to_csv(tmp_path / "short.csv", index=False)
    args = ["atlas", "build", "--vectors", str(tmp_path / "v.npy"), "--meta", str(tmp_path / "short.csv"), "--out"]
    assert main([*args, str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert "v.npy has 400 rows but short.csv has 3" in err and "Traceback" not in err
    assert not (tmp_path / "new").exists()
    with pytest.raises(AtlasError, match="no complete atlas"):
        es.atlas.load(tmp_path / "new")
    # a bad rebuild over a good atlas leaves that atlas as it was
    builder.build(tmp_path / "good", vectors=tmp_path / "v.npy", meta=tmp_path / "m.csv")
    assert main([*args, str(tmp_path / "good")]) == 2
    assert es.atlas.load(tmp_path / "good").meta["N"] == 400


def test_missing_text_column_is_a_clear_cli_error(tmp_path, capsys):
    pd.DataFrame({"body": ["a", "b"]}).to_csv(tmp_path / "c.csv", index=False)
    assert main(["atlas", "build", str(tmp_path / "c.csv"), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "c.csv has no column 'text'. Its columns: 'body'." in err and "Traceback" not in err


def test_disk_full_while_writing_leaves_nothing_half_written(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    _vectors_and_meta(tmp_path)
    real = pq.write_table

    def full_disk(table, where, *args, **kwargs):
        Path(where).write_bytes(b"PAR1 partial")  # a torn write, then the error
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full_disk)
    with pytest.raises(AtlasError, match="The disk is full: could not write points.parquet"):
        builder.build(tmp_path / "a", vectors=tmp_path / "v.npy", meta=tmp_path / "m.csv")
    left = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert left == ["vectors.npy"]  # complete (atomic); no temporary file, no torn parquet, no atlas.json
    monkeypatch.setattr(pq, "write_table", real)
    builder.build(tmp_path / "a", vectors=tmp_path / "v.npy", meta=tmp_path / "m.csv")
    assert es.atlas.load(tmp_path / "a").meta["N"] == 400


def test_a_changed_fingerprint_starts_over(tmp_path):
    texts = ["a", "b", "c"]
    fp = fingerprint(texts, pooling="mean")
    assert fingerprint(texts, pooling="cls") != fp and fingerprint(["a", "bc"], pooling="mean") != fingerprint(
        ["ab", "c"], pooling="mean")
    old = ShardStore(tmp_path, fp, n=3, size=2)
    old.write(0, np.ones((2, 4), np.float32))
    assert ShardStore(tmp_path, fp, 3, 2).missing() == [1]  # same fingerprint: resumes
    new = ShardStore(tmp_path, fingerprint(texts, pooling="cls"), 3, 2)
    assert new.missing() == [0, 1] and not old.folder.exists()


CORPUS_WORDS = "river bank money loan water boat fish market price stock cloud rain sun wind tree".split()


def _corpus(tmp_path, n):
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(CORPUS_WORDS, size=int(rng.integers(4, 30)))) for _ in range(n)]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "c.csv", index=False)
    return texts


def test_text_build_matches_es_embed_and_searches_by_text(tmp_path, encoder):
    texts = _corpus(tmp_path, 60)
    info = builder.build(tmp_path / "a", tmp_path / "c.csv", shard_size=16)
    assert info["pooling"] == "mean" and info["shards"] == {"size": 16, "total": 4, "computed": 4, "resumed": 0}
    atlas = es.atlas.load(tmp_path / "a")
    np.testing.assert_allclose(atlas.vectors, es.embed(encoder, texts), atol=1e-5)
    ids, cos = es.atlas.search(atlas, texts[11], k=3)
    assert ids[0] == 11 and cos[0] == pytest.approx(1.0, abs=1e-5)
    assert not (tmp_path / "a" / ".shards").exists()


def test_killed_build_resumes_and_equals_an_uninterrupted_run(tmp_path):
    _corpus(tmp_path, 1500)
    out = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "encoderscope", "atlas", "build", str(tmp_path / "c.csv"), "--out", str(out),
         "--shard-size", "50"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob(".shards/*/shard-*.npy"))) < 2:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(out.glob(".shards/*/shard-*.npy")))
    assert 2 <= done < 30, "the build was not killed mid-embedding"
    assert not (out / "atlas.json").exists()
    resumed = builder.build(out, tmp_path / "c.csv", shard_size=50)
    assert resumed["shards"]["resumed"] == done and resumed["shards"]["computed"] == 30 - done
    fresh = builder.build(tmp_path / "fresh", tmp_path / "c.csv", shard_size=50)
    assert fresh["shards"]["computed"] == 30
    np.testing.assert_allclose(np.load(out / "vectors.npy"), np.load(tmp_path / "fresh" / "vectors.npy"), atol=1e-6)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "points.parquet"),
                                  pd.read_parquet(tmp_path / "fresh" / "points.parquet"))


def test_es_atlas_is_the_light_subpackage():
    """`es.atlas.build` is the function (not the module), and opening the package loads no torch or Dask."""
    from tests.unit.test_import_light import _modules_after

    loaded = _modules_after(
        "import encoderscope as es\nassert callable(es.atlas.build) and callable(es.atlas.search)\n"
        "import encoderscope.__main__"
    )
    assert "encoderscope.atlas.builder" in loaded
    assert not {"torch", "dask", "distributed", "pyarrow"} & loaded


@pytest.mark.parametrize("n", [1, 3, 12])
def test_tiny_inputs_still_build(tmp_path, n):
    """A handful of rows falls back to PCA (UMAP needs more) instead of failing."""
    V, _, _ = _vectors_and_meta(tmp_path, n=n)
    info = builder.build(tmp_path / "a", vectors=tmp_path / "v.npy", meta=tmp_path / "m.csv")
    atlas = es.atlas.load(tmp_path / "a")
    assert info["N"] == n and len(atlas.points) == n and atlas.points["id"].tolist() == list(range(n))
    assert np.isfinite(atlas.points[["x", "y"]].to_numpy()).all()


def test_a_query_model_of_another_dimension_is_refused(tmp_path):
    _vectors_and_meta(tmp_path)
    builder.build(tmp_path / "a", vectors=tmp_path / "v.npy", meta=tmp_path / "m.csv", model="bundled")
    with pytest.raises(AtlasError, match="gives 384-d vectors but the atlas holds 24-d ones"):
        es.atlas.search(es.atlas.load(tmp_path / "a"), "a text", k=3)


def test_a_build_failing_after_embedding_resumes_without_re_embedding(tmp_path, monkeypatch, encoder):
    import pyarrow.parquet as pq

    _corpus(tmp_path, 40)
    real = pq.write_table
    monkeypatch.setattr(pq, "write_table", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(AtlasError, match="disk is full"):
        builder.build(tmp_path / "a", tmp_path / "c.csv", shard_size=16)
    monkeypatch.setattr(pq, "write_table", real)
    info = builder.build(tmp_path / "a", tmp_path / "c.csv", shard_size=16)
    assert info["shards"] == {"size": 16, "total": 3, "computed": 0, "resumed": 3}
    assert not (tmp_path / "a" / ".shards").exists()


def test_importing_the_atlas_io_leaves_the_umask_alone(tmp_path):
    # Bug: atlas/io.py called os.umask at import (to read it): a library import that changes process-wide state,
    # racing with any thread that creates files meanwhile. Files get an explicit mode instead.
    probe = ("import os, sys; calls = []; real = os.umask\n"
             "os.umask = lambda mask: calls.append(mask) or real(mask)\n"
             "import encoderscope.atlas.io, encoderscope.atlas\n"
             "sys.exit(1 if calls else 0)")
    assert subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parents[2]).returncode == 0
    from encoderscope.atlas import io as atlas_io

    old = os.umask(0o077)  # a restrictive umask does not make atlases unreadable to other readers
    try:
        path = atlas_io.write_atomic(tmp_path / "f.txt", lambda tmp: tmp.write_text("x"))
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644
