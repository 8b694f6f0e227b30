"""/vision's layer × layer self-similarity: how alike the image encoder's layers represent a set of pictures, with
its untrained baseline (the same architecture with fresh weights) beside it.

CKA needs several inputs, and the page has one picture: the set is that picture and the two sample photos, each
whole, in four quadrants, its centre and mirrored (7 crops each). The map reuses the Compare page's cache section
(one forward pass per model and set, through the compute pool) and its layer map. Nothing runs until asked.
"""

from __future__ import annotations

import hashlib

import streamlit as st
from PIL import ImageOps

from components import resources, ui
from components.compare import cache as compare_cache
from components.compare import views as compare_views
from encoderscope import images

SAMPLES = ("china.jpg", "flower.jpg")
CROPS = ("whole", "top left", "top right", "bottom left", "bottom right", "centre", "mirrored")


def crops(image) -> list:
    """The 7 views of one PIL image named in CROPS: whole, its four quadrants, the centre half, mirrored."""
    w, h = image.size
    boxes = [(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2), (0, h // 2, w // 2, h), (w // 2, h // 2, w, h),
             (w // 4, h // 4, 3 * w // 4, 3 * h // 4)]
    return [image, *(image.crop(box) for box in boxes), ImageOps.mirror(image)]


def image_set(data: bytes) -> tuple[tuple[str, ...], list]:
    """(ids, PIL images) of the set: the user's picture and the sample photos (once each), 7 crops each."""
    sources = {hashlib.sha256(raw).hexdigest()[:16]: raw for raw in (data, *map(resources.sample_image_bytes, SAMPLES))}
    ids, out = [], []
    for digest, raw in sources.items():
        image, _ = images.open_image(raw)
        for name, crop in zip(CROPS, crops(image.convert("RGB")), strict=True):
            ids.append(f"{digest}:{name}")
            out.append(crop)
    return tuple(ids), out


def section(ref: str, revision: str | None, data: bytes) -> None:
    """A "Layers" switch (`?layers=1`), metric and baseline toggles, then the self-map (and trained × untrained)."""
    st.subheader("Layer × layer similarity")
    c1, c2, c3 = st.columns([2, 2, 1])
    metric = compare_views.metric_picker(c1, "v_layers_metric")
    base = c2.toggle("Add the untrained baseline", key="v_layers_untrained",
                     help="This encoder's layers against the same architecture with freshly initialised weights.")
    if not compare_views.measure_switch(
        c3, "v_layers", "layers", "Runs the encoder over 7 crops of each picture (once; then cached).",
        "Switch on “Measure” to compare every layer of this encoder with every other layer, on crops of this picture "
        "and of the two sample photos.",
    ):
        return
    with ui.guard("prepare the pictures") as prep:
        ids, crops_ = image_set(data)
    if prep.failed:
        return
    compare_cache.register_images(ids, crops_)
    side = compare_cache.Side("image", ref, revision)
    if not compare_views.run_features(side, ref, ids, noun="images"):
        return
    compare_views.layer_map(side, side, (ref, ref), ids, metric, 5, base, key="vision_layers", noun="images")
    from encoderscope import compare

    pooled = compare.pooling_name(compare_cache.model(side))
    st.caption(f"{len(ids)} images: this picture and the sample photos, each {', '.join(CROPS)}. Each image's "
               "vector at a layer is " + ("that layer's [CLS] token (at layer 0, before any attention, the same "
               "vector for every image)." if pooled == "cls_token" else "the mean of that layer's patch tokens."))
