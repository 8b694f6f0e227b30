"""Image VAEs: loading (KL and tiny autoencoders, hub / folder / `.pth` pair / single file) and the round trip.

One module per job:
  results      LoadedVAE, RoundTrip, VAEError
  taesd        the TAESD-family tiny autoencoder networks, built to match their `.pth` pairs
  wrap         device and precision; a diffusers model as a LoadedVAE
  folders      diffusers folders and TAESD `.pth` pairs
  checkpoints  single `.safetensors` AutoencoderKL files (diffusers or LDM keys), config inference
  hub          Hugging Face Hub repos; the curated list
  discovery    what this server offers (`local_vaes`, `default_vae`) and refuses (`refusal`)
  dispatch     `load_vae`: policy first, then the right loader
  run          `encode`, `decode`, `round_trip` with progress

Conventions, kept in one place (`run.encode` / `run.decode`):
- AutoencoderKL takes images in [-1, 1]; latents = latent_dist.mode() (or a seeded sample), then
  (z - shift_factor) * scaling_factor, or (z - latents_mean) * scaling_factor / latents_std when the
  config has per-channel statistics. Decoding applies the inverse.
- diffusers' AutoencoderTiny takes and returns [-1, 1]; TAESD `.pth` models take and return [0, 1].
  Tiny latents are raw (scale 1, shift 0).
Shapes: images `[1, 3, H, W]`, latents `[1, C, H/8, W/8]`; `RoundTrip.latents` drops the batch axis.
"""

from __future__ import annotations

from .checkpoints import SD1_KL_CONFIG, default_scaling, infer_kl_config, load_single_file
from .discovery import default_vae, local_vaes, refusal
from .dispatch import load_vae
from .folders import load_folder, load_pth, load_taesd_pair
from .hub import CURATED_VAES, DEFAULT_HUB_VAE, load_hub
from .results import LoadedVAE, RoundTrip, VAEError
from .run import Progress, decode, encode, encode_image, progress_hooks, round_trip, to_image, to_tensor
from .wrap import from_diffusers, place

__all__ = [
    "CURATED_VAES",
    "DEFAULT_HUB_VAE",
    "SD1_KL_CONFIG",
    "LoadedVAE",
    "Progress",
    "RoundTrip",
    "VAEError",
    "decode",
    "default_scaling",
    "default_vae",
    "encode",
    "encode_image",
    "from_diffusers",
    "infer_kl_config",
    "load_folder",
    "load_hub",
    "load_pth",
    "load_single_file",
    "load_taesd_pair",
    "load_vae",
    "local_vaes",
    "place",
    "progress_hooks",
    "refusal",
    "round_trip",
    "to_image",
    "to_tensor",
]
