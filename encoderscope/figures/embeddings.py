"""Figures for the embeddings explorer. Arrays in, `go.Figure` out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from .common import FONT, escape_hover

__all__ = ["projection_scatter", "self_similarity_chart", "explained_variance_chart"]

PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Set2
HOVER_CHARS = 160


def _short(text: str) -> str:
    text = str(text)
    return escape_hover(text if len(text) <= HOVER_CHARS else text[: HOVER_CHARS - 1] + "…")


def projection_scatter(
    coords: np.ndarray,
    texts: list[str],
    groups: list[str],
    title: str = "",
    highlight: dict[int, str] | None = None,
    query: np.ndarray | None = None,
    axis_titles: tuple[str, ...] = (),
) -> go.Figure:
    """Points `[N, 2|3]`, one trace per group (legend = colour key), hover = escaped text + group.

    highlight: {index: note} points drawn with a black ring (e.g. nearest neighbours);
    query: coordinates `[2|3]` of a query point, drawn as a star.
    """
    dim = coords.shape[1]
    Scatter = go.Scatter3d if dim == 3 else go.Scattergl if len(coords) > 5000 else go.Scatter  # WebGL for big N
    groups = [str(g) for g in groups]
    names = list(dict.fromkeys(groups))
    size = 4 if dim == 3 else (6 if len(coords) > 2000 else 9)
    traces = []
    for k, name in enumerate(names):
        idx = np.flatnonzero(np.asarray(groups) == name)
        xyz = {axis: coords[idx, d] for d, axis in enumerate("xyz"[:dim])}
        traces.append(
            Scatter(
                **xyz,
                mode="markers",
                name=escape_hover(name),
                marker=dict(size=size, color=PALETTE[k % len(PALETTE)], opacity=0.85),
                customdata=np.array([[_short(texts[i]), escape_hover(name)] for i in idx], dtype=object),
                hovertemplate="%{customdata[0]}<br><b>%{customdata[1]}</b><extra></extra>",
            )
        )
    if highlight:
        idx = np.array(list(highlight))
        xyz = {axis: coords[idx, d] for d, axis in enumerate("xyz"[:dim])}
        traces.append(
            Scatter(
                **xyz,
                mode="markers",
                name="nearest neighbours",
                marker=dict(size=size + 8, color="rgba(0,0,0,0)", line=dict(color="#111827", width=2)),
                customdata=np.array([[_short(texts[i]), escape_hover(highlight[i])] for i in idx], dtype=object),
                hovertemplate="%{customdata[0]}<br>%{customdata[1]}<extra></extra>",
            )
        )
    if query is not None:
        xyz = {axis: [query[d]] for d, axis in enumerate("xyz"[:dim])}
        traces.append(
            Scatter(
                **xyz,
                mode="markers",
                name="query",
                marker=dict(size=size + 10, color="#111827", symbol="diamond" if dim == 3 else "star"),
                hovertemplate="query<extra></extra>",
            )
        )
    layout = dict(
        title=dict(text=escape_hover(title), x=0, xanchor="left", font=dict(size=14)) if title else None,
        height=620,
        font=FONT,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        legend=dict(itemsizing="constant", title=dict(text="colour")),
        plot_bgcolor="white",
    )
    titles = list(axis_titles) + [""] * 3
    if dim == 3:
        layout["scene"] = {f"{a}axis": dict(title=dict(text=titles[i])) for i, a in enumerate("xyz")}
    else:
        layout["xaxis"] = dict(title=dict(text=titles[0]), zeroline=False, showgrid=True, gridcolor="#eef0f4")
        layout["yaxis"] = dict(title=dict(text=titles[1]), zeroline=False, showgrid=True, gridcolor="#eef0f4")
    return go.Figure(data=traces, layout=layout)


def self_similarity_chart(self_sim: np.ndarray, baseline: np.ndarray, word: str) -> go.Figure:
    """Self-similarity of a word per layer `[L + 1]` next to the anisotropy baseline `[L + 1]`."""
    layers = list(range(len(self_sim)))
    traces = [
        go.Scatter(
            x=layers,
            y=self_sim,
            mode="lines+markers",
            name=f"self-similarity of “{escape_hover(word)}”",
            line=dict(color="#4f46e5", width=3),
            hovertemplate="layer %{x}: %{y:.3f}<extra></extra>",
        ),
        go.Scatter(
            x=layers,
            y=baseline,
            mode="lines+markers",
            name="random tokens (anisotropy baseline)",
            line=dict(color="#9ca3af", width=2, dash="dash"),
            hovertemplate="layer %{x}: %{y:.3f}<extra></extra>",
        ),
    ]
    layout = dict(
        height=340,
        font=FONT,
        margin=dict(l=10, r=10, t=10, b=10),
        legend=dict(orientation="h", y=-0.3),
        xaxis=dict(title=dict(text="layer (0 = static embedding)"), dtick=1),
        yaxis=dict(title=dict(text="mean cosine"), range=[min(0, float(np.nanmin(baseline)) - 0.05), 1.02]),
    )
    return go.Figure(data=traces, layout=layout)


def explained_variance_chart(ratio: np.ndarray) -> go.Figure:
    """PCA explained variance ratio per component."""
    labels = [f"PC{i + 1}" for i in range(len(ratio))]
    trace = go.Bar(
        x=labels,
        y=ratio,
        text=[f"{r:.1%}" for r in ratio],
        textposition="auto",
        marker=dict(color="#4f46e5"),
        hovertemplate="%{x}: %{y:.1%}<extra></extra>",
    )
    layout = dict(
        height=220,
        font=FONT,
        margin=dict(l=10, r=10, t=10, b=10),
        yaxis=dict(tickformat=".0%", title=dict(text="explained variance")),
    )
    return go.Figure(data=[trace], layout=layout)
