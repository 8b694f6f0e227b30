"""The attention explorer's views: each function draws one self-contained section of the page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components import ui
from encoderscope import figures, head_choice
from encoderscope.attention_maps import AttentionResult, pair_filter, token_focus
from encoderscope.tokens import display_tokens

DIRECTIONS = {"all pairs": "all", "A → B only": "A→B", "B → A only": "B→A"}


def pick_from_grid(grid_key: str, layer_key: str, head_key: str, num_heads: int) -> None:
    """Apply a click on the all-heads grid (a rerun event) to the layer/head widgets, once per click."""
    event = st.session_state.get(grid_key)
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else []
    if not points:
        return
    point = points[0]
    signature = (point.get("x"), point.get("y"))
    if st.session_state.get(f"{grid_key}_done") == signature:
        return
    st.session_state[f"{grid_key}_done"] = signature
    layer, head = int(round(point.get("y", 0))), int(round(point.get("x", 0)))
    st.session_state[layer_key] = layer
    st.session_state[head_key] = "mean" if head >= num_heads else head


# The default sentence's point: "bank" means the river bank, and some head reads that off "river" and "fishing".
CHOICE_QUERY, CHOICE_KEYS = "bank", ["river", "fishing"]


def chosen_head(res: AttentionResult) -> tuple[int, int, float] | None:
    """(layer, head, weight) where "bank" attends most to "river" and "fishing" together, on these weights;
    None when the text lacks the words. The weight is the share of a "bank" row on those words."""
    scores = head_choice.word_attention(res, CHOICE_QUERY, CHOICE_KEYS)
    if scores is None:
        return None
    layer, head = head_choice.best_head(scores)
    return layer, head, float(scores[layer, head])


def chosen_head_caption(choice: tuple[int, int, float], n_heads: int) -> None:
    """Say why the page opened on the `chosen_head` `choice`."""
    layer, head, weight = choice
    st.caption(
        f"Why this head: of all {n_heads} heads, layer {layer}, head {head} is where “bank” attends most to "
        f"“river” and “fishing” ({weight:.0%} of its attention, mean over both “bank”s), so the page opens on it. "
        "That context is what tells a river bank from a money bank."
    )


def main_heatmap(res: AttentionResult, layer: int, head, direction: str) -> np.ndarray:
    """Draw the selected head (or the mean over heads); return the `[T, T]` matrix shown."""
    matrix = res.weights[layer].mean(axis=0) if head == "mean" else res.weights[layer, head]
    keep = pair_filter(res, DIRECTIONS[direction]) if res.sentence_b_start is not None else None
    fig = figures.attention_heatmap(matrix, res.tokens, layer, "mean over heads" if head == "mean" else head, keep,
                                    divider=res.sentence_b_start)
    ui.plotly(fig, key="main_heatmap", filename=f"attention_L{layer}_H{head}")
    st.caption(
        "Row *i* shows where token *i* (the query) looks; each row sums to 1. Darker = more attention. "
        + ("The dotted red lines mark the start of sentence B (after [SEP]). " if res.sentence_b_start else "")
        + "Hover a cell for “from → to: weight”."
    )
    return matrix


def all_heads(res: AttentionResult, grid_key: str) -> None:
    ui.plotly(figures.head_grid(res.weights), key=grid_key, filename="all_heads",
              on_select="rerun", selection_mode="points")
    st.caption(
        "Every head of every layer as a thumbnail (each scaled to its own maximum), plus the mean over heads "
        "in the last column. Click a thumbnail to focus it above. Diagonal stripes = looking at neighbours; "
        "a dark first/last column = parking attention on [CLS]/[SEP]."
    )


def rollout(res: AttentionResult, matrix: np.ndarray) -> None:
    ui.plotly(figures.rollout_heatmap(matrix, res.tokens), key="rollout", filename="rollout")
    st.caption(
        "Attention rollout (Abnar & Zuidema, 2020): per layer, average the heads, add the identity for the "
        "residual connection, renormalise rows, then multiply the layers from first to last. Row *i* estimates "
        "how much the final representation of token *i* draws on each input token."
    )


def focus(res: AttentionResult, key: str) -> None:
    tokens = display_tokens(res.tokens)
    labels = [f"{i}: {t}" for i, t in enumerate(tokens)]
    default = next((i for i, t in enumerate(tokens) if t.strip().lower() == "bank"), min(1, len(tokens) - 1))
    index = st.selectbox("Token", range(len(tokens)), index=default, format_func=lambda i: labels[i], key=key)
    ui.plotly(figures.token_focus_heatmap(token_focus(res, index), res.tokens, index), key=f"{key}_fig",
              filename="token_focus")
    st.caption(
        "What the chosen token (red outline) attends to in every layer, averaged over heads. Columns left of "
        "the outline are left context, right of it right context: an encoder uses both, a causal decoder "
        "only the left."
    )


def head_summary(stats: pd.DataFrame) -> None:
    metric = st.selectbox("Colour by", ["prev", "next", "self", "cls", "sep", "punct", "entropy", "distance"],
                          key="stat_metric")
    ui.plotly(figures.head_stat_heatmap(stats, metric), key="head_stats_fig", filename=f"head_{metric}")
    notable = stats[stats.pattern != ""]
    st.caption(
        "Per head, averaged over ordinary (non-special) query tokens: attention to the previous/next token, "
        "to itself, to the first ([CLS]) and last ([SEP]) special token, to punctuation; row entropy in nats "
        "(high = diffuse); mean distance Σⱼ aᵢⱼ·|i−j| in tokens. Click a column header to sort."
    )
    st.dataframe(stats.round(3), hide_index=True, width="stretch", height=320)
    if len(notable):
        st.markdown(f"**Notable heads** ({len(notable)} of {len(stats)})")
        st.dataframe(notable[["layer", "head", "pattern", "reason"]], hide_index=True, width="stretch", height=220)


def downloads(res: AttentionResult, matrix: np.ndarray, layer: int, head) -> None:
    tokens = display_tokens(res.tokens)
    frame = pd.DataFrame(matrix, index=[f"{i}:{t}" for i, t in enumerate(tokens)],
                         columns=[f"{i}:{t}" for i, t in enumerate(tokens)])
    left, right = st.columns(2)
    left.download_button("⬇️ Attention tensor (.npy)", ui.npy_bytes(res.weights), "attention.npy", "application/octet-stream",
                         help=f"float32 array [layers, heads, T, T] = {list(res.weights.shape)}")
    right.download_button("⬇️ Selected head (.csv)", lambda: frame.to_csv().encode(), f"attention_L{layer}_H{head}.csv",
                          "text/csv")
