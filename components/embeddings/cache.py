"""The Embeddings page's cache section for its Features view: features learned once per corpus and size."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components import pool


@st.cache_resource(max_entries=2, show_spinner=False)
def learned_features(key: str, n_features: int, k: int, _X: np.ndarray, _texts: tuple[str, ...]):
    """(SAE, describe table, activation codes (ids, values) `[N, k]`) of `_X` `[N, D]` with its texts; `key` is
    `pool.digest` of both. Training is one job in the compute pool's long lane; shared by every session."""
    from encoderscope import features

    sae = pool.run("features", (key, n_features, k), features.train, _X, n_features, k, lane="long")
    codes = sae.encode(_X)
    return sae, features.describe(sae, _X, list(_texts), codes=codes), codes
