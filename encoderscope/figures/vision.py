"""Figures for the image encoders page. Arrays in, `go.Figure` out.

Picture coordinates: x is the pixel column and y the pixel row of the encoded picture (`res.image`), pixel
centres at integers. Patch (r, c) of a p-pixel grid covers x in [c·p − 0.5, (c + 1)·p − 0.5] and likewise for y.
A patch map is a heatmap placed on that grid (x0 = p/2 − 0.5, dx = p), so each value fills exactly its patch's
pixel box while only rows × cols numbers are sent. Clicks: Streamlit reports clicks on scatter points only
(streamlit#8760), so an invisible marker sits on every patch centre, and `hoverdistance=-1` makes a click
anywhere pick the nearest centre, i.e. the patch under the pointer.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from ..images import colorize
from .common import FONT, escape_hover, token_axis
from .vae import _data_uri

__all__ = [
    "picture_uri",
    "blend_tiles",
    "patch_centres",
    "patch_at",
    "patch_overlay",
    "rgb_patches",
    "thumbnail_grid",
    "distance_chart",
    "similarity_heatmap",
    "prob_bars",
    "token_bars",
]


def _ramp_scale(stops: int = 9) -> list[list]:
    """The library's dark-to-bright ramp (`colorize`, also used for the PNG exports and the per-head thumbnails)
    as a Plotly colorscale in rgb() strings. (Plotly's own "Inferno" opens with "#000004", which Streamlit's
    front end repaints pink or purple.)"""
    rgb = np.round(colorize(np.linspace(0, 1, stops)[None])[0] * 255).astype(int)
    return [[float(t), f"rgb({r},{g},{b})"] for t, (r, g, b) in zip(np.linspace(0, 1, stops), rgb, strict=True)]


ATTENTION_SCALE = _ramp_scale()
LABEL_CHARS = 40  # tick labels of captions and file names are cut to this many characters


def picture_uri(image: Image.Image | np.ndarray, exact: bool = False) -> str:
    """An RGB picture (PIL, or `[H, W, 3]` uint8 or floats in [0, 1]) as a data URI for `go.Image(source=...)`:
    JPEG at quality 90 (a backdrop under a heatmap: a fifth of the bytes and fast to encode), or lossless WebP
    when `exact`."""
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if exact:
        return _data_uri(array)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def blend_tiles(picture: np.ndarray, maps: np.ndarray, opacity: float) -> np.ndarray:
    """Small overlays: each `[rows, cols]` map of `maps` `[K, rows, cols]`, coloured over its own range, blown
    up to the size of `picture` (`[h, w, 3]` floats in [0, 1], any size) and drawn over it at `opacity`.
    Returns uint8 `[K, h, w, 3]`. Patch boxes land on whole thumbnail pixels (nearest patch per pixel)."""
    K, rows, cols = maps.shape
    h, w, _ = picture.shape
    r = np.minimum(np.arange(h) * rows // h, rows - 1)
    c = np.minimum(np.arange(w) * cols // w, cols - 1)
    colours = np.stack([colorize(m) for m in maps])  # [K, rows, cols, 3]
    mixed = picture[None] * (1 - opacity) + colours[:, r[:, None], c[None, :]] * opacity
    return (np.clip(mixed, 0, 1) * 255).round().astype(np.uint8)


def patch_centres(grid: tuple[int, int], patch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, row, col) of every patch centre in picture pixels, row-major, each `[rows · cols]`."""
    rows, cols = grid
    r, c = np.divmod(np.arange(rows * cols), cols)
    return c * patch + patch / 2 - 0.5, r * patch + patch / 2 - 0.5, r, c


def patch_at(x: float, y: float, grid: tuple[int, int], patch: int) -> tuple[int, int]:
    """(row, col) of the patch under picture pixel (x, y), the inverse of :func:`patch_centres`: patch (r, c)
    covers x in [c·p − 0.5, (c + 1)·p − 0.5), likewise y (pixel centres at integers), clamped to the grid so a
    click on the picture's outer edge picks the border patch."""
    rows, cols = grid
    row = int(np.floor((float(y) + 0.5) / patch))
    col = int(np.floor((float(x) + 0.5) / patch))
    return min(max(row, 0), rows - 1), min(max(col, 0), cols - 1)


def _picture_axes(width: int, height: int, max_height: int = 520) -> dict:
    """Layout for a picture `width` × `height` pixels: fixed aspect, y down, no axes drawn; the figure is
    `max_height` pixels high for a landscape picture, less for a very wide one."""
    return dict(
        xaxis=dict(visible=False, range=[-0.5, width - 0.5], constrain="domain"),
        yaxis=dict(visible=False, range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain"),
        height=int(np.clip(40 + 1.4 * max_height * height / max(width, 1), 240, max_height)),
        font=FONT,
        plot_bgcolor="white",
    )


def _title(text: str) -> dict | None:
    return dict(text=escape_hover(text), x=0, xanchor="left", font=dict(size=14)) if text else None


def patch_overlay(
    picture: str,
    size: tuple[int, int],
    values: np.ndarray,
    patch: int,
    *,
    opacity: float = 0.6,
    title: str = "",
    value_name: str = "attention",
    zmin: float = 0.0,
    zmax: float | None = None,
    colorscale=ATTENTION_SCALE,
    marked: tuple[int, int] | None = None,
    clickable: bool = True,
    max_height: int = 520,
) -> go.Figure:
    """A `[rows, cols]` patch map over the picture `picture` (data URI, `size` = (width, height) pixels).

    The heatmap (`opacity`, colour range zmin..zmax, default the map's maximum) fills each patch's pixel box;
    `marked` (row, col) is outlined; `clickable` adds the invisible patch-centre markers that report clicks,
    whose hover shows the patch and its value; `max_height`: the figure's height in pixels, at most."""
    values = np.asarray(values, np.float32)
    rows, cols = values.shape
    width, height = size
    if (rows * patch, cols * patch) != (height, width):
        raise ValueError(f"A {rows}×{cols} map of {patch}-pixel patches does not cover a {width}×{height} picture.")
    top = float(np.nanmax(values)) if zmax is None else zmax
    start = patch / 2 - 0.5
    traces = [
        go.Image(source=picture, hoverinfo="skip"),
        go.Heatmap(
            z=values,
            x0=start,
            dx=patch,
            y0=start,
            dy=patch,
            zmin=zmin,
            zmax=max(top, zmin + 1e-9),
            opacity=opacity,
            colorscale=colorscale,
            hoverinfo="skip",
            colorbar=dict(title=dict(text=value_name, side="right"), thickness=12),
        ),
    ]
    if clickable:
        x, y, r, c = patch_centres((rows, cols), patch)
        traces.append(
            go.Scatter(
                x=x,
                y=y,
                mode="markers",
                customdata=np.stack([r, c, values.ravel()], axis=1),
                marker=dict(symbol="square", size=10, color="rgba(0,0,0,0)"),
                selected=dict(marker=dict(color="rgba(255,255,255,0.35)")),
                unselected=dict(marker=dict(opacity=0)),
                hovertemplate=f"patch row %{{customdata[0]}}, col %{{customdata[1]}}<br>{value_name}: "
                "%{customdata[2]:.4f}<extra>click: use as query</extra>",
                showlegend=False,
            )
        )
    layout = dict(
        **_picture_axes(width, height, max_height),
        title=_title(title),
        margin=dict(l=0, r=0, t=34 if title else 4, b=0),
        hovermode="closest",
        hoverdistance=-1,
        clickmode="event+select",
        dragmode=False,
    )
    if marked is not None:
        r, c = marked
        box = dict(x0=c * patch - 0.5, x1=(c + 1) * patch - 0.5, y0=r * patch - 0.5, y1=(r + 1) * patch - 0.5)
        layout["shapes"] = [dict(type="rect", **box, line=dict(color="#22d3ee", width=2))]
    return go.Figure(data=traces, layout=layout)


def rgb_patches(rgb: np.ndarray, patch: int, title: str = "") -> go.Figure:
    """`[rows, cols, 3]` colours in [0, 1], one per patch, drawn on the picture's pixel grid (each colour fills
    its patch's p × p box), e.g. the first three PCA components of the patch tokens."""
    rgb = np.asarray(rgb)
    rows, cols, _ = rgb.shape
    z = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    trace = go.Image(z=z, x0=patch / 2 - 0.5, dx=patch, y0=patch / 2 - 0.5, dy=patch, hoverinfo="skip")
    layout = dict(**_picture_axes(cols * patch, rows * patch), title=_title(title), margin=dict(l=0, r=0, t=34, b=0))
    return go.Figure(data=[trace], layout=layout)


def thumbnail_grid(tiles, labels: list[str], grid: tuple[int, int], per_row: int = 6) -> go.Figure:
    """Small pictures side by side (e.g. one attention overlay per head), each clickable.

    tiles: uint8 `[K, h, w, 3]` (or K such arrays), in reading order; labels: one per tile, drawn above it;
    grid: the (rows, cols) of patches each tile shows. One invisible marker per patch of each tile carries
    the click, so `point_index // (rows · cols)` is the clicked tile. The tiles travel as one JPEG."""
    h, w, _ = tiles[0].shape
    n = len(tiles)
    per_row = max(1, min(per_row, n))
    n_rows = -(-n // per_row)
    gap, band = max(4, w // 24), max(16, round(0.15 * w))  # white space between tiles, and above each for its label
    cell_w, cell_h = w + gap, h + band
    canvas = np.full((n_rows * cell_h, per_row * cell_w - gap, 3), 255, np.uint8)
    xs, ys, ids = [], [], []
    x, y, _, _ = patch_centres(grid, 1)
    sx, sy = w / grid[1], h / grid[0]
    for k, tile in enumerate(tiles):
        top, left = (k // per_row) * cell_h + band, (k % per_row) * cell_w
        canvas[top : top + h, left : left + w] = tile
        xs.append((left + (x + 0.5) * sx - 0.5).astype(np.float32))
        ys.append((top + (y + 0.5) * sy - 0.5).astype(np.float32))
        ids.append(np.full(x.size, k))
    targets = go.Scatter(
        x=np.concatenate(xs),
        y=np.concatenate(ys),
        mode="markers",
        customdata=np.concatenate(ids).astype(np.int16),  # numbers only: sent as a typed array, not a JSON list
        marker=dict(symbol="square", size=8, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(255,255,255,0.3)")),
        unselected=dict(marker=dict(opacity=0)),
        hovertemplate="click to show this one above<extra></extra>",
        showlegend=False,
    )
    annotations = [
        dict(
            text=escape_hover(label),
            x=(k % per_row) * cell_w + w / 2,
            y=(k // per_row) * cell_h + band - 2,
            xref="x",
            yref="y",
            showarrow=False,
            yanchor="bottom",
            font=dict(size=12),
        )
        for k, label in enumerate(labels)
    ]
    height, width = canvas.shape[:2]
    layout = dict(
        **_picture_axes(width, height),
        margin=dict(l=0, r=0, t=4, b=0),
        annotations=annotations,
        hovermode="closest",
        hoverdistance=-1,
        clickmode="event+select",
        dragmode=False,
    )
    layout["height"] = int(np.clip(20 + 1100 * height / max(width, 1), 160, 900))
    return go.Figure(data=[go.Image(source=picture_uri(canvas), hoverinfo="skip"), targets], layout=layout)


def distance_chart(distance: np.ndarray, uniform: float | None = None, current: tuple[int, int | str] | None = None):
    """Mean attention distance in pixels, `[L, H]`: one dot per head at its layer (Dosovitskiy et al. 2021,
    Fig. 7), the mean over heads as a line, `uniform` (the distance under uniform attention) dashed, and the
    `current` (layer, head | "mean") ringed."""
    L, H = distance.shape
    layers, heads = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")
    traces = [
        go.Scatter(
            x=layers.ravel(),
            y=distance.ravel(),
            mode="markers",
            name="one head",
            customdata=heads.ravel(),
            marker=dict(size=8, color="#4f46e5", opacity=0.7),
            hovertemplate="layer %{x}, head %{customdata}: %{y:.1f} px<extra></extra>",
        ),
        go.Scatter(
            x=np.arange(L),
            y=np.nanmean(distance, axis=1),
            mode="lines",
            name="mean over heads",
            line=dict(color="#9ca3af", width=2),
            hovertemplate="layer %{x}, mean: %{y:.1f} px<extra></extra>",
        ),
    ]
    if current is not None:
        layer, head = current
        y = np.nanmean(distance[layer]) if head == "mean" else distance[layer, head]
        traces.append(
            go.Scatter(
                x=[layer],
                y=[y],
                mode="markers",
                name="shown above",
                marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(color="#dc2626", width=2)),
                hovertemplate=f"shown above: layer {layer}, head {head}<extra></extra>",
            )
        )
    shapes = []
    if uniform is not None:
        line = dict(color="#6b7280", width=1, dash="dash")
        shapes.append(dict(type="line", xref="paper", x0=0, x1=1, y0=uniform, y1=uniform, line=line))
    top = float(np.nanmax([np.nanmax(distance), uniform or 0.0])) if distance.size else 1.0
    layout = dict(
        title=_title("Mean attention distance per head"),
        height=380,
        font=FONT,
        margin=dict(l=10, r=10, t=40, b=10),
        plot_bgcolor="white",
        shapes=shapes,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
        xaxis=dict(
            title=dict(text="layer (0 = first)"),
            tickmode="array",
            tickvals=list(range(L)),
            showgrid=False,
            zeroline=False,
        ),
        yaxis=dict(title=dict(text="distance (pixels)"), range=[0, top * 1.08 + 1e-9], gridcolor="#eef0f4"),
    )
    if uniform is not None:
        layout["annotations"] = [
            dict(
                text="uniform attention",
                xref="paper",
                x=0,
                y=uniform,
                yanchor="bottom",
                xanchor="left",
                showarrow=False,
                font=dict(size=11, color="#6b7280"),
            )
        ]
    return go.Figure(data=traces, layout=layout)


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return escape_hover(text if len(text) <= limit else text[: limit - 1] + "…")


def similarity_heatmap(cosine: np.ndarray, image_names: list[str], texts: list[str]) -> go.Figure:
    """Cosine similarity `[I, T]` of images (rows) and texts (columns), each cell labelled with its value.

    Integer axes with tick text (repeated names stay separate rows); the colours span the matrix's own range
    (CLIP's cosines sit in a narrow band, about 0.1 to 0.4)."""
    cosine = np.asarray(cosine, np.float32)
    n_images, T = cosine.shape
    lo, hi = (float(cosine.min()), float(cosine.max())) if cosine.size else (0.0, 1.0)
    hover = np.array([[f"{_short(n)} ↔ {_short(t)}" for t in texts] for n in image_names], dtype=object)
    trace = go.Heatmap(
        z=cosine,
        x=list(range(T)),
        y=list(range(n_images)),
        zmin=lo,
        zmax=hi if hi > lo else lo + 1e-6,
        colorscale="Viridis",
        customdata=hover,
        texttemplate="%{z:.2f}" if n_images * T <= 256 else None,
        hovertemplate="%{customdata}: %{z:.4f}<extra></extra>",
        colorbar=dict(title=dict(text="cosine", side="right"), thickness=12),
    )
    # Streamlit reports clicks on scatter points only (streamlit#8760): an invisible marker on every cell,
    # customdata (image, text) says which one was clicked.
    rows, cols = np.divmod(np.arange(n_images * T), T)
    cells = go.Scatter(
        x=cols,
        y=rows,
        mode="markers",
        customdata=np.stack([rows, cols], axis=1),
        marker=dict(symbol="square", size=24, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(255,255,255,0.25)")),
        unselected=dict(marker=dict(opacity=0)),
        hovertemplate="click: which patches and words made this match<extra></extra>",
        showlegend=False,
    )
    layout = dict(
        title=_title("Cosine similarity of every image and text (click a cell: why)"),
        hovermode="closest",
        hoverdistance=-1,
        clickmode="event+select",
        dragmode=False,
        height=int(np.clip(160 + 34 * n_images, 300, 820)),
        font=FONT,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(
            tickmode="array",
            tickvals=list(range(T)),
            ticktext=[_short(t, 28) for t in texts],
            tickangle=-40 if T > 3 else 0,
            title=dict(text="text"),
            showgrid=False,
        ),
        yaxis=dict(
            tickmode="array",
            tickvals=list(range(n_images)),
            ticktext=[_short(n, 24) for n in image_names],
            autorange="reversed",
            title=dict(text="image"),
            showgrid=False,
        ),
    )
    return go.Figure(data=[trace, cells], layout=layout)


def prob_bars(probs: np.ndarray, texts: list[str], title: str = "", value_name: str = "probability") -> go.Figure:
    """Zero-shot scores `[T]` of one image as horizontal bars, highest first, on a 0..1 axis."""
    probs = np.asarray(probs, np.float64)
    order = np.argsort(-probs, kind="stable")
    trace = go.Bar(
        x=probs[order],
        y=list(range(len(order))),
        orientation="h",
        marker=dict(color="#4f46e5"),
        text=[f"{p:.1%}" for p in probs[order]],
        textposition="outside",
        customdata=[_short(texts[i], 200) for i in order],
        hovertemplate="%{customdata}: %{x:.4f}<extra></extra>",
    )
    layout = dict(
        title=_title(title),
        height=int(np.clip(90 + 26 * len(order), 220, 900)),
        font=FONT,
        margin=dict(l=10, r=30, t=40 if title else 10, b=10),
        plot_bgcolor="white",
        xaxis=dict(range=[0, 1.12], title=dict(text=value_name), gridcolor="#eef0f4", tickformat=".0%"),
        yaxis=dict(
            tickmode="array",
            tickvals=list(range(len(order))),
            ticktext=[_short(texts[i]) for i in order],
            autorange="reversed",
            showgrid=False,
        ),
    )
    return go.Figure(data=[trace], layout=layout)


def token_bars(tokens, scores: np.ndarray, title: str = "", value_name: str = "relevance") -> go.Figure:
    """One bar per token `[n]` in reading order (an integer axis with the tokens as tick text, so repeated
    words stay separate bars), coloured by value on the same ramp as the patch maps."""
    scores = np.asarray(scores, np.float64)
    top = float(scores.max()) if scores.size and scores.max() > 0 else 1.0
    trace = go.Bar(
        x=list(range(len(tokens))),
        y=scores,
        marker=dict(color=scores, colorscale=ATTENTION_SCALE, cmin=0, cmax=top, line=dict(color="#444", width=0.5)),
        customdata=[escape_hover(t) for t in tokens],
        hovertemplate="%{customdata}: %{y:.4f}<extra></extra>",
    )
    layout = dict(
        title=_title(title),
        height=320,
        font=FONT,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        plot_bgcolor="white",
        xaxis=token_axis(list(tokens)),
        yaxis=dict(title=dict(text=value_name), gridcolor="#eef0f4", rangemode="tozero"),
    )
    return go.Figure(data=[trace], layout=layout)
