"""Why two vectors are close, in features: an exact split of their cosine.

With x = b + sum_i a_i d_i + e_x and y = b + sum_j b_j d_j + e_y (b the decoder bias, d the unit decoder rows,
e the reconstruction errors), <x, y> = sum_ij a_i b_j <d_i, d_j> + (every product with b, e_x or e_y). Divided
by ||x|| ||y||, the first sum is `terms` and the rest is `residual`, computed as cos(x, y) - terms.value.sum()
so that the two add up to the cosine exactly (in float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sae import SAE, FeaturesError


@dataclass
class FeatureExplanation:
    """terms: DataFrame (feature_a, feature_b, label_a, label_b, value), one row per pair of an active feature of
    x and one of y, largest |value| first; shared: DataFrame (feature, label, value_a, value_b, contribution =
    a_f b_f / (||x|| ||y||), the pair's own term), largest first; residual: float; cosine: cos(x, y)."""

    terms: object
    shared: object
    residual: float
    cosine: float

    @property
    def shared_total(self) -> float:
        """The shared features' summed contribution to the cosine."""
        return float(self.shared["contribution"].sum())


def _vector(v, D: int, what: str) -> np.ndarray:
    v = np.asarray(v, np.float64)
    if v.ndim == 2 and v.shape[0] == 1:
        v = v[0]
    if v.shape != (D,):
        raise FeaturesError(f"{what} must be a [{D}] vector; got shape {v.shape}.")
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0:
        raise FeaturesError(f"{what} is all zeros or holds NaN/inf, so it has no cosine with anything.")
    return v


def explain(sae: SAE, x, y, labels: list[str] | None = None) -> FeatureExplanation:
    """Split cos(x, y) over pairs of active features (see the module docstring). `x`, `y`: `[D]`. `labels`: a
    name per feature (default `sae.labels`, else "feature i")."""
    import pandas as pd

    x = _vector(x, sae.dim, "The first vector")
    y = _vector(y, sae.dim, "The second vector")
    labels = labels if labels is not None else sae.labels
    name = (lambda f: labels[f]) if labels is not None else (lambda f: f"feature {f}")
    (ia,), (va,) = sae.encode(x[None].astype(np.float32))
    (ib,), (vb,) = sae.encode(y[None].astype(np.float32))
    ia, va = ia[va > 0], va[va > 0].astype(np.float64)
    ib, vb = ib[vb > 0], vb[vb > 0].astype(np.float64)
    scale = np.linalg.norm(x) * np.linalg.norm(y)
    cosine = float(x @ y / scale)
    gram = sae.W_dec[ia].astype(np.float64) @ sae.W_dec[ib].astype(np.float64).T  # [ka, kb] <d_i, d_j>
    value = va[:, None] * vb[None, :] * gram / scale
    fa, fb = np.meshgrid(ia, ib, indexing="ij")
    terms = pd.DataFrame({"feature_a": fa.ravel().astype(np.int32), "feature_b": fb.ravel().astype(np.int32),
                          "label_a": [name(f) for f in fa.ravel()], "label_b": [name(f) for f in fb.ravel()],
                          "value": value.ravel()})
    terms = terms.iloc[np.argsort(-np.abs(terms["value"].to_numpy()), kind="stable")].reset_index(drop=True)
    both, pos_a, pos_b = np.intersect1d(ia, ib, return_indices=True)
    shared = pd.DataFrame({"feature": both.astype(np.int32), "label": [name(f) for f in both],
                           "value_a": va[pos_a], "value_b": vb[pos_b], "contribution": value[pos_a, pos_b]})
    shared = shared.sort_values("contribution", ascending=False, kind="stable").reset_index(drop=True)
    residual = cosine - float(terms["value"].sum())
    return FeatureExplanation(terms, shared, residual, cosine)
