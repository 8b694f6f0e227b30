"""What an image classifier says about a picture: `classify` with the checkpoint's own head and class names.

Only checkpoints saved with an image-classification head have one (`ViTForImageClassification`, ...; see
`loading.load_image_encoder`); asking a bare encoder (DINOv2, a CLIP tower) fails with a message saying so.
"""

from __future__ import annotations

import numpy as np
import torch

from .inputs import ImageInput, VisionError
from .loading import ImageEncoder
from .patch_attention import prepare


def require_head(enc) -> ImageEncoder:
    """`enc` when it is an ImageEncoder with a classification head; a VisionError saying what to do otherwise."""
    if getattr(enc, "kind", "") == "clip":
        raise VisionError(
            f"{enc.name!r} is a CLIP/SigLIP model: it has no fixed classes. Score the picture against captions "
            "instead (zero-shot: clip_similarity with apply_template), or explain one caption with explain_image."
        )
    if not isinstance(enc, ImageEncoder):
        raise VisionError(f"Expected an image encoder from load_image_encoder, got {type(enc).__name__}.")
    if enc.classifier is None:
        raise VisionError(
            f"{enc.name!r} has no classification head: it is a bare encoder (features only), so it names no "
            "classes. Load a classifier checkpoint, e.g. google/vit-base-patch16-224 or a folder whose "
            "config.json lists a *ForImageClassification architecture."
        )
    return enc


def logits(enc: ImageEncoder, pixel_values: np.ndarray | torch.Tensor, **forward) -> object:
    """The classifier's forward output on `pixel_values` `[B, 3, H, W]` (normalised), with `forward` passed on
    (e.g. output_attentions=True). Runs under the caller's grad mode."""
    pixels = torch.as_tensor(pixel_values).to(enc.device)
    kwargs = {"interpolate_pos_encoding": True} if enc.interpolate else {}
    return enc.classifier(pixel_values=pixels, **kwargs, **forward)


def classify(
    enc: ImageEncoder, image: ImageInput, k: int = 5, square: bool = False, max_patches: int | None = None
) -> list[tuple[str, float]]:
    """The `k` most probable classes of `image`: [(label, probability), ...], highest first.

    Labels are the checkpoint's own `id2label`; probabilities the softmax of its logits over every class.
    square=False: the aspect-preserving input of `image_attention` (the same picture the page shows);
    square=True: the processor's own square crop, exactly as the checkpoint was evaluated.
    """
    enc = require_head(enc)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise VisionError(f"k must be a positive whole number, got {k!r}.")
    prep = prepare(enc, image, square, max_patches)
    with torch.inference_mode():
        out = logits(enc, prep.pixel_values)
    probs = out.logits[0].float().softmax(-1).cpu().numpy()
    top = np.argsort(-probs, kind="stable")[: min(int(k), probs.size)]
    return [(enc.labels[i] if i < len(enc.labels) else f"class {i}", float(probs[i])) for i in top]
