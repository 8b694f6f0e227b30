"""The deletion/insertion engine every faithfulness test shares, and its result. No torch.

An explanation ranks n removable units (ordinary tokens, image patches). Step s (0..S) removes the first
`counts[s] = round(s · n / S)` units of an order:

- deletion:  the explanation's order, highest score first: the value should fall fast;
- insertion: everything removed except the `counts[s]` highest-scored units: the value should rise fast;
- random:    `seeds` random orders (a fixed generator: the same curves on every call), deletion only.

Each step is one call of `evaluate(removed)`, with every state of that step (deletion, insertion and each
random order) in one list, so the model runs one batched pass per step. A state seen before (the full input at
step 0, the empty one at step S, where every order agrees) is not run again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import settings
from ..errors import UserFacingError

# removed: one bool mask `[n]` per state of the step -> the explained value of each state `[len(removed)]`
Evaluate = Callable[[list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Curves:
    """A deletion test of one explanation (all curves `[S+1]`, float64 unless stated).

    counts:      int `[S+1]`, units removed at each step, 0 first (deletion, random) / kept (insertion)
    deletion:    the value after removing the `counts[s]` highest-scored units; `deletion[0]` is the explained value
    insertion:   the value with only the `counts[s]` highest-scored units left in (from the fully removed input)
    random:      mean deletion curve over `seeds` random orders;  random_sd: their standard deviation (ddof 0)
    random_runs: `[seeds, S+1]`, each random order's deletion curve
    area_deletion, area_insertion, area_random: the mean of each curve (area under it on a [0, 1] axis)
    comprehensiveness: mean over the interior steps s = 1..S-1 of deletion[0] − deletion[s] (ERASER's AOPC
                 comprehensiveness, DeYoung et al. 2020; higher: the top units carry more of the value)
    sufficiency: mean over the same steps of deletion[0] − insertion[s] (lower: the top units alone suffice)
    measure:     what the value is ("cosine", "probability", "log-probability", ...);  unit: "token", "patch"
    removal:     how a unit is removed ("delete", "mask", "mean colour");  n: removable units;  seeds: random orders
    """

    counts: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random: np.ndarray
    random_sd: np.ndarray
    random_runs: np.ndarray
    measure: str
    unit: str
    removal: str
    n: int
    seeds: int

    @property
    def area_deletion(self) -> float:
        return float(self.deletion.mean())

    @property
    def area_insertion(self) -> float:
        return float(self.insertion.mean())

    @property
    def area_random(self) -> float:
        return float(self.random.mean())

    @property
    def comprehensiveness(self) -> float:
        inner = slice(1, max(2, len(self.counts) - 1))
        return float(np.mean(self.deletion[0] - self.deletion[inner]))

    @property
    def sufficiency(self) -> float:
        inner = slice(1, max(2, len(self.counts) - 1))
        return float(np.mean(self.deletion[0] - self.insertion[inner]))

    @property
    def beats_random(self) -> bool:
        """True when the deletion curve lies lower on average than the random orders' (a smaller area)."""
        return self.area_deletion < self.area_random


def step_counts(n: int, steps: int) -> np.ndarray:
    """int `[S+1]`: units removed at each step, `round(s · n / S)`; S = min(steps, n, the server's
    `attribution_max_steps`): no step repeats, and a step is a forward pass."""
    if n < 1:
        raise UserFacingError("There is nothing to remove: the explanation has no ordinary tokens or patches.")
    if isinstance(steps, bool) or int(steps) < 1:
        raise UserFacingError(f"steps must be a positive whole number, got {steps!r}.")
    S = min(int(steps), n, settings.get().attribution_max_steps)
    return np.round(np.arange(S + 1) * n / S).astype(np.int64)


def check_seeds(seeds: int, top: int = 32) -> int:
    if isinstance(seeds, bool) or not 1 <= int(seeds) <= top:
        raise UserFacingError(f"seeds must be between 1 and {top}, got {seeds!r}.")
    return int(seeds)


def ranking(scores: np.ndarray) -> np.ndarray:
    """Unit indices `[n]`, highest score first (ties keep their position order)."""
    scores = np.asarray(scores, np.float64).ravel()
    if not np.all(np.isfinite(scores)):
        raise UserFacingError("The explanation's scores are not all finite numbers: nothing to test.")
    return np.argsort(-scores, kind="stable")


def run(evaluate: Evaluate, orders: Sequence[np.ndarray], steps: int, seeds: int) -> tuple[np.ndarray, list, np.ndarray]:
    """Run the steps for several explanation orders at once (they share the random orders).

    orders: one ranking `[n]` per explanation. Returns (counts `[S+1]`, per order (deletion, insertion) `[S+1]`
    each, random runs `[seeds, S+1]`). One `evaluate` call per step, 2·len(orders) + seeds states in it.
    """
    n = len(orders[0])
    counts = step_counts(n, steps)
    seeds = check_seeds(seeds)
    rng = np.random.default_rng(0)
    shuffled = [rng.permutation(n) for _ in range(seeds)]
    values = np.zeros((len(counts), 2 * len(orders) + seeds))
    known: dict[bytes, float] = {}  # identical states (nothing or everything removed) run once
    for s, k in enumerate(counts):
        states = []
        for order in orders:
            states.append(_removed(order[:k], n))  # deletion: the top k gone
            states.append(_removed(order[k:], n))  # insertion: only the top k left
        states += [_removed(perm[:k], n) for perm in shuffled]
        new = list({m.tobytes(): m for m in states if m.tobytes() not in known}.values())
        if new:
            found = np.asarray(evaluate(new), np.float64)
            known.update({m.tobytes(): float(v) for m, v in zip(new, found, strict=True)})
        values[s] = [known[m.tobytes()] for m in states]
    pairs = [(values[:, 2 * i], values[:, 2 * i + 1]) for i in range(len(orders))]
    return counts, pairs, values[:, 2 * len(orders) :].T


def deletion(evaluate: Evaluate, order: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """float64 `[len(counts)]`: the value after removing the first `counts[s]` units of `order` `[n]` (a
    permutation, first removed first), every state in one `evaluate` call; no insertion, no random orders."""
    order = np.asarray(order, np.int64)
    return np.asarray(evaluate([_removed(order[: int(k)], len(order)) for k in counts]), np.float64)


def _removed(indices: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[np.asarray(indices, np.int64)] = True
    return mask


def curves(evaluate: Evaluate, scores_by_method: Sequence[np.ndarray], steps: int, seeds: int, **about) -> list[Curves]:
    """`Curves` for each score vector `[n]` (one per method), all against the same random orders.

    `about`: measure, unit, removal (see `Curves`)."""
    orders = [ranking(scores) for scores in scores_by_method]
    if len({len(o) for o in orders}) != 1:
        raise ValueError("every method must score the same units")
    counts, pairs, runs = run(evaluate, orders, steps, seeds)
    return [
        Curves(counts, deletion, insertion, runs.mean(0), runs.std(0), runs, n=len(orders[0]), seeds=runs.shape[0],
               **about)
        for deletion, insertion in pairs
    ]


def table(results: dict[str, Curves] | Curves) -> pd.DataFrame:
    """The curves as CSV-ready rows: method, step, removed, deletion, insertion, random_mean, random_sd and one
    column per random order (random_0, ...)."""
    if isinstance(results, Curves):
        results = {"explanation": results}
    frames = []
    for method, c in results.items():
        frame = pd.DataFrame({
            "method": method, "step": np.arange(len(c.counts)), "removed": c.counts, "deletion": c.deletion,
            "insertion": c.insertion, "random_mean": c.random, "random_sd": c.random_sd,
        })
        for k, run_k in enumerate(c.random_runs):
            frame[f"random_{k}"] = run_k
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def describe(c: Curves, subject: str = "this explanation") -> str:
    """One sentence for the page: does removing what `subject` ranks highest lower the value faster than random?"""
    units = {"token": "tokens", "patch": "patches"}.get(c.unit, c.unit + "s")
    pace = "faster" if c.beats_random else "slower"
    return (
        f"Removing the {units} {subject} ranks highest lowers the {c.measure} {pace} than random removal "
        f"(area under the deletion curve {c.area_deletion:.3f} against {c.area_random:.3f} ± "
        f"{float(c.random_runs.mean(1).std()):.3f} for {c.seeds} random orders; lower is better)."
    )
