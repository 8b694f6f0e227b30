"""Figures for the attention explorer. Arrays in, `go.Figure` out.

Layouts are passed to the constructor (plotly's update_layout() validator costs ~10 ms a call).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..tokens import clean_token
from .common import FONT, block_mean, escape_hover, token_axis, token_heatmap, token_labels

__all__ = ["attention_heatmap", "head_grid", "rollout_heatmap", "token_focus_heatmap", "head_stat_heatmap"]

THUMB = 24  # thumbnail side in cells: enough to see a pattern, tiny to ship
ROLLOUT_SIDE = 256  # above this many tokens the rollout map is block-averaged (payload: 512² floats ≈ 1.4 MB)
# White for the gaps between thumbnails (value 0), then Blues for 1..255.
_GRID_SCALE = [[0, "#ffffff"], [1 / 255, "#f7fbff"], [0.35, "#9ecae1"], [0.7, "#2171b5"], [1, "#08306b"]]


def attention_heatmap(
    weights: np.ndarray, tokens: list[str], layer: int, head: int | str, keep=None, divider: int | None = None
) -> go.Figure:
    """One head's attention `[T, T]` (queries = rows); cells outside `keep` (bool `[T, T]`) are blank.

    `divider`: the index of sentence B's first token (`res.sentence_b_start`); dotted red lines are drawn
    before that row and column."""
    z = np.where(keep, weights, np.nan) if keep is not None else weights
    head_name = head if isinstance(head, str) else f"head {head}"
    fig = token_heatmap(z, tokens, tokens, title=f"Layer {layer}, {head_name}")
    if divider is not None:
        fig.layout.shapes = _pair_divider(divider, len(tokens))
    return fig


def _pair_divider(start: int, n_tokens: int) -> list[dict]:
    """Two dotted lines (vertical, then horizontal) between token `start - 1` and `start` of a `[T, T]` map."""
    b, end = start - 0.5, n_tokens - 0.5
    line = dict(type="line", line=dict(color="#dc2626", width=1.5, dash="dot"))
    return [dict(**line, x0=b, x1=b, y0=-0.5, y1=end), dict(**line, y0=b, y1=b, x0=-0.5, x1=end)]


def head_grid(weights: np.ndarray, thumb: int = THUMB) -> go.Figure:
    """All heads at a glance: a layers × (heads + mean) mosaic of small heatmaps.

    weights: `[L, H, T, T]`. Each thumbnail is block-averaged to at most `thumb`² cells and quantised
    to 1..255 relative to its own maximum (pattern only; exact values are in the main heatmap), sent as
    uint8. The last column is the mean over heads. Cell centres are in (head, layer) units, so a
    thumbnail spans head ± 0.5 and hover/clicks map back to (layer, head) by rounding.
    """
    L, H, T, _ = weights.shape
    small = block_mean(weights, thumb)  # block means commute with the head mean: average the small maps
    small = np.concatenate([small, small.mean(axis=1, keepdims=True)], axis=1)
    peak = small.max(axis=(-2, -1), keepdims=True)
    small = 1 + np.round(254 * np.divide(small, peak, out=np.zeros_like(small), where=peak > 0))
    s = small.shape[-1]
    cell = s + 1  # one blank (0) row/column between thumbnails
    z = np.zeros((L * cell, (H + 1) * cell), np.uint8)
    for layer in range(L):
        for head in range(H + 1):
            z[layer * cell : layer * cell + s, head * cell : head * cell + s] = small[layer, head]
    xs = (np.arange(z.shape[1]) % cell + 0.5) / cell - 0.5 + np.arange(z.shape[1]) // cell
    ys = (np.arange(z.shape[0]) % cell + 0.5) / cell - 0.5 + np.arange(z.shape[0]) // cell
    trace = go.Heatmap(
        z=z, x=xs.astype(np.float32), y=ys.astype(np.float32), zmin=0, zmax=255, colorscale=_GRID_SCALE,
        showscale=False, hoverinfo="skip",
    )
    # Streamlit reports clicks on scatter points only (not heatmap cells): one invisible square marker
    # per thumbnail carries the hover text and the click.
    heads, layers = np.meshgrid(np.arange(H + 1), np.arange(L))
    names = np.where(heads == H, "mean over heads", "head " + heads.astype(str))
    targets = go.Scatter(
        x=heads.ravel(), y=layers.ravel(), mode="markers", customdata=names.ravel(),
        marker=dict(symbol="square", size=34, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(220,38,38,0.25)")), unselected=dict(marker=dict(opacity=0)),
        hovertemplate="layer %{y}, %{customdata}<extra>click to focus</extra>", showlegend=False,
    )
    head_text = [str(h) for h in range(H)] + ["mean"]
    layout = dict(
        height=int(np.clip(48 * L + 80, 260, 1400)),
        margin=dict(l=10, r=10, t=30, b=10),
        font=FONT,
        plot_bgcolor="white",
        clickmode="event+select",
        dragmode=False,
        xaxis=dict(tickmode="array", tickvals=list(range(H + 1)), ticktext=head_text, side="top",
                   title=dict(text="head"), showgrid=False, zeroline=False, constrain="domain"),
        yaxis=dict(tickmode="array", tickvals=list(range(L)), ticktext=[str(i) for i in range(L)],
                   title=dict(text="layer"), autorange="reversed", showgrid=False, zeroline=False,
                   scaleanchor="x", scaleratio=1),
    )
    return go.Figure(data=[trace, targets], layout=layout)


def _bin_labels(tokens: list[str], size: int) -> list[str]:
    """Labels for `size` consecutive bins of tokens: "first…last" of each bin."""
    edges = np.linspace(0, len(tokens), size + 1).astype(int)
    return [f"{clean_token(tokens[a])}…{clean_token(tokens[b - 1])}" if b - a > 1 else tokens[a]
            for a, b in zip(edges[:-1], edges[1:], strict=True)]


def rollout_heatmap(rollout: np.ndarray, tokens: list[str], max_side: int = ROLLOUT_SIDE) -> go.Figure:
    """Rollout `[T, T]`: how much each output position draws on each input token across all layers.

    Above `max_side` tokens the map is block-averaged to `max_side`² bins of consecutive tokens.
    """
    title = "Attention rollout (all layers)"
    if len(tokens) > max_side:
        rollout, tokens = block_mean(rollout, max_side), _bin_labels(tokens, max_side)
        title += f" · averaged into {max_side} bins of consecutive tokens"
    zmax = float(np.nanmax(rollout)) if rollout.size else 1.0
    return token_heatmap(rollout, tokens, tokens, zmax=max(zmax, 1e-6), title=title,
                         value_name="rollout", colorscale="Purples")


def token_focus_heatmap(focus: np.ndarray, tokens: list[str], index: int) -> go.Figure:
    """What one token attends to in each layer: `[L, T]` (mean over heads), the token's column outlined."""
    L, T = focus.shape
    labels = token_labels(tokens)
    trace = go.Heatmap(
        z=focus.astype(np.float32), x=labels, y=[f"layer {i}" for i in range(L)], zmin=0, zmax=1,
        colorscale="Blues", colorbar=dict(title=dict(text="weight", side="right"), thickness=12),
        hovertemplate=f"{labels[index]} → %{{x}} in %{{y}}: %{{z:.3f}}<extra></extra>",
    )
    left, right = focus[:, :index].sum() / max(L, 1), focus[:, index + 1 :].sum() / max(L, 1)
    layout = dict(
        height=int(np.clip(60 + 34 * L, 260, 1100)),
        margin=dict(l=10, r=10, t=40, b=10),
        font=FONT,
        title=dict(text=f"“{escape_hover(clean_token(tokens[index]).strip())}”: left context {left:.0%} · "
                        f"itself {focus[:, index].mean():.0%} · right context {right:.0%} (mean per layer)",
                   x=0, xanchor="left", font=dict(size=13)),
        xaxis=token_axis(tokens, title=dict(text="key (to)")),
        yaxis=dict(autorange="reversed", title=dict(text="layer")),
        shapes=[dict(type="rect", x0=index - 0.5, x1=index + 0.5, y0=-0.5, y1=L - 0.5,
                     line=dict(color="#dc2626", width=2))],
    )
    return go.Figure(data=[trace], layout=layout)


def head_stat_heatmap(stats: pd.DataFrame, column: str) -> go.Figure:
    """A layers × heads heatmap of one `head_stats` column; hover names the head's pattern if flagged."""
    ordered = stats.sort_values(["layer", "head"])
    L, H = int(ordered["layer"].max()) + 1, int(ordered["head"].max()) + 1
    z = ordered[column].to_numpy(np.float32).reshape(L, H)
    hover = "layer %{y}, head %{x}: %{z:.3f}"
    custom = None
    if "pattern" in ordered:
        custom = np.asarray([escape_hover(t) for t in ordered["pattern"]], dtype=object).reshape(L, H)
        hover += "<br>%{customdata}"
    bounded = column not in ("entropy", "distance")
    top = 1.0 if bounded else float(np.nanmax(z)) if np.isfinite(z).any() else 1.0
    trace = go.Heatmap(
        z=z, x=list(range(H)), y=list(range(L)), customdata=custom, zmin=0, zmax=top, colorscale="Viridis",
        hovertemplate=hover + "<extra></extra>", colorbar=dict(title=dict(text=column, side="right"), thickness=12),
        texttemplate="%{z:.2f}" if L * H <= 200 else None, textfont=dict(size=9),
    )
    layout = dict(
        height=int(np.clip(40 + 30 * L, 240, 900)), margin=dict(l=10, r=10, t=10, b=10), font=FONT,
        xaxis=dict(title=dict(text="head"), tickmode="array", tickvals=list(range(H)), side="top"),
        yaxis=dict(title=dict(text="layer"), tickmode="array", tickvals=list(range(L)), autorange="reversed"),
    )
    return go.Figure(data=[trace], layout=layout)
