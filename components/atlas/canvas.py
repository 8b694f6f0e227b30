"""The atlas map: a custom component (Streamlit components v2) around the WebGL renderer in renderer/.

The renderer's JS/CSS are plain files read once here and registered inline, so nothing is fetched from a
CDN and no npm build runs. Python -> browser: `atlas_payload.points_payload` (+ labels, highlight, the
current selection). Browser -> Python (component state, kept across reruns): `selection` (a shape in data
coordinates) and `clicked` (a point's row index).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

_HERE = Path(__file__).parent / "renderer"
_JS = (_HERE / "atlas.js").read_text(encoding="utf-8")
_CSS = (_HERE / "atlas.css").read_text(encoding="utf-8")

_component = st.components.v2.component("encoderscope.atlas_map", js=_JS, css=_CSS)


def _ignore() -> None:
    """State callbacks must exist for the component to report `selection` and `clicked`; the rerun they
    trigger is all the page needs."""


def atlas_map(
    payload: dict, labels: list[dict], highlight: list[int], selection: dict | None, key: str, height: int = 600
):
    """Mount the map. `payload` from atlas_payload.points_payload; `labels` [{x, y, name}] drawn at cluster
    centroids; `highlight` row indices drawn large in red (search hits). Returns the component result,
    whose `.selection` and `.clicked` the page reads (None until the user selects or clicks)."""
    data = dict(payload, labels=labels, highlight=[int(i) for i in highlight], selection=selection, height=height)
    return _component(
        key=key,
        data=data,
        default={"selection": None, "clicked": None},
        on_selection_change=_ignore,
        on_clicked_change=_ignore,
        height=height + 40,
    )
