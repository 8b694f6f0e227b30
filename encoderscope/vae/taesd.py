"""Tiny autoencoders of the TAESD family (SD, SDXL, SD3, FLUX.1, FLUX.2), built to match their `.pth` pairs.

The layout follows the TAESD project's `taesd.py` (Conv/ReLU residual blocks, 8x down/up-sampling).
FLUX.2's variant (TAEF2) adds a residual `pool` branch to the blocks at 1/8 resolution: x = x + pool(x)
before the usual body. Which blocks have it, and the latent channel count, are read from the weights, so
one builder serves every variant. Images are in [0, 1]; latents are raw (scale 1, shift 0).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import UserFacingError
from ..model_kinds import BUILD_LOCK


def conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """Soft clamp of decoder inputs to about ±3 (TAESD's first decoder layer, no weights)."""

    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Residual block `[B, 64, h, w]` -> same; with `pool`, FLUX.2's extra branch runs first."""

    def __init__(self, n_in: int, n_out: int, pool: bool = False):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = (
            nn.Sequential(
                nn.Conv2d(n_in, 256, 1, bias=False),
                nn.GroupNorm(4, 256),
                nn.ReLU(),
                nn.Conv2d(256, n_in, 1, bias=False),
            )
            if pool
            else None
        )

    def forward(self, x):
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def _pooled(state: dict) -> set[int]:
    return {int(k.split(".")[0]) for k in state if ".pool." in k}


def encoder(latent_channels: int, pooled: set[int] = frozenset()) -> nn.Sequential:
    """`[B, 3, H, W]` in [0, 1] -> latents `[B, C, H/8, W/8]`."""
    B = lambda i: Block(64, 64, pool=i in pooled)  # noqa: E731
    return nn.Sequential(
        conv(3, 64),
        B(1),
        conv(64, 64, stride=2, bias=False),
        B(3),
        B(4),
        B(5),
        conv(64, 64, stride=2, bias=False),
        B(7),
        B(8),
        B(9),
        conv(64, 64, stride=2, bias=False),
        B(11),
        B(12),
        B(13),
        conv(64, latent_channels),
    )


def decoder(latent_channels: int, pooled: set[int] = frozenset()) -> nn.Sequential:
    """Latents `[B, C, h, w]` -> `[B, 3, 8h, 8w]`, roughly in [0, 1]."""
    B = lambda i: Block(64, 64, pool=i in pooled)  # noqa: E731
    return nn.Sequential(
        Clamp(),
        conv(latent_channels, 64),
        nn.ReLU(),
        B(3),
        B(4),
        B(5),
        nn.Upsample(scale_factor=2),
        conv(64, 64, bias=False),
        B(8),
        B(9),
        B(10),
        nn.Upsample(scale_factor=2),
        conv(64, 64, bias=False),
        B(13),
        B(14),
        B(15),
        nn.Upsample(scale_factor=2),
        conv(64, 64, bias=False),
        B(18),
        conv(64, 3),
    )


class TAESDError(UserFacingError):
    """The `.pth` pair is not a usable TAESD-family model; the message says why."""


def load_state(path: Path) -> dict:
    """A `.pth` state dict (safely: weights_only=True), as float32 tensors."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, truncated zips, non-torch files
        raise TAESDError(f"{path.name} is not a readable PyTorch weights file ({type(err).__name__}).") from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TAESDError(f"{path.name} does not hold a state dict of tensors.")
    return {k: v.float() for k, v in state.items()}


def build(kind: str, state: dict) -> nn.Module:
    """The encoder or decoder for `state`, loaded strictly (every key used, none missing)."""
    try:
        with BUILD_LOCK:  # plain modules too: another thread's diffusers load patches register_parameter
            if kind == "encoder":
                channels = state["14.weight"].shape[0]
                module = encoder(channels, _pooled(state))
            else:
                channels = state["1.weight"].shape[1]
                module = decoder(channels, _pooled(state))
            module.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError) as err:
        raise TAESDError(f"The {kind} weights do not match the TAESD layout: {str(err).splitlines()[0][:200]}") from err
    return module.eval()


ENCODER_SUFFIX, DECODER_SUFFIX = "encoder.pth", "decoder.pth"


def partner(path: Path) -> Path | None:
    """The other file of the pair `path` belongs to (`x_encoder.pth` <-> `x_decoder.pth`), or None when
    `path` is named like neither. The partner may not exist."""
    name = path.name
    if name.endswith(ENCODER_SUFFIX):
        return path.with_name(name[: -len(ENCODER_SUFFIX)] + DECODER_SUFFIX)
    if name.endswith(DECODER_SUFFIX):
        return path.with_name(name[: -len(DECODER_SUFFIX)] + ENCODER_SUFFIX)
    return None


def pair_name(encoder_path: Path) -> str:
    """The pair's name from its encoder file: `taesdxl_encoder.pth` -> "taesdxl"."""
    name = encoder_path.name[: -len(ENCODER_SUFFIX)].rstrip("_-.")
    return name or encoder_path.parent.name


def find_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """Every (encoder, decoder) `.pth` pair in `folder`, matched by prefix (taesd_encoder / taesd_decoder,
    taesdxl_encoder / taesdxl_decoder, ...), sorted by file name. ComfyUI's `models/vae_approx` holds several."""
    pairs = []
    for enc in sorted(folder.glob("*" + ENCODER_SUFFIX)):
        dec = partner(enc)
        if dec is not None and enc.is_file() and dec.is_file():
            pairs.append((enc, dec))
    return pairs


def find_pair(folder: Path) -> tuple[Path, Path] | None:
    """The first (encoder, decoder) `.pth` pair in `folder` (see `find_pairs`), or None."""
    pairs = find_pairs(folder)
    return pairs[0] if pairs else None
