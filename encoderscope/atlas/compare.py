"""`python -m encoderscope atlas compare DIR_A DIR_B [--k 10] [--name NAME] [--out DIR]`: two atlases of one corpus, compared.

The two atlases must hold the same corpus (the same ids with the same texts; any order) embedded by different
models. For every point: the share of its k nearest neighbours in a's full vector space that are also nearest in
b's (`es.compare.neighbours`, exact, cosine, self excluded), and b's 2-D map aligned onto a's (orthogonal
Procrustes with scale and shift, `es.compare.align`), so the Atlas page can colour a's map by overlap and draw b's
map beside it in the same frame, with linked selection by id.

Files written into DIR_A (or --out DIR; atomically, `io.write_atomic`), NAME defaulting to DIR_B's folder name (letters,
digits, `._-`; anything else becomes `_`):

- `compare-NAME.parquet`, one row per point, in a's row order:
    id            int64    the point id (as in a's points.parquet)
    overlap       float32  |kNN_a ∩ kNN_b| / k, in [0, 1]
    x_b, y_b      float32  b's map coordinates after alignment onto a's (same frame as a's x, y)
    neighbours_a  list<int64>  the k nearest ids under a, nearest first
    neighbours_b  list<int64>  the k nearest ids under b, nearest first
- `compare-NAME.json`: {"format": 1, "name", "a": DIR_A, "b": DIR_B, "model_a", "model_b" (atlas.json "model",
  or null), "N", "k", "mutual_knn" (mean overlap), "exact" (true: exact k-NN), "recall" (null when exact),
  "disparity" (Procrustes, [0, 1]), "scale", "rotation" ([[2x2]]), "shift" ([2]), "movers" (the 20 ids of
  lowest overlap, lowest first), "notes" ([str]), "seconds" ({"neighbours", "align", "write"}),
  "parquet": "compare-NAME.parquet"}.

`load_compare(dir_a, name=None)` reads them back (name None: the only comparison, or the newest).
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import AtlasError, write_atomic
from .store import load

FORMAT = 1
PREFIX = "compare-"


@dataclass
class Comparison:
    """A stored comparison: points (DataFrame: id, overlap, x_b, y_b, neighbours_a, neighbours_b, in a's row
    order) and meta (the JSON above)."""

    points: object
    meta: dict


def safe_name(name: str) -> str:
    """A file-name-safe version of `name` (letters, digits, `._-`), never empty."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)).strip("._") or "b"
    return clean[:80]


def _same_corpus(a, b) -> np.ndarray:
    """Row order of b that matches a's rows (by id), after checking both hold the same ids with the same texts."""
    ids_a, ids_b = a.points["id"].to_numpy(), b.points["id"].to_numpy()
    if len(ids_a) != len(ids_b) or not np.array_equal(np.sort(ids_a), np.sort(ids_b)):
        raise AtlasError(
            f"These atlases hold different corpora: {len(ids_a)} points in {a.path} and {len(ids_b)} in {b.path}, "
            "with different ids. Compare two atlases built from the same corpus (same rows) with different models."
        )
    pos_b = {int(i): r for r, i in enumerate(ids_b)}
    order = np.fromiter((pos_b[int(i)] for i in ids_a), np.int64, len(ids_a))
    texts_a = a.points["text"].astype(str).to_numpy()
    texts_b = b.points["text"].astype(str).to_numpy()[order]
    differ = texts_a != texts_b
    if differ.any():
        first = int(ids_a[np.flatnonzero(differ)[0]])
        raise AtlasError(
            f"These atlases hold different corpora: {int(differ.sum())} ids carry different texts (first: id "
            f"{first}). Compare two atlases built from the same corpus with different models."
        )
    return order


def compare_atlases(dir_a, dir_b, k: int = 10, name: str | None = None, out=None, progress=None) -> dict:
    """Compare atlas `dir_b` with atlas `dir_a` (same corpus, different models) and store the result in `dir_a`
    (or in folder `out`; the Atlas page looks in `dir_a`).

    Returns the JSON written (see the module docstring). Raises AtlasError (a UserFacingError) for a missing or
    damaged atlas or different corpora, and CompareError for k out of range.
    """
    from ..compare import align, neighbours

    a, b = load(dir_a), load(dir_b)
    if Path(a.path).resolve() == Path(b.path).resolve():
        raise AtlasError("Both arguments are the same atlas: give the atlas of another model as DIR_B.")
    order = _same_corpus(a, b)
    seconds = {}
    start = time.perf_counter()
    Vb = b.vectors if np.array_equal(order, np.arange(len(order))) else np.asarray(b.vectors)[order]
    ids = a.points["id"].to_numpy()
    nb = neighbours(a.vectors, Vb, k=k, ids=ids, progress=progress)
    seconds["neighbours"] = time.perf_counter() - start
    start = time.perf_counter()
    Ya = a.points[["x", "y"]].to_numpy(np.float64)
    Yb = b.points[["x", "y"]].to_numpy(np.float64)[order]
    al = align(Ya, Yb)
    seconds["align"] = time.perf_counter() - start
    start = time.perf_counter()
    name = safe_name(name or Path(b.path).resolve().name)
    folder = Path(out) if out is not None else Path(a.path)
    parquet = folder / f"{PREFIX}{name}.parquet"
    _write_points(parquet, ids, nb, al.aligned)
    seconds["write"] = time.perf_counter() - start
    info = dict(
        format=FORMAT, name=name, a=str(a.path), b=str(b.path), model_a=a.meta.get("model"),
        model_b=b.meta.get("model"), N=int(len(ids)), k=int(nb.k), mutual_knn=nb.mutual_knn, exact=nb.exact,
        recall=nb.recall, disparity=al.disparity, scale=al.scale, rotation=al.rotation.tolist(),
        shift=al.shift.tolist(), movers=[int(i) for i in nb.movers[:20]], notes=list(nb.notes), seconds=seconds,
        parquet=parquet.name,
    )
    write_atomic(folder / f"{PREFIX}{name}.json", lambda tmp: tmp.write_text(json.dumps(info, indent=1)))
    return info


def _write_points(path: Path, ids: np.ndarray, nb, aligned: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    k = nb.k

    def as_lists(rows: np.ndarray) -> pa.Array:  # [N, k] row positions -> list<int64> of ids
        flat = pa.array(ids[rows].ravel(), pa.int64())
        return pa.ListArray.from_arrays(pa.array(np.arange(0, rows.size + 1, k, dtype=np.int32)), flat)

    table = pa.table({
        "id": pa.array(ids, pa.int64()),
        "overlap": pa.array(nb.overlap.astype(np.float32)),
        "x_b": pa.array(aligned[:, 0].astype(np.float32)),
        "y_b": pa.array(aligned[:, 1].astype(np.float32)),
        "neighbours_a": as_lists(nb.neighbours_a),
        "neighbours_b": as_lists(nb.neighbours_b),
    })
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def list_compares(dir_a) -> list[str]:
    """Names of the comparisons stored in atlas folder `dir_a`, newest first."""
    files = sorted(Path(dir_a).glob(f"{PREFIX}*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.stem[len(PREFIX):] for p in files if (p.with_suffix(".parquet")).is_file()]


def load_compare(dir_a, name: str | None = None) -> Comparison:
    """The comparison `name` stored in atlas folder `dir_a` (None: the newest); AtlasError when there is none."""
    import pandas as pd

    names = list_compares(dir_a)
    if not names:
        raise AtlasError(f"No comparison in {str(dir_a)!r}: run `python -m encoderscope atlas compare {dir_a} DIR_B`.")
    if name is None:
        name = names[0]
    elif safe_name(name) not in names:
        raise AtlasError(f"No comparison named {name!r} in {str(dir_a)!r}; there are: {', '.join(names)}.")
    base = Path(dir_a) / f"{PREFIX}{safe_name(name)}"
    try:
        meta = json.loads(base.with_suffix(".json").read_text())
        points = pd.read_parquet(base.with_suffix(".parquet"))
    except Exception as err:
        raise AtlasError(f"The comparison {name!r} in {str(dir_a)!r} is damaged: {type(err).__name__}.") from err
    return Comparison(points, meta)


# --- command line (registered by atlas/cli.py) ---------------------------------------------------------------

USAGE = "python -m encoderscope atlas compare DIR_A DIR_B [--k 10] [--name NAME] [--out DIR]"


def add_parser(commands) -> None:
    """Add `atlas compare` to the atlas subcommands."""
    p = commands.add_parser("compare", usage=USAGE,
                            help="neighbour overlap and aligned maps of two atlases of the same corpus")
    p.add_argument("dir_a", help="the atlas to annotate (the comparison is stored here)")
    p.add_argument("dir_b", help="an atlas of the same corpus built with another model")
    p.add_argument("--k", type=int, default=10, help="nearest neighbours per point (default 10)")
    p.add_argument("--name", default=None, help="name of the comparison (default: DIR_B's folder name)")
    p.add_argument("--out", default=None, help="folder for the two files (default: DIR_A, where the page looks)")


def run(args) -> int:
    """`atlas compare` (the error path: `encoderscope.cli.run_cli`)."""
    from ..cli import run_cli

    return run_cli(lambda: _compare(args), interrupted="the comparison is incomplete: run the same command again")


def _compare(args) -> int:
    info = compare_atlases(args.dir_a, args.dir_b, k=args.k, name=args.name, out=args.out)
    for note in info["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {info['parquet']} in {args.out or args.dir_a}: N = {info['N']}, k = {info['k']}, mutual k-NN "
          f"{info['mutual_knn']:.3f}, map disparity {info['disparity']:.3f} ({info['seconds']['neighbours']:.1f} s)")
    return 0
