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
import math
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
    pairs = taesd.find_pairs(folder)
    if not pairs:
        found = sorted(p.name for p in folder.glob("*.pth"))
        if found:
            raise VAEError(
                f"{folder.name} has {', '.join(found)} but not a matching *_encoder.pth + *_decoder.pth pair."
            )
        raise VAEError(
            f"{folder.name} holds no VAE: expected config.json (diffusers) or *_encoder.pth + *_decoder.pth."
        )
    vae = load_taesd_pair(*pairs[0])
    if len(pairs) > 1:
        others = ", ".join(enc.name for enc, _ in pairs[1:])
        vae.notes.append(
            f"{folder.name} holds {len(pairs)} TAESD pairs; loaded {pairs[0][0].name}. "
            f"Give the path of another *_encoder.pth to load it ({others})."
        )
    return vae


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


# SD 1.x's AutoencoderKL (stabilityai/sd-vae-ft-mse): the fallback for a single file with no config beside it.
SD1_KL_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
_LDM_PREFIXES = ("first_stage_model.", "vae.", "")  # a full SD checkpoint, some exports, a bare VAE
_DIFFUSERS_KEY = "encoder.down_blocks.0.resnets.0.conv1.weight"
_LDM_KEY = "encoder.down.0.block.0.conv1.weight"


def _indices(keys, prefix: str) -> list[int]:
    """Sorted distinct integers that follow `prefix` in `keys` ("encoder.down_blocks." -> [0, 1, 2, 3])."""
    return sorted({int(k[len(prefix) :].split(".")[0]) for k in keys if k.startswith(prefix)})


def default_scaling(latent_channels: int, name: str) -> tuple[float, float, str]:
    """(scaling_factor, shift_factor, family) to assume when only the weights are known: the weights do not
    record them. 4 channels: SD 1.x (SDXL when the name says "sdxl"); 16: SD3 (FLUX.1 when it says "flux",
    or the file is FLUX.1's `ae`)."""
    lowered = name.lower()
    if latent_channels == 4:
        return (0.13025, 0.0, "SDXL") if "sdxl" in lowered else (0.18215, 0.0, "SD 1.x")
    if latent_channels == 16:
        return (0.3611, 0.1159, "FLUX.1") if "flux" in lowered or lowered == "ae" else (1.5305, 0.0609, "SD3")
    return 1.0, 0.0, f"no known family with {latent_channels} channels"


def infer_kl_config(shapes: dict[str, tuple[int, ...]], name: str = "") -> dict:
    """An AutoencoderKL config read from diffusers-format weight shapes (`{key: shape}`), SD 1.x values where
    the weights say nothing (activation, norm groups; scaling from `default_scaling`).

    Read from the weights: block_out_channels (each down block's conv2 `[C_i, C_i, 3, 3]`), layers_per_block
    (resnets in down block 0), latent_channels (decoder.conv_in `[C_0', latent, 3, 3]`), in/out channels,
    quant convs and the mid-block attention. Raises VAEError when a needed weight is missing."""
    try:
        downs = _indices(shapes, "encoder.down_blocks.")
        if not downs or downs != list(range(len(downs))):
            raise KeyError("encoder.down_blocks.0")
        block_out = [int(shapes[f"encoder.down_blocks.{i}.resnets.0.conv2.weight"][0]) for i in downs]
        layers = len(_indices(shapes, "encoder.down_blocks.0.resnets."))
        latent = int(shapes["decoder.conv_in.weight"][1])
        in_channels = int(shapes["encoder.conv_in.weight"][1])
        out_channels = int(shapes["decoder.conv_out.weight"][0])
        doubled = int(shapes["encoder.conv_out.weight"][0])
    except (KeyError, IndexError, ValueError) as err:
        raise VAEError(f"The weights lack {str(err).strip(chr(39))}: not a complete AutoencoderKL.") from err
    if doubled != 2 * latent:
        raise VAEError(
            f"The encoder outputs {doubled} channels but the decoder takes {latent} latent channels "
            f"(an AutoencoderKL outputs mean and log-variance, 2 × {latent}): not an AutoencoderKL."
        )
    common = math.gcd(*block_out)
    groups = 32 if common % 32 == 0 else max(d for d in range(1, 33) if common % d == 0)
    scale, shift, _ = default_scaling(latent, name)
    config = {
        **SD1_KL_CONFIG,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "down_block_types": ["DownEncoderBlock2D"] * len(block_out),
        "up_block_types": ["UpDecoderBlock2D"] * len(block_out),
        "block_out_channels": block_out,
        "layers_per_block": layers,
        "latent_channels": latent,
        "norm_num_groups": groups,
        "sample_size": 1024 if "sdxl" in name.lower() else 512,
        "scaling_factor": scale,
        "use_quant_conv": "quant_conv.weight" in shapes,
        "use_post_quant_conv": "post_quant_conv.weight" in shapes,
        "mid_block_add_attention": any(k.startswith("encoder.mid_block.attentions.") for k in shapes),
    }
    if shift:
        config["shift_factor"] = shift
    return config


def _read_vae_tensors(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The VAE tensors of a `.safetensors` file and their layout ("diffusers" or "ldm"), prefix removed.

    Only the VAE's tensors are read, so a full SD checkpoint (`first_stage_model.*` among UNet and text
    encoder weights) costs the VAE's memory, not the whole file's."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
            if _DIFFUSERS_KEY in keys:
                return {k: f.get_tensor(k) for k in keys}, "diffusers"
            for prefix in _LDM_PREFIXES:
                if prefix + _LDM_KEY in keys:
                    wanted = [k for k in keys if k.startswith(prefix)]
                    return {k[len(prefix) :]: f.get_tensor(k) for k in wanted}, "ldm"
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise VAEError(f"{path.name} is not a readable safetensors file ({str(err)[:120]}).") from err
    sample = ", ".join(keys[:3]) + (" …" if len(keys) > 3 else "")
    raise VAEError(
        f"{path.name} holds no VAE weights: expected diffusers keys ({_DIFFUSERS_KEY}) or original Stable Diffusion "
        f"keys ({_LDM_KEY}, optionally under first_stage_model.); found {len(keys)} tensors ({sample or 'none'})."
    )


def _config_beside(path: Path) -> tuple[dict, Path | None]:
    """The AutoencoderKL config in `<name>.json` or `config.json` beside `path` (private keys dropped), or {}."""
    for candidate in (path.with_suffix(".json"), path.parent / "config.json"):
        if not candidate.is_file():
            continue
        try:
            config = json.loads(candidate.read_text())
        except (OSError, ValueError) as err:
            raise VAEError(f"{candidate.name} beside {path.name} is not valid JSON ({str(err)[:120]}).") from err
        if not isinstance(config, dict) or config.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
            continue  # e.g. a UNet's config.json in the same folder: not this file's
        return {k: v for k, v in config.items() if not k.startswith("_")}, candidate
    return {}, None


def _load_single_file(path: Path) -> LoadedVAE:
    """A single `.safetensors` AutoencoderKL, diffusers keys or original (LDM) Stable Diffusion keys.

    The config is `<name>.json` or `config.json` beside the file when there is one; otherwise it is read from
    the weights' shapes (`infer_kl_config`), with SD 1.x defaults for what the weights do not record. LDM keys
    are converted with diffusers' own converter; either way every weight must load (strict), and nothing is
    downloaded."""
    from diffusers import AutoencoderKL

    state, layout = _read_vae_tensors(path)
    if layout == "ldm":
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        blocks = len(_indices(state, "encoder.down."))
        try:
            state = convert_ldm_vae_checkpoint(
                state,
                {"down_block_types": ["DownEncoderBlock2D"] * blocks, "up_block_types": ["UpDecoderBlock2D"] * blocks},
            )
        except Exception as err:  # an incomplete or odd checkpoint: explain, never a traceback
            raise VAEError(
                f"Could not convert {path.name} from the original Stable Diffusion layout: "
                f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
            ) from err
    inferred = infer_kl_config({k: tuple(v.shape) for k, v in state.items()}, path.stem)
    given, config_file = _config_beside(path)
    config = {**inferred, **given}
    try:
        model = AutoencoderKL.from_config(config)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError) as err:
        source = config_file.name if config_file else "the config read from its weights"
        raise VAEError(f"{path.name} does not match {source}: {str(err).splitlines()[0][:200]}") from err
    vae = _from_diffusers(model, path.stem)
    layout_text = "original Stable Diffusion (LDM) keys, converted" if layout == "ldm" else "diffusers keys"
    if config_file is None:
        _, _, family = default_scaling(int(config["latent_channels"]), path.stem)
        vae.notes.append(
            f"{path.name} ({layout_text}) has no config beside it: the architecture was read from the weights "
            f"(block_out_channels {config['block_out_channels']}, {config['latent_channels']} latent channels); "
            f"scaling {config['scaling_factor']:g}"
            + (f", shift {config['shift_factor']:g}" if config.get("shift_factor") else "")
            + f" assumed ({family}). Put a <name>.json or config.json beside the file to set them."
        )
    else:
        vae.notes.append(f"{path.name} ({layout_text}) loaded with {config_file.name}.")
    return vae


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
    """VAEs found under the models folder (ENCODERSCOPE_MODELS_DIR) and its sub-folders: diffusers folders,
    `*vae*.safetensors` files and TAESD `.pth` pairs. A folder with one pair is listed as the folder; a folder
    with several (ComfyUI's `models/vae_approx`: taesd_, taesdxl_, taesd3_, taef1_) lists each pair as the path
    of its `*_encoder.pth`, which `load_vae` accepts."""
    raw = str(root or settings.get().models_dir or "").strip()
    if not raw:  # Path("") would be the working directory
        return []
    root = Path(raw)
    if not root.is_dir():
        return []
    found = []
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())][:200]:
        config = folder / "config.json"
        if config.is_file():
            try:
                if json.loads(config.read_text()).get("_class_name") in ("AutoencoderKL", "AutoencoderTiny"):
                    found.append(str(folder))
            except (OSError, ValueError, AttributeError):
                pass
        else:
            pairs = taesd.find_pairs(folder)
            if len(pairs) == 1:
                found.append(str(folder))
            else:
                found += [str(enc) for enc, _ in pairs]
        found += [str(p) for p in sorted(folder.glob("*vae*.safetensors"))]
    return found


def label(ref: str) -> str:
    """How the picker shows a VAE reference: a TAESD `*_encoder.pth` by its pair's name
    ("taesdxl · /models/vae_approx/taesdxl_encoder.pth"), anything else as it is."""
    path = Path(ref)
    if path.name.endswith(taesd.ENCODER_SUFFIX):
        return f"{taesd.pair_name(path)} · {ref}"
    return ref


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


def _path_like(text: str) -> bool:
    """Whether `text` reads as a filesystem path rather than a hub id, from the string alone."""
    return (
        text.startswith(("/", ".", "~"))
        or "\\" in text
        or text.count("/") > 1
        or text.lower().endswith((".safetensors", ".pth", ".json", ".bin", ".ckpt"))
    )


def _exists(text: str) -> bool:
    try:
        return Path(text).expanduser().exists()
    except (OSError, RuntimeError):
        return False


def refusal(text: str, listed: list[str] | None = None) -> str | None:
    """Why this server's settings refuse the VAE reference `text`, or None when they allow it.

    With local paths disabled (public mode) the decision is made on the string alone, against the curated hub
    ids and the listed local VAEs (`listed`, default `local_vaes()`): the path is never looked at, so an existing
    and a missing path get the same answer."""
    conf = settings.get()
    if text in CURATED_VAES:
        return None
    if listed is None:
        listed = local_vaes()
    if text in listed:
        return None
    hub_like = not _path_like(text) and bool(models._HUB_ID.match(text))
    if not conf.allow_local_paths:
        if hub_like and conf.allow_custom_models:
            return None
        if not hub_like and not _path_like(text):
            return f"{text[:100]!r} is not a valid hub id ('owner/name')."
        if conf.allow_custom_models:
            return "Local paths are disabled on this server: give a hub id (owner/name) or pick one of the listed VAEs."
        return "Only the listed VAEs can be used on this server: pick one of them."
    if hub_like and not conf.allow_custom_models and not _exists(text):
        return "Custom VAE ids are disabled on this server. Pick one of the listed VAEs or give a local path."
    return None


def _load_file(path: Path) -> LoadedVAE:
    """A `.safetensors` VAE, or one `.pth` of a TAESD pair (loaded with the other half beside it)."""
    if path.suffix == ".safetensors":
        return _load_single_file(path)
    if path.suffix == ".pth":
        other = taesd.partner(path)
        if other is None:
            raise VAEError(
                f"{path.name} is not named like half of a TAESD pair: give a *_encoder.pth (with its *_decoder.pth "
                "beside it) or the folder that holds both."
            )
        if not other.is_file():
            raise VAEError(f"{path.name} needs {other.name} beside it: the other half of its TAESD pair is missing.")
        encoder_path, decoder_path = (path, other) if path.name.endswith(taesd.ENCODER_SUFFIX) else (other, path)
        return load_taesd_pair(encoder_path, decoder_path)
    raise VAEError(f"{path.name} is not a VAE file: give a .safetensors file, a *_encoder.pth or a folder.")


def load_vae(ref: str | os.PathLike | None = None) -> LoadedVAE:
    """Load a VAE from a hub id, a diffusers folder, a folder with a TAESD `.pth` pair, a `*_encoder.pth` (with
    its `*_decoder.pth` beside it) or a `.safetensors` file.

    None picks `default_vae()`. The server's settings are checked first (`refusal`), before any path is
    looked at. Errors raise VAEError with a message for the user.
    """
    text = str(ref).strip() if ref is not None else ""
    if not text:
        text = default_vae()
    if "\x00" in text or len(text) > 500:
        raise VAEError("That VAE id or path is not valid.")
    if text in CURATED_VAES:
        return _load_hub(text)
    listed = local_vaes()
    reason = refusal(text, listed)
    if reason:
        raise VAEError(reason)
    try:
        path = Path(text).expanduser()
        local = text in listed or (settings.get().allow_local_paths and (_path_like(text) or path.exists()))
        is_dir, is_file = local and path.is_dir(), local and path.is_file()
    except (OSError, RuntimeError) as err:  # a name too long for the filesystem, "~nosuchuser"
        raise VAEError(f"{text[:100]!r} is not a usable path ({type(err).__name__}).") from err
    if local:
        if is_dir:
            return _load_folder(path)
        if is_file and path.suffix in (".safetensors", ".pth"):
            return _load_file(path)
        raise VAEError(
            f"No VAE at {text!r}: give a diffusers folder, a folder with a TAESD .pth pair, a *_encoder.pth "
            "or a .safetensors file."
        )
    if not models._HUB_ID.match(text):
        raise VAEError(f"{text!r} is not a valid hub id ('owner/name') or an existing path.")
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
