"""What every bench script shares: the repository on sys.path, timing, the machine's state, JSON output.

Run a script as `python bench/<name>.py`: Python puts bench/ on sys.path, so `import _common` works, and
importing it puts the repository root there too (for `encoderscope`, `views/` and `tests.e2e`).

Honesty rules the helpers enforce: a median reported as "of N" comes from exactly N timed runs (after one
untimed warm-up call unless the caller says otherwise), and every script records how busy the machine was
at its start and end, since other work on a shared machine skews every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # benchmarks use bundled or local weights only: never download


def median_time(fn: Callable[[], object], runs: int, warm: bool = True) -> tuple[float, list[float]]:
    """Median wall time in seconds of exactly `runs` timed calls of `fn`, and the `runs` times themselves.

    `warm`: call `fn` once, untimed, first (model caches, allocator arenas, lazy imports).
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if warm:
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def round_robin(fns: dict[str, Callable[[], object]], runs: int, warm: bool = True) -> dict[str, list[float]]:
    """Exactly `runs` timed calls (seconds) of each function, taking turns: A B C A B C ...

    Load from other processes then hits every variant alike, which matters when they are compared.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if warm:
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def ms(seconds: float) -> float:
    """Seconds -> milliseconds, rounded to 0.1 ms for the JSON."""
    return round(seconds * 1000, 1)


def summary_ms(times: list[float]) -> dict:
    """{median_ms, min_ms, runs} of a list of seconds: the median carries other people's load on a shared
    machine, the minimum is closer to the machine's own speed."""
    return {"median_ms": ms(statistics.median(times)), "min_ms": ms(min(times)), "runs": len(times)}


def load_avg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(v, 2) for v in os.getloadavg()]


def machine() -> dict:
    """The machine's size and how busy it is now; `emit` adds the load average at the end."""
    info: dict = {"cpus": os.cpu_count(), "load_avg_start": load_avg()}
    torch = sys.modules.get("torch")  # only when the script uses torch: importing it costs seconds
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def progress(obj) -> None:
    """A partial result on stderr (one line), so a long run shows where it is; stdout stays one JSON object."""
    print(json.dumps(obj), file=sys.stderr, flush=True)


def emit(out: dict) -> None:
    """Print `out` as the script's one JSON object on stdout, with the load average at the end added to
    `out["machine"]` (when the script recorded `machine()` there)."""
    if isinstance(out.get("machine"), dict):
        out["machine"]["load_avg_end"] = load_avg()
    print(json.dumps(out, indent=1))


def arguments(doc: str | None, runs: int | None) -> argparse.ArgumentParser:
    """A parser with the options every script has: --quick, and --runs N (alias --repeats) unless `runs` is None
    (a script that takes no medians).

    Call `parse` on it, not `parse_args`: it settles `runs` (1 under --quick unless given).
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if runs is not None:
        parser.add_argument(
            "--runs", "--repeats", dest="runs", type=int, default=None,
            help=f"timed runs behind every median (default {runs}; 1 with --quick)",
        )
    parser.add_argument("--quick", action="store_true", help="a small, fast sanity run (proves the script works)")
    parser.set_defaults(default_runs=runs)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.default_runs is not None:
        if args.runs is None:
            args.runs = 1 if args.quick else args.default_runs
        if args.runs < 1:
            parser.error("--runs must be at least 1")
    return args
