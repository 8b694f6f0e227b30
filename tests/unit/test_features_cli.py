"""`python -m encoderscope atlas features DIR`: the files it writes agree with the library, and every bad input
(no vectors, too few of them, k >= features, features of another atlas) ends in a clear message, exit status 2."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import encoderscope as es
from encoderscope.__main__ import main
from encoderscope.atlas import builder
from encoderscope.features import FeaturesError, atlas_files
from tests.unit.features_data import planted


@pytest.fixture(scope="module")
def atlas_dir(tmp_path_factory):
    """A real atlas (built from 600 planted-dictionary vectors and a text each) with features trained by the CLI."""
    root = tmp_path_factory.mktemp("atlas")
    V = planted(600, D=24, atoms=12, active=2)
    words = ["river", "money", "guitar", "violin", "football", "tennis", "pasta", "bread", "python", "rust",
             "winter", "summer"]
    strongest = np.argmax(V @ np.random.default_rng(0).normal(size=(24, 12)), axis=1)
    texts = [f"{words[c]} note {i}" for i, c in enumerate(strongest)]
    np.save(root / "v.npy", V)
    pd.DataFrame({"text": texts}).to_csv(root / "m.csv", index=False)
    builder.build(root / "a", vectors=root / "v.npy", meta=root / "m.csv")
    return root / "a"


@pytest.fixture(scope="module")
def trained(atlas_dir):
    """(exit status, stdout, stderr) of the CLI on `atlas_dir`."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        status = main(["atlas", "features", str(atlas_dir), "--features", "32", "--k", "4", "--epochs", "4"])
    return status, out.getvalue(), err.getvalue()


def test_the_files_agree_with_the_library(atlas_dir, trained):
    status, out, err = trained
    assert status == 0, err
    assert "train" in err and "32 features, k = 4" in out
    atlas = es.atlas.load(atlas_dir)
    sae = es.features.load(atlas_dir / "features.safetensors")
    ids, values = sae.encode(atlas.vectors)
    points = pq.read_table(atlas_dir / "point_features.parquet").to_pandas()
    np.testing.assert_array_equal(np.stack(points["features"]), ids)
    np.testing.assert_array_equal(np.stack(points["values"]), values)
    described = pq.read_table(atlas_dir / "features.parquet")
    meta = json.loads(described.schema.metadata[b"encoderscope.features"])
    assert meta["fvu"] == pytest.approx(sae.fvu(atlas.vectors), rel=1e-9)
    dead = 32 - len(np.unique(ids[values > 0]))
    assert meta["dead"] == dead and meta["dead_fraction"] == pytest.approx(dead / 32)
    assert f"FVU {meta['fvu']:.3f}" in out
    table = described.to_pandas()
    np.testing.assert_allclose(table["frequency"], [((ids == f) & (values > 0)).any(axis=1).mean() for f in range(32)])
    first = table.iloc[int(table["frequency"].idxmax())]
    np.testing.assert_allclose(first["top_values"][0], values[ids == first["feature"]].max(), rtol=1e-6)
    texts = atlas.points["text"].tolist()
    words = " ".join(texts[i] for i in first["top_ids"])
    assert all(term in words for term in first["label"].split(" · "))
    opened = atlas_files.read(atlas_dir)
    np.testing.assert_array_equal(opened.ids, ids)
    assert opened.sae.labels == table["label"].tolist() and opened.meta["fingerprint"] == meta["fingerprint"]


def test_features_of_another_atlas_are_refused(atlas_dir, trained, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(atlas_dir, other)
    V = np.load(other / "vectors.npy")
    np.save(other / "vectors.npy", V[::-1].copy())  # same shape, other vectors: another atlas
    with pytest.raises(FeaturesError, match="made for another atlas"):
        atlas_files.read(other)


def _cli(capsys, *argv) -> tuple[int, str]:
    status = main(["atlas", "features", *map(str, argv)])
    return status, capsys.readouterr().err


def test_bad_inputs_get_clear_messages(atlas_dir, tmp_path, capsys):
    status, err = _cli(capsys, atlas_dir, "--features", "4096")
    assert status == 2 and "4096 features need at least 8192 vectors" in err and "there are 600" in err
    status, err = _cli(capsys, atlas_dir, "--features", "16", "--k", "16")
    assert status == 2 and "below the number of features (16)" in err
    status, err = _cli(capsys, tmp_path / "nowhere")
    assert status == 2 and "no complete atlas" in err and "Traceback" not in err
    novec = tmp_path / "novec"
    shutil.copytree(atlas_dir, novec)
    (novec / "vectors.npy").unlink()
    status, err = _cli(capsys, novec)
    assert status == 2 and "has no vectors" in err
    with pytest.raises(FeaturesError, match="has no vectors"):
        atlas_files.read(novec)
    bare = tmp_path / "bare"
    shutil.copytree(atlas_dir, bare)
    (bare / "features.parquet").unlink()
    with pytest.raises(FeaturesError, match="has no features yet"):
        atlas_files.read(bare)
