"""`align(Ya, Yb)`: b's 2-D map rotated (or reflected), scaled and shifted onto a's by orthogonal Procrustes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import CompareError, check_same_n, check_vectors


@dataclass(frozen=True)
class Alignment:
    """b's layout mapped onto a's.

    aligned:   float64 `[N, d]` = scale · (Yb - mean_b) @ rotation + mean_a (d = 2 for maps)
    rotation:  `[d, d]` orthogonal (det -1: a reflection); scale: float > 0; shift: `[d]` (= mean_a, after
               centring b), so aligned = scale · Yb @ rotation + (shift - scale · mean_b @ rotation)
    disparity: in [0, 1]: the sum of squared differences between the two layouts after each is centred and scaled
               to unit Frobenius norm (scipy.spatial.procrustes' disparity); 0 = identical up to the transform
    """

    aligned: np.ndarray
    rotation: np.ndarray
    scale: float
    shift: np.ndarray
    disparity: float


def align(Ya: np.ndarray, Yb: np.ndarray) -> Alignment:
    """Orthogonal Procrustes with scale and shift: the similarity transform of `Yb` `[N, d]` closest (least
    squares) to `Ya` `[N, d]`. Raises CompareError for different N or d, NaN, or fewer than 2 points."""
    A = check_vectors(Ya, "map a").astype(np.float64)
    B = check_vectors(Yb, "map b").astype(np.float64)
    check_same_n(len(A), len(B), "points")
    if A.shape[1] != B.shape[1]:
        raise CompareError(f"The two maps have different dimensions ({A.shape[1]} and {B.shape[1]}).")
    if len(A) < 2:
        raise CompareError("Aligning two maps needs at least 2 points.")
    mean_a, mean_b = A.mean(axis=0), B.mean(axis=0)
    Ac, Bc = A - mean_a, B - mean_b
    na, nb = np.linalg.norm(Ac), np.linalg.norm(Bc)
    if na == 0 or nb == 0:  # every point in one place: nothing to rotate; put b's points on a's centre
        aligned = np.repeat(mean_a[None], len(A), axis=0)
        return Alignment(aligned, np.eye(A.shape[1]), 0.0, mean_a, 0.0 if na == nb else 1.0)
    u, s, vt = np.linalg.svd(Bc.T @ Ac)
    rotation = u @ vt
    scale = float(s.sum() / nb**2)
    aligned = scale * Bc @ rotation + mean_a
    disparity = float(max(0.0, 1.0 - (s.sum() / (na * nb)) ** 2))
    return Alignment(aligned, rotation, scale, mean_a, disparity)
