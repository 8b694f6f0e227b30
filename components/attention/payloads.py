"""Heatmap payloads for the attention page: arrays in, `bytes` out (see components/heatmap/payload.py). Pure
numpy, no Streamlit, so the cache module can memoise them and tests can rebuild them.

Views of a layer are named "0".."H-1" and "mean"; the main map's tag is "LAYER:VIEW".
"""

from __future__ import annotations

import hashlib

import numpy as np

from components.heatmap import payload
from encoderscope.attention_maps import AttentionResult
from encoderscope.figures.common import block_mean
from encoderscope.tokens import clean_token

THUMB = 24  # all-heads thumbnails: at most 24 × 24 block means per head


def view_names(num_heads: int) -> list[str]:
    return [str(h) for h in range(num_heads)] + ["mean"]


def data_id(*key) -> str:
    """A short content id for one layer's data (the browser pairs a map with its store by it)."""
    return hashlib.sha1(repr(key).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def layer_quantised(weights: np.ndarray) -> np.ndarray:
    """uint16 `[H + 1, T, T]` of one layer's weights `[H, T, T]` over 0–1: the heads, then their mean."""
    views = np.concatenate([weights, weights.mean(axis=0, keepdims=True)], axis=0)
    return payload.quantise(views, 0.0, 1.0)


def _labels(tokens: list[str]) -> list[str]:
    return [clean_token(t) for t in tokens]


def main_map(res: AttentionResult, q: np.ndarray, layer: int, view: str, layer_id: str, direction: str) -> bytes:
    """The selected view's colour bytes only (≤ T² bytes), with labels and layout: drawn at once.

    q: `layer_quantised` of `res.weights[layer]`; direction: "all", "A→B" or "B→A" (other cells greyed)."""
    names = view_names(res.num_heads)
    seq = None
    if res.sentence_b_start is not None and res.sequence_ids:
        seq = [-1 if s is None else int(s) for s in res.sequence_ids]
    header = {
        "mode": "matrix", "id": layer_id, "view": view, "views": names, "views_label": "Head:",
        "tag_prefix": f"{layer}:", "url_param": "head", "rows": _labels(res.tokens), "aspect": "square",
        "zmin": 0.0, "zmax": 1.0, "scheme": "blues", "legend": "weight", "title": f"Layer {layer}, {{view}}",
        "hover": "from {row} → to {col}: {value}", "divider": res.sentence_b_start, "seq": seq,
        "keep": None if direction == "all" or seq is None else direction, "click_rows": True,
        "filename": f"attention_L{layer}_H{{view}}",
    }
    hi, _ = payload.split(q[names.index(view)])
    return payload.pack(header, {f"hi:{view}": hi})


def layer_store(q: np.ndarray, num_heads: int, layer_id: str) -> bytes:
    """Every view of the layer, colour and low bytes (2 · (H + 1) · T² bytes): head changes in the browser
    and exact hover values. Sent after the main map."""
    blocks = {}
    for name, view in zip(view_names(num_heads), q, strict=True):
        hi, lo = payload.split(view)
        blocks[f"hi:{name}"], blocks[f"lo:{name}"] = hi, lo
    return payload.pack({"mode": "store", "id": layer_id}, blocks)


def matrix(values: np.ndarray, rows: list[str], cols: list[str] | None, *, name: str, title: str,
           zmin: float, zmax: float, scheme: str = "blues", legend: str = "", hover: str = "{row} → {col}: {value}",
           aspect: str = "square", row_px: int = 18, outline_col: int | None = None, filename: str = "heatmap",
           col_labels: bool = True) -> bytes:
    """A single map `[R, C]` with exact hover values (colour and low bytes in one payload)."""
    header = {
        "mode": "matrix", "id": name, "view": name, "tag_prefix": "", "rows": rows, "cols": cols,
        "aspect": aspect, "row_px": row_px, "zmin": float(zmin), "zmax": float(zmax), "scheme": scheme,
        "legend": legend, "title": title, "hover": hover, "divider": None, "outline_col": outline_col,
        "filename": filename, "col_labels": col_labels,
    }
    return payload.pack(header, payload.matrix_blocks(name, values, zmin, zmax))


def grid_thumbnails(weights: np.ndarray, thumb: int = THUMB) -> np.ndarray:
    """uint8 `[L, H + 1, s, s]`: each head (and the layer mean, last) block-averaged to at most `thumb`² and
    scaled to 1..255 of its own maximum (the pattern, not the value; 0 stays for an all-zero map)."""
    small = block_mean(weights, thumb)
    small = np.concatenate([small, small.mean(axis=1, keepdims=True)], axis=1)
    peak = small.max(axis=(-2, -1), keepdims=True)
    scaled = np.divide(small, peak, out=np.zeros_like(small), where=peak > 0)
    return np.where(peak > 0, 1 + np.rint(254 * scaled), 0).astype(np.uint8)


def grid(thumbs: np.ndarray) -> bytes:
    """The all-heads mosaic from `grid_thumbnails`. The renderer outlines the head the main map shows, so these
    bytes do not change with the layer or head (Streamlit sends an unchanged large message only once)."""
    L, cols, side, _ = thumbs.shape
    header = {"mode": "grid", "id": "grid", "layers": L, "heads": cols - 1, "side": side, "scheme": "blues"}
    return payload.pack(header, {"hi:grid": thumbs})
