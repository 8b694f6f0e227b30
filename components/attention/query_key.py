"""The attention page's "Query · key" view: how one head's weights come out of query and key vectors.

For a chosen query token i of one head: the query vector q_i `[d]`, every key vector k_j `[T, d]`, their
elementwise products q_i ⊙ k_j · scale `[T, d]` (which sum over d to the score), then the score plus the bias
(mask, relative positions) and the softmax weight per key. All numbers come from `es.query_key`, whose weights
equal the model's own attention.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.attention import cache, payloads
from components.heatmap import canvas
from encoderscope.attribution import tables
from encoderscope.tokens import display_tokens

ORDERS = ["model order", "contribution to the attended keys"]


def dimension_order(products: np.ndarray, weights: np.ndarray, by: str) -> np.ndarray:
    """Column order for `products` `[T, d]`: model order, or by Σ_j a_j · p_jd descending (the dimensions that
    most raise the scores of the keys this query attends to first)."""
    if by == ORDERS[0]:
        return np.arange(products.shape[1])
    return np.argsort(-(weights[:, None] * products).sum(axis=0), kind="stable")


def _signed_map(values: np.ndarray, rows: list[str], cols: list[str], name: str, title: str, hover: str) -> bytes:
    """A diverging map (blue < 0 < red) symmetric around 0."""
    top = max(float(np.abs(values).max()), 1e-9)
    return payloads.matrix(values, rows, cols, name=name, title=title, zmin=-top, zmax=top, scheme="rdbu",
                           hover=hover, aspect="fit", row_px=14 if len(rows) > 1 else 26, filename=name)


def view(model_ref: str | None, revision: str | None, text: str, pair: str | None, layer: int, head,
         options_on: bool) -> None:
    if head == "mean":
        st.info("Pick a single head (not “mean”) above: queries and keys belong to one head.")
        return
    if options_on:
        st.caption("Shown on the model's own tokens: merging word-pieces and hiding special tokens do not apply here.")
    qk = cache.query_key(model_ref, revision, text, pair, layer, int(head))
    tokens = display_tokens(qk.tokens)
    labels = [f"{i}: {t}" for i, t in enumerate(tokens)]
    default = next((i for i, t in enumerate(tokens) if t.strip().lower() == "bank"), min(1, len(tokens) - 1))
    if st.session_state.get("qk_token", 0) >= len(tokens):
        del st.session_state["qk_token"]
    left, right = st.columns([2, 1])
    i = left.selectbox("Query token", range(len(tokens)), index=default, format_func=lambda k: labels[k],
                       key="qk_token")
    order_by = right.radio("Dimensions", ORDERS, horizontal=False, key="qk_order")
    products = np.asarray(qk.products(i), np.float32)  # [T, d]: q_i ⊙ k_j · scale
    weights = np.asarray(qk.weights[i], np.float32)  # [T]
    order = dimension_order(products, weights, order_by)
    dims = [f"d{d}" for d in order]
    canvas.heatmap(_signed_map(np.asarray(qk.q[i], np.float32)[order][None, :], [f"query {tokens[i]}"], dims,
                               "query_vector", f"Query vector of “{tokens[i].strip()}” (layer {layer}, head {head})",
                               "{col}: {value}"), "qk_query")
    canvas.heatmap(_signed_map(np.asarray(qk.k, np.float32)[:, order], tokens, dims, "key_vectors", "Key vectors",
                               "key {row}, {col}: {value}"), "qk_keys")
    canvas.heatmap(_signed_map(products[:, order], tokens, dims, "qk_products",
                               "Query ⊙ key · scale (each row sums to the key's score)", "key {row}, {col}: {value}"),
                   "qk_products")
    table = tables.query_key_scores(qk, i, labels)
    st.dataframe(table, hide_index=True, width="stretch", height=320,
                 column_config={"weight": st.column_config.ProgressColumn("weight", min_value=0.0, max_value=1.0,
                                                                          format="%.4f")})
    st.caption(
        f"Row *j*: the query of “{tokens[i].strip()}” times the key of token *j*, dimension by dimension, times the "
        f"scale {qk.scale:.4g}. A row's sum is the score; the bias (masks, relative positions; −∞ where masked) is "
        "added and a softmax over the keys gives the weight, the same number as in the map above. Red raises a "
        "key's score, blue lowers it."
    )
