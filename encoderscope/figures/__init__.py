"""Plotly figure builders: arrays in, `plotly.graph_objects.Figure` out, no I/O.

One module per page (attention, masks, embeddings, vae, vision) plus `common` for shared conventions:
integer token axes with tick text (Plotly merges duplicate categorical labels), fixed colour ranges.
Names are resolved lazily from the submodules' `__all__`.
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("common", "attention", "masks", "embeddings", "vae", "vision", "attribution")


def __getattr__(name: str):
    for sub in _SUBMODULES:
        try:
            module = importlib.import_module(f".{sub}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{sub}":
                raise
            continue
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module 'encoderscope.figures' has no attribute {name!r}")
