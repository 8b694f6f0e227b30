"""Benchmark: the image-encoder page's server-side work on this CPU. Prints one JSON object.

Models have random weights (timing only) at the real sizes: ViT-B/16 (12 layers, 12 heads, 768 wide) and CLIP
ViT-B/32 (vision 12×12×768, text 12×8×512). The CLIP tokenizer is the tests' byte-level one (no merges, one token
per character), so captions are longer in tokens than with the real vocabulary: a pessimistic text tower.

- vit_b16.forward_ms: the bare forward pass with attentions on a 224×224 picture (the issue's ~0.2 s reference);
- vit_b16.rerun_ms: what a page rerun for a new picture computes: image_attention (one forward, hidden states kept),
  all heads' [CLS] maps of one layer, rollout, attention distance, the PCA picture and token norms, all upsampled;
  rerun_over_forward is the ratio (target ≤ 2.5);
- vit_b16.click_ms: another query patch or head: patch maps and one overlay, no model call (target ≤ 150 ms);
- clip_b32.similarity_ms: clip_similarity for 8 images × 8 captions (target ≤ 1 s).
Every *_ms figure is the median of `runs` timed runs after one warm-up call.
Usage: python bench/vision.py [--runs 5] [--quick]   (--quick: 1 run each)
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from _common import arguments, emit, machine, median_time, ms, parse, progress
from PIL import Image

import encoderscope as es
from encoderscope.vision import (
    ClipModel,
    ImageEncoder,
    apply_template,
    attention_distance,
    clip_similarity,
    heat_overlay,
    image_attention,
    patch_map,
    patch_norms,
    pca_rgb,
    to_pixels,
)
from tests import vision_fixtures as vf

LABELS = ["cat", "dog", "temple", "flower", "car", "river", "mountain", "street at night"]


def photos() -> list[Image.Image]:
    """The two scikit-learn sample photos (427×640), cut into eight pictures of different shapes."""
    from sklearn.datasets import load_sample_image

    full = [Image.fromarray(load_sample_image(name)) for name in ("china.jpg", "flower.jpg")]
    boxes = [(0, 0, 427, 427), (100, 0, 640, 427), (0, 100, 300, 400), (200, 50, 600, 350)]
    return [image.crop(box) for image in full for box in boxes]


def vit_b16() -> ImageEncoder:
    from transformers import ViTConfig, ViTImageProcessorPil, ViTModel

    torch.manual_seed(0)
    model = ViTModel(ViTConfig(attn_implementation="eager"), add_pooling_layer=False).eval()
    return ImageEncoder(
        model=model,
        tokenizer=None,
        name="ViT-B/16 (random)",
        kind="image",
        source="local",
        processor=ViTImageProcessorPil(),
        family="vit",
        patch_size=16,
        prefix_names=("[CLS]",),
        interpolate=True,
    )


def clip_b32() -> ClipModel:
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(attn_implementation="eager")).eval()
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": 224},
        crop_size={"height": 224, "width": 224},
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    tokenizer = vf.clip_tokenizer()
    tokenizer.model_max_length = 77
    return ClipModel(
        model=model,
        tokenizer=tokenizer,
        name="CLIP B/32 (random)",
        kind="clip",
        source="local",
        processor=processor,
        family="clip",
    )


def page_rerun(enc: ImageEncoder, picture: Image.Image, layer: int) -> None:
    """A new picture: one forward, then every array the page draws."""
    res = image_attention(enc, picture)
    p = res.patch_size
    maps = [to_pixels(patch_map(res, layer, h), p) for h in range(res.num_heads)]
    maps.append(to_pixels(patch_map(res, layer, "mean"), p))
    roll = es.rollout(res)[0, res.prefix :].reshape(res.grid)
    extra = [to_pixels(roll, p), attention_distance(res), to_pixels(pca_rgb(res), p), to_pixels(patch_norms(res), p)]
    assert all(np.isfinite(a).all() for a in maps + extra)


def click(res, layer: int, row: int, col: int, head: int) -> None:
    """Another patch or head: that map, the layer's mean map and one overlay, no model call."""
    heat_overlay(res, patch_map(res, layer, head, query=(row, col)))
    patch_map(res, layer, "mean", query=(row, col))


def bench_vit(runs: int, square: Image.Image) -> dict:
    enc = vit_b16()
    pixels = torch.from_numpy(np.asarray(enc.processor(images=square, return_tensors="np")["pixel_values"]))

    def bare():
        with torch.inference_mode():
            enc.model(pixel_values=pixels, output_attentions=True)

    forward_s, _ = median_time(bare, runs)
    rerun_s, _ = median_time(lambda: page_rerun(enc, square, 11), runs)
    res = image_attention(enc, square)
    queries = itertools.cycle([(r, c, r % 12) for r in range(0, 14, 3) for c in range(0, 14, 5)])
    click_s, _ = median_time(lambda: click(res, 11, *next(queries)), runs)
    return {
        "image": "224x224",
        "tokens": len(res.tokens),
        "forward_ms": ms(forward_s),
        "rerun_ms": ms(rerun_s),
        "rerun_over_forward": round(rerun_s / forward_s, 2),
        "click_ms": ms(click_s),
        "attention_mb": round(res.weights.nbytes / 2**20, 1),
    }


def bench_clip(runs: int, pictures: list[Image.Image]) -> dict:
    clip = clip_b32()
    texts = apply_template("a photo of {}", LABELS)
    sim_s, _ = median_time(lambda: clip_similarity(clip, pictures, texts), runs)
    return {"images": len(pictures), "captions": len(texts), "similarity_ms": ms(sim_s)}


def main() -> None:
    args = parse(arguments(__doc__, runs=5))
    pictures = photos()
    square = pictures[0].resize((224, 224), Image.Resampling.BICUBIC)
    out: dict = {"runs": args.runs, "machine": machine()}
    out["vit_b16"] = bench_vit(args.runs, square)
    progress(out["vit_b16"])
    out["clip_b32"] = bench_clip(args.runs, pictures)
    emit(out)


if __name__ == "__main__":
    main()
