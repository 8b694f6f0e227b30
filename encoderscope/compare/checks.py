"""Input checks for the comparisons, each failing with a message written for the person using Encoderscope."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import UserFacingError

MIN_CKA = 4  # HSIC's unbiased estimator divides by n - 3: fewer than 4 inputs leave nothing to estimate


class CompareError(UserFacingError):
    """Two models or two vector sets cannot be compared as asked; `str(err)` says why and what to do."""


def check_metric(metric: str, metrics: tuple[str, ...]) -> str:
    if metric not in metrics:
        raise CompareError(f"Unknown similarity metric {metric!r}: choose one of {', '.join(metrics)}.")
    return metric


def check_count(n: int, metric: str, k: int) -> None:
    """Enough inputs for `metric`: CKA needs at least 4; mutual k-NN needs more than k (self is excluded)."""
    if metric == "mknn":
        if int(k) < 1:
            raise CompareError(f"k must be at least 1 (got {k}).")
        if n <= k:
            raise CompareError(
                f"Mutual k-NN with k = {k} needs more than {k} texts (each text's {k} nearest neighbours, itself "
                f"excluded); there are {n}. Add texts or lower k."
            )
    elif n < MIN_CKA:
        raise CompareError(f"CKA needs at least {MIN_CKA} texts to compare two models; there are {n}. Add texts.")


def check_same_n(n_a: int, n_b: int, what: str = "vectors") -> None:
    if n_a != n_b:
        raise CompareError(
            f"The two sides have different numbers of {what} ({n_a} and {n_b}): a comparison needs the same "
            "inputs, in the same order, under both models."
        )


def check_finite(x: np.ndarray, side: str) -> None:
    """Refuse NaN or infinite entries, naming the first bad row."""
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(-1, x.shape[-1]).any(axis=1) if x.ndim > 1 else bad)
        where = f"row {rows[0] % x.shape[-2] if x.ndim > 2 else rows[0]}"
        raise CompareError(
            f"The vectors of {side} contain NaN or infinite values ({where} and {rows.size - 1} more): the model "
            "overflowed or the file is damaged. Nothing can be compared with them."
        )


def check_vectors(x, side: str, ndim: int = 2) -> np.ndarray:
    """`x` as a float array of `ndim` dimensions, finite; a clear error otherwise."""
    arr = np.asarray(x)
    if arr.ndim != ndim or arr.size == 0 or not np.issubdtype(arr.dtype, np.number):
        shape = "[N, D]" if ndim == 2 else "[layers, N, D]"
        raise CompareError(f"The vectors of {side} must be a non-empty numeric array {shape}; got shape {arr.shape}.")
    check_finite(arr, side)
    return arr


def check_texts(texts) -> list[str]:
    """A list of non-empty strings; an error names the first empty one."""
    if isinstance(texts, str) or not hasattr(texts, "__len__"):
        raise CompareError("Give a list of texts (one per item), not a single string.")
    out = [str(t) for t in texts]
    empty = [i for i, t in enumerate(out) if not t.strip()]
    if not out:
        raise CompareError("There are no texts to compare the models on.")
    if empty:
        raise CompareError(f"Text {empty[0] + 1} is empty ({len(empty)} empty in all): remove empty texts.")
    return out


def duplicate_notice(items: list) -> str | None:
    """A notice when some items occur more than once (identical inputs tie in k-NN), else None."""
    counts = Counter(items)
    extra = sum(c - 1 for c in counts.values() if c > 1)
    if not extra:
        return None
    return (
        f"{extra} input{'s are' if extra > 1 else ' is'} an exact duplicate of another: identical texts get "
        "identical vectors and tie in k-NN (the tie is broken by position), which inflates neighbour overlap. "
        "Remove duplicates for a cleaner comparison."
    )


def duplicate_rows(x: np.ndarray) -> str | None:
    """:func:`duplicate_notice` for the rows of `x` `[N, D]` (compared byte for byte)."""
    return duplicate_notice([row.tobytes() for row in np.ascontiguousarray(x)])
