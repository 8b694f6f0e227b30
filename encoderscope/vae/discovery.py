"""Which VAEs this server offers (`local_vaes`, `default_vae`) and which references it refuses (`refusal`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import models, refs, settings
from . import taesd
from .hub import CURATED_VAES, DEFAULT_HUB_VAE
from .results import VAEError


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
    hub_like = refs.is_hub_id(text)
    if not conf.allow_local_paths:
        if hub_like and conf.allow_custom_models:
            return None
        if not hub_like and not refs.looks_like_path(text):
            return f"{text[:100]!r} is not a valid hub id ('owner/name')."
        if conf.allow_custom_models:
            return "Local paths are disabled on this server: give a hub id (owner/name) or pick one of the listed VAEs."
        return "Only the listed VAEs can be used on this server: pick one of them."
    if hub_like and not conf.allow_custom_models and not _exists(text):
        return "Custom VAE ids are disabled on this server. Pick one of the listed VAEs or give a local path."
    return None
