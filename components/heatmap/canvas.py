"""The heatmap: a custom component (Streamlit components v2) around the canvas renderer in renderer/.

The renderer's JS/CSS are plain files read once here and registered inline: nothing is fetched from a CDN and
no npm build runs. Python -> browser: one binary payload (`components.heatmap.payload`). Browser -> Python,
as trigger events (one-shot, so clicking the same head twice still reports it): `view` (a head chosen in the
browser), `row` (a clicked query row) and `clicked` ("LAYER:HEAD" of a grid thumbnail).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from components import renderer_shared

_HERE = Path(__file__).parent / "renderer"
# The shared colour bar, export.js (PNG/SVG), then the renderer with its default export: one module.
_JS = renderer_shared.module(_HERE / "export.js", _HERE / "heatmap.js")
_CSS = (_HERE / "heatmap.css").read_text(encoding="utf-8")

_component = st.components.v2.component("encoderscope.heatmap", js=_JS, css=_CSS)

EVENTS = ("view", "row", "clicked")


def _ignore() -> None:
    """A trigger must have a callback for the component to report it; the rerun it causes is enough."""


def heatmap(payload: bytes, key: str, on: dict[str, Callable[[], None]] | None = None):
    """Mount one heatmap (or its follow-up `store` payload) and return the component result, whose trigger
    values (`.view`, `.row`, `.clicked`) are set on the run the browser event caused, else None."""
    callbacks = {f"on_{event}_change": (on or {}).get(event, _ignore) for event in EVENTS}
    return _component(key=key, data=payload, height="content", **callbacks)


def event(key: str, name: str):
    """Inside a callback: the value of trigger `name` of the heatmap mounted with `key` (None if absent)."""
    state = st.session_state.get(key)
    return state.get(name) if isinstance(state, dict) else None
