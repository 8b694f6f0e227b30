"""Benchmark: the attention page's server-side work at 16/64/256/512 tokens. Prints one JSON object.

For each model and length: the bare forward pass with attentions, the full rerun (extraction, head stats,
rollout, every figure built and serialised as Streamlit does) and the figure JSON bytes sent.
Models: the bundled MiniLM (real weights) and a bert-base-sized BertModel (random weights: timing only).
real_page: the attention page itself under AppTest (Streamlit caches and all), for a new text and a layer change:
MiniLM at 64 tokens, bert-base size at 512 tokens.
Usage: python bench/attention.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import plotly.io as pio
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import encoderscope as es  # noqa: E402
from encoderscope import figures, models  # noqa: E402
from encoderscope.attention import flag_heads, head_stats, rollout, token_focus  # noqa: E402

LENGTHS = (16, 64, 256, 512)


def text_of(tokenizer, n_tokens: int, shift: int = 0) -> str:
    """A natural-looking text that tokenizes to exactly n_tokens (with [CLS] and [SEP]); `shift` varies it."""
    rng = np.random.default_rng(shift)
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


def bert_base_folder(folder: Path) -> str:
    """The random bert-base-sized model saved as a local model folder (bundled tokenizer), for the real page."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig()).save_pretrained(folder)
    src = models.bundled_encoder_path()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).write_bytes((src / name).read_bytes())
    return str(folder)


def real_page(model_ref: str | None, tokenizer, n_tokens: int, repeats: int) -> dict:
    """The attention page itself under AppTest (model cached): median ms for a new text and for a layer change."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "views" / "attention.py"), default_timeout=600)
    if model_ref:
        at.query_params["model"] = model_ref
    at.query_params["text"] = text_of(tokenizer, n_tokens)
    at.run()  # loads the model
    assert not at.exception, [e.value for e in at.exception]
    texts = iter(text_of(tokenizer, n_tokens, shift=i + 1) for i in range(repeats + 1))
    layers = iter(i % 6 for i in range(1, repeats + 2))
    new_text, _ = timed(lambda: at.text_area(key="text").set_value(next(texts)).run(), repeats)
    layer, _ = timed(lambda: at.slider(key="layer").set_value(next(layers)).run(), repeats)
    assert not at.exception, [e.value for e in at.exception]
    return {"tokens": n_tokens, "new_text_ms": round(new_text, 1), "layer_change_ms": round(layer, 1),
            "charts": len(at.get("plotly_chart"))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = {"torch_threads": torch.get_num_threads(), "repeats": args.repeats, "results": []}
    bundled = es.load_encoder(None)
    with tempfile.TemporaryDirectory() as tmp:
        out["real_page"] = {
            "MiniLM": real_page(None, bundled.tokenizer, 64, args.repeats),
            "bert-base (random)": real_page(bert_base_folder(Path(tmp)), bundled.tokenizer, 512, args.repeats),
        }
    print(json.dumps(out["real_page"]), file=sys.stderr)
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
