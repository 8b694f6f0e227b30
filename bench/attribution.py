"""Benchmark: attribution against the forward passes it builds on (bundled MiniLM and SmolLM2). Prints JSON.

Usage: python bench/attribution.py [--runs 5] [--quick]   (--quick: 1 run, IG at 8 steps)

decomposition_vs_embed: es.explain_similarity(method="decomposition") vs es.embed of the same two texts (target
  ratio <= 1.5);
integrated_gradients_32_steps_64_tokens: es.explain_similarity(method="integrated_gradients", steps=32) for two
  64-token texts (target <= 3 s);
logit_lens_vs_forward_64_tokens: es.logit_lens vs SmolLM2's forward pass (with its logits) at 64 tokens (target
  ratio <= 1.5);
query_key_vs_forward: es.query_key vs one forward pass of the same text (target ratio <= 1.3), MiniLM and
  SmolLM2 at 64 tokens.
Every timed run gets new texts (the words rotate), so no cache can answer. Variants that are compared take turns
(round robin) and each median comes from exactly `runs` timed runs after one warm-up; ratios are of medians from
the same run.
"""

from __future__ import annotations

import statistics
from itertools import count

import torch
from _common import arguments, emit, machine, parse, progress, round_robin, summary_ms

import encoderscope as es

WORDS = ("the bank of the river was steep and muddy so we went fishing there on a quiet morning while a "
         "man played guitar on the stage and someone performed music with an old instrument ").split()


def text_of(tokenizer, n: int, shift: int) -> str:
    """About `n` tokens (special tokens excluded) of plain English; `shift` rotates the words."""
    k = shift % len(WORDS)
    words = (WORDS[k:] + WORDS[:k]) * 8
    ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"][:n]
    return tokenizer.decode(ids, skip_special_tokens=True)


def texts(tokenizer, n: int):
    """A fresh (text_a, text_b) pair on every call."""
    counter = count(1)

    def fresh():
        i = next(counter)
        return text_of(tokenizer, n, 2 * i), text_of(tokenizer, n, 2 * i + 7)

    return fresh


def compare(fns: dict, runs: int, base: str) -> dict:
    times = round_robin(fns, runs)
    out = {name: summary_ms(t) for name, t in times.items()}
    for name, t in times.items():
        if name != base:
            out[f"ratio_{name}_to_{base}"] = round(statistics.median(t) / statistics.median(times[base]), 2)
    return out


def main() -> None:
    args = parse(arguments(__doc__, runs=5))
    enc, dec = es.load_encoder(None), es.load_decoder(None)
    out: dict = {"machine": machine(), "runs": args.runs}
    torch.set_grad_enabled(True)

    pair = texts(enc.tokenizer, 24)
    out["decomposition_vs_embed_24_tokens"] = compare(
        {
            "embed": lambda: es.embed(enc, list(pair())),
            "decomposition": lambda: es.explain_similarity(enc, *pair(), method="decomposition"),
        },
        args.runs,
        "embed",
    )
    progress(out)

    steps = 8 if args.quick else 32
    pair64 = texts(enc.tokenizer, 62)  # + [CLS] and [SEP] = 64 tokens per text
    ig = round_robin({"ig": lambda: es.explain_similarity(enc, *pair64(), method="integrated_gradients", steps=steps)},
                     args.runs)["ig"]
    a, b = pair64()
    check = es.explain_similarity(enc, a, b, method="integrated_gradients", steps=steps)
    out[f"integrated_gradients_{steps}_steps_64_tokens"] = {
        **summary_ms(ig), "tokens": [len(check.tokens_a), len(check.tokens_b)], "completeness": check.completeness,
    }
    progress(out)

    one = texts(dec.tokenizer, 64)

    def forward(model, text):
        ids = model.tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            return model.model(input_ids=ids)

    out["logit_lens_vs_forward_64_tokens"] = compare(
        {"forward": lambda: forward(dec, one()[0]), "logit_lens": lambda: es.logit_lens(dec, one()[0])},
        args.runs,
        "forward",
    )
    progress(out)

    for name, model in (("minilm", enc), ("smollm2", dec)):
        fresh = texts(model.tokenizer, 62)
        out[f"query_key_vs_forward_{name}_64_tokens"] = compare(
            {"forward": lambda m=model, f=fresh: forward(m, f()[0]),
             "query_key": lambda m=model, f=fresh: es.query_key(m, f()[0], 2, 1)},
            args.runs,
            "forward",
        )
        progress(out)
    emit(out)


if __name__ == "__main__":
    main()
