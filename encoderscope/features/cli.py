"""`python -m encoderscope atlas features DIR ...`: the parser and the handler (registered by atlas/cli.py)."""

from __future__ import annotations

import sys

USAGE = "python -m encoderscope atlas features DIR [--features 4096] [--k 32] [--seed 0] [--epochs N]"


def add_parser(commands) -> None:
    """Add `features` to the atlas subcommands `commands`."""
    p = commands.add_parser("features", usage=USAGE,
                            help="learn a sparse autoencoder dictionary of the atlas's vectors, with names")
    p.add_argument("dir", help="an atlas folder (from `atlas build`)")
    p.add_argument("--features", type=int, default=4096, help="dictionary size (at least 2 vectors per feature)")
    p.add_argument("--k", type=int, default=32, help="features active per vector")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="passes over the vectors (default: by corpus size)")


def run(args) -> int:
    """Train and write the features (the error path: `encoderscope.cli.run_cli`)."""
    from ..cli import run_cli

    return run_cli(lambda: _train(args), interrupted="nothing was written")


def _train(args) -> int:
    from tqdm import tqdm

    from .atlas_files import train_atlas

    bar = tqdm(desc="train", unit="batch", file=sys.stderr)

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "train":
            bar.total = total
            bar.update(done - bar.n)
        elif done == 0:  # describe, write: short stages, one line each
            print(f"{stage} …", file=sys.stderr, flush=True)

    try:
        info = train_atlas(args.dir, args.features, args.k, seed=args.seed, epochs=args.epochs, progress=progress)
    finally:
        bar.close()
    print(f"wrote features to {args.dir}: {info['n_features']} features, k = {info['k']}, {info['epochs']} epochs "
          f"over {info['N']} vectors; FVU {info['fvu']:.3f}, {info['dead']} dead "
          f"({100 * info['dead_fraction']:.1f} %)")
    return 0
