"""Image VAEs: loading (KL and tiny autoencoders, hub / folder / `.pth` pair / single file) and the round trip.

Conventions, kept in one place (`encode` / `decode`):
- AutoencoderKL takes images in [-1, 1]; latents = latent_dist.mode() (or a seeded sample), then
  (z - shift_factor) * scaling_factor, or (z - latents_mean) * scaling_factor / latents_std when the
  config has per-channel statistics. Decoding applies the inverse.
- diffusers' AutoencoderTiny takes and returns [-1, 1]; TAESD `.pth` models take and return [0, 1].
  Tiny latents are raw (scale 1, shift 0).
Shapes: images `[1, 3, H, W]`, latents `[1, C, H/8, W/8]`; `RoundTrip.latents` drops the batch axis.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import images, models, settings, taesd

CURATED_VAES = ["madebyollin/taesd", "stabilityai/sd-vae-ft-mse", "madebyollin/taesdxl", "stabilityai/sdxl-vae"]
DEFAULT_HUB_VAE = "madebyollin/taesd"


class VAEError(ValueError):
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


# --- loading --------------------------------------------------------------------------------


def _place(vae: LoadedVAE, force_fp32: bool = False) -> LoadedVAE:
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


def _from_diffusers(model, name: str) -> LoadedVAE:
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
        return _place(vae, force_fp32=bool(getattr(cfg, "force_upcast", False)) or "sdxl" in name.lower())
    return _place(LoadedVAE(name, "tiny", model, model, int(cfg.latent_channels), module=model))


def _diffusers_class(config: dict):
    from diffusers import AutoencoderKL, AutoencoderTiny

    cls = config.get("_class_name", "")
    if cls == "AutoencoderKL":
        return AutoencoderKL
    if cls == "AutoencoderTiny":
        return AutoencoderTiny
    raise VAEError(f"config.json describes a {cls or 'non-diffusers model'}, not an AutoencoderKL or AutoencoderTiny.")


def _load_folder(folder: Path) -> LoadedVAE:
    config = folder / "config.json"
    if config.is_file():
        try:
            cls = _diffusers_class(json.loads(config.read_text()))
            safe = any(folder.glob("*.safetensors"))
            model = cls.from_pretrained(folder, use_safetensors=safe or None)
        except VAEError:
            raise
        except Exception as err:
            raise VAEError(
                f"Could not load the diffusers VAE in {folder.name}: {str(err).splitlines()[0][:200]}"
            ) from err
        return _from_diffusers(model, folder.name)
    pair = taesd.find_pair(folder)
    if pair is None:
        found = sorted(p.name for p in folder.glob("*.pth"))
        if found:
            raise VAEError(
                f"{folder.name} has {', '.join(found)} but not a matching *_encoder.pth + *_decoder.pth pair."
            )
        raise VAEError(
            f"{folder.name} holds no VAE: expected config.json (diffusers) or *_encoder.pth + *_decoder.pth."
        )
    return load_taesd_pair(*pair)


def load_taesd_pair(encoder_path: Path, decoder_path: Path) -> LoadedVAE:
    """A TAESD-family model from its `.pth` pair (loaded with weights_only=True, strictly)."""
    try:
        enc = taesd.build("encoder", taesd.load_state(encoder_path))
        dec = taesd.build("decoder", taesd.load_state(decoder_path))
    except taesd.TAESDError as err:
        raise VAEError(str(err)) from err
    c_enc, c_dec = enc[-1].out_channels, dec[1].in_channels
    if c_enc != c_dec:
        raise VAEError(f"The encoder makes {c_enc}-channel latents but the decoder expects {c_dec}: mismatched pair.")
    name = encoder_path.name.replace("_encoder.pth", "")
    return _place(LoadedVAE(name, "taesd", enc, dec, c_enc))


def _load_single_file(path: Path) -> LoadedVAE:
    """A single `.safetensors` VAE: diffusers-format keys load into AutoencoderKL (config.json beside it, or
    SD 1.x defaults); original (LDM) checkpoints go through AutoencoderKL.from_single_file."""
    from diffusers import AutoencoderKL
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise VAEError(f"{path.name} is not a readable safetensors file ({str(err)[:120]}).") from err
    if "encoder.down_blocks.0.resnets.0.conv1.weight" in state:
        config_file = path.with_suffix(".json") if path.with_suffix(".json").is_file() else path.parent / "config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        model = AutoencoderKL.from_config(config)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise VAEError(
                f"{path.name} does not match its AutoencoderKL config: {str(err).splitlines()[0][:200]}"
            ) from err
        return _from_diffusers(model, path.stem)
    kwargs = {} if models.hub_online() else {"local_files_only": True}
    try:
        model = AutoencoderKL.from_single_file(str(path), **kwargs)
    except Exception as err:
        raise VAEError(
            f"Could not load {path.name} as a Stable Diffusion VAE checkpoint: {str(err).splitlines()[0][:200]}"
        ) from err
    return _from_diffusers(model, path.stem)


def _load_hub(repo: str) -> LoadedVAE:
    from huggingface_hub import hf_hub_download

    online = models.hub_online()
    try:
        config_path = hf_hub_download(repo, "config.json", local_files_only=not online)
        cls = _diffusers_class(json.loads(Path(config_path).read_text()))
        model = cls.from_pretrained(repo, local_files_only=not online)
    except VAEError:
        raise
    except Exception as err:
        if not online:
            raise VAEError(
                f"Cannot download {repo!r}: the Hugging Face Hub is unreachable (offline) and it is not in "
                "the local cache. Use a local VAE folder (diffusers folder or *_encoder.pth + "
                "*_decoder.pth) or set ENCODERSCOPE_MODELS_DIR."
            ) from err
        raise VAEError(f"Could not load the VAE {repo!r}: {str(err).splitlines()[0][:200]}") from err
    return _from_diffusers(model, repo)


def local_vaes(root: str | os.PathLike | None = None) -> list[str]:
    """VAEs found under the models folder (ENCODERSCOPE_MODELS_DIR): diffusers folders, .pth pairs, .safetensors."""
    root = Path(root or settings.get().models_dir or "")
    if not str(root) or not root.is_dir():
        return []
    found = []
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())][:200]:
        config = folder / "config.json"
        if config.is_file():
            try:
                if json.loads(config.read_text()).get("_class_name") in ("AutoencoderKL", "AutoencoderTiny"):
                    found.append(str(folder))
            except (OSError, ValueError):
                pass
        elif taesd.find_pair(folder):
            found.append(str(folder))
        found += [str(p) for p in sorted(folder.glob("*vae*.safetensors"))]
    return found


def default_vae() -> str:
    """The first local VAE, else madebyollin/taesd when the hub is reachable."""
    local = local_vaes()
    if local:
        return local[0]
    if models.hub_online():
        return DEFAULT_HUB_VAE
    raise VAEError(
        "No VAE is available offline: set ENCODERSCOPE_MODELS_DIR to a folder with a VAE "
        "(e.g. TAESD's *_encoder.pth + *_decoder.pth), or connect to the internet for madebyollin/taesd."
    )


def load_vae(ref: str | os.PathLike | None = None) -> LoadedVAE:
    """Load a VAE from a hub id, a diffusers folder, a folder with a TAESD `.pth` pair, or a `.safetensors` file.

    None picks `default_vae()`. Errors raise VAEError with a message for the user.
    """
    conf = settings.get()
    text = str(ref).strip() if ref is not None else ""
    if not text:
        text = default_vae()
    if "\x00" in text or len(text) > 500:
        raise VAEError("That VAE id or path is not valid.")
    path = Path(text).expanduser()
    if path.exists() or text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1:
        if not conf.allow_local_paths and text not in local_vaes():
            raise VAEError("Local paths are disabled on this server. Pick one of the listed VAEs.")
        if path.is_dir():
            return _load_folder(path)
        if path.is_file() and path.suffix == ".safetensors":
            return _load_single_file(path)
        if path.is_file() and path.suffix == ".pth":
            raise VAEError("Give the folder that holds both *_encoder.pth and *_decoder.pth, not one file.")
        raise VAEError(
            f"No VAE at {text!r}: give a diffusers folder, a folder with a TAESD .pth pair, or a .safetensors file."
        )
    if not models._HUB_ID.match(text):
        raise VAEError(f"{text!r} is not a valid hub id ('owner/name') or an existing path.")
    if not conf.allow_custom_models and text not in CURATED_VAES:
        raise VAEError("Custom VAE ids are disabled on this server. Pick one of the listed VAEs.")
    return _load_hub(text)


# --- running --------------------------------------------------------------------------------


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
