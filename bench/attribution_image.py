"""Benchmark: image relevance (`es.explain_image`, Chefer et al. 2021) on the real ViT-Ti/16. Prints one JSON object.

Weights: ../shared/models/vit-tiny-patch16-224 (ImageNet ViT-Ti/16, see ../shared/models/README.md).

- speed: `es.explain_image` (preprocessing, one forward pass keeping the attention maps, one backward pass, the
  relevance accumulation) against `es.classify` (the same preprocessing and one forward pass), square 224×224
  pictures, both through the library's own calls, taking turns (round robin) on eight crops of the two sample
  photos, a new crop each run. explain_over_forward is the ratio of the medians (target ≤ 3).
- deletion test (Petsiuk et al. 2018, as Chefer et al. 2021 use it): on each sample photo (aspect kept, 14×20
  patches), the probability of the top class as the patches are blanked (processor mean colour) in the order of
  each map, most important first, in `steps` steps; the area under that curve (mean of its points, lower is
  better) for the relevance map, attention rollout ([CLS] row), raw [CLS] attention of the last layer (mean over
  heads) and random order (mean over 5 seeds). `mean_auc` averages the photos.
Usage: python bench/attribution_image.py [--runs 5] [--quick]   (--quick: 1 run, 8 deletion steps)
"""

from __future__ import annotations

import numpy as np
from _common import ROOT, arguments, emit, machine, ms, parse, progress, round_robin
from PIL import Image

import encoderscope as es
from encoderscope.attribution.image import deletion_curve

VIT_TINY = ROOT.parent / "shared" / "models" / "vit-tiny-patch16-224"
PHOTOS = ("china.jpg", "flower.jpg")


def photos() -> dict[str, Image.Image]:
    from sklearn.datasets import load_sample_image

    return {name: Image.fromarray(load_sample_image(name)) for name in PHOTOS}


def crops(full: dict[str, Image.Image]) -> list[Image.Image]:
    boxes = [(0, 0, 427, 427), (100, 0, 640, 427), (0, 100, 300, 400), (200, 50, 600, 350)]
    return [image.crop(box) for image in full.values() for box in boxes]


def speed(enc, pictures: list[Image.Image], runs: int) -> dict:
    turn = {"explain": 0, "forward": 0}

    def next_picture(kind: str) -> Image.Image:
        turn[kind] += 1
        return pictures[turn[kind] % len(pictures)]

    times = round_robin(
        {
            "explain": lambda: es.explain_image(enc, next_picture("explain"), square=True),
            "forward": lambda: es.classify(enc, next_picture("forward"), k=5, square=True),
        },
        runs,
    )
    explain, forward = float(np.median(times["explain"])), float(np.median(times["forward"]))
    return {
        "explain_ms": ms(explain),
        "forward_ms": ms(forward),
        "explain_over_forward": round(explain / forward, 2),
        "target_ratio": 3.0,
        "runs": runs,
    }


def deletion(enc, full: dict[str, Image.Image], steps: int) -> dict:
    per_photo = {}
    for name, image in full.items():
        rel = es.explain_image(enc, image)
        res = es.image_attention(enc, image)
        assert res.grid == rel.grid
        P = res.prefix
        maps = {
            "relevance": rel.map.ravel(),
            "rollout": es.rollout(res)[0, P:],
            "cls_attention": res.weights[-1].mean(axis=0)[0, P:],
        }
        aucs = {method: float(deletion_curve(enc, rel, np.argsort(-m), steps).mean()) for method, m in maps.items()}
        rng = np.random.default_rng(0)
        shuffled = [deletion_curve(enc, rel, rng.permutation(rel.map.size), steps).mean() for _ in range(5)]
        aucs["random"] = float(np.mean(shuffled))
        per_photo[name] = {
            "class": rel.label,
            "probability": round(float(rel.probability), 4),
            "grid": list(rel.grid),
            "auc": {k: round(v, 4) for k, v in aucs.items()},
        }
        progress({name: per_photo[name]})
    methods = ("relevance", "rollout", "cls_attention", "random")
    mean = {m: round(float(np.mean([p["auc"][m] for p in per_photo.values()])), 4) for m in methods}
    return {"steps": steps, "photos": per_photo, "mean_auc": mean}


def main() -> None:
    args = parse(arguments(__doc__, runs=5))
    runs = args.runs
    out = {"machine": machine(), "model": str(VIT_TINY.name)}
    enc = es.load_image_encoder(str(VIT_TINY))
    full = photos()
    out["speed"] = speed(enc, crops(full), runs)
    progress(out["speed"])
    out["deletion"] = deletion(enc, full, 8 if args.quick else 16)
    emit(out)


if __name__ == "__main__":
    main()
