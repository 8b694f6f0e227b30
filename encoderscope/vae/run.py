"""Running a VAE: image to latents (`encode`), latents to image (`decode`), and the timed `round_trip` with
per-stage progress. The scaling conventions are in the package docstring (`encoderscope.vae`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from .. import images
from .results import LoadedVAE, RoundTrip, VAEError


def to_tensor(image: Image.Image, vae: LoadedVAE) -> torch.Tensor:
    """RGB image -> `[1, 3, H, W]` in [0, 1] on the VAE's device (channels-last)."""
    x = torch.from_numpy(images.to_array(image).copy()).permute(2, 0, 1)[None]
    return x.to(vae.device, vae.dtype).contiguous(memory_format=torch.channels_last)


def _check_finite(t: torch.Tensor, what: str, vae: LoadedVAE) -> None:
    if not torch.isfinite(t).all():
        hint = (
            (
                " This happens with the SDXL VAE in fp16: it overflows. Load it in fp32 (the default on CPU) or use "
                "madebyollin/sdxl-vae-fp16-fix."
            )
            if vae.dtype == torch.float16
            else ""
        )
        raise VAEError(f"The {what} contains NaN or infinite values.{hint}")


Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is running)


def _stages(vae: LoadedVAE, part: str) -> list[torch.nn.Module]:
    """The encoder's or decoder's top-level stages, in run order (one progress tick each)."""
    if vae.kind == "taesd":
        return list(vae.encoder if part == "encoder" else vae.decoder)
    coder = getattr(vae.module, part)
    if vae.kind == "tiny":
        return list(coder.layers)
    blocks = [*coder.down_blocks, coder.mid_block] if part == "encoder" else [coder.mid_block, *coder.up_blocks]
    return [b for b in blocks if b is not None]


@contextmanager
def progress_hooks(vae: LoadedVAE, part: str, progress: Progress | None, start: float, span: float) -> Iterator[None]:
    """Report `start + span * (stages done / stages)` after each stage of `part` ("encoder" / "decoder").

    Forward hooks on a model that other threads may share: only calls from this thread report.
    """
    if progress is None:
        yield
        return
    stages, owner = _stages(vae, part), threading.get_ident()
    label = "Encoding" if part == "encoder" else "Decoding"

    def hook(index: int):
        def report(*_):
            if threading.get_ident() == owner:
                progress(
                    min(1.0, start + span * (index + 1) / len(stages)), f"{label}: stage {index + 1}/{len(stages)}"
                )

        return report

    handles = [stage.register_forward_hook(hook(i)) for i, stage in enumerate(stages)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.inference_mode()
def encode(vae: LoadedVAE, x01: torch.Tensor, sample: bool = False, seed: int = 0) -> torch.Tensor:
    """Image `[1, 3, H, W]` in [0, 1] -> scaled latents `[1, C, H/8, W/8]` (float32)."""
    if vae.kind == "taesd":
        z = vae.encoder(x01)
    elif vae.kind == "tiny":
        z = vae.module.encode(x01 * 2 - 1).latents
    else:
        dist = vae.module.encode(x01 * 2 - 1).latent_dist
        z = dist.sample(torch.Generator(device=x01.device).manual_seed(seed)) if sample else dist.mode()
        z = z.float()
        if vae.latents_mean is not None and vae.latents_std is not None:
            shape = (1, -1, 1, 1)
            z = (z - vae.latents_mean.view(shape)) * vae.scaling_factor / vae.latents_std.view(shape)
        else:
            z = (z - vae.shift_factor) * vae.scaling_factor
    z = z.float()
    _check_finite(z, "latent", vae)
    return z


@torch.inference_mode()
def decode(vae: LoadedVAE, latents: torch.Tensor) -> torch.Tensor:
    """Scaled latents `[1, C, h, w]` -> image `[1, 3, 8h, 8w]` in [0, 1] (float32)."""
    z = latents.to(vae.device, torch.float32)
    if vae.kind == "kl":
        if vae.latents_mean is not None and vae.latents_std is not None:
            shape = (1, -1, 1, 1)
            z = z * vae.latents_std.view(shape) / vae.scaling_factor + vae.latents_mean.view(shape)
        else:
            z = z / vae.scaling_factor + vae.shift_factor
    z = z.to(vae.dtype).contiguous(memory_format=torch.channels_last)
    if vae.kind == "taesd":
        y = vae.decoder(z)
    else:
        y = (vae.module.decode(z).sample + 1) / 2
    y = y.float()
    _check_finite(y, "decoded image", vae)
    return y.clamp(0, 1)


def to_image(y: torch.Tensor) -> Image.Image:
    """`[1, 3, H, W]` in [0, 1] -> PIL RGB."""
    arr = (y[0].permute(1, 2, 0).cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def encode_image(
    vae: LoadedVAE, image: Image.Image, size: int = 512, fit: str = "crop", sample: bool = False, seed: int = 0
) -> np.ndarray:
    """Latents `[C, h, w]` of `image`, preprocessed as in `round_trip` (encoder only: no decode)."""
    if size < 8 or size > 2048:
        raise VAEError("The working size must be between 8 and 2048 pixels.")
    prepared, _ = images.prepare(images.to_rgb(image, []), size, fit)
    return encode(vae, to_tensor(prepared, vae), sample, seed)[0].cpu().numpy()


def round_trip(
    vae: LoadedVAE,
    image: Image.Image,
    size: int = 512,
    fit: str = "crop",
    sample: bool = False,
    seed: int = 0,
    progress: Progress | None = None,
) -> RoundTrip:
    """Preprocess `image` (long side `size`, multiples of 8), encode, decode, and measure the loss.

    `progress(fraction, text)`, if given, is called after each encoder/decoder stage (for slow VAEs).
    """
    if size < 8 or size > 2048:
        raise VAEError("The working size must be between 8 and 2048 pixels.")
    prepared, notes = images.prepare(images.to_rgb(image, []), size, fit)
    x = to_tensor(prepared, vae)
    share = 0.3 if vae.kind == "kl" else 0.5  # the KL decoder takes about twice as long as its encoder
    start = time.perf_counter()
    with progress_hooks(vae, "encoder", progress, 0.0, share):
        z = encode(vae, x, sample, seed)
    middle = time.perf_counter()
    with progress_hooks(vae, "decoder", progress, share, 1.0 - share):
        y = decode(vae, z)
    end = time.perf_counter()
    recon = to_image(y)
    a, b = images.to_array(prepared), images.to_array(recon)
    return RoundTrip(
        z[0].cpu().numpy(), recon, images.psnr(a, b), prepared, images.ssim(a, b), middle - start, end - middle, notes
    )
