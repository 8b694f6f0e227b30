"""Benchmark: the deletion tests of `es.faithfulness` (issue 23). Prints one JSON object.

- similarity speed: `es.faithfulness.similarity` on the bundled MiniLM, 10 steps, 5 random orders, two 64-token
  texts (special tokens included), a new pair each run; the explanation is computed before the clock starts.
  Target: median ≤ 3 s on 2 cores.
- image speed: `es.faithfulness.image` on the real ViT-Ti/16 (../shared/models), 14 steps, 3 random orders, against
  one relevance map (`es.explain_image`), square 224 × 224 crops of the two sample photos, taking turns (round
  robin), a new crop each run. Target: curve_over_relevance ≤ 4.
- which method beats random: on the sample pairs (the Embeddings page's default pair and same-sense neighbours
  of the word-senses corpus; side B, delete) the exact decomposition against integrated gradients (16 steps);
  on the sample photos (both, aspect kept) and their crops, relevance against raw [CLS] attention and rollout.
  A method "beats random" on an input when its deletion area is below the random orders' area.
Usage: python bench/faithfulness.py [--runs 5] [--quick]   (--quick: 1 run, 3 pairs, the two photos only)
"""

from __future__ import annotations

import time

import numpy as np
from _common import ROOT, arguments, emit, machine, ms, parse, progress, round_robin

import encoderscope as es
from encoderscope import corpora

VIT_TINY = ROOT.parent / "shared" / "models" / "vit-tiny-patch16-224"
PHOTOS = ("china.jpg", "flower.jpg")


def texts_of(tokenizer, n_tokens: int, count: int) -> list[str]:
    """`count` different texts of exactly `n_tokens` tokens (special tokens included), from the built-in corpora."""
    sentences = [t for t, _ in corpora.TOPICS + corpora.WORD_SENSES]
    out, start = [], 0
    while len(out) < count:
        ids: list[int] = []
        while len(ids) < n_tokens - 2:
            ids += tokenizer(sentences[start % len(sentences)], add_special_tokens=False)["input_ids"]
            start += 1
        text = tokenizer.decode(ids[: n_tokens - 2])
        if len(tokenizer(text)["input_ids"]) == n_tokens:
            out.append(text)
    return out


def cpu_timed(fn, cpu: list[float]):
    """`fn` wrapped to record its process CPU seconds (all threads) in `cpu`: less sensitive to other load."""

    def run():
        start = time.process_time()
        fn()
        cpu.append(time.process_time() - start)

    return run


def similarity_speed(enc, runs: int) -> dict:
    texts = texts_of(enc.tokenizer, 64, 2 * (runs + 1))
    explained = [es.explain_similarity(enc, texts[2 * i], texts[2 * i + 1]) for i in range(runs + 1)]
    turn, cpu = iter(explained), []
    curve = cpu_timed(lambda: es.faithfulness.similarity(enc, next(turn), steps=10, seeds=5), cpu)
    times = round_robin({"curves": curve}, runs)
    median = float(np.median(times["curves"]))
    return {"median_ms": ms(median), "times_ms": [ms(t) for t in times["curves"]],
            "cpu_median_ms": ms(float(np.median(cpu[1:]))), "tokens": 64, "steps": 10, "seeds": 5,
            "target_ms": 3000, "runs": runs}


def crops(photos: dict) -> list:
    boxes = [(0, 0, 427, 427), (100, 0, 640, 427), (0, 100, 300, 400), (200, 50, 600, 350)]
    return [image.crop(box) for image in photos.values() for box in boxes]


def image_speed(vit, pictures: list, runs: int) -> dict:
    explained = [es.explain_image(vit, p, square=True) for p in pictures]
    turn = {"curves": 0, "relevance": 0}

    def nxt(kind: str) -> int:
        turn[kind] += 1
        return turn[kind] % len(pictures)

    cpu: dict[str, list[float]] = {"curves": [], "relevance": []}
    times = round_robin({
        "curves": cpu_timed(lambda: es.faithfulness.image(vit, None, explained[nxt("curves")], steps=14, seeds=3),
                            cpu["curves"]),
        "relevance": cpu_timed(lambda: es.explain_image(vit, pictures[nxt("relevance")], square=True),
                               cpu["relevance"]),
    }, runs)
    curves, relevance = float(np.median(times["curves"])), float(np.median(times["relevance"]))
    cpu_ratio = float(np.median(cpu["curves"][1:])) / float(np.median(cpu["relevance"][1:]))
    return {"curves_ms": ms(curves), "relevance_ms": ms(relevance), "curve_over_relevance": round(curves / relevance, 2),
            "cpu_curve_over_relevance": round(cpu_ratio, 2),
            "target_ratio": 4.0, "steps": 14, "seeds": 3, "runs": runs}


def sample_pairs(quick: bool) -> list[tuple[str, str]]:
    senses = corpora.WORD_SENSES
    pairs = [("A man is playing a guitar on stage.", "Someone performs music with an instrument.")]
    pairs += [(senses[i][0], senses[i + 1][0]) for i in range(0, len(senses) - 1, 3) if senses[i][1] == senses[i + 1][1]]
    return pairs[:3] if quick else pairs[:12]


def text_methods(enc, pairs) -> dict:
    wins = {"decomposition": 0, "integrated_gradients": 0}
    areas = {m: [] for m in wins}
    for a, b in pairs:
        for method in wins:
            ex = es.explain_similarity(enc, a, b, method=method, steps=16)
            c = es.faithfulness.similarity(enc, ex, side="b", steps=10, seeds=5)
            wins[method] += int(c.beats_random)
            areas[method].append(c.area_random - c.area_deletion)
    return {"pairs": len(pairs), "beats_random": wins,
            "mean_margin": {m: round(float(np.mean(v)), 4) for m, v in areas.items()}}


def image_methods(vit, pictures: dict) -> dict:
    wins = dict.fromkeys(es.faithfulness.METHODS, 0)
    margins = {m: [] for m in wins}
    per = {}
    for name, picture in pictures.items():
        rel = es.explain_image(vit, picture)
        found = es.faithfulness.image_methods(vit, rel, steps=14, seeds=3)
        per[name] = {m: {"area": round(c.area_deletion, 4), "random": round(c.area_random, 4)} for m, c in found.items()}
        for m, c in found.items():
            wins[m] += int(c.beats_random)
            margins[m].append(c.area_random - c.area_deletion)
        progress({name: per[name]})
    return {"pictures": len(pictures), "beats_random": wins,
            "mean_margin": {m: round(float(np.mean(v)), 4) for m, v in margins.items()}, "per_picture": per}


def main() -> None:
    args = parse(arguments(__doc__, runs=5))
    from PIL import Image
    from sklearn.datasets import load_sample_image

    out = {"machine": machine()}
    enc = es.load_encoder(None)
    out["similarity_speed"] = similarity_speed(enc, args.runs)
    progress(out["similarity_speed"])
    vit = es.load_image_encoder(str(VIT_TINY))
    photos = {name: Image.fromarray(load_sample_image(name)) for name in PHOTOS}
    out["image_speed"] = image_speed(vit, crops(photos), args.runs)
    progress(out["image_speed"])
    out["text_methods"] = text_methods(enc, sample_pairs(args.quick))
    progress(out["text_methods"])
    pictures = dict(photos)
    if not args.quick:
        pictures.update({f"crop {i}": c for i, c in enumerate(crops(photos))})
    out["image_methods"] = image_methods(vit, pictures)
    emit(out)


if __name__ == "__main__":
    main()
