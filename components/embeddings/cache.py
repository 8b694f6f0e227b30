"""The Embeddings page's cache section for its Features view: features learned once per corpus and size."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components import pool
from encoderscope import settings


def _learn(X: np.ndarray, n_features: int, k: int, texts: list[str]):
    """Train, encode, describe and measure: the whole of `learned_features`' work, so that it is one pool job."""
    from encoderscope import features

    sae = features.train(X, n_features, k)
    codes = sae.encode(X)
    return sae, features.describe(sae, X, texts, codes=codes), codes, sae.fvu(X)


@st.cache_resource(max_entries=2, show_spinner=False)
def learned_features(key: str, n_features: int, k: int, _X: np.ndarray, _texts: tuple[str, ...]):
    """(SAE, describe table, activation codes (ids, values) `[N, k]`, FVU) of `_X` `[N, D]` with its texts; `key`
    is `pool.digest` of both. One job in the compute pool's long lane (training, then encoding the corpus, naming
    the features and the FVU: seconds at 20,000 x 4,096, too slow for every rerun), allowed ENCODERSCOPE_FEATURES_TIMEOUT
    seconds instead of the pool's job timeout (training takes minutes on a large corpus); shared by every session."""
    limit = settings.get().features_timeout
    return pool.run("features", (key, n_features, k), _learn, _X, n_features, k, list(_texts), lane="long",
                    timeout=limit if limit > 0 else None)
