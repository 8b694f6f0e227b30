"""Conventions shared by every figure: token axes, escaped hover text, heatmaps, block downsampling."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from ..tokens import clean_token

__all__ = ["token_labels", "token_axis", "token_heatmap", "block_mean", "escape_hover", "FONT", "BLUES"]

FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=12)
BLUES = "Blues"
MAX_TICKS = 64  # above this many tokens, label every k-th tick so labels stay readable


def escape_hover(text: str) -> str:
    """Plotly renders hover and tick text as HTML: escape user-derived strings."""
    return html.escape(str(text), quote=False)


def token_labels(tokens: list[str]) -> list[str]:
    """Unique, escaped category labels "i·token" so duplicate tokens never merge into one column."""
    return [f"{i}·{escape_hover(clean_token(t))}" for i, t in enumerate(tokens)]


def token_axis(tokens: list[str], max_ticks: int = MAX_TICKS, **extra) -> dict:
    """Axis layout for a token axis: one position per token, tick text = the (escaped) token.

    Positions are the token indices 0..T-1 (Plotly places categories at their index), so labels
    may repeat while columns stay separate.
    """
    step = max(1, int(np.ceil(len(tokens) / max_ticks)))
    ticks = list(range(0, len(tokens), step))
    text = [escape_hover(clean_token(tokens[i])) or "␣" for i in ticks]
    return dict(
        type="category",
        tickmode="array",
        tickvals=ticks,
        ticktext=text,
        tickangle=-60 if len(tokens) > 8 else 0,
        showgrid=False,
        **extra,
    )


def token_heatmap(
    z: np.ndarray,
    row_tokens: list[str],
    col_tokens: list[str],
    *,
    zmin: float = 0.0,
    zmax: float = 1.0,
    colorscale=BLUES,
    value_name: str = "weight",
    title: str = "",
    row_title: str = "query (from)",
    col_title: str = "key (to)",
    height: int | None = None,
) -> go.Figure:
    """A `[rows, cols]` heatmap with token axes; hover reads "from → to: value".

    NaN cells are drawn empty (use them for masked/filtered cells). Values are sent as float32.
    """
    z = np.asarray(z, dtype=np.float32)
    assert z.shape == (len(row_tokens), len(col_tokens)), f"z {z.shape} vs tokens {len(row_tokens)}x{len(col_tokens)}"
    n = max(z.shape)
    size = height or int(np.clip(220 + 14 * n, 360, 760))
    trace = go.Heatmap(
        z=z,
        x=token_labels(col_tokens),
        y=token_labels(row_tokens),
        zmin=zmin,
        zmax=zmax,
        colorscale=colorscale,
        hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>",
        colorbar=dict(title=dict(text=value_name, side="right"), thickness=12),
        hoverongaps=False,
    )
    # Layout goes into the constructor: update_layout() costs ~10 ms per call in plotly's validator.
    layout = dict(
        title=dict(text=title, x=0, xanchor="left") if title else None,
        height=size,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        font=FONT,
        plot_bgcolor="#e5e7eb",  # masked (NaN) cells show as light grey
        xaxis=token_axis(col_tokens, title=dict(text=col_title), side="bottom"),
        yaxis={**token_axis(row_tokens, title=dict(text=row_title), autorange="reversed"), "tickangle": 0},
    )
    return go.Figure(data=[trace], layout=layout)


def block_mean(a: np.ndarray, size: int) -> np.ndarray:
    """Downsample the last two axes of `a` (`[..., T, T]`) to at most `[..., size, size]` by block means."""
    T = a.shape[-1]
    if T <= size:
        return a
    edges = np.linspace(0, T, size + 1).astype(int)
    # Reduce the short axis last: the first reduceat touches every element once, the second T*size.
    cols = np.add.reduceat(a, edges[:-1], axis=-1) / np.diff(edges)[None, :]
    return np.add.reduceat(cols, edges[:-1], axis=-2) / np.diff(edges)[:, None]
