"""The trained sparse autoencoder: encode to k active features, decode, measure, save and load.

Inference is plain numpy (float32, in row chunks so memory stays bounded); only training needs torch.
Shapes: W_enc `[D, F]`, b_enc `[F]`, W_dec `[F, D]` (row i is feature i's direction, unit length), b_dec `[D]`.
A vector x is encoded as the k largest of `(x - b_dec) @ W_enc + b_enc`, clipped at 0 (TopK, Gao et al. 2024),
and decoded as `b_dec + sum_i a_i W_dec[i]`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserFacingError

FORMAT = 1
CHUNK = 4096  # rows per encode step: [CHUNK, F] float32 pre-activations (64 MB at F = 4096)


class FeaturesError(UserFacingError):
    """Features could not be trained, loaded or applied; `str(err)` says why, for the user."""


def check_vectors(X, what: str = "The vectors") -> np.ndarray:
    """`X` as a 2-d array `[N, D]` (a memory map stays one), or FeaturesError for another shape or NaN/inf."""
    if not hasattr(X, "ndim"):
        X = np.asarray(X, np.float32)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise FeaturesError(f"{what} must be a non-empty [N, D] array; got shape {tuple(X.shape)}.")
    for start in range(0, len(X), 65_536):  # chunked: a memory-mapped 10^6 x 384 is never read at once
        block = np.asarray(X[start : start + 65_536])
        if not np.isfinite(block).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise FeaturesError(f"{what} hold NaN or infinite values (first in row {bad}); remove or fix those rows.")
    return X


@dataclass
class SAE:
    """A TopK sparse autoencoder (see the module docstring). `config`: n_features, k, seed, epochs, ... as trained;
    `labels`: one name per feature once `describe` (or a features folder) gave them, else None."""

    W_enc: np.ndarray
    b_enc: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray
    k: int
    config: dict = field(default_factory=dict)
    labels: list[str] | None = None

    @property
    def n_features(self) -> int:
        return int(self.W_dec.shape[0])

    @property
    def dim(self) -> int:
        return int(self.W_dec.shape[1])

    def _check(self, X) -> np.ndarray:
        X = check_vectors(X)
        if X.shape[1] != self.dim:
            raise FeaturesError(f"These features were trained on {self.dim}-d vectors; got {X.shape[1]}-d ones.")
        return X

    def encode(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(ids `[N, k]` int32, values `[N, k]` float32 >= 0), each row's features by value, largest first.
        A value of 0 means fewer than k features fired for that row (its id is still a valid feature)."""
        X = self._check(X)
        ids = np.empty((len(X), self.k), np.int32)
        values = np.empty((len(X), self.k), np.float32)
        for start in range(0, len(X), CHUNK):
            pre = self.preactivations(np.asarray(X[start : start + CHUNK], np.float32))  # [n, F]
            top = np.argpartition(-pre, self.k - 1, axis=1)[:, : self.k]
            val = np.take_along_axis(pre, top, axis=1)
            order = np.argsort(-val, axis=1, kind="stable")
            ids[start : start + CHUNK] = np.take_along_axis(top, order, axis=1)
            values[start : start + CHUNK] = np.maximum(np.take_along_axis(val, order, axis=1), 0)
        return ids, values

    def preactivations(self, X: np.ndarray) -> np.ndarray:
        """`(X - b_dec) @ W_enc + b_enc`: `[n, F]` float32 for `X` `[n, D]`."""
        return (X - self.b_dec) @ self.W_enc + self.b_enc

    def decode(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """`[N, D]` float32: `b_dec + sum_j values[:, j] * W_dec[ids[:, j]]`, so all-zero values give the bias."""
        ids = np.asarray(ids)
        values = np.asarray(values, np.float32)
        if ids.shape != values.shape or ids.ndim != 2:
            raise FeaturesError(f"ids and values must both be [N, k]; got {ids.shape} and {values.shape}.")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_features):
            raise FeaturesError(f"Feature ids run from 0 to {self.n_features - 1}; got {ids.min()}..{ids.max()}.")
        out = np.empty((len(ids), self.dim), np.float32)
        for start in range(0, len(ids), CHUNK):
            part = self.W_dec[ids[start : start + CHUNK]]  # [n, k, D]
            out[start : start + CHUNK] = self.b_dec + np.einsum("nk,nkd->nd", values[start : start + CHUNK], part)
        return out

    def reconstruct(self, X) -> np.ndarray:
        """decode(encode(X)): `[N, D]`."""
        return self.decode(*self.encode(X))

    def fvu(self, X) -> float:
        """Fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean(X)||^2 (0 is perfect, 1 is no
        better than predicting the mean)."""
        X = self._check(X)
        mean = np.zeros(self.dim, np.float64)
        for start in range(0, len(X), CHUNK):
            mean += np.asarray(X[start : start + CHUNK], np.float64).sum(axis=0)
        mean /= len(X)
        err = total = 0.0
        for start in range(0, len(X), CHUNK):
            block = np.asarray(X[start : start + CHUNK], np.float64)
            err += float(((block - self.reconstruct(block)) ** 2).sum())
            total += float(((block - mean) ** 2).sum())
        return err / total if total > 0 else float("nan")

    def activity(self, X) -> np.ndarray:
        """How many rows of `X` each feature is active in (value > 0): `[F]` int64."""
        ids, values = self.encode(X)
        return np.bincount(ids[values > 0], minlength=self.n_features).astype(np.int64)

    def dead(self, X) -> np.ndarray:
        """Ids of the features active in no row of `X` (sorted)."""
        return np.flatnonzero(self.activity(X) == 0)

    def save(self, path: str | Path) -> Path:
        """Write `path` (a .safetensors file: the four tensors) and `path` with .json (k, config, labels).
        Each file is written atomically; no pickle anywhere."""
        from safetensors.numpy import save_file

        from ..atlas.io import write_atomic

        path = Path(path)
        tensors = {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec, "b_dec": self.b_dec}
        write_atomic(path, lambda tmp: save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()},
                                                 str(tmp)))
        info = {"format": FORMAT, "k": self.k, "config": self.config, "labels": self.labels}
        write_atomic(config_path(path), lambda tmp: tmp.write_text(json.dumps(info, indent=1)))
        return path


def config_path(path: str | Path) -> Path:
    """features.safetensors -> features.json."""
    return Path(path).with_suffix(".json")


def load(path: str | Path) -> SAE:
    """An SAE saved by `SAE.save`; FeaturesError when a file is missing, damaged or inconsistent."""
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file() or not config_path(path).is_file():
        raise FeaturesError(f"No features at {str(path)!r}: both {path.name} and {config_path(path).name} are needed.")
    try:
        info = json.loads(config_path(path).read_text())
        t = load_file(str(path))
        sae = SAE(t["W_enc"], t["b_enc"], t["W_dec"], t["b_dec"], int(info["k"]), dict(info.get("config") or {}),
                  info.get("labels"))
    except Exception as err:  # any unreadable file: the message, never a traceback
        raise FeaturesError(f"The features at {str(path)!r} are damaged: {type(err).__name__}: {str(err)[:200]}") from err
    F, D = sae.W_dec.shape
    if sae.W_enc.shape != (D, F) or sae.b_enc.shape != (F,) or sae.b_dec.shape != (D,) or not 0 < sae.k < F:
        raise FeaturesError(f"The features at {str(path)!r} are inconsistent (W_dec {sae.W_dec.shape}, "
                            f"W_enc {sae.W_enc.shape}, k = {sae.k}).")
    if sae.labels is not None and len(sae.labels) != F:
        sae.labels = None
    return sae
