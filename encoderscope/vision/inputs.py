"""What the vision functions accept: images (PIL, bytes or a path), captions, prompt templates, and their limits.

Every refusal raises :class:`VisionError`, whose message is written for the person using Encoderscope.
Image decoding and mode conversion are `encoderscope.images`' (decompression-bomb cap, EXIF, first frame, RGBA,
CMYK, 16-bit, palette); this module only adapts them to in-memory PIL images and adds the vision limits.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from .. import settings
from ..errors import UserFacingError
from ..images import open_image, to_rgb

MAX_IMAGES = 16  # clip_similarity: images per call
MAX_TEXTS = 32  # clip_similarity: captions or labels per call
MAX_TEXT_CHARS = 1_000  # per caption; CLIP reads 77 tokens anyway
MAX_PATCHES = 1_024  # image_attention downsizes to at most this many patches ([L, H, T, T] grows with T²)


class VisionError(UserFacingError):
    """An image, caption or vision model cannot be used; `str(err)` says why, for the user."""


ImageInput = Image.Image | bytes | str | os.PathLike


def as_rgb(image: ImageInput, notes: list[str] | None = None) -> Image.Image:
    """Any accepted image input -> an RGB PIL image; what was converted is appended to `notes`.

    bytes and paths go through `images.open_image` (format sniffing, pixel cap before decoding); an in-memory
    PIL image is checked against the same pixel cap, its first frame taken and its mode converted with `to_rgb`.
    """
    notes = [] if notes is None else notes
    cap = settings.get().max_image_pixels
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise VisionError(f"No image file at {str(image)[:200]!r}.")
        image = path.read_bytes()
    if isinstance(image, (bytes, bytearray, memoryview)):
        rgb, opened = open_image(bytes(image), cap)
        notes.extend(opened)
        return rgb
    if not isinstance(image, Image.Image):
        raise VisionError(f"Expected an image (PIL image, file bytes or a path), got {type(image).__name__}.")
    w, h = image.size
    if w * h > cap:
        raise VisionError(f"The image is {w}×{h} = {w * h / 1e6:.1f} MP; the limit is {cap / 1e6:.0f} MP.")
    if min(w, h) < 1:
        raise VisionError("The image has no pixels.")
    if getattr(image, "n_frames", 1) > 1:  # an animation shows its first frame, as `open_image` does for uploads
        image.seek(0)
        notes.append(f"Animated image with {image.n_frames} frames: using the first frame.")
    return to_rgb(image, notes)


def check_images(images) -> list[Image.Image]:
    """A non-empty list of at most MAX_IMAGES images -> RGB PIL images."""
    single = isinstance(images, (Image.Image, bytes, str, os.PathLike))
    images = [images] if single else list(images or [])
    if not images:
        raise VisionError("Add at least one image.")
    if len(images) > MAX_IMAGES:
        raise VisionError(f"{len(images)} images: compare at most {MAX_IMAGES} at a time.")
    return [as_rgb(image) for image in images]


def check_texts(texts) -> list[str]:
    """A non-empty list of at most MAX_TEXTS non-blank captions -> the captions, stripped."""
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    if not all(isinstance(t, str) for t in texts):
        raise VisionError("Captions must be text.")
    cleaned = [t.strip() for t in texts if t.strip()]
    if not cleaned:
        raise VisionError("Add at least one caption or label.")
    if len(cleaned) > MAX_TEXTS:
        raise VisionError(f"{len(cleaned)} captions: compare at most {MAX_TEXTS} at a time.")
    long = [t for t in cleaned if len(t) > MAX_TEXT_CHARS]
    if long:
        raise VisionError(f"A caption is {len(long[0])} characters long; the limit is {MAX_TEXT_CHARS}.")
    return cleaned


def apply_template(template: str, labels) -> list[str]:
    """Zero-shot prompts: each label put into `template` at its one `{}` ("a photo of {}" + "cat").

    Plain substitution, not `str.format`, so braces inside labels or the template's other text stay as typed.
    """
    if not isinstance(template, str) or template.count("{}") != 1:
        raise VisionError('The prompt template needs exactly one "{}" where the label goes, e.g. "a photo of {}".')
    labels = check_texts(labels)
    return [template.replace("{}", label) for label in labels]
