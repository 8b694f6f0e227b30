"""The pair map: a custom component (Streamlit components v2) around the canvas renderer in renderer/.

Python -> browser: one JSON object from `components.compare.payloads.pair_map`. Browser -> Python (component
state, kept across reruns): `clicked`, the index of the point clicked in either panel.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components import renderer_shared

_HERE = Path(__file__).parent / "renderer"
_JS = renderer_shared.module(_HERE / "pairmap.js")  # the shared colour bar, then the renderer: one module
_component = st.components.v2.component(
    "encoderscope.pair_map", js=_JS, css=(_HERE / "pairmap.css").read_text(encoding="utf-8")
)


def _ignore() -> None:
    """A state callback must exist for the component to report `clicked`; the rerun is all the page needs."""


def pair_map(payload: dict, key: str):
    """Mount the two linked maps; returns the component result, whose `.clicked` is the clicked point's index
    (None until a click)."""
    return _component(key=key, data=payload, default={"clicked": None}, on_clicked_change=_ignore,
                      height="content")


def clicked(state, n: int) -> int | None:
    """The clicked index in the component's state (`st.session_state[key]` or `pair_map`'s result), if it is
    a valid index into `n` points."""
    value = state.get("clicked") if isinstance(state, dict) else getattr(state, "clicked", None)
    return int(value) if isinstance(value, int | float) and 0 <= int(value) < n else None
