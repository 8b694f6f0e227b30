"""The Dask engine on a 2-worker LocalCluster: same vectors as the local engine, survives a killed worker,
fails fast on an unreachable scheduler, and refuses a local model folder for a remote one."""

from __future__ import annotations

import os
import signal
import socket
import time

import numpy as np
import pandas as pd
import pytest

from encoderscope.atlas import builder
from encoderscope.atlas.engines import DaskEngine, ModelSpec
from encoderscope.atlas.io import AtlasError

from .conftest import SHARD


def _same_atlas(a, b):
    np.testing.assert_allclose(np.load(a / "vectors.npy"), np.load(b / "vectors.npy"), atol=1e-5)
    pa, pb = pd.read_parquet(a / "points.parquet"), pd.read_parquet(b / "points.parquet")
    assert pb["id"].tolist() == list(range(300))
    assert pa["text"].tolist() == pb["text"].tolist()


def test_dask_equals_the_local_engine(cluster_client, corpus, local_atlas, tmp_path):
    engine = DaskEngine(ModelSpec(), client=cluster_client)
    info = builder.build(tmp_path, corpus, engine=engine, shard_size=SHARD)
    assert info["engine"] == "dask" and info["shards"]["computed"] == 12
    _same_atlas(local_atlas, tmp_path)


def test_a_killed_worker_still_completes(cluster_client, corpus, local_atlas, tmp_path):
    pids = cluster_client.run(os.getpid)
    killed = []

    def progress(stage, done, total):
        if stage == "embed" and done >= 1 and not killed:  # mid-run: the first shard is back, others pending
            busy = cluster_client.processing()  # worker address -> the tasks it holds now
            victim = max(busy, key=lambda address: len(busy[address]))
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(len(busy[victim]))

    engine = DaskEngine(ModelSpec(), client=cluster_client)
    info = builder.build(tmp_path, corpus, engine=engine, shard_size=SHARD, progress=progress)
    assert killed and killed[0] > 0, "the killed worker held no shard"  # so some shard really was retried
    assert info["shards"]["computed"] == 12
    _same_atlas(local_atlas, tmp_path)
    cluster_client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the other tests


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_clearly_within_10_s():
    start = time.monotonic()
    with pytest.raises(AtlasError, match="Could not reach the Dask scheduler at tcp://127.0.0.1"):
        DaskEngine(ModelSpec(), f"tcp://127.0.0.1:{_closed_port()}")
    assert time.monotonic() - start < 10


def test_local_model_folder_is_refused_for_a_remote_scheduler(tmp_path):
    with pytest.raises(AtlasError, match="shared filesystem"):
        DaskEngine(ModelSpec(ref=str(tmp_path)), "tcp://127.0.0.1:1")


def test_a_local_cluster_is_closed_when_its_client_cannot_connect(monkeypatch):
    # Bug: a LocalCluster the engine started stayed alive (two worker processes) when creating its Client
    # failed, for as long as the server ran.
    import distributed

    closed = []

    class FakeCluster:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def close(self):
            closed.append(True)

    def refuse(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "Client", refuse)
    with pytest.raises(OSError, match="connection refused"):
        DaskEngine(ModelSpec())
    assert closed == [True]
