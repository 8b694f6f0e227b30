"""Which points a map selection holds, and the map's opening view: pure numpy on the atlas's 2-D positions.

The renderer sends a selection as a *shape* in data coordinates (a box, or a lasso polygon), never a list of
ids, so a selection over 10^6 points costs a few hundred bytes; `select` finds the rows on the server.
Shapes come from the browser, so `parse_shape` treats them as hostile: anything malformed selects nothing.
"""

from __future__ import annotations

import numpy as np

MAX_LASSO_VERTICES = 2_000


def parse_shape(shape) -> dict | None:
    """A validated selection shape, or None for no or malformed input.

    Box: {"kind": "box", "x0", "x1", "y0", "y1"} (returned with x0 <= x1, y0 <= y1); lasso: {"kind": "lasso",
    "points": [[x, y], ...]} (3 to MAX_LASSO_VERTICES finite vertices)."""
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
    """Boolean mask `[N]` of the points (`x`, `y` `[N]`) inside a parsed shape: box edges inclusive; a lasso by
    the even-odd rule, tested only on the points inside the polygon's bounding box, one vectorised pass per
    edge."""
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
        crosses = (ay > py) != (by > py)  # the edge spans the point's height (horizontal edges never do)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (px < at)
    mask[near] = inside
    return mask


def opening_view(x: np.ndarray, y: np.ndarray, low: float = 1.0, high: float = 99.0) -> list[float]:
    """[x0, x1, y0, y1]: the `low`-th to `high`-th percentile of `x` and `y` `[N]`, the box the map opens on
    (outliers do not shrink the corpus into a corner). A degenerate axis is widened by 0.5 each way."""
    x0, x1 = (float(v) for v in np.percentile(np.asarray(x, np.float64), [low, high]))
    y0, y1 = (float(v) for v in np.percentile(np.asarray(y, np.float64), [low, high]))
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    return [x0, x1, y0, y1]
