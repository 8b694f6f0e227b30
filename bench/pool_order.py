"""The compute pool's queue order alone: simulated users on `Pool(2)` whose jobs sleep instead of computing (so the
CPU, and other people's load on it, play no part), in arrival order (patience 0, no express worker: first come,
first served, the order before issue 24), in the pool's start-by order (quick kinds first, `compute.PATIENCE`)
and in that order with the express worker (the pool's default). Prints JSON.

Each user repeats one of four actions, chosen at random (seeded), with 0.5 s between them; each action is the
pool jobs the load test's action makes, with run times of the order the pool's log shows for them on 2 cores:
type sentence and switch layer (one attention pass, 0.15 s), embed 200 sentences (two embedding blocks, 1.0 and
0.6 s, and a projection, 0.3 s), upload image (a VAE round trip, 2 s). Reported per action: its p50 latency
and the ratio to its fair share (its run time alone × users ÷ 2 workers), as the load test reports it. The load
test (`bench/load.py`) measures the real thing; this isolates what the order changes.

Usage: python bench/pool_order.py [--users 8 16] [--seconds 40] [--quick]
"""

from __future__ import annotations

import random
import statistics
import threading
import time

from _common import arguments, emit, machine, parse, progress

from encoderscope import compute

WORKERS = 2
ACTIONS = {
    "type sentence": [("attention", 0.15)],
    "switch layer": [("attention", 0.15)],
    "embed 200 sentences": [("embedding", 1.0), ("embedding", 0.6), ("projection", 0.3)],
    "upload image": [("VAE round trip", 2.0)],
}
THINK_S = 0.5


def simulate(users: int, seconds: float, patience: float, express: bool) -> dict:
    """p50 latency and fair-share ratio per action for `users` users on a pool with this `patience` and `express`."""
    pool = compute.Pool(WORKERS, threads=1, timeout=None, patience=patience, express=express)
    kinds = {kind: s for jobs in ACTIONS.values() for kind, s in jobs}
    for kind, s in kinds.items():  # as the load test's warm-up: the pool has seen each kind once
        pool.run(kind, None, time.sleep, s)
    latency: dict[str, list[float]] = {action: [] for action in ACTIONS}

    def user(i: int) -> None:
        rng, end = random.Random(i), time.monotonic() + seconds
        while time.monotonic() < end:
            action = rng.choice(list(ACTIONS))
            start = time.monotonic()
            for kind, s in ACTIONS[action]:
                pool.run(kind, None, time.sleep, s)
            latency[action].append(time.monotonic() - start)
            time.sleep(THINK_S)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.shutdown()
    out = {}
    for action, values in latency.items():
        alone = sum(s for _, s in ACTIONS[action])
        p50 = statistics.median(values)
        out[action] = {"n": len(values), "p50_s": round(p50, 2), "alone_s": round(alone, 2),
                       "ratio_to_fair_share": round(p50 / (alone * users / WORKERS), 2)}
    return out


def both_orders(users: int, seconds: float) -> dict[str, dict]:
    """`simulate` in each order, at the same time (sleeping jobs share no CPU)."""
    found: dict[str, dict] = {}
    start_by = f"start-by order (patience {compute.PATIENCE:g})"
    runs = {"arrival order": (0.0, False), start_by: (compute.PATIENCE, False),
            f"{start_by} and express worker (default)": (compute.PATIENCE, True)}

    def one(name: str, setting: tuple[float, bool]) -> None:
        found[name] = simulate(users, seconds, *setting)

    threads = [threading.Thread(target=one, args=item) for item in runs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return found


def main() -> None:
    parser = arguments(__doc__, runs=None)
    parser.add_argument("--users", type=int, nargs="+", default=None, help="users per run (default 8 16)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 40)")
    args = parse(parser)
    users = args.users or ([4] if args.quick else [8, 16])
    seconds = args.seconds or (5 if args.quick else 40)
    out = {"machine": machine(), "quick": args.quick, "workers": WORKERS, "seconds": seconds, "results": {}}
    for n in users:
        found = both_orders(n, seconds)
        out["results"][f"{n} users"] = found
        progress({f"{n} users": found})
    emit(out)


if __name__ == "__main__":
    main()
