"""Figures for the attention explorer. Arrays in, `go.Figure` out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .common import FONT, block_mean, escape_hover, token_axis, token_heatmap, token_labels

__all__ = ["attention_heatmap", "head_grid", "rollout_heatmap", "token_focus_heatmap", "head_stat_heatmap"]

THUMB = 24  # thumbnail side in cells: enough to see a pattern, tiny to ship


def attention_heatmap(weights: np.ndarray, tokens: list[str], layer: int, head: int | str, keep=None) -> go.Figure:
    """One head's attention `[T, T]` (queries = rows); cells outside `keep` (bool `[T, T]`) are blank."""
    z = np.where(keep, weights, np.nan) if keep is not None else weights
    head_name = head if isinstance(head, str) else f"head {head}"
    return token_heatmap(z, tokens, tokens, title=f"Layer {layer}, {head_name}")


def head_grid(weights: np.ndarray, thumb: int = THUMB) -> go.Figure:
    """All heads at a glance: a layers × (heads + mean) mosaic of small heatmaps.

    weights: `[L, H, T, T]`. Each thumbnail is block-averaged to at most `thumb`² cells and quantised
    to 256 levels of its own maximum (pattern only; exact values are in the main heatmap). The last column is the mean over heads.
    Cell coordinates are (head ± 0.5, layer ± 0.5), so hover and clicks map back to (layer, head).
    """
    L, H, T, _ = weights.shape
    small = block_mean(np.concatenate([weights, weights.mean(axis=1, keepdims=True)], axis=1), thumb)
    # Per-thumbnail contrast: scale each by its own max so diffuse heads still show their pattern.
    peak = small.max(axis=(-2, -1), keepdims=True)
    small = np.round(255 * np.divide(small, peak, out=np.zeros_like(small), where=peak > 0))
    s = small.shape[-1]
    cell = s + 1  # one blank row/column between thumbnails
    z = np.full((L * cell, (H + 1) * cell), np.nan, np.float32)
    for layer in range(L):
        for head in range(H + 1):
            z[layer * cell : layer * cell + s, head * cell : head * cell + s] = small[layer, head]
    # Cell centres in "head"/"layer" units: thumbnail k spans k-0.5 .. k+0.5.
    xs = (np.arange(z.shape[1]) % cell + 0.5) / cell - 0.5 + np.arange(z.shape[1]) // cell
    ys = (np.arange(z.shape[0]) % cell + 0.5) / cell - 0.5 + np.arange(z.shape[0]) // cell
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=xs.astype(np.float32),
            y=ys.astype(np.float32),
            zmin=0,
            zmax=255,
            colorscale="Blues",
            showscale=False,
            hoverongaps=False,
            hovertemplate="layer %{y:.0f}, head %{x:.0f}<extra>click to focus</extra>",
        )
    )
    head_text = [str(h) for h in range(H)] + ["mean"]
    fig.update_layout(
        height=int(np.clip(44 * L + 80, 260, 1400)),
        margin=dict(l=10, r=10, t=30, b=10),
        font=FONT,
        plot_bgcolor="white",
        xaxis=dict(
            tickmode="array", tickvals=list(range(H + 1)), ticktext=head_text, side="top",
            title=dict(text="head"), showgrid=False, zeroline=False, constrain="domain",
        ),
        yaxis=dict(
            tickmode="array", tickvals=list(range(L)), ticktext=[str(i) for i in range(L)],
            title=dict(text="layer"), autorange="reversed", showgrid=False, zeroline=False,
            scaleanchor="x", scaleratio=1,
        ),
    )
    return fig


def rollout_heatmap(rollout: np.ndarray, tokens: list[str]) -> go.Figure:
    """Rollout `[T, T]`: how much each output position draws on each input token across all layers."""
    zmax = float(np.nanmax(rollout)) if rollout.size else 1.0
    fig = token_heatmap(rollout, tokens, tokens, zmax=max(zmax, 1e-6), title="Attention rollout (all layers)",
                        value_name="rollout", colorscale="Purples")
    return fig


def token_focus_heatmap(focus: np.ndarray, tokens: list[str], index: int) -> go.Figure:
    """What one token attends to in each layer: `[L, T]` (mean over heads), the token's column outlined."""
    L, T = focus.shape
    fig = go.Figure(
        go.Heatmap(
            z=focus.astype(np.float32),
            x=token_labels(tokens),
            y=[f"layer {i}" for i in range(L)],
            zmin=0,
            zmax=1,
            colorscale="Blues",
            colorbar=dict(title=dict(text="weight", side="right"), thickness=12),
            hovertemplate=f"{escape_hover(token_labels(tokens)[index])} → %{{x}} in %{{y}}: %{{z:.3f}}<extra></extra>",
        )
    )
    fig.add_shape(type="rect", x0=index - 0.5, x1=index + 0.5, y0=-0.5, y1=L - 0.5,
                  line=dict(color="#dc2626", width=2))
    left, right = focus[:, :index].sum(), focus[:, index + 1 :].sum()
    fig.update_layout(
        height=int(np.clip(60 + 34 * L, 260, 1100)),
        margin=dict(l=10, r=10, t=40, b=10),
        font=FONT,
        title=dict(text=f"Left context {left / max(L, 1):.0%} · right context {right / max(L, 1):.0%} (mean per layer)",
                   x=0, xanchor="left", font=dict(size=13)),
        xaxis=token_axis(tokens, title=dict(text="key (to)")),
        yaxis=dict(autorange="reversed", title=dict(text="layer")),
    )
    return fig


def head_stat_heatmap(stats: pd.DataFrame, column: str) -> go.Figure:
    """A layers × heads heatmap of one `head_stats` column."""
    L, H = int(stats["layer"].max()) + 1, int(stats["head"].max()) + 1
    z = stats.sort_values(["layer", "head"])[column].to_numpy(np.float32).reshape(L, H)
    text = stats.sort_values(["layer", "head"]).get("pattern")
    hover = "layer %{y}, head %{x}: %{z:.3f}"
    custom = None
    if text is not None:
        custom = np.asarray([escape_hover(t) for t in text]).reshape(L, H)
        hover += "<br>%{customdata}"
    bounded = column not in ("entropy", "distance")
    fig = go.Figure(
        go.Heatmap(
            z=z, x=list(range(H)), y=list(range(L)), customdata=custom,
            zmin=0, zmax=1 if bounded else float(np.nanmax(z)) if np.isfinite(z).any() else 1,
            colorscale="Viridis", hovertemplate=hover + "<extra></extra>",
            colorbar=dict(title=dict(text=column, side="right"), thickness=12),
            texttemplate="%{z:.2f}" if L * H <= 200 else None, textfont=dict(size=9),
        )
    )
    fig.update_layout(
        height=int(np.clip(40 + 30 * L, 240, 900)), margin=dict(l=10, r=10, t=10, b=10), font=FONT,
        xaxis=dict(title=dict(text="head"), tickmode="array", tickvals=list(range(H)), side="top"),
        yaxis=dict(title=dict(text="layer"), tickmode="array", tickvals=list(range(L)), autorange="reversed"),
    )
    return fig
