"""What loading and running a VAE give back: :class:`LoadedVAE`, :class:`RoundTrip`, and :class:`VAEError`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from ..errors import UserFacingError


class VAEError(UserFacingError):
    """A VAE could not be loaded or run; `str(err)` is a user-facing explanation."""


@dataclass
class LoadedVAE:
    """A ready VAE. `kind` is "kl" (AutoencoderKL), "tiny" (diffusers AutoencoderTiny) or "taesd" (.pth pair)."""

    name: str
    kind: str
    encoder: torch.nn.Module
    decoder: torch.nn.Module
    latent_channels: int
    scaling_factor: float = 1.0
    shift_factor: float = 0.0
    latents_mean: torch.Tensor | None = None  # [C] per-channel statistics (SDXL-style configs)
    latents_std: torch.Tensor | None = None
    module: torch.nn.Module | None = None  # the diffusers model, when there is one
    dtype: torch.dtype = torch.float32
    notes: list[str] = field(default_factory=list)

    @property
    def input_range(self) -> str:
        return "[0, 1]" if self.kind == "taesd" else "[-1, 1]"

    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    def describe(self) -> str:
        scale = f"× {self.scaling_factor:g}" + (f", shift {self.shift_factor:g}" if self.shift_factor else "")
        if self.latents_mean is not None:
            scale = f"(z − mean) × {self.scaling_factor:g} / std (per channel)"
        kind = {"kl": "AutoencoderKL", "tiny": "AutoencoderTiny", "taesd": "TAESD-family tiny autoencoder"}[self.kind]
        latents = "latent_dist.mode()" if self.kind == "kl" else "raw encoder output"
        return (
            f"{kind}: input in {self.input_range}; latents = {latents}, scaled {scale}; {self.latent_channels} channels"
        )


@dataclass
class RoundTrip:
    """latents `[C, h, w]` (scaled, float32); reconstruction and input as PIL images of the same size."""

    latents: np.ndarray
    reconstruction: Image.Image
    psnr: float
    input: Image.Image
    ssim: float = float("nan")
    encode_s: float = 0.0
    decode_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def compression(self) -> float:
        """Pixels × 3 / latent elements (48 for 4 channels at 8x downsampling)."""
        w, h = self.input.size
        return w * h * 3 / self.latents.size
