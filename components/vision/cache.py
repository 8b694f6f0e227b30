"""Cached models and results of the image encoders page (/vision).

This is the page's section of the cache layer (see components/resources.py), in a module of its own. Same rules: models in st.cache_resource (one shared object, bounded, read-only);
results keyed on (model ref, revision, sha256 of the image bytes, options), with the bytes themselves passed as
`_data` so Streamlit never hashes megabytes on a rerun. A click on a patch or a head reads these and runs no model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io

import numpy as np
import streamlit as st
from PIL import Image

from components import resources
from encoderscope import images, settings, vision
from encoderscope.attention_maps import rollout
from encoderscope.figures import vision as vision_figures
from encoderscope.vision.patch_attention import patch_distances

_MODELS = settings.get().model_cache_size
_RESULTS = max(4, 2 * _MODELS)  # attention of one image: [L, H, T, T], 2 MB for ViT-B/16 at 224 px
THUMB_WIDTH = 200  # pixels, the picture under each per-head overlay


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_resource(max_entries=_MODELS, show_spinner=False)
def image_encoder(ref: str, revision: str | None = None):
    """A loaded image encoder (see `encoderscope.vision.load_image_encoder`)."""
    return resources._logged_load("image encoder", vision.load_image_encoder, ref, revision)


@st.cache_resource(max_entries=_MODELS, show_spinner=False)
def clip_model(ref: str, revision: str | None = None):
    """A loaded CLIP or SigLIP model with both towers (see `encoderscope.vision.load_clip`)."""
    return resources._logged_load("clip", vision.load_clip, ref, revision)


@dataclasses.dataclass(frozen=True)
class ImageViews:
    """What the page draws for one image that does not depend on layer, head or query.

    res:         ImageAttention, weights `[L, H, T, T]`
    picture:     `res.image` as a data URI (encoded once, not on every click)
    distance:    `[L, H]` mean attention distance in pixels;  uniform: the same under uniform attention
    rollout:     `res` with the rollout `[1, 1, T, T]` as its weights, so `patch_map(rollout, 0, 0, query)`
                 reads a query's rollout row exactly as it reads attention
    pca:         `[rows, cols, 3]` in [0, 1];  norms: `[rows, cols]`;  token_norms: `[T]` (prefix tokens too)
    png:         `res.image` as PNG bytes;  thumb: `[h, THUMB_WIDTH, 3]` floats in [0, 1], the picture shrunk for
                 the per-head overlays
    """

    res: vision.ImageAttention
    picture: str
    distance: np.ndarray
    uniform: float
    rollout: vision.ImageAttention
    pca: np.ndarray
    norms: np.ndarray
    token_norms: np.ndarray
    png: bytes
    thumb: np.ndarray


@st.cache_resource(max_entries=_RESULTS, show_spinner=False)
def image_views(ref: str, revision: str | None, image_digest: str, square: bool, _data: bytes) -> ImageViews:
    """One forward pass of the cached encoder on the image `_data` (whose sha256 is `image_digest`), and
    everything derived from it. Read-only."""
    res = vision.image_attention(image_encoder(ref, revision), _data, square=square)
    rolled = rollout(res)[None, None]  # [1, 1, T, T]
    return ImageViews(
        res=res,
        picture=vision_figures.picture_uri(res.image),
        distance=vision.attention_distance(res),
        uniform=float(patch_distances(res.grid, res.patch_size).mean()),
        rollout=dataclasses.replace(res, weights=rolled),
        pca=vision.pca_rgb(res),
        norms=vision.patch_norms(res),
        token_norms=vision.token_norms(res),
        png=images.to_png(res.image),
        thumb=_shrunk(res.image, THUMB_WIDTH),
    )


def _shrunk(image: Image.Image, width: int) -> np.ndarray:
    """`image` resized to `width` pixels wide (aspect kept): `[h, width, 3]` floats in [0, 1]."""
    w, h = image.size
    small = image.resize((width, max(1, round(h * width / w))), Image.Resampling.BILINEAR)
    return np.asarray(small, np.float32) / 255


@st.cache_data(max_entries=64, show_spinner=False)
def thumbnail(image_digest: str, _data: bytes, side: int = 160) -> tuple[bytes, tuple[str, ...]]:
    """(PNG bytes of the image shrunk to fit `side`², what was converted). Decoding it also checks it:
    raises VisionError / ImageError for a file that is not a usable image."""
    notes: list[str] = []
    image = vision.as_rgb(_data, notes)
    image.thumbnail((side, side))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue(), tuple(notes)


@st.cache_data(max_entries=32, show_spinner=False)
def clip_similarity(
    ref: str, revision: str | None, image_digests: tuple[str, ...], texts: tuple[str, ...], _images: list[bytes]
):
    """`encoderscope.vision.clip_similarity` of the cached model: ClipSimilarity (cosine `[I, T]`, probs,
    embeddings). `_images` are the files' bytes, in the order of `image_digests`."""
    return vision.clip_similarity(clip_model(ref, revision), list(_images), list(texts))
