"""Cached models and results of the image encoders page (/vision).

This is the page's section of the cache layer (see components/resources.py), in a module of its own. Same rules:
models in st.cache_resource (one shared object, bounded, read-only); results keyed on (model ref, revision, sha256
of the image bytes, options), with the bytes themselves passed as `_data` so Streamlit never hashes megabytes on
a rerun. A click on a patch or a head reads these and runs no model.

The heavy results (attention of one image, relevance maps) share one LRU bounded by bytes, not entries
(`settings.vision_cache_mb`): one 6:1 panorama's attention can outweigh a hundred ordinary ones. Cached attention
is float16: the page draws maps and statistics computed in float32 before rounding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import streamlit as st
from PIL import Image

from components import pool, resources
from encoderscope import images, settings, vision
from encoderscope.attention_maps import rollout
from encoderscope.attribution import image as attribution
from encoderscope.figures import vision as vision_figures

_MODELS = settings.get().model_cache_size
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


class ByteLRU:
    """A thread-safe LRU of shared, read-only results whose total size stays within `budget()` bytes.

    `get(key, compute)` returns the cached value or computes it (outside the lock: a slow model run never blocks
    other sessions' hits). A value larger than the whole budget is returned but not kept."""

    def __init__(self, budget: Callable[[], int]):
        self.budget = budget
        self.items: OrderedDict = OrderedDict()  # key -> (value, bytes)
        self.lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        with self.lock:
            return sum(size for _, size in self.items.values())

    def get(self, key, compute: Callable[[], object]):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key][0]
        value = compute()
        size, limit = nbytes(value), self.budget()
        with self.lock:
            if size <= limit:
                self.items[key] = (value, size)
                self.items.move_to_end(key)
                total = sum(s for _, s in self.items.values())
                while total > limit and len(self.items) > 1:
                    _, (_, dropped) = self.items.popitem(last=False)
                    total -= dropped
        return value


def nbytes(value, depth: int = 0) -> int:
    """Bytes held by a result: numpy arrays, bytes, strings and PIL images, through dataclasses, tuples and
    lists (two levels deep, which covers ImageViews and ImageRelevance)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (bytes, str)):
        return len(value)
    if isinstance(value, Image.Image):
        return value.width * value.height * len(value.getbands())
    if depth > 2:
        return 0
    if dataclasses.is_dataclass(value):
        return sum(nbytes(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v, depth + 1) for v in value)
    return 0


@st.cache_resource(show_spinner=False)
def results() -> ByteLRU:
    """The byte-bounded store of /vision results, shared by every session (cleared with st.cache_resource)."""
    return ByteLRU(lambda: settings.get().vision_cache_mb * 1_000_000)


def image_views(ref: str, revision: str | None, image_digest: str, square: bool, _data: bytes) -> ImageViews:
    """One forward pass of the cached encoder on the image `_data` (whose sha256 is `image_digest`), and
    everything derived from it. Read-only; kept in the byte-bounded `results()`."""
    limit = settings.get().max_image_patches
    key = ("views", ref, revision, image_digest, square, limit)
    enc = image_encoder(ref, revision)  # loads stay outside the pool
    return results().get(key, lambda: pool.run("image attention", key, _image_views, enc, _data, square, limit))


def _image_views(enc, data: bytes, square: bool, limit: int) -> ImageViews:
    res = vision.image_attention(enc, data, square=square, max_patches=limit)
    rolled = rollout(res)[None, None]  # [1, 1, T, T], float32: rollout multiplies, rounding would compound
    distance = vision.attention_distance(res)  # from the float32 weights, before they are rounded below
    stored = dataclasses.replace(res, weights=res.weights.astype(np.float16))  # half the bytes; maps only
    return ImageViews(
        res=stored,
        picture=vision_figures.picture_uri(res.image),
        distance=distance,
        uniform=vision.uniform_attention_distance(res.grid, res.patch_size),
        rollout=dataclasses.replace(res, weights=rolled),
        pca=vision.pca_rgb(res),
        norms=vision.patch_norms(res),
        token_norms=vision.token_norms(res),
        png=images.to_png(res.image),
        thumb=_shrunk(res.image, THUMB_WIDTH),
    )


@st.cache_data(max_entries=64, show_spinner=False)
def top_classes(
    ref: str, revision: str | None, image_digest: str, square: bool, _data: bytes, k: int = 5
) -> list[tuple[str, float, int]]:
    """The classifier's top `k` on the image: [(label, probability, class index)] (see `es.classify`)."""
    enc = image_encoder(ref, revision)
    limit = settings.get().max_image_patches
    key = (ref, revision, image_digest, square, k, limit)
    top = pool.run("classify", key, vision.classify, enc, _data, k=k, square=square, max_patches=limit)
    index = {label: i for i, label in enumerate(enc.labels)}
    return [(label, prob, index.get(label, -1)) for label, prob in top]


def class_relevance(ref: str, revision: str | None, image_digest: str, square: bool, target: int, _data: bytes):
    """`es.explain_image` of the cached classifier for class `target`: ImageRelevance (map `[rows, cols]`)."""
    limit = settings.get().max_image_patches
    key = ("class", ref, revision, image_digest, square, limit, target)
    enc = image_encoder(ref, revision)
    return _relevance(key, enc, _data, target, square, limit)


def caption_relevance(ref: str, revision: str | None, image_digest: str, caption: str, _data: bytes):
    """`es.explain_image` of the cached CLIP/SigLIP model for one image and caption, with the processor's
    square crop (the picture the similarity matrix scored): ImageRelevance with the caption's token scores."""
    limit = settings.get().max_image_patches
    key = ("caption", ref, revision, image_digest, caption, limit)
    clip = clip_model(ref, revision)
    return _relevance(key, clip, _data, caption, True, limit)


def _relevance(key: tuple, model, data: bytes, target, square: bool, limit: int):
    """`es.explain_image` as one job on the compute pool, kept in the byte-bounded `results()`."""
    return results().get(key, lambda: pool.run("relevance", key, attribution.explain_image, model, data, target, square, limit))


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
    clip = clip_model(ref, revision)
    key = (ref, revision, image_digests, texts)
    return pool.run("clip similarity", key, vision.clip_similarity, clip, list(_images), list(texts))
