"""The Compare page's section of the cache layer: models, per-layer features, matrices, overlaps, layouts.

A side is `Side(kind, ref, revision)` (hashable, the cache key). Each model runs once per text set
(`features`: every layer's pooled vectors, one pool job); every metric, the neighbours and the maps are computed
from those cached features, so switching the metric or k never re-runs a model. Heavy calls are one
`pool.run` job each; a cache hit never reaches the pool.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st

from components import pool, resources

LONG_TEXTS = 500  # texts: a forward pass over more runs in the pool's long lane


class Side(NamedTuple):
    """One model of the comparison: kind "encoder" | "decoder", the picker's ref (None: bundled) and revision."""

    kind: str
    ref: str | None
    revision: str | None = None


def model(side: Side):
    """The shared loaded model of a side (read-only)."""
    loader = resources.encoder if side.kind == "encoder" else resources.decoder
    return loader(side.ref, side.revision)


@st.cache_resource(max_entries=2, show_spinner=False)
def untrained_model(side: Side, seed: int = 0):
    """`es.compare.untrained` of a side's model: same architecture and tokenizer, fresh weights."""
    from encoderscope import compare

    return compare.untrained(model(side), seed=seed)


def _lane(texts: tuple[str, ...]) -> str:
    return "long" if len(texts) > LONG_TEXTS else "short"


@st.cache_data(max_entries=8, show_spinner=False)
def features(side: Side, texts: tuple[str, ...], untrained: bool = False) -> np.ndarray:
    """Every layer's pooled sentence vectors `[L + 1, N, D]` (the model's own pooling; layer 0 = embeddings)."""
    from encoderscope import compare

    loaded = untrained_model(side) if untrained else model(side)
    return pool.run("layer features", (side, texts, untrained), compare.layer_features, loaded, list(texts),
                    lane=_lane(texts))


@st.cache_data(max_entries=16, show_spinner=False)
def similarity(a: Side, b: Side, texts: tuple[str, ...], metric: str, k: int, untrained_b: bool = False):
    """`es.compare` layer × layer similarity of the cached features: `.matrix` `[La + 1, Lb + 1]`, `.metric`,
    `.n`. With `untrained_b`, b's features come from its untrained copy (the baseline)."""
    from encoderscope import compare

    fa, fb = features(a, texts, False), features(b, texts, untrained_b)
    return pool.run("layer similarity", (a, b, texts, metric, k, untrained_b), compare.similarity_from_features,
                    fa, fb, metric=metric, k=k, lane=_lane(texts))


@st.cache_data(max_entries=16, show_spinner=False)
def sentence_vectors(side: Side, texts: tuple[str, ...], untrained: bool = False) -> np.ndarray:
    """The last layer's pooled vectors `[N, D]`, L2-normalised: the sentence embeddings the maps and search use.
    Cached apart from `features` so a rerun copies `[N, D]`, not every layer."""
    last = np.asarray(features(side, texts, untrained)[-1], np.float64)
    norms = np.linalg.norm(last, axis=1, keepdims=True)
    return last / np.where(norms > 0, norms, 1.0)


@st.cache_data(max_entries=16, show_spinner=False)
def neighbours(a: Side, b: Side, texts: tuple[str, ...], k: int):
    """`es.compare.neighbours` of the two sides' sentence vectors: `.overlap` `[N]`, `.mutual_knn`,
    `.neighbours_a` / `.neighbours_b` `[N, k]`, `.movers`."""
    from encoderscope import compare

    xa, xb = sentence_vectors(a, texts, False), sentence_vectors(b, texts, False)
    return pool.run("neighbour overlap", (a, b, texts, k), compare.neighbours, xa, xb, k=k, lane=_lane(texts))


@st.cache_data(max_entries=16, show_spinner=False)
def layouts(a: Side, b: Side, texts: tuple[str, ...], method: str, seed: int = 0):
    """(a's layout `[N, 2]`, b's layout aligned onto a's `[N, 2]`, disparity): `es.project` of each side's
    sentence vectors, then `es.compare.align`."""
    from encoderscope import compare, projection

    def run(xa, xb):
        ya = projection.project(xa, method=method, dim=2, seed=seed)
        yb = projection.project(xb, method=method, dim=2, seed=seed)
        fit = compare.align(ya, yb)
        return ya, np.asarray(fit.aligned), float(fit.disparity)

    xa, xb = sentence_vectors(a, texts, False), sentence_vectors(b, texts, False)
    return pool.run("aligned maps", (a, b, texts, method, seed), run, xa, xb, lane=_lane(texts))


@st.cache_data(max_entries=32, show_spinner=False)
def query_vector(side: Side, query: str) -> np.ndarray:
    """The query's sentence vector `[D]` under a side's model (last layer, its own pooling, L2-normalised)."""
    from encoderscope import compare

    feats = pool.run("layer features", (side, (query,), False), compare.layer_features, model(side), [query])
    last = np.asarray(feats[-1][0], np.float64)
    return last / max(float(np.linalg.norm(last)), 1e-12)
