"""What the atlas renderer receives and sends back, as pure functions (no Streamlit): testable alone.

Payload: positions quantised to uint16 (x, y interleaved, `[N * 2]`, 4 bytes a point, 65,536 steps per axis:
finer than any screen) and a uint8 colour index `[N]`, both base64 in one JSON object. At 10^6 points that is
6.7 MB, against 37.9 MB for plotly's Scattergl with hover text. Texts never travel in bulk: a click sends
an id back and the server shows that row.

Selections come back as a *shape* in data coordinates (a box or a lasso polygon), not as a list of ids, so a
selection over 10^6 points costs a few hundred bytes; `select` finds the rows on the server.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Tableau-like categorical palette; 62 slots usable, 63 is the renderer's highlight colour.
_BASE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (219, 219, 141),
    (158, 218, 229),
    (57, 59, 121),
    (82, 84, 163),
    (107, 110, 207),
    (99, 121, 57),
    (140, 162, 82),
    (181, 207, 107),
    (140, 109, 49),
    (189, 158, 57),
    (231, 186, 82),
    (132, 60, 57),
    (173, 73, 74),
    (214, 97, 107),
    (123, 65, 115),
    (165, 81, 148),
]
COLOURS = 62  # distinct colours; more groups share colours (the legend says which)
NOISE = 62  # colour slot for HDBSCAN noise (cluster -1) and missing labels: grey
GREY = (170, 170, 170)
PALETTE = [_BASE[i % len(_BASE)] for i in range(COLOURS)] + [GREY]
MAX_LASSO_VERTICES = 2_000


@dataclass(frozen=True)
class Colouring:
    """`codes` uint8 `[N]` palette slots; `legend` rows (name, slot, count) for the biggest groups."""

    codes: np.ndarray
    legend: list[tuple[str, int, int]]


def colouring(values: pd.Series) -> Colouring:
    """Palette slots for a cluster or label column `[N]`: the most common groups get the first colours;
    -1 (noise) and missing values are grey. One factorize pass: ~50 ms at 10^6 rows."""
    group, uniques = pd.factorize(values.reset_index(drop=True), use_na_sentinel=True)  # [N], -1 = missing
    names = [str(u) for u in uniques]
    counts = np.bincount(group[group >= 0], minlength=len(names))
    is_noise = np.array([n == "-1" for n in names], bool)
    order = [g for g in np.argsort(-counts, kind="stable") if not is_noise[g]]
    slot_of = np.full(len(names) + 1, NOISE, np.uint8)  # last entry: the missing-value group (-1)
    slot_of[order] = np.arange(len(order)) % COLOURS
    codes = slot_of[group]
    legend = [(names[g], int(slot_of[g]), int(counts[g])) for g in order]
    grey = int((codes == NOISE).sum())
    if grey:
        legend.append(("noise / none", NOISE, grey))
    return Colouring(codes, legend)


def bounds(x: np.ndarray, y: np.ndarray) -> list[float]:
    """[x0, x1, y0, y1] of the finite coordinates (a degenerate axis is widened so it can be quantised)."""
    lo_x, hi_x, lo_y, hi_y = (float(f(a)) for a in (x, y) for f in (np.nanmin, np.nanmax))
    if hi_x <= lo_x:
        lo_x, hi_x = lo_x - 0.5, hi_x + 0.5
    if hi_y <= lo_y:
        lo_y, hi_y = lo_y - 0.5, hi_y + 0.5
    return [lo_x, hi_x, lo_y, hi_y]


def quantise(x: np.ndarray, y: np.ndarray, box: list[float]) -> np.ndarray:
    """uint16 `[N * 2]` (x0, y0, x1, y1, ...) with 0 and 65535 at the edges of `box` = [x0, x1, y0, y1]."""
    out = np.empty((len(x), 2), np.uint16)
    for col, v, lo, hi in ((0, x, box[0], box[1]), (1, y, box[2], box[3])):
        out[:, col] = np.clip(np.rint((np.asarray(v, np.float64) - lo) / (hi - lo) * 65535), 0, 65535)
    return out.reshape(-1)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def points_payload(x: np.ndarray, y: np.ndarray, codes: np.ndarray) -> dict:
    """The heavy, rarely changing part of the renderer's data: positions and colours, with a `version`
    (content hash) so the browser re-uploads its buffers only when these change."""
    box = bounds(x, y)
    xy = quantise(x, y, box)
    digest = hashlib.blake2b(xy.tobytes(), digest_size=8)
    digest.update(codes.tobytes())
    return {
        "version": digest.hexdigest(),
        "n": int(len(x)),
        "bounds": box,
        "xy": _b64(xy),
        "colour": _b64(codes.astype(np.uint8)),
        "palette": [list(c) for c in PALETTE],
    }


# --- shapes sent back by the renderer -------------------------------------------------------


def parse_shape(shape) -> dict | None:
    """A validated selection shape, or None for no or malformed input (it comes from the browser).

    Box: {"kind": "box", "x0", "x1", "y0", "y1"}; lasso: {"kind": "lasso", "points": [[x, y], ...]} (3 to
    MAX_LASSO_VERTICES finite vertices)."""
    if not isinstance(shape, dict):
        return None
    try:
        if shape.get("kind") == "box":
            x0, x1, y0, y1 = (float(shape[k]) for k in ("x0", "x1", "y0", "y1"))
            if not np.all(np.isfinite([x0, x1, y0, y1])):
                return None
            return {"kind": "box", "x0": min(x0, x1), "x1": max(x0, x1), "y0": min(y0, y1), "y1": max(y0, y1)}
        if shape.get("kind") == "lasso":
            pts = np.asarray(shape["points"], dtype=np.float64)
            if pts.ndim != 2 or pts.shape[1] != 2 or not 3 <= len(pts) <= MAX_LASSO_VERTICES:
                return None
            if not np.isfinite(pts).all():
                return None
            return {"kind": "lasso", "points": pts.tolist()}
    except (KeyError, TypeError, ValueError):
        return None
    return None


def select(x: np.ndarray, y: np.ndarray, shape: dict) -> np.ndarray:
    """Boolean mask `[N]` of the points inside a parsed shape (box edges inclusive; lasso by even-odd rule).

    The lasso test runs only on points inside the polygon's bounding box, one vectorised pass per edge."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if shape["kind"] == "box":
        return (x >= shape["x0"]) & (x <= shape["x1"]) & (y >= shape["y0"]) & (y <= shape["y1"])
    poly = np.asarray(shape["points"], np.float64)
    mask = np.zeros(len(x), bool)
    near = np.flatnonzero(
        (x >= poly[:, 0].min()) & (x <= poly[:, 0].max()) & (y >= poly[:, 1].min()) & (y <= poly[:, 1].max())
    )
    px, py = x[near], y[near]
    inside = np.zeros(len(near), bool)
    for (ax, ay), (bx, by) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        crosses = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (px < at)
    mask[near] = inside
    return mask
