"""Encoderscope: look inside encoders (and, for contrast, causal decoders).

The public API is imported lazily so `import encoderscope` stays fast and one page's
module never breaks another's::

    import encoderscope as es
    enc = es.load_encoder(None)          # bundled all-MiniLM-L6-v2
    res = es.attention(enc, "The bank of the river.")
    res.weights.shape                    # [layers, heads, T, T]
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    # models
    "load_encoder": "models",
    "load_decoder": "models",
    "LoadedModel": "models",
    "ModelLoadError": "models",
    "device": "models",
    # attention
    "attention": "attention",
    "AttentionResult": "attention",
    "head_stats": "attention",
    "flag_heads": "attention",
    "rollout": "attention",
    "merge_word_pieces": "attention",
    "drop_special": "attention",
    "token_focus": "attention",
    # masks
    "hidden_states": "masks",
    # embeddings and projection
    "embed": "embeddings",
    "project": "projection",
    # images
    "load_vae": "vae",
    "round_trip": "vae",
}

__all__ = sorted(_API) + ["figures", "settings"]

# The function shares its name with its module; bind the function now so `es.attention(...)` is never
# the module (importing a submodule sets the package attribute). Import the module itself with
# `from encoderscope.attention import ...`.
from .attention import attention as attention  # noqa: E402


def __getattr__(name: str):
    if name in ("figures", "settings"):
        return importlib.import_module(f".{name}", __name__)
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'encoderscope' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return __all__
