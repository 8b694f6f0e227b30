"""The same vectors and seed give a bit-identical map (points.parquet x, y, cluster) from every route: the local
engine, the Dask engine, and `--vectors` from the atlas's own vectors.npy, whatever the BLAS/OpenMP thread
count each process runs with (issue 16 §2).

Two causes, each caught here: the layout's floats depended on the BLAS thread count (Dask's LocalCluster sets
OPENBLAS_NUM_THREADS=1 in the client's environment, so a BLAS loaded after it ran single-threaded), and
`--vectors` divided already-normalised rows again, moving some by one ulp. UMAP turns either into another map.
The corpus has 1,200 rows: below about 1,000, OpenBLAS runs PCA's products on one thread anyway."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from encoderscope.atlas import builder
from encoderscope.atlas.engines import DaskEngine, ModelSpec

from .conftest import WORDS

N, SAMPLE, SHARD = 1200, 600, 100  # SAMPLE < N: the sample fit and the placement of the rest both run


@pytest.fixture(scope="module")
def corpus_1200(tmp_path_factory):
    rng = np.random.default_rng(1)
    texts = [f"{i} " + " ".join(rng.choice(WORDS, size=int(rng.integers(3, 10)))) for i in range(N)]
    path = tmp_path_factory.mktemp("corpus1200") / "c.csv"
    pd.DataFrame({"text": texts}).to_csv(path, index=False)
    return path


def _map(folder):
    points = pd.read_parquet(folder / "points.parquet")
    return {c: points[c].to_numpy() for c in ("x", "y", "cluster")}


@pytest.mark.timeout(1800)  # three builds of 1,200 rows: minutes on a loaded 2-core machine
def test_local_dask_and_vectors_give_a_bit_identical_map(cluster_client, corpus_1200, tmp_path):
    with threadpool_limits(limits=2):  # the machine's default here
        builder.build(tmp_path / "local", corpus_1200, shard_size=SHARD, sample_size=SAMPLE)
    with threadpool_limits(limits=1):  # what a process that started a LocalCluster gets
        engine = DaskEngine(ModelSpec(), client=cluster_client)
        builder.build(tmp_path / "dask", corpus_1200, engine=engine, shard_size=SHARD, sample_size=SAMPLE)
    builder.build(tmp_path / "vectors", vectors=tmp_path / "local" / "vectors.npy", meta=corpus_1200,
                  sample_size=SAMPLE)
    local = _map(tmp_path / "local")
    assert len(np.unique(local["cluster"])) > 1  # a real map, not a degenerate one
    for other in ("dask", "vectors"):
        np.testing.assert_array_equal(np.load(tmp_path / other / "vectors.npy"), np.load(tmp_path / "local" / "vectors.npy"))
        got = _map(tmp_path / other)
        for column in ("x", "y", "cluster"):
            assert np.array_equal(got[column], local[column]), f"{other}: {column} differs from the local engine's"
