"""Sections of the image encoders page: the attention overlay on the picture, all heads of a layer, rollout,
attention distance, patch features and exports (the choices of model, layer, head and query are in
components/vision/controls.py).

Every section reads one cached `ImageViews` (components/vision/cache.py): a click on a patch or a head
reruns the page without running the model.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components import ui
from components.vision import cache
from components.vision.controls import HEADS_KEY, MEAN, OVERLAY_KEY, View
from encoderscope import images, vision
from encoderscope.figures import vision as figures

MAIN_HEIGHT = 620  # the main overlay, at most (pixels)
SIDE_HEIGHT = 330  # the attention and relevance overlays side by side (half the width each)


def _head_name(head: int | str) -> str:
    return "mean over heads" if head == MEAN else f"head {head}"


def _on_picture(views: cache.ImageViews, values: np.ndarray, **options):
    """A `[rows, cols]` map over the picture, coloured from its minimum to its maximum (see
    `figures.patch_overlay` for the options)."""
    res = views.res
    return figures.patch_overlay(
        views.picture, res.image.size, values, res.patch_size, zmin=float(values.min()), **options
    )


def describe(enc, views: cache.ImageViews, name: str) -> None:
    res = views.res
    rows, cols = res.grid
    prefix = ", ".join(res.tokens[: res.prefix]) or "no [CLS]"
    st.caption(
        f"{ui.escape_markdown(enc.name)} · {res.num_layers} layers × {res.num_heads} heads · {rows}×{cols} patches "
        f"of {res.patch_size} px · {len(res.tokens)} tokens ({ui.escape_markdown(prefix)}, then the patches)"
    )
    with st.expander("What the model saw", expanded=False):
        st.image(
            views.png,
            caption=f"{ui.escape_markdown(name)} as encoded: {res.image.size[0]}×{res.image.size[1]} pixels",
            width=min(res.image.size[0], 448),
        )
        st.text("\n".join(res.notes) or "The image was used as it is.")


def overlay(views: cache.ImageViews, view: View, opacity: float, height: int = MAIN_HEIGHT) -> np.ndarray:
    """The chosen attention row over the picture (at most `height` pixels high); returns the `[rows, cols]` map."""
    res = views.res
    values = vision.patch_map(res, view.layer, view.head, view.query)
    fig = _on_picture(
        views,
        values,
        opacity=opacity,
        marked=view.marked,
        max_height=height,
        title=f"Layer {view.layer}, {_head_name(view.head)}: attention from {view.label}",
    )
    ui.plotly(
        fig,
        key=OVERLAY_KEY,
        filename=f"attention_L{view.layer}_H{view.head}",
        on_select="rerun",
        selection_mode="points",
    )
    st.caption(
        f"Attention from {view.label} to every patch; colours span this map's range, {values.min():.4f} to "
        f"{values.max():.4f} (uniform attention would give {1 / values.size:.4f} to each patch). The patches "
        f"hold {values.sum():.1%} of this row; the rest goes to the prefix tokens. "
        "Click a patch to use it as the query, or set its row and column above."
    )
    return values


def heads(views: cache.ImageViews, view: View, opacity: float) -> None:
    """Every head of the chosen layer (and their mean) as a small overlay; a click focuses that head."""
    res = views.res
    labels = [*(f"head {h}" for h in range(res.num_heads)), "mean"]
    maps = np.stack([vision.patch_map(res, view.layer, head, view.query) for head in [*range(res.num_heads), MEAN]])
    tiles = figures.blend_tiles(views.thumb, maps, opacity)
    ui.plotly(
        figures.thumbnail_grid(tiles, labels, res.grid, per_row=min(7, len(tiles))),
        key=HEADS_KEY,
        filename=f"heads_L{view.layer}",
        on_select="rerun",
        selection_mode="points",
    )
    st.caption(
        f"Layer {view.layer}: attention from {view.label}, per head (each thumbnail coloured over its own range). "
        "Click one to show it above."
    )


def rollout_map(views: cache.ImageViews, view: View) -> np.ndarray:
    """The query's rollout row over the patches, `[rows, cols]`."""
    return vision.patch_map(views.rollout, 0, 0, view.query)


def rollout(views: cache.ImageViews, view: View, opacity: float) -> None:
    """The query's rollout row over the picture."""
    values = rollout_map(views, view)
    fig = _on_picture(
        views,
        values,
        opacity=opacity,
        marked=view.marked,
        title=f"Attention rollout from {view.label}",
        value_name="rollout",
        clickable=False,
    )
    ui.plotly(fig, key="v_rollout", filename="rollout")
    st.caption(
        "Attention rollout (Abnar & Zuidema, 2020) through all layers: per layer the mean over heads plus the "
        "identity for the residual connection, rows renormalised, then multiplied from the first layer to the "
        "last. It estimates how much the final token draws on each input patch; a patch query always keeps a "
        "large share on itself through the residual path."
    )


def distance(views: cache.ImageViews, view: View) -> None:
    ui.plotly(
        figures.distance_chart(views.distance, views.uniform, (view.layer, view.head)),
        key="v_distance",
        filename="attention_distance",
    )
    st.caption(
        "Each dot is one head: how far, in pixels, a patch's attention reaches on average (keys restricted to "
        "patches, each row renormalised, averaged over patch queries; Dosovitskiy et al. 2021, Fig. 7). In a "
        "trained ViT the early layers mix local heads (small distances) with a few global ones, and the late "
        "layers are global. The dashed line is what uniform attention would give. Random weights show no pattern."
    )


def features(views: cache.ImageViews) -> None:
    res = views.res
    left, right = st.columns(2)
    with left:
        ui.plotly(
            figures.rgb_patches(views.pca, res.patch_size, "Patch tokens: first 3 PCA components as RGB"),
            key="v_pca",
            filename="patch_pca",
        )
        st.caption(
            "The last layer's patch tokens projected on their first three principal components, as red, green and "
            "blue (the DINO picture): patches the model represents alike get alike colours, so object parts and "
            f"background separate without any labels. State shown: {ui.escape_markdown(res.features_state)}."
        )
    with right:
        norms = views.norms
        fig = _on_picture(
            views,
            norms,
            opacity=0.85,
            title="Norm of each patch token (last block)",
            value_name="norm",
            clickable=False,
        )
        ui.plotly(fig, key="v_norms", filename="patch_norms")
        stats = vision.norm_outliers(norms)
        st.caption(
            f"State shown: the last block's output before any final norm. Median norm {stats.median:.1f}, maximum "
            f"{stats.maximum:.1f} ({stats.ratio:.1f}× the median); {stats.count} patch(es) above "
            f"{stats.factor:g}× the median. Large ViTs (DINOv2, CLIP, DeiT-III) recycle a few "
            "low-information background patches as scratch space for global information: their tokens get much "
            "larger norms and soak up attention (Darcet et al. 2024, “Vision Transformers Need Registers”). "
            "Models trained with register tokens move that role to the registers."
        )
        if res.prefix:
            parts = [f"{t}: {n:.1f}" for t, n in zip(res.tokens[: res.prefix], views.token_norms, strict=False)]
            st.caption("Prefix token norms: " + ui.escape_markdown(", ".join(parts)))


def _attention_npy(container, res) -> None:
    """The whole attention tensor as .npy (float16, as cached), built only on a click and with one copy of the
    data (`ui.npy_bytes`): no per-layer fallback, whatever its size (Streamlit serves a download from memory,
    so one copy is what a download costs)."""
    shape = list(res.weights.shape)
    container.download_button(
        "⬇️ Attention (.npy)",
        ui.npy_bytes(res.weights),
        "attention.npy",
        "application/octet-stream",
        help=f"float16 [layers, heads, T, T] = {shape} ({res.weights.nbytes / 1e6:,.1f} MB); tokens: prefix, "
        "then patches row by row",
    )


def exports(views: cache.ImageViews, view: View, values: np.ndarray, opacity: float) -> None:
    """Download buttons: the attention tensor, the overlay `values` `[rows, cols]` shown, and the rollout, PCA and
    norm pictures, each built on a click (so the views not shown compute nothing here)."""
    res = views.res
    c1, c2, c3, c4, c5 = st.columns(5)
    _attention_npy(c1, res)
    c2.download_button(
        "⬇️ Overlay (.png)",
        lambda: images.to_png(vision.heat_overlay(res, values, opacity)),
        f"attention_L{view.layer}_H{view.head}.png",
        "image/png",
    )
    c3.download_button(
        "⬇️ Rollout overlay (.png)",
        lambda: images.to_png(vision.heat_overlay(res, rollout_map(views, view), opacity)),
        "rollout.png",
        "image/png",
    )
    c4.download_button(
        "⬇️ PCA picture (.png)",
        lambda: images.to_png(vision.to_pixels(views.pca, res.patch_size)),
        "patch_pca.png",
        "image/png",
    )
    c5.download_button(
        "⬇️ Norm map (.png)",
        lambda: images.to_png(vision.heat_overlay(res, views.norms, 0.85)),
        "patch_norms.png",
        "image/png",
    )
