"""Choices of the image encoders page: the model pickers (local folders, curated hub ids, free text), what the
page needs when no model loads, and what is shown: layer, head and query, set by widgets or by clicks on the
overlay (a patch) and on the per-head thumbnails (a head).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from components import ui
from encoderscope import local_models, settings, vision
from encoderscope.figures import vision as vision_figures

MEAN, PATCH = "mean", "patch"  # query choices besides the prefix tokens (given by their index)
OVERLAY_KEY, HEADS_KEY = "v_overlay", "v_heads"  # charts whose clicks pick the query patch / the head


# --- models -------------------------------------------------------------------------------------------------


def model_picker(param: str, label: str, curated: list[str], kind: str, help: str) -> tuple[str, str | None] | None:
    """(ref, revision) from local folders of `kind` ("image" or "clip", listed first: the models folder, e.g.
    ../shared/models with its ViT-Ti), the curated hub ids, or free text where allowed; `?{param}=` in the URL
    picks one. None while the free-text box is empty."""
    local = local_models.find(kind)
    picked = ui.url_picker(
        param,
        label,
        [*local, *curated],
        (ui.CUSTOM_MODEL, "Hub id or local model folder"),
        unavailable=lambda wanted, _reason: (
            f"The model {wanted[:100]!r} from the link is not available on this server; pick one of the listed models."
        ),
        format_func=lambda option: f"{option} (local)" if option in local else option,
        help=help,
    )
    revision = None
    if picked.custom:
        revision = st.text_input("Revision (optional)", key=f"{param}_revision", max_chars=100).strip() or None
        if not picked.value:
            st.info("Type a hub id (e.g. facebook/dinov2-small) or the path of a local model folder.")
            return None
    ui.sync_query(**{param: picked.value})
    return picked.value, revision


def encoder_picker() -> tuple[str, str | None] | None:
    return model_picker(
        "model",
        "Image encoder",
        vision.CURATED_IMAGE_ENCODERS,
        "image",
        "ViT, DeiT, DINOv2 (with or without registers), or the vision tower of CLIP / SigLIP. Hub models need "
        "internet on first use; local folders come from ENCODERSCOPE_MODELS_DIR.",
    )


def load(loader, ref: str, revision: str | None):
    """The cached model, or None after saying why it failed and what the page needs."""
    with ui.guard(f"load {ref}"), st.spinner(f"Loading {ui.escape_markdown(ref)} …"):
        return loader(ref, revision)
    what_it_needs()
    return None


def what_it_needs() -> None:
    conf = settings.get()
    text = (
        "No vision model ships with Encoderscope: the listed hub models download on first use, which needs "
        "internet access. "
    )
    if conf.allow_local_paths:
        text += (
            f"Without it, choose “{ui.CUSTOM_MODEL}” and type the path of a model folder copied here (config.json, "
            "preprocessor_config.json and *.safetensors), or put such folders under ENCODERSCOPE_MODELS_DIR to "
            "have them listed."
        )
    else:
        text += "This server only offers the listed models; ask its administrator for a local copy."
    st.info(text)


# --- what is shown: layer, head, query ---------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """The chosen layer, head (index or "mean") and query, as `patch_map` takes them; `marked` is the query
    patch (row, col) or None; `label` names the query for titles."""

    layer: int
    head: int | str
    query: int | tuple[int, int] | None
    marked: tuple[int, int] | None
    label: str


def new_click(chart_key: str) -> dict | None:
    """The point just clicked on the chart `chart_key` (an on_select="rerun" chart), once per click."""
    event = st.session_state.get(chart_key)
    points = event.get("selection", {}).get("points", []) if isinstance(event, dict) else []
    done = f"{chart_key}_done"
    if not points:  # a redrawn chart starts with no selection: the next click counts even on the same point
        st.session_state.pop(done, None)
        return None
    point = points[0]
    signature = (point.get("x"), point.get("y"), point.get("point_index"))
    if st.session_state.get(done) == signature:
        return None
    st.session_state[done] = signature
    return point


def query_options(res: vision.ImageAttention) -> list:
    """Prefix tokens by index ([CLS], [DIST], [REG0]...), or MEAN for models without them, then PATCH."""
    return [*range(res.prefix), PATCH] if res.prefix else [MEAN, PATCH]


def _apply_clicks(res: vision.ImageAttention) -> None:
    """Turn a click on the picture into the query patch, and a click on a head thumbnail into the head."""
    ss, p = st.session_state, res.patch_size
    if (point := new_click(OVERLAY_KEY)) and point.get("x") is not None:
        ss.v_row, ss.v_col = vision_figures.patch_at(point["x"], point["y"], res.grid, p)
        ss.v_query = PATCH
    if (point := new_click(HEADS_KEY)) and point.get("point_index") is not None:
        tile = int(point["point_index"]) // res.num_patches
        ss.v_head = tile if tile < res.num_heads else MEAN


def _init_state(res: vision.ImageAttention) -> None:
    """Start values (last layer, mean over heads, the default query, the centre patch, 0.6 opacity), clamped to
    this model and grid: a new model or picture may have fewer layers, heads or patches.

    Every value is assigned on every run, even unchanged: a run that stops before the widgets (e.g. "Upload"
    chosen, no file yet) unmounts them, and a remounted widget shows (and sends back) its default unless its
    value was set through the session state in that run."""
    ss = st.session_state
    L, H = res.num_layers, res.num_heads
    if "v_layer" not in ss:
        ss.v_layer = ui.query_int("layer", L - 1, 0, L - 1)
        head = ui.query_str("head", MEAN, 10)
        ss.v_head = MEAN if head == MEAN else ui.query_int("head", 0, 0, H - 1)
    ss.v_layer = min(max(int(ss.v_layer), 0), L - 1)
    ss.v_head = MEAN if ss.v_head == MEAN else min(max(int(ss.v_head), 0), H - 1)
    ss.v_row = min(max(int(ss.get("v_row", res.grid[0] // 2)), 0), res.grid[0] - 1)
    ss.v_col = min(max(int(ss.get("v_col", res.grid[1] // 2)), 0), res.grid[1] - 1)
    options = query_options(res)
    ss.v_query = ss.v_query if ss.get("v_query") in options else options[0]
    ss.v_opacity = float(ss.get("v_opacity", 0.6))


def _to_patch() -> None:
    st.session_state.v_query = PATCH  # typing a row or column means "show that patch's attention"


def controls(res: vision.ImageAttention) -> tuple[View, float]:
    """Layer, head, query and opacity widgets (clicks on the charts below set them too): (View, opacity)."""
    _apply_clicks(res)
    _init_state(res)
    L, H = res.num_layers, res.num_heads
    c1, c2, c3 = st.columns([3, 3, 2])
    layer = ui.index_slider(c1, "Layer (0 = first)", L, key="v_layer")
    head = c2.select_slider("Head", options=[*range(H), MEAN], key="v_head", help="'mean' averages the layer's heads.")
    opacity = c3.slider("Overlay opacity", 0.0, 1.0, step=0.05, key="v_opacity")
    q1, q2, q3 = st.columns([4, 1, 1])
    names = {MEAN: "mean over all queries (no [CLS])", PATCH: "the chosen patch (click the picture)"}
    choice = q1.radio(
        "Whose attention",
        query_options(res),
        key="v_query",
        horizontal=True,
        format_func=lambda q: names.get(q) or f"{res.tokens[q]} token",
        help="A row of the attention matrix: what the chosen query token looks at.",
    )
    rows, cols = res.grid
    row = int(q2.number_input("Patch row", 0, rows - 1, step=1, key="v_row", on_change=_to_patch))
    col = int(q3.number_input("Patch column", 0, cols - 1, step=1, key="v_col", on_change=_to_patch))
    ui.sync_query(layer=layer, head=head)
    if choice == PATCH:
        return View(layer, head, (row, col), (row, col), f"patch ({row}, {col})"), opacity
    if choice == MEAN:
        return View(layer, head, None, None, "all queries (mean)"), opacity
    return View(layer, head, int(choice), None, res.tokens[int(choice)]), opacity
