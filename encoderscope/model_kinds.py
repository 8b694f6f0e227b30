"""Which models Encoderscope can inspect, from their configuration alone: the rules every loader applies.

`check_kind` refuses a configuration that is not the wanted kind with a :class:`ModelLoadError` that says where
such a model belongs; `folder_kind` applies the same rules to a local folder's `config.json` (the pickers list
folders with it); `tower_config` is the text tower's configuration inside a CLIP or SigLIP one.
"""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path

from .errors import UserFacingError

# Text towers: config.model_type -> the transformers class holding only the text encoder, with the model's own
# pooling head where it has one. A full CLIP or SigLIP folder gives its text tower (CLIP: end-of-text token, then
# the projection into the shared image-text space; SigLIP: the last position through its head); T5-family
# encoder-decoders give their encoder.
TEXT_TOWERS = {
    "clip": "CLIPTextModelWithProjection",
    "clip_text_model": "CLIPTextModelWithProjection",
    "siglip": "SiglipTextModel",
    "siglip_text_model": "SiglipTextModel",
    "t5": "T5EncoderModel",
    "mt5": "MT5EncoderModel",
    "umt5": "UMT5EncoderModel",
}
# Encoders trained with a causal mask (the tower's model_type): CLIP's text encoder reads left to right, and so
# does the text encoder that conditions Stable Diffusion.
CAUSAL_ENCODERS = {"clip_text_model"}

class ModelLoadError(UserFacingError):
    """A model could not be loaded; `str(err)` is a complete, user-facing explanation."""


def _model_type_sets():
    from transformers.models.auto import modeling_auto as ma

    causal = set(ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    masked = set(ma.MODEL_FOR_MASKED_LM_MAPPING_NAMES)
    # Text encoders: anything with a masked-LM or sequence-classification head (vision/audio models have neither).
    text = masked | set(ma.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)
    return causal, masked, text


def tower_config(config):
    """The configuration of the model that :func:`load_encoder` builds from `config`: a CLIP or SigLIP config's
    text config (with CLIP's projection size, which lives on the outer config), else `config` itself."""
    sub = getattr(config, "text_config", None) if getattr(config, "model_type", "") in TEXT_TOWERS else None
    if sub is None:
        return config
    sub = copy.deepcopy(sub)
    if getattr(config, "projection_dim", None) is not None:
        sub.projection_dim = config.projection_dim
    return sub


def check_kind(config, kind: str, name: str) -> None:
    """Raise ModelLoadError when `config` is not the wanted kind ("encoder" or "decoder")."""
    causal, masked, text = _model_type_sets()
    mtype = getattr(config, "model_type", "")
    tower = mtype in TEXT_TOWERS
    if getattr(config, "is_encoder_decoder", False) and not tower:
        raise ModelLoadError(
            f"{name!r} is an encoder-decoder model ({mtype}); of those, Encoderscope loads the encoder of T5, mT5 "
            "and UMT5 models."
        )
    is_decoder_only = mtype in causal and mtype not in masked and not tower
    if kind == "encoder" and is_decoder_only:
        raise ModelLoadError(
            f"{name!r} is a causal decoder ({mtype}), not an encoder. Load it as the decoder on the Masks page."
        )
    if kind == "encoder" and mtype not in text and not tower:
        raise ModelLoadError(
            f"{name!r} ({mtype or 'unknown type'}) is not a text encoder: these pages need a model that reads "
            "tokens, such as BERT, RoBERTa, MiniLM, T5 or the text tower of CLIP. Image encoders (ViT, DINOv2, "
            "CLIP's image tower) live on the Image encoders page (/vision), image VAEs on the Image VAE page."
        )
    if kind == "decoder" and not is_decoder_only:
        raise ModelLoadError(f"{name!r} is an encoder ({mtype or 'unknown type'}), not a causal decoder.")
    config = tower_config(config) if kind == "encoder" else config
    if not hasattr(config, "num_attention_heads") or not hasattr(config, "num_hidden_layers"):
        raise ModelLoadError(f"{name!r} ({mtype}) does not expose attention heads, so it cannot be inspected here.")


_IMPORT_LOCK = threading.Lock()


# One model built at a time in this process. While transformers' from_pretrained builds a model it changes
# process-wide state: torch's default device (the "meta" device, which torch.get_default_device reads from a
# module global, not per thread), the default dtype, torch.linspace, the torch.nn.init functions; diffusers'
# from_pretrained patches nn.Module.register_parameter (accelerate's init_empty_weights). A second build in
# another thread reads the first one's state ("Cannot copy out of meta tensor") and the two restore it in the
# wrong order. So every model construction (from_pretrained, from_config, a module built and given its
# weights) holds this lock, and nothing else: tokenizers, configs and inference run in parallel. Loads of
# the same model are still shared (components/resources.py: one lock per model, outside this one).
# Reentrant: a loader may call another loader.
BUILD_LOCK = threading.RLock()


def import_transformers():
    """The transformers package, imported one thread at a time.

    A page and the background preload importing it for the first time at once can hand one of them the
    half-initialised package (CPython's import deadlock avoidance returns it as it is), without its classes.
    """
    with _IMPORT_LOCK:
        import transformers
    return transformers


def folder_kind(folder: str | os.PathLike) -> str:
    """What the model folder `folder` holds, by the rules :func:`check_kind` applies when loading:
    "encoder", "decoder", or "" when it is not a text model Encoderscope can inspect (or not a model folder).

    Reads only `config.json` (through transformers' AutoConfig, which knows each architecture's field names);
    no weights are loaded and nothing is downloaded.
    """
    import_transformers()
    from transformers import AutoConfig

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        return ""
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception:  # unknown model_type, broken JSON, ...: not a folder we can load
        return ""
    for kind in ("encoder", "decoder"):
        try:
            check_kind(config, kind, folder.name)
        except ModelLoadError:
            continue
        return kind
    return ""
