"""`load_vae`: one entry point that checks the server's policy, then hands the reference to the right loader."""

from __future__ import annotations

import os
from pathlib import Path

from .. import refs, settings
from .checkpoints import load_single_file
from .discovery import default_vae, local_vaes, refusal
from .folders import load_folder, load_pth
from .hub import CURATED_VAES, load_hub
from .results import LoadedVAE, VAEError


def _load_file(path: Path) -> LoadedVAE:
    """A `.safetensors` VAE, or one `.pth` of a TAESD pair (loaded with the other half beside it)."""
    if path.suffix == ".safetensors":
        return load_single_file(path)
    if path.suffix == ".pth":
        return load_pth(path)
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
    if refs.unusable(text, 500):
        raise VAEError("That VAE id or path is not valid.")
    if text in CURATED_VAES:
        return load_hub(text)
    listed = local_vaes()
    reason = refusal(text, listed)
    if reason:
        raise VAEError(reason)
    try:
        path = Path(text).expanduser()
        local = text in listed or (settings.get().allow_local_paths and (refs.looks_like_path(text) or path.exists()))
        is_dir, is_file = local and path.is_dir(), local and path.is_file()
    except (OSError, RuntimeError) as err:  # a name too long for the filesystem, "~nosuchuser"
        raise VAEError(f"{text[:100]!r} is not a usable path ({type(err).__name__}).") from err
    if local:
        if is_dir:
            return load_folder(path)
        if is_file and path.suffix in (".safetensors", ".pth"):
            return _load_file(path)
        raise VAEError(
            f"No VAE at {text!r}: give a diffusers folder, a folder with a TAESD .pth pair, a *_encoder.pth "
            "or a .safetensors file."
        )
    if not refs.is_hub_id(text):
        raise VAEError(f"{text!r} is not a valid hub id ('owner/name') or an existing path.")
    return load_hub(text)
