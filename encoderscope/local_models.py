"""The one scan of the server's models folder (`settings.models_dir`, ENCODERSCOPE_MODELS_DIR) for model folders.

Every page lists the folders it can load from there, first in its picker: text encoders and decoders (the
attention pages), image encoders and CLIP/SigLIP models (/vision). Nothing is listed when local paths are not
allowed (public mode) or no folder is set. Only `config.json` is read: no weights, no downloads.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import settings

KINDS = ("encoder", "decoder", "image", "clip")
MAX_FOLDERS = 50  # sub-folders looked at, in name order


def _model_type(config: Path) -> str:
    try:
        value = json.loads(config.read_text()).get("model_type", "")
    except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not an object: not a model folder
        return ""
    return value if isinstance(value, str) else ""


def _accepts(kind: str, folder: Path) -> bool:
    if kind in ("encoder", "decoder"):  # the loaders' own rules, through transformers' config classes
        from .model_kinds import folder_kind

        return folder_kind(folder) == kind
    from .vision import loading  # the model types the image loaders take

    types = loading._VISION if kind == "image" else loading._TWO_TOWER
    return _model_type(folder / "config.json") in types


def find(kind: str, root: str | None = None) -> list[str]:
    """Paths of the model folders (`*/config.json`) under `root` (default: the models folder setting) that load
    as `kind` ("encoder", "decoder", "image" or "clip"), in name order; [] when local paths are not allowed."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    conf = settings.get()
    raw = str(conf.models_dir if root is None else root).strip()
    if not raw or not conf.allow_local_paths:  # Path("") would be the working directory
        return []
    base = Path(raw)
    if not base.is_dir():
        return []
    configs = sorted(base.glob("*/config.json"))[:MAX_FOLDERS]
    return [str(config.parent) for config in configs if _accepts(kind, config.parent)]
