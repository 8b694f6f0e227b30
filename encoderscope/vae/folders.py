"""VAEs in folders: a diffusers folder (config.json + weights) or TAESD `.pth` pairs, one pair or several."""

from __future__ import annotations

import json
from pathlib import Path

from ..model_kinds import BUILD_LOCK
from . import taesd
from .results import LoadedVAE, VAEError
from .wrap import diffusers_class, from_diffusers, place


def load_folder(folder: Path) -> LoadedVAE:
    """A diffusers VAE folder (config.json), else the first TAESD pair in `folder` (a note names the others)."""
    config = folder / "config.json"
    if config.is_file():
        try:
            cls = diffusers_class(json.loads(config.read_text()))
            safe = any(folder.glob("*.safetensors"))
            with BUILD_LOCK:
                model = cls.from_pretrained(folder, use_safetensors=safe or None)
        except VAEError:
            raise
        except Exception as err:
            raise VAEError(
                f"Could not load the diffusers VAE in {folder.name}: {str(err).splitlines()[0][:200]}"
            ) from err
        return from_diffusers(model, folder.name)
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
    return place(LoadedVAE(name, "taesd", enc, dec, c_enc))


def load_pth(path: Path) -> LoadedVAE:
    """One `.pth` half of a TAESD pair (`*_encoder.pth` or `*_decoder.pth`), loaded with the other half beside it."""
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
