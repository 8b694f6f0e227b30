"""The Compare page's section of the cache layer: models, per-layer features, matrices, overlaps, layouts.

A side is `Side(kind, ref, revision)` (hashable, the cache key). Each model runs once per text set
(`features`: every layer's pooled vectors `es.compare.layer_features`, one pool job with progress); every metric,
the neighbours, the maps and the search are computed from those features, so switching the metric or k never
re-runs a model. Heavy calls are one `pool.run` job each; a cache hit never reaches the pool.

`features` is a small shared LRU (not st.cache_data): the job reports progress into the caller's page, which
st.cache_data would replay on a hit, and the `[L + 1, N, D]` stacks are shared read-only instead of unpickled
for every rerun.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import streamlit as st

from components import pool, resources

LONG_TEXTS = 500  # texts: a forward pass over more runs in the pool's long lane
FEATURE_STACKS = 6  # feature stacks kept (a pair of models and a baseline, twice)


class Side(NamedTuple):
    """One model of the comparison: kind "encoder" | "decoder" | "image", the picker's ref (None: bundled) and
    revision. For an image side the "texts" of every function below are the ids of images registered with
    `register_images` (the images themselves are not hashable)."""

    kind: str
    ref: str | None
    revision: str | None = None


def model(side: Side):
    """The shared loaded model of a side (read-only)."""
    if side.kind == "image":
        from components.vision import cache as vision_cache

        return vision_cache.image_encoder(side.ref, side.revision)
    loader = resources.encoder if side.kind == "encoder" else resources.decoder
    return loader(side.ref, side.revision)


@st.cache_resource(show_spinner=False)
def _images() -> dict:
    return {"lock": threading.Lock(), "items": OrderedDict()}


def register_images(ids: tuple[str, ...], images: list) -> None:
    """Make PIL `images` available to an image side under `ids` (one id per image, e.g. content hashes)."""
    memo = _images()
    with memo["lock"]:
        memo["items"][ids] = list(images)
        memo["items"].move_to_end(ids)
        while len(memo["items"]) > 4:
            memo["items"].popitem(last=False)


def _inputs(side: Side, texts: tuple[str, ...]) -> list:
    if side.kind != "image":
        return list(texts)
    found = _images()["items"].get(texts)
    if found is None:
        raise KeyError("these images were not registered (register_images)")
    return found


@st.cache_resource(max_entries=2, show_spinner=False)
def untrained_model(side: Side, seed: int = 0):
    """`es.compare.untrained` of a side's model: same architecture and tokenizer, fresh weights."""
    from encoderscope import compare

    return compare.untrained(model(side), seed=seed)


def lane(count: int) -> str:
    return "long" if count > LONG_TEXTS else "short"


@st.cache_resource(show_spinner=False)
def _stacks() -> dict:
    return {"lock": threading.Lock(), "items": OrderedDict()}


def _features_job(loaded, texts: list, progress=None) -> np.ndarray:
    """Pool job: `es.compare.layer_features`, its (done, total) progress turned into the pool's (fraction, text)."""
    from encoderscope import compare

    unit = "texts" if texts and isinstance(texts[0], str) else "images"
    report = (lambda done, total: progress(done / max(total, 1), f"{done:,} / {total:,} {unit}")) if progress else None
    return compare.layer_features(loaded, texts, progress=report)


def has_features(side: Side, texts: tuple[str, ...], untrained: bool = False) -> bool:
    return (side, texts, untrained) in _stacks()["items"]


def features(side: Side, texts: tuple[str, ...], untrained: bool = False,
             progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """Every layer's pooled vectors float32 `[L + 1, N, D]` (the model's own pooling; layer 0 = embeddings), shared:
    treat as read-only. `progress(fraction, text)` runs in the caller's script thread on a miss only."""
    key, memo = (side, texts, untrained), _stacks()
    with memo["lock"]:
        if key in memo["items"]:
            memo["items"].move_to_end(key)
            return memo["items"][key]
    loaded = untrained_model(side) if untrained else model(side)
    stack = pool.run("layer features", key, _features_job, loaded, _inputs(side, texts), lane=lane(len(texts)),
                     progress=progress)
    with memo["lock"]:
        memo["items"][key] = stack
        while len(memo["items"]) > FEATURE_STACKS:
            memo["items"].popitem(last=False)
    return stack


@st.cache_data(max_entries=16, show_spinner=False)
def similarity(a: Side, b: Side, texts: tuple[str, ...], metric: str, k: int, untrained_b: bool = False):
    """`es.compare.similarity_matrix` of the two sides' features: `.matrix` `[La + 1, Lb + 1]`, `.metric`, `.n`,
    `.notes`. The same side twice gives its self-map; `untrained_b` puts b's untrained copy in b's place."""
    from encoderscope import compare

    fa = features(a, texts)
    fb = None if a == b and not untrained_b else features(b, texts, untrained_b)
    return pool.run("layer similarity", (a, b, texts, metric, k, untrained_b), compare.similarity_matrix,
                    fa, fb, metric=metric, k=k, lane=lane(len(texts)))


def sentence_vectors(side: Side, texts: tuple[str, ...]) -> np.ndarray:
    """The last layer's pooled vectors `[N, D]` (a view into the shared features): the sentence embeddings that
    the maps and the search compare by cosine."""
    return features(side, texts)[-1]


@st.cache_data(max_entries=16, show_spinner=False)
def neighbours(a: Side, b: Side, texts: tuple[str, ...], k: int):
    """`es.compare.neighbours` of the two sides' sentence vectors: `.overlap` `[N]`, `.mutual_knn`,
    `.neighbours_a` / `.neighbours_b` `[N, k]`, `.movers`, `.notes`."""
    from encoderscope import compare

    xa, xb = sentence_vectors(a, texts), sentence_vectors(b, texts)
    return pool.run("neighbour overlap", (a, b, texts, k), compare.neighbours, xa, xb, k=k, lane=lane(len(texts)))


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _aligned_layouts(xa: np.ndarray, xb: np.ndarray, method: str, seed: int):
    """Each side's unit sentence vectors projected to 2-D (cosine geometry, as the neighbours), b's onto a's."""
    from encoderscope import compare, projection

    ya = projection.project(_unit(xa), method=method, dim=2, seed=seed)
    yb = projection.project(_unit(xb), method=method, dim=2, seed=seed)
    fit = compare.align(ya, yb)
    return np.asarray(ya), np.asarray(fit.aligned), float(fit.disparity)


@st.cache_data(max_entries=16, show_spinner=False)
def layouts(a: Side, b: Side, texts: tuple[str, ...], method: str, seed: int = 0):
    """(a's layout `[N, 2]`, b's layout aligned onto a's `[N, 2]`, Procrustes disparity): `es.project` of each
    side's sentence vectors, then `es.compare.align`."""
    xa, xb = sentence_vectors(a, texts), sentence_vectors(b, texts)
    return pool.run("aligned maps", (a, b, texts, method, seed), _aligned_layouts, xa, xb, method, seed,
                    lane=lane(len(texts)))


@st.cache_data(max_entries=64, show_spinner=False)
def query_vector(side: Side, query: str) -> np.ndarray:
    """A query's last-layer pooled vector `[D]` (kept apart from the corpus stacks, which it must not evict)."""
    return pool.run("layer features", (side, (query,), False), _features_job, model(side), [query])[-1][0]


@st.cache_data(max_entries=32, show_spinner=False)
def retrieval(a: Side, b: Side, texts: tuple[str, ...], query: str, k: int):
    """`es.compare.retrieval_from_vectors` of one query over the texts: top-k under each side, ranks under the
    other, overlap@k. The query goes through the same per-layer pooling as the texts (its last layer)."""
    from encoderscope import compare

    qa, qb = query_vector(a, query)[None], query_vector(b, query)[None]
    return pool.run("retrieval", (a, b, texts, query, k), compare.retrieval_from_vectors,
                    qa, sentence_vectors(a, texts), qb, sentence_vectors(b, texts), k)


# --- the Atlas page's stored comparisons (`python -m encoderscope atlas compare`) ---------------------------------


@st.cache_data(max_entries=4, show_spinner=False)
def atlas_comparison(folder: str, name: str, stamp: float):
    """`es.atlas.load_compare(folder, name)`: `.points` (id, overlap, x_b, y_b, neighbours_a, neighbours_b, in a's
    row order) and `.meta`. `stamp`: the JSON file's mtime, so a re-run comparison is read again."""
    from encoderscope import atlas

    return atlas.load_compare(folder, name)
