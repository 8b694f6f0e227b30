"""Benchmark: the attention page's server-side work at 16/64/256/512 tokens. Prints one JSON object.

For each model and length: the bare forward pass with attentions, the full rerun (extraction, head stats,
rollout, every figure built and serialised as Streamlit does) and the figure JSON bytes sent.
Models: the bundled MiniLM (real weights) and a bert-base-sized BertModel (random weights: timing only).
Usage: python bench/attention.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import plotly.io as pio
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import encoderscope as es  # noqa: E402
from encoderscope import figures, models  # noqa: E402
from encoderscope.attention import flag_heads, head_stats, rollout, token_focus  # noqa: E402

LENGTHS = (16, 64, 256, 512)


def text_of(tokenizer, n_tokens: int) -> str:
    """A natural-looking text that tokenizes to exactly n_tokens (with [CLS] and [SEP])."""
    rng = np.random.default_rng(0)
    words = "the bank of a river was steep and muddy so we went fishing there on sunday morning".split()
    text = " ".join(rng.choice(words, size=n_tokens * 2))
    ids = tokenizer(text, truncation=True, max_length=n_tokens)["input_ids"]
    return tokenizer.decode(ids, skip_special_tokens=True)


def page_rerun(model, text: str) -> int:
    """Everything the attention page computes for a new text; returns the figure JSON bytes."""
    res = es.attention(model, text)
    stats = flag_heads(head_stats(res), len(res.tokens))
    roll = rollout(res)
    figs = [
        figures.attention_heatmap(res.weights[0, 0], res.tokens, 0, 0),
        figures.head_grid(res.weights),
        figures.rollout_heatmap(roll, res.tokens),
        figures.token_focus_heatmap(token_focus(res, 1), res.tokens, 1),
        figures.head_stat_heatmap(stats, "prev"),
    ]
    # Streamlit calls fig.to_dict() and plotly.io.to_json(validate=False) for every chart.
    return sum(len(pio.to_json(f.to_dict(), validate=False)) for f in figs)


def forward(model, text: str) -> None:
    enc = model.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        model.model(**enc, output_attentions=True)


def timed(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, out


def bert_base():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bundled = es.load_encoder(None)
    model = BertModel(BertConfig(attn_implementation="eager")).eval()
    return models.LoadedModel(model, bundled.tokenizer, "bert-base (random)", "encoder", "local")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = {"torch_threads": torch.get_num_threads(), "repeats": args.repeats, "results": []}
    for model in (es.load_encoder(None), bert_base()):
        for n in LENGTHS:
            text = text_of(model.tokenizer, n)
            fwd_ms, _ = timed(lambda m=model, t=text: forward(m, t), args.repeats)
            rerun_ms, payload = timed(lambda m=model, t=text: page_rerun(m, t), args.repeats)
            out["results"].append({
                "model": model.name, "layers": model.num_layers, "heads": model.num_heads, "tokens": n,
                "forward_ms": round(fwd_ms, 1), "rerun_ms": round(rerun_ms, 1),
                "overhead_x": round(rerun_ms / fwd_ms, 2), "figure_bytes": payload,
            })
            print(json.dumps(out["results"][-1]), file=sys.stderr)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
