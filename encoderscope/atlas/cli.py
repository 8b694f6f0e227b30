"""`python -m encoderscope atlas build ...`: the parser and the handler (kept here so __main__ stays small)."""

from __future__ import annotations

import argparse
import sys

from ..features import cli as features_cli

USAGE = """\
python -m encoderscope atlas build CORPUS --text-column text [--label-column label] --out DIR
       [--model REF] [--pooling auto|mean|cls] [--engine local|dask] [--scheduler ADDRESS] [--seed 0]
python -m encoderscope atlas build --vectors V.npy --meta M.csv [--text-column text] [--model REF] --out DIR"""


def add_parser(sub) -> None:
    """Add `atlas build` to the subcommands `sub` of the main parser."""
    atlas = sub.add_parser("atlas", help="map a whole corpus: embed, lay out, cluster, find near-duplicates")
    commands = atlas.add_subparsers(dest="atlas_command", required=True)
    p = commands.add_parser("build", help="build an atlas folder", usage=USAGE,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", nargs="?", default=None, help="CSV/TSV, Parquet, JSON Lines or plain text (a line each)")
    p.add_argument("--vectors", default=None, help="precomputed [N, D] .npy instead of a corpus (needs --meta)")
    p.add_argument("--meta", default=None, help="the text (and label) of each vector: CSV/TSV, Parquet or JSONL")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default=None)
    p.add_argument("--out", required=True, help="atlas folder to write")
    p.add_argument("--model", default=None, help="hub id or local folder (default: bundled all-MiniLM-L6-v2)")
    p.add_argument("--revision", default=None)
    p.add_argument("--pooling", default="auto", choices=["auto", "mean", "cls"])
    p.add_argument("--engine", default="local", choices=["local", "dask"])
    p.add_argument("--scheduler", default=None, help="an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-size", type=int, default=1024, help="texts per resumable shard (and Dask task)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--duplicate-threshold", type=float, default=0.95, help="cosine above which pairs are listed")
    from . import compare  # `atlas compare`: its own module

    compare.add_parser(commands)
    features_cli.add_parser(commands)


def run(args) -> int:
    """Run `atlas build` (or `features`, `compare`); every one ends through `encoderscope.cli.run_cli`: a
    UserFacingError becomes `error: ...` on stderr and exit status 2, never a traceback."""
    if getattr(args, "atlas_command", "build") == "compare":
        from . import compare

        return compare.run(args)
    if args.atlas_command == "features":
        return features_cli.run(args)
    if (args.corpus is None) == (args.vectors is None):
        print("error: give either CORPUS or --vectors V.npy --meta M.csv\n" + USAGE, file=sys.stderr)
        return 2
    from ..cli import run_cli

    return run_cli(lambda: _build(args), interrupted="run the same command again to continue from the finished shards")


def _build(args) -> int:
    from tqdm import tqdm

    from . import builder

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="shard" if stage == "embed" else "step",
                                     file=sys.stderr)
        bar.update(done - bar.n)

    try:
        info = builder.build(
            args.out, args.corpus, text_column=args.text_column, label_column=args.label_column,
            vectors=args.vectors, meta=args.meta, model=args.model, revision=args.revision, pooling=args.pooling,
            engine=args.engine, scheduler=args.scheduler, seed=args.seed, shard_size=args.shard_size,
            batch_size=args.batch_size, threshold=args.duplicate_threshold, progress=progress,
        )
    finally:
        for bar in bars.values():
            bar.close()
    for notice in info.get("notices", []):
        print(f"note: {notice}", file=sys.stderr)
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in info["seconds"].items())
    print(f"wrote atlas {args.out}: {info['N']} points, D = {info['D']}, {info['clusters']} clusters, "
          f"{info['duplicates']['pairs']} near-duplicate pairs ({seconds})")
    return 0
