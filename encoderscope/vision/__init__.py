"""Image and multimodal encoders: patch attention of vision transformers, patch features, CLIP/SigLIP similarity.

    enc = load_image_encoder("facebook/dinov2-small")     # or a local folder
    res = image_attention(enc, pil_image)                 # .weights [L, H, T, T], .grid, .image, ...
    patch_map(res, layer=-1, head="mean")                 # [rows, cols]
    clip = load_clip("openai/clip-vit-base-patch32")
    clip_similarity(clip, images, apply_template("a photo of {}", ["cat", "dog"])).probs   # [I, T]

Modules by job: `inputs` (accepted images and captions, limits, VisionError), `loading`, `preprocess` (what the
model sees), `patch_attention`, `features` (PCA picture, token norms, pixel boxes), `clip`.
"""

from .classify import classify
from .clip import ClipSimilarity, clip_similarity, modality_gap
from .features import NormOutliers, colorize, heat_overlay, norm_outliers, patch_norms, pca_rgb, to_pixels, token_norms
from .inputs import MAX_IMAGES, MAX_PATCHES, MAX_TEXTS, VisionError, apply_template, as_rgb
from .loading import CURATED_CLIP, CURATED_IMAGE_ENCODERS, ClipModel, ImageEncoder, load_clip, load_image_encoder
from .patch_attention import (
    ImageAttention,
    attention_distance,
    image_attention,
    patch_map,
    uniform_attention_distance,
)

__all__ = [
    "CURATED_CLIP",
    "CURATED_IMAGE_ENCODERS",
    "MAX_IMAGES",
    "MAX_PATCHES",
    "MAX_TEXTS",
    "ClipModel",
    "ClipSimilarity",
    "ImageAttention",
    "ImageEncoder",
    "NormOutliers",
    "VisionError",
    "apply_template",
    "as_rgb",
    "attention_distance",
    "classify",
    "clip_similarity",
    "colorize",
    "heat_overlay",
    "image_attention",
    "load_clip",
    "load_image_encoder",
    "modality_gap",
    "norm_outliers",
    "patch_map",
    "patch_norms",
    "pca_rgb",
    "to_pixels",
    "token_norms",
    "uniform_attention_distance",
]
