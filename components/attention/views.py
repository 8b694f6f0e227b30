"""The attention explorer's views: each function draws one self-contained section of the page.

The maps are the canvas heatmap component (components/heatmap): the main map gets the selected head's colour
bytes first, then the layer's other heads and exact values in a second payload, so a head change is drawn in
the browser and a layer change sends one layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from components import ui
from components.attention import cache, payloads
from components.heatmap import canvas
from encoderscope import figures, head_choice
from encoderscope.attention_maps import AttentionResult, context_split, pair_filter, token_focus
from encoderscope.tokens import clean_token, display_tokens

DIRECTIONS = {"all pairs": "all", "A → B only": "A→B", "B → A only": "B→A"}
VIEWS = ["All heads", "Rollout", "Token focus", "Head summary", "Query · key"]
MAIN_KEY, STORE_KEY, GRID_KEY = "main_heatmap", "main_heatmap_store", "grid"


@dataclass(frozen=True)
class Inputs:
    """What the page's results are keyed on (the cache functions' arguments)."""

    model_ref: str | None
    revision: str | None
    text: str
    pair: str | None
    merge: bool
    hide: bool

    @property
    def raw(self) -> tuple:
        return self.model_ref, self.revision, self.text, self.pair

    @property
    def shown(self) -> tuple:
        return (*self.raw, self.merge, self.hide)


def parse_view(value, num_heads: int):
    """A head from the browser or a link ("3", 3, "mean") as the page keeps it (int or "mean"); None if junk."""
    if str(value) == "mean":
        return "mean"
    try:
        head = int(str(value))
    except ValueError:
        return None
    return head if 0 <= head < num_heads else None


def _on_view() -> None:
    """A head picked in the browser (already drawn there): make it the page's head."""
    head = parse_view(canvas.event(MAIN_KEY, "view"), st.session_state.get("num_heads", 0))
    if head is not None:
        st.session_state.head = head


def _on_row() -> None:
    """A clicked query row: focus that token in the "Token focus" view."""
    row = canvas.event(MAIN_KEY, "row")
    if isinstance(row, int):
        st.session_state.focus_token = row
        st.session_state.attn_view = "Token focus"


def _on_grid_click() -> None:
    """A clicked thumbnail ("LAYER:HEAD"): focus that head in the main map."""
    clicked = str(canvas.event(GRID_KEY, "clicked") or "")
    layer, _, head = clicked.partition(":")
    if layer.isdigit() and parse_view(head, st.session_state.get("num_heads", 0)) is not None:
        st.session_state.layer = int(layer)
        st.session_state.head = parse_view(head, st.session_state.num_heads)


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


def selected(res: AttentionResult, layer: int, head) -> np.ndarray:
    """The `[T, T]` matrix of the selected head, or the mean over the layer's heads."""
    return res.weights[layer].mean(axis=0) if head == "mean" else res.weights[layer, head]


def main_heatmap(inputs: Inputs, res: AttentionResult, layer: int, head, direction: str) -> None:
    """Draw the selected head (or the mean): its colour bytes first, then the layer's other heads and the exact
    values in a second, invisible payload. Head buttons in the map switch heads in the browser."""
    st.session_state.num_heads = res.num_heads
    layer_id, q, store = cache.layer(*inputs.shown, layer)
    canvas.heatmap(payloads.main_map(res, q, layer, str(head), layer_id, DIRECTIONS[direction]), MAIN_KEY,
                   on={"view": _on_view, "row": _on_row})
    # The browser keeps a layer's store by its id (window.__esHeatStore), so it goes once per layer and session:
    # the rerun a browser-side head change causes sends the small first payload only, not 7 MB again.
    if st.session_state.get("_store_sent") != layer_id:
        canvas.heatmap(store, STORE_KEY)
        st.session_state._store_sent = layer_id
    st.caption(
        "Row *i* shows where token *i* (the query) looks; each row sums to 1. Darker = more attention. "
        "Pick a head with the buttons above the map (no reload); click a row to focus that token below. "
        + ("The dotted red lines mark the start of sentence B (after [SEP]); filtered pairs are grey. "
           if res.sentence_b_start is not None else "")
        + "Hover a cell for “from → to: weight”."
    )


def all_heads(inputs: Inputs) -> None:
    thumbs = cache.thumbnails(*inputs.shown)
    canvas.heatmap(payloads.grid(thumbs), GRID_KEY, on={"clicked": _on_grid_click})
    st.caption(
        "Every head of every layer as a thumbnail (each scaled to its own maximum), plus the mean over heads "
        "in the last column. Click a thumbnail to focus it above. Diagonal stripes = looking at neighbours; "
        "a dark first/last column = parking attention on [CLS]/[SEP]."
    )


def rollout(inputs: Inputs, res: AttentionResult) -> None:
    matrix = cache.rollout(*inputs.shown)
    labels = display_tokens(res.tokens)
    canvas.heatmap(payloads.matrix(matrix, labels, None, name="rollout", title="Attention rollout (all layers)",
                                   zmin=0.0, zmax=max(float(matrix.max()), 1e-6), scheme="purples",
                                   legend="rollout", hover="{row} ← {col}: {value}", filename="rollout"),
                   "rollout")
    st.caption(
        "Attention rollout (Abnar & Zuidema, 2020): per layer, average the heads, add the identity for the "
        "residual connection, renormalise rows, then multiply the layers from first to last. Row *i* estimates "
        "how much the final representation of token *i* draws on each input token."
    )


def focus(res: AttentionResult, key: str) -> None:
    tokens = display_tokens(res.tokens)
    labels = [f"{i}: {t}" for i, t in enumerate(tokens)]
    default = next((i for i, t in enumerate(tokens) if t.strip().lower() == "bank"), min(1, len(tokens) - 1))
    if st.session_state.get(key, 0) >= len(tokens):  # a shorter text than the focused token's index
        del st.session_state[key]
    index = st.selectbox("Token", range(len(tokens)), index=default, format_func=lambda i: labels[i], key=key)
    values = token_focus(res, index)  # [L, T]
    L = values.shape[0]
    left, itself, right = context_split(values, index)
    word = clean_token(res.tokens[index]).strip()
    title = f"“{word}”: left context {left:.0%} · itself {itself:.0%} · right context {right:.0%} (mean per layer)"
    canvas.heatmap(payloads.matrix(values, [f"layer {i}" for i in range(L)], tokens, name=f"focus:{index}",
                                   title=title, zmin=0.0, zmax=1.0, legend="weight", aspect="fit", row_px=22,
                                   hover="{col} in {row}: {value}", outline_col=index, filename="token_focus"),
                   f"{key}_fig")
    st.caption(
        "What the chosen token (red outline) attends to in every layer, averaged over heads. Columns left of "
        "the outline are left context, right of it right context: an encoder uses both, a causal decoder "
        "only the left."
    )


def head_summary(inputs: Inputs) -> None:
    stats = cache.head_stats(*inputs.raw)
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


def downloads(res: AttentionResult, layer: int, head, direction: str) -> None:
    """The tensor as .npy and the selected head as CSV (filtered pairs left empty, as drawn). Both files are
    built only when clicked."""
    tokens = display_tokens(res.tokens)
    names = [f"{i}:{t}" for i, t in enumerate(tokens)]

    def csv() -> bytes:
        matrix = selected(res, layer, head)
        if res.sentence_b_start is not None and direction != "all pairs":
            matrix = np.where(pair_filter(res, DIRECTIONS[direction]), matrix, np.nan)
        return pd.DataFrame(matrix, index=names, columns=names).to_csv().encode()

    left, right = st.columns(2)
    left.download_button("⬇️ Attention tensor (.npy)", ui.npy_bytes(res.weights), "attention.npy", "application/octet-stream",
                         help=f"float32 array [layers, heads, T, T] = {list(res.weights.shape)}")
    right.download_button("⬇️ Selected head (.csv)", csv, f"attention_L{layer}_H{head}.csv", "text/csv",
                          help="The map above as drawn (PNG and SVG: the buttons on the map).")
