"""A loaded network made ready: device and precision (`place`), and diffusers' VAE classes as a LoadedVAE."""

from __future__ import annotations

import torch

from .. import models
from .results import LoadedVAE, VAEError


def place(vae: LoadedVAE, force_fp32: bool = False) -> LoadedVAE:
    """Device and precision: fp32 on CPU; fp16 on CUDA unless the VAE is known to overflow (SDXL)."""
    dev = models.device()
    dtype = torch.float16 if dev.type == "cuda" and not force_fp32 else torch.float32
    for part in {id(vae.encoder): vae.encoder, id(vae.decoder): vae.decoder}.values():
        part.to(device=dev, dtype=dtype).eval()
        part.to(memory_format=torch.channels_last)
    vae.dtype = dtype
    for name in ("latents_mean", "latents_std"):
        value = getattr(vae, name)
        if value is not None:
            setattr(vae, name, value.to(dev, torch.float32))
    return vae


def from_diffusers(model, name: str) -> LoadedVAE:
    """A diffusers AutoencoderKL ("kl": scaling, shift and per-channel statistics from its config) or
    AutoencoderTiny ("tiny": raw latents) as a LoadedVAE, placed by :func:`place`."""
    from diffusers import AutoencoderKL

    cfg = model.config
    if isinstance(model, AutoencoderKL):
        mean, std = getattr(cfg, "latents_mean", None), getattr(cfg, "latents_std", None)
        vae = LoadedVAE(
            name,
            "kl",
            model,
            model,
            int(cfg.latent_channels),
            float(cfg.scaling_factor or 1.0),
            float(getattr(cfg, "shift_factor", None) or 0.0),
            torch.tensor(mean, dtype=torch.float32) if mean else None,
            torch.tensor(std, dtype=torch.float32) if std else None,
            model,
        )
        return place(vae, force_fp32=bool(getattr(cfg, "force_upcast", False)) or "sdxl" in name.lower())
    return place(LoadedVAE(name, "tiny", model, model, int(cfg.latent_channels), module=model))


def diffusers_class(config: dict):
    """The diffusers class a `config.json` (as a dict) names, or VAEError when it is not a VAE this page runs."""
    from diffusers import AutoencoderKL, AutoencoderTiny

    cls = config.get("_class_name", "")
    if cls == "AutoencoderKL":
        return AutoencoderKL
    if cls == "AutoencoderTiny":
        return AutoencoderTiny
    raise VAEError(f"config.json describes a {cls or 'non-diffusers model'}, not an AutoencoderKL or AutoencoderTiny.")
