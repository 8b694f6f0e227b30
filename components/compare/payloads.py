"""What the compare views send to their components: arrays in, payloads out. Pure numpy, no Streamlit.

The layer × layer map goes to the project's canvas heatmap (components/heatmap) through
`components.attention.payloads.matrix`; the two linked maps go to the pair map (components/compare/renderer).
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np
import pandas as pd

from components.atlas.payload import bounds, hover_texts
from components.attention import payloads as heat

METRICS = {
    "cka": "linear CKA",
    "cka_debiased": "debiased CKA",
    "mknn": "mutual k-NN",
}


def layer_labels(count: int) -> list[str]:
    """`count` row or column labels: "emb" for the embedding output (layer 0), then "L1" …; the axis title says
    which model."""
    return ["emb"] + [f"L{i}" for i in range(1, count)]


def scale(matrix: np.ndarray) -> tuple[float, float]:
    """(zmin, zmax): 0–1 for every map, so maps compare by colour; debiased CKA can dip below 0, and then the scale
    starts at the next 0.05 below its minimum (never clipping a value)."""
    low = float(np.nanmin(matrix)) if matrix.size else 0.0
    return (min(0.0, np.floor(low * 20) / 20), 1.0)


def similarity_map(matrix: np.ndarray, name_a: str, name_b: str, metric: str, tag: str,
                   title: str | None = None) -> bytes:
    """The heatmap payload of a layer × layer matrix `[La + 1, Lb + 1]` on `scale(matrix)`, exact on hover.

    Rows are a's layers, columns b's; the component tags its root `tag` (data-es-heatmap)."""
    rows, cols = layer_labels(matrix.shape[0]), layer_labels(matrix.shape[1])
    zmin, zmax = scale(matrix)
    return heat.matrix(
        np.asarray(matrix, np.float64), rows, cols, name=tag,
        title=title or f"{METRICS.get(metric, metric)}: rows {name_a}, columns {name_b}",
        zmin=zmin, zmax=zmax, scheme="viridis", legend=METRICS.get(metric, metric),
        hover=f"{name_a} layer {{row}} · {name_b} layer {{col}}: {{value}}", filename=f"compare_{tag}",
    )


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def pair_map(ya: np.ndarray, yb: np.ndarray, values: np.ndarray, titles: tuple[str, str], *,
             texts: list[str] | None = None, selected: int | None = None,
             neighbours_a: np.ndarray | None = None, neighbours_b: np.ndarray | None = None,
             tag: str = "compare", legend: str = "neighbour overlap", colour_by: str = "overlap",
             note: str = "", height: int = 460, filename: str = "compare_maps") -> dict:
    """The pair map's data: a's layout `ya` `[N, 2]` and b's aligned layout `yb` `[N, 2]` on one shared box,
    `values` `[N]` in [0, 1] (the colour), hover `texts` `[N]` (cut), the clicked point and its neighbours
    under each model (`[k]` indices). `version` changes only with the heavy arrays."""
    ya, yb = np.asarray(ya, np.float32), np.asarray(yb, np.float32)
    values = np.asarray(values, np.float32)
    both = np.concatenate([ya, yb])
    box = bounds(both[:, 0], both[:, 1])
    xa, xb, vals = _b64(ya.reshape(-1)), _b64(yb.reshape(-1)), _b64(values)
    digest = hashlib.blake2b((xa + xb + vals).encode(), digest_size=8)
    out = {
        "n": int(len(ya)), "bounds": box, "xa": xa, "xb": xb, "values": vals, "titles": list(titles),
        "selected": None if selected is None else int(selected), "tag": tag, "legend": legend,
        "colour_by": colour_by, "note": note, "height": height, "filename": filename,
        "neighbours_a": [] if neighbours_a is None else [int(i) for i in neighbours_a],
        "neighbours_b": [] if neighbours_b is None else [int(i) for i in neighbours_b],
    }
    if texts is not None:
        cut = hover_texts(pd.Series(texts, dtype=object))
        digest.update("\x00".join(cut).encode("utf-8", "surrogatepass"))
        out["texts"] = cut
    return {"version": digest.hexdigest(), **out}


def matrix_csv(matrix: np.ndarray, name_a: str, name_b: str) -> bytes:
    """The matrix `[La + 1, Lb + 1]` as CSV: one row per layer of a, one column per layer of b (full precision)."""
    frame = pd.DataFrame(matrix, index=pd.Index(range(matrix.shape[0]), name=f"layer of {name_a}"),
                         columns=[f"{name_b} layer {j}" for j in range(matrix.shape[1])])
    return frame.to_csv(float_format="%.10g").encode()
