"""Edits and statistics of image latents `[C, h, w]` (the VAE page's playground). Pure numpy, no I/O.

Every edit returns a new array and leaves its input alone: the page's latents are a shared cached result.
"""

from __future__ import annotations

import numpy as np

OPS = ("scale", "zero", "shift")
# The amount at which an op changes nothing (zero always changes the channel, so it has none).
NEUTRAL = {"scale": 1.0, "shift": 0.0}


def channel_stats(z: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel mean, std, min and max of latents `[C, h, w]`: {"mean": [C], "std": [C], "min": [C], "max": [C]}."""
    flat = z.reshape(z.shape[0], -1)  # [C, h*w]
    return {"mean": flat.mean(1), "std": flat.std(1), "min": flat.min(1), "max": flat.max(1)}


def edit_channel(z: np.ndarray, channel: int, op: str, amount: float = 0.0) -> np.ndarray:
    """A copy of `z` `[C, h, w]` with one channel edited.

    op "zero": set it to 0; "scale": multiply it by `amount`; "shift": add `amount` × the channel's own std.
    """
    if op not in OPS:
        raise ValueError(f"unknown latent edit {op!r}; expected one of {', '.join(OPS)}")
    edited = z.copy()
    if op == "zero":
        edited[channel] = 0
    elif op == "scale":
        edited[channel] *= amount
    else:
        edited[channel] += amount * z[channel].std()
    return edited


def changes(op: str, amount: float) -> bool:
    """Whether `edit_channel(z, c, op, amount)` changes anything (scale 1 and shift 0 do not)."""
    return op == "zero" or amount != NEUTRAL[op]


def add_noise(z: np.ndarray, sigma: float, scale: float, seed: int = 0) -> np.ndarray:
    """`z` plus Gaussian noise of std `sigma × scale` (the page passes the unedited latents' std as `scale`).

    Seeded, so the same slider position always gives the same picture. `z` is returned as it is for sigma 0."""
    if sigma <= 0:
        return z
    noise = np.random.default_rng(seed).normal(size=z.shape).astype(np.float32)
    return z + noise * sigma * scale


def interpolate(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """`(1 - t) · a + t · b` for two latents of the same shape `[C, h, w]`; t = 0 gives a, t = 1 gives b."""
    if a.shape != b.shape:
        raise ValueError(f"cannot interpolate latents of shapes {a.shape} and {b.shape}")
    return (1 - t) * a + t * b
