"""Why the model said it: the classifier's top classes, the "Why this class?" relevance overlay, and for CLIP /
SigLIP the patches and words that made one image match one caption (Chefer et al. 2021, `es.explain_image`).

Every number drawn comes from `encoderscope.attribution.image` through the page's cache (components/vision/cache.py).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components import faithfulness, ui
from components.vision import cache
from components.vision import views as vision_views
from encoderscope import images, vision
from encoderscope.figures import vision as figures

WHY_KEY = "v_why"
CLASS_KEY = "v_class"
TOP_K = 5

METHOD = (
    "Relevance (Chefer, Gur & Wolf 2021, generic attention explainability): one backward pass of the score to every "
    "attention map; per layer the heads' mean of gradient × attention, negatives dropped, accumulated with the "
    "residual path, R ← R + Ā·R. Unlike raw attention it is specific to the class: another class lights other patches."
)


def overlays(enc, picked, views: cache.ImageViews, view, digest: str, square: bool, data: bytes, opacity: float):
    """The attention overlay, and for a classifier the relevance overlay beside it and the top 5 under both:
    (the `[rows, cols]` attention map drawn, the ImageRelevance drawn or None)."""
    top = top_classes(picked, digest, square, data) if enc.classifier is not None else None
    if not top:
        values = vision_views.overlay(views, view, opacity)
        if enc.classifier is None:
            st.caption(
                "“Why this class?” needs a classifier checkpoint (a ViT, DeiT or DINOv2 saved with its head); "
                "this one is a bare encoder."
            )
        return values, None
    attention_column, why_column = st.columns(2)
    with attention_column:
        values = vision_views.overlay(views, view, opacity, vision_views.SIDE_HEIGHT)
    with why_column:
        relevance = why(picked, views, digest, square, data, top, opacity, vision_views.SIDE_HEIGHT)
    classes(top)
    return values, relevance


def top_classes(picked, digest: str, square: bool, data: bytes) -> list[tuple[str, float, int]] | None:
    """The classifier's top 5 [(label, probability, index)], or None after a message when it fails."""
    with ui.guard("classify this image") as run:
        top = cache.top_classes(*picked, digest, square, data, TOP_K)
    return None if run.failed else top


def classes(top: list[tuple[str, float, int]]) -> None:
    """The top 5 as bars, under the picture."""
    labels = [label for label, _, _ in top]
    probs = np.array([prob for _, prob, _ in top])
    ui.plotly(figures.prob_bars(probs, labels, f"Top {len(top)} classes"), key="v_classes", filename="top_classes")
    st.caption(
        "The checkpoint's own classification head: softmax probabilities over all its classes (the top "
        f"{len(top)} shown), for the picture as encoded above."
    )


def why(picked, views: cache.ImageViews, digest: str, square: bool, data: bytes, top, opacity: float, height: int):
    """The relevance overlay of the chosen class, then its class picker (under the chart, so the overlay lines
    up with the attention overlay beside it); returns the ImageRelevance or None. `height`: the chart's maximum
    height in pixels."""
    res = views.res
    options = list(range(len(top)))
    if st.session_state.get(CLASS_KEY) not in options:
        st.session_state[CLASS_KEY] = 0
    label, prob, index = top[st.session_state[CLASS_KEY]]
    with ui.guard("explain this class") as run, st.spinner("Explaining …"):
        rel = cache.class_relevance(*picked, digest, square, index, data)
    if run.failed:
        return None
    picture = views.picture if rel.grid == res.grid else figures.picture_uri(rel.image)
    fig = figures.patch_overlay(
        picture,
        rel.image.size,
        rel.map,
        rel.patch_size,
        opacity=opacity,
        title=f"Why “{label[:40]}”: relevance of each patch",
        value_name="relevance",
        clickable=False,
        max_height=height,
    )
    ui.plotly(fig, key=WHY_KEY, filename=f"relevance_class{index}")
    st.selectbox(
        "Why this class?",
        options,
        key=CLASS_KEY,
        format_func=lambda i: f"{top[i][0][:60]} ({top[i][1]:.1%})",
        help="Pick one of the top 5 classes: the overlay shows the patches that raised its logit.",
    )
    st.caption(
        f"Class {index}, logit {rel.score:.2f}, probability {prob:.1%}. {METHOD} "
        + (f"Read at the {ui.escape_markdown(rel.row)} row." if "+" not in rel.row
           else f"Read at the {ui.escape_markdown(rel.row)} rows, averaged: what this head reads.")
        + "".join(f" {ui.escape_markdown(note)}" for note in rel.notes if "class" in note.lower())
    )
    faithfulness.image_panel("classifier", *picked, (digest, square, index), rel, key=WHY_KEY, offer_compare=True)
    return rel


def relevance_downloads(rel, opacity: float, stem: str, container=None) -> None:
    """The relevance map as .npy (float32 [rows, cols]) and as a PNG overlay on the picture."""
    a, b = (container or st).columns(2)
    a.download_button(
        "⬇️ Relevance (.npy)",
        ui.npy_bytes(rel.map),
        f"{stem}.npy",
        "application/octet-stream",
        help=f"float32 [rows, cols] = {list(rel.map.shape)}, ≥ 0; patches row by row",
        key=f"{stem}_npy",
    )
    b.download_button(
        "⬇️ Relevance overlay (.png)",
        lambda: images.to_png(vision.heat_overlay(rel, rel.map, opacity)),
        f"{stem}.png",
        "image/png",
        key=f"{stem}_png",
    )


# --- CLIP / SigLIP: which patches and words made this pair match -----------------------------------------------


def match(picked, sim: vision.ClipSimilarity, pictures, labels: list[str], cell: tuple[int, int]) -> None:
    """Relevance of image `cell[0]` for caption `cell[1]`: the patches over the picture and the caption's words."""
    i, j = cell
    name, data, _ = pictures[i]
    caption = sim.texts[j]
    with ui.guard("explain this image-caption pair") as run, st.spinner("Explaining the match …"):
        rel = cache.caption_relevance(*picked, cache.digest(data), caption, data)
    if run.failed:
        return
    st.markdown(
        f"**Why {ui.escape_markdown(name)} matches “{ui.escape_markdown(labels[j][:80])}”** · cosine "
        f"{sim.cosine[i, j]:.3f}, logit {rel.score:.2f}"
    )
    left, right = st.columns([3, 2])
    with left:
        fig = figures.patch_overlay(
            figures.picture_uri(rel.image),
            rel.image.size,
            rel.map,
            rel.patch_size,
            title="Patches that made this match",
            value_name="relevance",
            clickable=False,
            max_height=420,
        )
        ui.plotly(fig, key="c_why_image", filename="clip_relevance")
    with right:
        ui.plotly(
            figures.token_bars(rel.text_tokens, rel.text_map, "Words that made this match"),
            key="c_why_text",
            filename="clip_text_relevance",
        )
    st.caption(
        f"{METHOD} The image side is read at the {ui.escape_markdown(rel.row)} row, the caption side at the token "
        "the text tower pools (special tokens left out). Click another cell of the matrix to explain that pair."
        + "".join(f" {ui.escape_markdown(note)}" for note in rel.notes if "caption" in note.lower() or "SigLIP" in note)
    )
    relevance_downloads(rel, 0.6, "clip_relevance")
    faithfulness.image_panel("clip", *picked, (cache.digest(data), caption), rel, key="c_why", offer_compare=False)
