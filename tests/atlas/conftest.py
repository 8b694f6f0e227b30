"""One small Dask LocalCluster (2 worker processes, 1 thread each, 127.0.0.1, no dashboard) for every test here,
and a corpus of a few hundred short sentences with its local-engine atlas as the reference."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = "river bank money loan water boat fish market price stock cloud rain sun wind tree".split()
SHARD = 25


@pytest.fixture(scope="module")
def cluster_client():
    """Workers are spawned processes, and spawn re-runs the parent's `__main__` file in each. AppTest (tests/app,
    run earlier in the same session) leaves a page script there, so a worker would execute a Streamlit page and
    die. A bare `__main__` while the cluster lives (a killed worker's restart included) keeps spawn off it."""
    import sys
    import types

    from distributed import Client, LocalCluster

    saved = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    cluster = LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None,
                           scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
        sys.modules["__main__"] = saved


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A CSV of 300 short sentences; returns its path."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(300)]
    pd.DataFrame({"text": texts}).to_csv(folder / "c.csv", index=False)
    return folder / "c.csv"


@pytest.fixture(scope="session")
def local_atlas(corpus, tmp_path_factory):
    from encoderscope.atlas import builder

    out = tmp_path_factory.mktemp("local")
    builder.build(out, corpus, shard_size=SHARD)
    return out
