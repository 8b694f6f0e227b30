"""Figures for the encoder-vs-decoder page. Arrays in, `go.Figure` out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..tokens import clean_token
from .common import FONT, escape_hover, token_axis, token_heatmap, token_labels

__all__ = ["mask_figure", "masked_attention_figure", "layer_token_similarity", "probe_line", "next_token_bars"]

ALLOWED, BLOCKED = "#4f46e5", "#d1d5db"
_HOVER_TEXT_CELLS = 20_000  # per-cell hover words up to this many cells; numbers above it


def mask_figure(
    mask: np.ndarray,
    row_tokens: list[str],
    col_tokens: list[str],
    title: str,
    row_title: str = "query (from)",
    col_title: str = "key (to)",
    height: int = 360,
) -> go.Figure:
    """A boolean mask `[rows, cols]`: allowed cells coloured, blocked cells grey."""
    z = mask.astype(np.uint8)
    text = np.where(mask, "allowed", "blocked") if mask.size <= _HOVER_TEXT_CELLS else None
    trace = go.Heatmap(
        z=z,
        x=token_labels(col_tokens),
        y=token_labels(row_tokens),
        zmin=0,
        zmax=1,
        showscale=False,
        colorscale=[[0, BLOCKED], [0.5, BLOCKED], [0.5, ALLOWED], [1, ALLOWED]],
        xgap=1,
        ygap=1,
        text=text,
        hovertemplate="%{y} → %{x}: " + ("%{text}" if text is not None else "%{z} (1 = allowed)") + "<extra></extra>",
    )
    layout = dict(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=14)),
        height=height,
        font=FONT,
        margin=dict(l=10, r=10, t=36, b=10),
        plot_bgcolor="white",
        xaxis=token_axis(col_tokens, title=dict(text=col_title), max_ticks=40),
        yaxis={
            **token_axis(row_tokens, title=dict(text=row_title), max_ticks=40),
            "autorange": "reversed",
            "tickangle": 0,
        },
    )
    return go.Figure(data=[trace], layout=layout)


def masked_attention_figure(
    weights: np.ndarray, tokens: list[str], title: str, blocked: np.ndarray | None = None
) -> go.Figure:
    """Attention `[T, T]` with `blocked` cells (bool `[T, T]`) drawn grey and labelled "blocked" on hover."""
    fig = token_heatmap(
        np.where(blocked, np.nan, weights) if blocked is not None else weights, tokens, tokens, title=title, height=420
    )
    if blocked is not None and blocked.any():
        fig.add_trace(
            go.Heatmap(
                z=np.where(blocked, 1.0, np.nan).astype(np.float32),
                x=fig.data[0].x,
                y=fig.data[0].y,
                colorscale=[[0, BLOCKED], [1, BLOCKED]],
                showscale=False,
                hoverongaps=False,
                hovertemplate="%{y} → %{x}: blocked<extra></extra>",
            )
        )
    return fig


def layer_token_similarity(
    sim: np.ndarray, tokens: list[str], title: str, marker: int | None = None, zmin: float | None = None
) -> go.Figure:
    """Cosine similarities `[L + 1, T]` as a layers × tokens heatmap (row 0 = embeddings).

    `marker`: draw a vertical line before this token index (e.g. the first differing token).
    """
    lo = float(np.nanmin(sim)) if zmin is None else zmin
    labels = ["embeddings"] + [f"layer {i}" for i in range(1, sim.shape[0])]
    trace = go.Heatmap(
        z=sim.astype(np.float32),
        x=token_labels(tokens),
        y=labels,
        zmin=min(lo, 0.999),
        zmax=1,
        colorscale="RdYlGn",
        colorbar=dict(title=dict(text="cosine", side="right"), thickness=12),
        hovertemplate="%{x} in %{y}: cosine %{z:.5f}<extra></extra>",
        texttemplate="%{z:.2f}" if sim.size <= 400 else None,
        textfont=dict(size=10),
    )
    shapes, annotations = [], []
    if marker is not None and 0 <= marker <= len(tokens):
        shapes.append(
            dict(
                type="line",
                x0=marker - 0.5,
                x1=marker - 0.5,
                y0=-0.5,
                y1=sim.shape[0] - 0.5,
                line=dict(color="#111827", width=3, dash="dash"),
            )
        )
        annotations.append(
            dict(
                x=marker - 0.5,
                y=-0.5,
                yanchor="bottom",
                text="first differing token ▸",
                showarrow=False,
                xanchor="left",
                font=dict(size=11, color="#111827"),
            )
        )
    layout = dict(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=14)),
        font=FONT,
        height=int(np.clip(150 + 32 * sim.shape[0], 320, 760)),
        margin=dict(l=10, r=10, t=50, b=10),
        xaxis=token_axis(tokens, automargin=True),  # rotated labels keep their first letters
        yaxis=dict(autorange="reversed"),
        shapes=shapes,
        annotations=annotations,
    )
    return go.Figure(data=[trace], layout=layout)


def probe_line(curves: dict[str, np.ndarray], word: str) -> go.Figure:
    """Cosine of one word between the two sentences, per layer, one line per mask: {mask: `[L + 1]`}."""
    colours = {"bidirectional": ALLOWED, "causal": "#ea580c"}
    traces = [
        go.Scatter(
            x=list(range(len(v))),
            y=v,
            mode="lines+markers",
            name=name,
            line=dict(color=colours.get(name), width=3),
            hovertemplate=f"{name}, layer %{{x}}: cosine %{{y:.5f}}<extra></extra>",
        )
        for name, v in curves.items()
    ]
    low = min(float(np.min(v)) for v in curves.values())
    layout = dict(
        title=dict(text=f"“{escape_hover(word)}” in sentence A vs sentence B", x=0, xanchor="left", font=dict(size=14)),
        height=340,
        font=FONT,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.25),
        xaxis=dict(title=dict(text="layer (0 = embeddings)"), dtick=1),
        yaxis=dict(title=dict(text="cosine similarity"), range=[min(low - 0.02, 0.95), 1.005]),
    )
    return go.Figure(data=traces, layout=layout)


def next_token_bars(predictions: list[tuple[str, float]]) -> go.Figure:
    """Top-k next tokens as horizontal bars (most likely on top)."""
    labels = [f"“{escape_hover(clean_token(t))}”" for t, _ in predictions]
    probs = [p for _, p in predictions]
    trace = go.Bar(
        x=probs,
        y=labels,
        orientation="h",
        marker=dict(color=ALLOWED),
        text=[f"{p:.1%}" for p in probs],
        textposition="auto",
        hovertemplate="%{y}: %{x:.2%}<extra></extra>",
    )
    layout = dict(
        height=60 + 36 * len(probs),
        font=FONT,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(range=[0, 1], tickformat=".0%", title=dict(text="probability")),
        yaxis=dict(autorange="reversed", type="category"),
    )
    return go.Figure(data=[trace], layout=layout)
