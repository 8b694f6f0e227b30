"""The Embeddings page's "Features" view: a sparse autoencoder learned from this corpus on request (compute pool,
long lane), with the Atlas page's feature card (components/atlas/features.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components import pool, ui
from components.atlas import features as feature_views
from components.embeddings import cache
from encoderscope import features, settings

K_OPTIONS = [4, 8, 16, 32]
SIZES = (64, 128, 256, 512, 1024, 2048, 4096)


def size_options(n: int) -> list[int]:
    """Dictionary sizes a corpus of `n` vectors can train (2 vectors per feature): powers of two, 64 .. 4096."""
    return [f for f in SIZES if 2 * f <= n]


def section(texts: list[str], X: np.ndarray) -> None:
    """Controls, the learn button, then a feature picker and card once learned."""
    # at least the smallest dictionary's vectors, whatever the setting says (below it there is no size to offer)
    need = max(settings.get().features_min_sentences, 2 * SIZES[0])
    if len(X) < need:
        st.info(f"Features need a corpus of at least {need:,} sentences (this one has {len(X):,}): a dictionary "
                "learned from fewer only memorises them. Upload a CSV or build an atlas of a larger corpus.")
        return
    sizes = size_options(len(X))
    c1, c2 = st.columns(2)
    n_features = c1.select_slider("Features", sizes, value=sizes[min(len(sizes) - 1, 3)], key="feat_size")
    k = c2.select_slider("Active per sentence (k)", K_OPTIONS, value=16, key="feat_k")
    key = pool.digest(np.asarray(X, np.float32), "\x00".join(texts))
    wanted = (key, n_features, k)
    if st.button("Learn features", key="feat_learn", help="Trains a TopK sparse autoencoder (docs/features.md)"):
        st.session_state["feat_learned"] = wanted
    if st.session_state.get("feat_learned") != wanted:
        seconds = features.estimate_seconds(len(X), X.shape[1], n_features)
        st.caption(f"Learns {n_features:,} features, {k} active per sentence, from these {len(X):,} vectors: "
                   f"about {_duration(seconds)} on two idle cores (longer while the server is busy).")
        return
    with ui.guard("learn the features") as learning, st.spinner("Learning features …"):
        sae, table, (ids, values), fvu = cache.learned_features(key, n_features, k, np.asarray(X, np.float32),
                                                                tuple(texts))
    if learning.failed:
        return
    dead = int((table["frequency"] == 0).sum())
    st.caption(f"{sae.n_features:,} features, {sae.k} active per sentence · reconstruction leaves "
               f"{fvu:.1%} of the variance unexplained · {dead:,} never active")
    feature = feature_views.pick(table, "emb_feature")
    if feature is None:
        return
    activation = np.where((ids == feature) & (values > 0), values, 0).max(axis=1)
    feature_views.draw_card(feature, table.iloc[feature], activation, pd.Series(texts), key="emb_feature")


def _duration(seconds: float) -> str:
    """'a few seconds', '40 s', '3 min'."""
    if seconds < 10:
        return "a few seconds"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
