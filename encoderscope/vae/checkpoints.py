"""Single-file AutoencoderKL checkpoints (`.safetensors`): diffusers or original Stable Diffusion (LDM) keys,
with the config taken from a JSON file beside the weights or inferred from the weights' shapes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..model_kinds import BUILD_LOCK
from .results import LoadedVAE, VAEError
from .wrap import from_diffusers

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


def load_single_file(path: Path) -> LoadedVAE:
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
        with BUILD_LOCK:
            model = AutoencoderKL.from_config(config)
            model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError) as err:
        source = config_file.name if config_file else "the config read from its weights"
        raise VAEError(f"{path.name} does not match {source}: {str(err).splitlines()[0][:200]}") from err
    vae = from_diffusers(model, path.stem)
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
