"""The attention page's cache section: one forward pass per text, everything else derived lazily and memoised.

Keyed on the inputs (model, text, options), never on arrays, so moving a slider hashes no tensor. The model calls
(`es.attention`, `es.query_key`) run on the server's compute pool (components/pool.py), one job per call.
Results are shared (`st.cache_resource`) where unpickling per caller would cost more than the page: a bert-base
tensor `[12, 12, 512, 512]` is 151 MB. Treat them as read-only.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import encoderscope as es
from components import pool, resources
from components.attention import payloads
from encoderscope import settings

_ENTRIES = max(2, settings.get().model_cache_size)


@st.cache_resource(max_entries=_ENTRIES, show_spinner=False)
def attention(model_ref: str | None, revision: str | None, text: str, text_pair: str | None):
    """`es.attention` of the cached encoder: AttentionResult with weights `[L, H, T, T]`. Read-only."""
    model = resources.encoder(model_ref, revision)  # loads stay outside the pool
    return pool.run("attention", (model_ref, revision, text, text_pair), es.attention, model, text, text_pair)


@st.cache_resource(max_entries=_ENTRIES, show_spinner=False)
def shown(model_ref: str | None, revision: str | None, text: str, text_pair: str | None, merge: bool, hide: bool):
    """The result after the display options: word pieces merged first, then special tokens dropped. Read-only."""
    from encoderscope.attention_maps import drop_special, merge_word_pieces

    res = attention(model_ref, revision, text, text_pair)
    if merge:
        res = merge_word_pieces(res)
    if hide:
        res = drop_special(res)
    return res


@st.cache_resource(max_entries=8, show_spinner=False)
def layer(model_ref: str | None, revision: str | None, text: str, text_pair: str | None, merge: bool, hide: bool,
          index: int) -> tuple[str, np.ndarray, bytes]:
    """(data id, uint16 `[H + 1, T, T]` (heads, then their mean), the store payload) of one layer. Read-only."""
    res = shown(model_ref, revision, text, text_pair, merge, hide)
    layer_id = payloads.data_id(model_ref, revision, text, text_pair, merge, hide, index)
    q = payloads.layer_quantised(res.weights[index])
    return layer_id, q, payloads.layer_store(q, res.num_heads, layer_id)


@st.cache_data(max_entries=16, show_spinner=False)
def head_stats(model_ref: str | None, revision: str | None, text: str, text_pair: str | None):
    """`es.head_stats` with `flag_heads` columns, on the raw tokens ([CLS]/[SEP] columns kept)."""
    from encoderscope.attention_maps import flag_heads

    res = attention(model_ref, revision, text, text_pair)
    return flag_heads(es.head_stats(res), len(res.tokens))


@st.cache_data(max_entries=16, show_spinner=False)
def rollout(model_ref: str | None, revision: str | None, text: str, text_pair: str | None, merge: bool,
            hide: bool) -> np.ndarray:
    """`es.rollout` `[T, T]` of the shown result."""
    return es.rollout(shown(model_ref, revision, text, text_pair, merge, hide))


@st.cache_data(max_entries=16, show_spinner=False)
def thumbnails(model_ref: str | None, revision: str | None, text: str, text_pair: str | None, merge: bool,
               hide: bool) -> np.ndarray:
    """The all-heads grid's thumbnails, uint8 `[L, H + 1, s, s]` (see `payloads.grid_thumbnails`)."""
    return payloads.grid_thumbnails(shown(model_ref, revision, text, text_pair, merge, hide).weights)


@st.cache_data(max_entries=16, show_spinner=False)
def query_key(model_ref: str | None, revision: str | None, text: str, text_pair: str | None, layer: int, head: int):
    """`es.query_key` of one head of the cached encoder: .q/.k `[T, d]`, .scale, .bias `[T, T]` | None, .weights."""
    model = resources.encoder(model_ref, revision)
    return pool.run("query key", (model_ref, revision, text, text_pair, layer, head), es.query_key, model, text,
                    layer, head, text_pair)
