"""The masks page's cache section for the decoder panel: the logit lens and next-token attribution.

One heavy library call per function (one job for the compute pool); results are small arrays (st.cache_data).
"""

from __future__ import annotations

import streamlit as st

import encoderscope as es
from components import pool, resources


@st.cache_data(max_entries=16, show_spinner=False)
def logit_lens(model_ref: str | None, revision: str | None, text: str, k: int, max_length: int | None):
    """`es.logit_lens` of the cached decoder: top_tokens `[L+1][T][k]`, top_probs `[L+1, T, k]`, target_prob `[L+1]`."""
    model = resources.decoder(model_ref, revision)
    return pool.run("logit lens", (model_ref, revision, text, k, max_length), es.logit_lens, model, text, k=k,
                    max_length=max_length)


@st.cache_data(max_entries=16, show_spinner=False)
def token_attribution(model_ref: str | None, revision: str | None, text: str, target: str | None, steps: int):
    """`es.token_attribution` of the cached decoder (integrated gradients, memory-bounded): scores `[T]`."""
    model = resources.decoder(model_ref, revision)
    return pool.run("token attribution", (model_ref, revision, text, target, steps), es.token_attribution, model, text,
                    target=target or None, steps=steps)
