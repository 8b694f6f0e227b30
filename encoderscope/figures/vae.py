"""Figures for the VAE page. Arrays in, `go.Figure` out."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go

from .common import FONT

__all__ = ["latent_grid", "channel_histograms", "difference_heatmap", "side_by_side"]

MAX_SIDE = 64  # latent maps are downsampled to at most this many cells a side in the grid (fewer for many channels)


def _area_downsample(a: np.ndarray, max_side: int) -> np.ndarray:
    """`[C, h, w]` -> `[C, h', w']` with max(h', w') <= max_side, by block means; keeps the aspect ratio."""
    C, h, w = a.shape
    if max(h, w) <= max_side:
        return a
    scale = max_side / max(h, w)
    rows = np.linspace(0, h, max(1, round(h * scale)) + 1).astype(int)
    cols = np.linspace(0, w, max(1, round(w * scale)) + 1).astype(int)
    out = np.add.reduceat(a, cols[:-1], axis=2) / np.diff(cols)[None, None, :]
    return np.add.reduceat(out, rows[:-1], axis=1) / np.diff(rows)[None, :, None]


def latent_grid(latents: np.ndarray, max_side: int | None = None) -> go.Figure:
    """All channels `[C, h, w]` as a mosaic of heatmaps, one diverging colour scale centred on 0 and shared.

    Channels are downsampled to `max_side` cells a side (64 up to 4 channels, 48 up to 16, then 32) so the
    figure stays near 200 KB whatever the VAE.
    """
    C, h, w = latents.shape
    max_side = max_side or (MAX_SIDE if C <= 4 else 48 if C <= 16 else 32)
    small = _area_downsample(latents, max_side)
    _, sh, sw = small.shape
    cols = int(np.ceil(np.sqrt(C * sh / sw)))
    rows = int(np.ceil(C / cols))
    z = np.full((rows * (sh + 1), cols * (sw + 1)), np.nan, np.float32)
    for c in range(C):
        r, k = divmod(c, cols)
        z[r * (sh + 1) : r * (sh + 1) + sh, k * (sw + 1) : k * (sw + 1) + sw] = small[c]
    bound = float(np.nanpercentile(np.abs(latents), 99.5)) or 1.0
    trace = go.Heatmap(
        z=z,
        zmin=-bound,
        zmax=bound,
        zmid=0,
        colorscale="RdBu_r",
        hoverongaps=False,
        colorbar=dict(title=dict(text="latent value", side="right"), thickness=12),
        hovertemplate="%{z:.3f}<extra></extra>",
    )
    # Channel numbers as labels in each tile's corner (cheaper than per-cell hover data).
    labels = [
        dict(
            x=(c % cols) * (sw + 1),
            y=(c // cols) * (sh + 1),
            text=str(c),
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font=dict(size=10, color="#111827"),
            bgcolor="rgba(255,255,255,0.7)",
        )
        for c in range(C)
    ]
    layout = dict(
        height=int(np.clip(90 + rows * 520 / cols * sh / sw, 260, 900)),
        font=FONT,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(visible=False, constrain="domain"),
        yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"),
        plot_bgcolor="white",
        annotations=labels,
    )
    return go.Figure(data=[trace], layout=layout)


def channel_histograms(latents: np.ndarray, bins: int = 60) -> go.Figure:
    """Per-channel value histograms as one heatmap: rows = channels, columns = value bins, colour = share."""
    C = latents.shape[0]
    lo, hi = float(np.percentile(latents, 0.1)), float(np.percentile(latents, 99.9))
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    counts = np.stack([np.histogram(latents[c], bins=edges)[0] for c in range(C)]).astype(np.float32)
    counts /= counts.sum(axis=1, keepdims=True).clip(min=1)
    centres = (edges[:-1] + edges[1:]) / 2
    trace = go.Heatmap(
        z=counts,
        x=np.round(centres, 3),
        y=list(range(C)),
        colorscale="Viridis",
        colorbar=dict(title=dict(text="share", side="right"), thickness=12),
        hovertemplate="channel %{y}, value ≈ %{x:.2f}: %{z:.1%}<extra></extra>",
    )
    layout = dict(
        height=int(np.clip(60 + 14 * C, 220, 620)),
        font=FONT,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(title=dict(text="latent value")),
        yaxis=dict(title=dict(text="channel"), autorange="reversed"),
    )
    return go.Figure(data=[trace], layout=layout)


def difference_heatmap(a: np.ndarray, b: np.ndarray, max_side: int = 192) -> go.Figure:
    """Mean absolute difference over RGB of two `[H, W, 3]` images in [0, 1], downsampled for the browser."""
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=-1)
    H, W = diff.shape
    step = max(1, int(np.ceil(max(H, W) / max_side)))
    small = diff[: H // step * step, : W // step * step].reshape(H // step, step, W // step, step).mean(axis=(1, 3))
    trace = go.Heatmap(
        z=np.round(small, 4),
        colorscale="Plasma",  # Inferno's near-black first stop rendered purple/pink in the browser
        zmin=0,
        zmax=max(float(np.percentile(diff, 99.5)), 1e-3),
        colorbar=dict(title=dict(text="|error|", side="right"), thickness=12),
        hovertemplate="x %{x}, y %{y}: %{z:.3f}<extra></extra>",
        x=np.arange(small.shape[1]) * step,
        y=np.arange(small.shape[0]) * step,
    )
    layout = dict(
        height=int(np.clip(420 * H / max(W, 1), 240, 640)),
        font=FONT,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(visible=False, constrain="domain"),
        yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"),
    )
    return go.Figure(data=[trace], layout=layout)


def _data_uri(image: np.ndarray) -> str:
    """`[H, W, 3]` (uint8, or float in [0, 1]) as a lossless WebP data URI: exact pixels, about 15% smaller
    than PNG and several times faster to encode."""
    from PIL import Image

    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="WEBP", lossless=True, quality=0, method=0)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode()


def side_by_side(left: np.ndarray, right: np.ndarray, titles=("original", "reconstruction")) -> go.Figure:
    """Two `[H, W, 3]` images with synchronised zoom and pan (shared axes): drag a box on either to zoom both."""
    H, W = left.shape[:2]
    traces = [
        go.Image(source=_data_uri(left), xaxis="x", yaxis="y", hoverinfo="skip"),
        go.Image(source=_data_uri(right), xaxis="x2", yaxis="y2", hoverinfo="skip"),
    ]
    axis = dict(visible=False, range=[0, W], constrain="domain")
    yaxis = dict(visible=False, range=[H, 0], scaleanchor="x")
    layout = dict(
        height=int(np.clip(40 + 520 * H / max(W, 1), 240, 760)),
        font=FONT,
        margin=dict(l=0, r=0, t=30, b=0),
        xaxis={**axis, "domain": [0, 0.495]},
        xaxis2={**axis, "domain": [0.505, 1], "matches": "x"},
        yaxis=yaxis,
        yaxis2={**yaxis, "anchor": "x2", "matches": "y", "scaleanchor": "x2"},
        annotations=[
            dict(text=t, x=x, y=1.0, xref="paper", yref="paper", showarrow=False, yanchor="bottom", font=dict(size=13))
            for t, x in zip(titles, (0.25, 0.75), strict=True)
        ],
        dragmode="zoom",
    )
    return go.Figure(data=traces, layout=layout)
