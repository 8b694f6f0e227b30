"""The compute pool (encoderscope.compute): bounded, in order, shared, cancellable, with timeouts and logs."""

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from encoderscope import compute

WAIT = 10  # seconds: a generous bound on things that should take milliseconds
ROOT = Path(__file__).resolve().parents[2]


def run_fresh(code: str) -> None:
    """Run `code` in a new interpreter at the repository root; its assertion message is the failure."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture
def make_pool():
    made = []

    def make(*args, **kwargs):
        made.append(compute.Pool(*args, **kwargs))
        return made[-1]

    yield make
    for pool in made:
        pool.shutdown()


def blocker():
    """A job function that holds its worker until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def hold():
        started.set()
        assert release.wait(WAIT), "the test never released this job"
        return "held"

    return hold, release, started


def test_at_most_workers_jobs_run_at_once(make_pool):
    # Bug caught: an unbounded pool (a thread per job, or a semaphore released early) letting 8 users run at once.
    pool = make_pool(2, timeout=None)
    lock, running, peak = threading.Lock(), [0], [0]

    def job():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    tickets = [pool.submit("test", None, job) for _ in range(8)]
    for ticket in tickets:
        ticket.result(WAIT)
    assert peak[0] == 2


def test_a_withdrawn_sessions_queued_job_never_runs(make_pool):
    # Bug caught: a closed tab's job still computed (cancel ignored, or only marked after it was dequeued).
    pool = make_pool(1, timeout=None)
    hold, release, started = blocker()
    first = pool.submit("test", None, hold, owner="alice")
    assert started.wait(WAIT)
    ran = []
    gone = pool.submit("test", None, lambda: ran.append("bob"), owner="bob")
    kept = pool.submit("test", None, lambda: ran.append("carol"), owner="carol")
    assert pool.position(kept.job) == 1
    assert pool.cancel_owner("bob") == 1
    assert pool.position(kept.job) == 0  # carol moved up
    release.set()
    assert first.result(WAIT) == "held"
    kept.result(WAIT)
    assert ran == ["carol"]
    assert gone.job.state == compute.DROPPED and pool.stats().queued == 0


def test_a_job_still_wanted_by_another_session_is_not_dropped(make_pool):
    # Bug caught: one session leaving drops a shared job another session is still waiting for.
    pool = make_pool(1, timeout=None)
    hold, release, started = blocker()
    pool.submit("test", None, hold)
    assert started.wait(WAIT)
    pool.submit("test", "same", lambda: "value", owner="a")
    b = pool.submit("test", "same", lambda: "value", owner="b")
    pool.cancel_owner("a")
    release.set()
    assert b.result(WAIT) == "value"


def test_identical_concurrent_requests_run_once(make_pool):
    # Bug caught: two users opening the default page running the same forward pass twice.
    pool = make_pool(2, timeout=None)
    calls, gate = [], threading.Event()

    def forward(text):
        calls.append(text)
        gate.wait(WAIT)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(pool.run("attention", ("m", "bank"), forward, "bank")))
               for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.2)  # all three submitted while the first is in flight
    gate.set()
    for t in threads:
        t.join(WAIT)
    assert calls == ["bank"]
    assert len(results) == 3 and results[0] is results[1] is results[2]
    # once finished, the same request computes again (the pool is not a cache)
    assert pool.run("attention", ("m", "bank"), forward, "bank") is not results[0] and len(calls) == 2


def test_a_failing_job_tells_its_own_caller_and_the_pool_goes_on(make_pool):
    # Bug caught: an exception killing the worker (later jobs hang), or reaching the wrong session.
    pool = make_pool(1, timeout=None)

    def boom():
        raise TypeError("bad input for alice")

    alice = pool.submit("test", None, boom, owner="alice")
    bob = pool.submit("test", None, lambda: "bob's result", owner="bob")
    with pytest.raises(TypeError, match="bad input for alice"):
        alice.result(WAIT)
    assert bob.result(WAIT) == "bob's result"
    assert pool.run("test", None, lambda: 42) == 42  # the single worker survived
    assert pool.stats().running == 0


def test_a_hung_job_times_out_for_its_user_and_does_not_block_the_others(make_pool):
    # Bug caught: a job stuck forever holding the only worker (everyone waits), or its user waiting forever.
    pool = make_pool(1, timeout=0.5)
    hold, release, started = blocker()
    hung = pool.submit("embedding", None, hold, owner="alice")
    other = pool.submit("test", None, lambda: "done", owner="bob")
    try:
        with pytest.raises(compute.JobTimeout, match=r"embedding took more than 0\.5 s"):
            hung.result(WAIT)
        assert other.result(WAIT) == "done"  # a replacement worker took it
        assert pool.run("test", None, lambda: "later") == "later"
        assert pool.stats().running == 0  # the hung job no longer counts against the workers
    finally:
        release.set()


def test_long_lane_leaves_a_worker_for_short_jobs(make_pool):
    # Bug caught: two 10^4-sentence corpora taking both workers while a layer change waits behind them.
    pool = make_pool(2, long_workers=1, timeout=None)
    hold, release, started = blocker()
    pool.submit("big corpus", None, hold, lane="long")
    assert started.wait(WAIT)
    second = pool.submit("big corpus", None, lambda: "long", lane="long")
    short = pool.submit("attention", None, lambda: "short")
    try:
        assert short.result(WAIT) == "short"
        assert second.job.state == compute.QUEUED  # still waiting for the long lane
    finally:
        release.set()
    assert second.result(WAIT) == "long"


def test_position_counts_the_jobs_ahead(make_pool):
    pool = make_pool(1, timeout=None)
    hold, release, started = blocker()
    pool.submit("test", None, hold)
    assert started.wait(WAIT)
    waiting = [pool.submit("test", None, lambda: None) for _ in range(3)]
    assert [pool.position(t.job) for t in waiting] == [0, 1, 2]
    assert pool.stats().queued == 3
    release.set()
    for ticket in waiting:
        ticket.result(WAIT)


def test_jobs_run_with_the_thread_limit():
    # Bug caught: workers × threads > cores (each job's torch using every core, the thrash the pool exists to stop).
    # In a fresh process: libraries that earlier tests loaded and tuned in this one must not decide the outcome.
    run_fresh("""
import numpy, scipy.linalg, torch
from threadpoolctl import threadpool_info
from encoderscope import compute
pool = compute.Pool(2, threads=1, burst=False, timeout=None)
assert pool.run("test", None, torch.get_num_threads) == 1
libs = pool.run("test", None, lambda: [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info()])
assert libs and {n for _, n in libs} <= {1}, libs
assert compute.Pool(3).threads == max(1, compute.cores() // 3)
""")


def test_a_job_alone_gets_every_core_and_the_threads_never_add_up_past_them(make_pool):
    # Bug caught: one user alone slowed down to one thread (the pool must not slow a single user), or a job alone
    # bursting to every core while others start beside it (oversubscription again).
    torch = pytest.importorskip("torch")
    pool = make_pool(2, threads=1, timeout=None)  # 2 thread slots; a job alone gets min(cores, 2)
    alone = min(compute.cores(), 2)
    assert pool.run("test", None, torch.get_num_threads) == alone
    lock, live, peak = threading.Lock(), [0], [0]

    def job():
        n = torch.get_num_threads()
        with lock:
            live[0] += n
            peak[0] = max(peak[0], live[0])
        time.sleep(0.1)
        with lock:
            live[0] -= n
        return n

    tickets = [pool.submit("test", None, job)]
    deadline = time.monotonic() + WAIT
    while tickets[0].job.state == compute.QUEUED and time.monotonic() < deadline:
        time.sleep(0.005)
    tickets += [pool.submit("test", None, job) for _ in range(11)]  # they arrive while the first runs alone
    counts = [t.result(WAIT) for t in tickets]
    assert counts[0] == alone
    assert peak[0] <= 2  # never more threads at once than slots (= cores here)
    assert counts[1:-1] == [1] * 10  # with jobs queued behind it, each job gets its share: one thread
    long = pool.run("big corpus", None, torch.get_num_threads, lane="long")
    assert long == 1  # a long job never takes every core


def test_one_log_line_per_job(make_pool):
    # Bug caught: jobs the operator cannot see (no line), or lines without the wait and run times.
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("encoderscope")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        pool = make_pool(1, timeout=None)
        pool.run("embedding", None, lambda: time.sleep(0.2))
        with pytest.raises(ValueError):
            pool.run("projection", None, lambda: (_ for _ in ()).throw(ValueError("x")))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [r.getMessage() for r in records if "job" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].startswith("encoderscope: job embedding done: waited 0.")
    ran = float(lines[0].split("ran ")[1].split(" s")[0])
    assert 0.15 <= ran < 5
    assert "job projection failed (ValueError)" in lines[1]


def test_progress_reports_reach_the_job_in_order(make_pool):
    # Bug caught: a slow VAE's stage reports lost on the way from the worker to the waiting page.
    pool = make_pool(1, timeout=None)

    def work(n, progress):
        for i in range(n):
            progress((i + 1) / n, f"stage {i + 1}")
        return n

    ticket = pool.submit("VAE round trip", None, work, 3, reporting=True)
    assert ticket.result(WAIT) == 3
    assert ticket.job.reports == [(1 / 3, "stage 1"), (2 / 3, "stage 2"), (1.0, "stage 3")]


def test_a_job_may_carry_its_own_time_limit(make_pool):
    # Bug caught: a background build's placeholder job (it holds a long-lane worker while the build process runs)
    # cut off at the pool's 120 s, or a per-job limit ignored.
    pool = make_pool(2, timeout=0.3)
    assert pool.submit("atlas build", None, time.sleep, 0.8, lane="long", timeout=None).result(WAIT) is None
    with pytest.raises(compute.JobTimeout, match="more than 0.2 s"):
        pool.submit("test", None, time.sleep, 2, timeout=0.2).result(WAIT)
    assert compute.thread_env(1)["OMP_NUM_THREADS"] == "1"


_THREADS_PROBE = """
import threading, torch
from threadpoolctl import threadpool_info
from encoderscope import compute
seen = []
def job(n):
    compute.limit_threads(n)
    seen.append((n, sorted({lib["num_threads"] for lib in threadpool_info()})))
for n in (1, 1, 2, 1, 1):  # one thread after another, as workers come and go
    t = threading.Thread(target=job, args=(n,))
    t.start()
    t.join()
go, again = threading.Event(), threading.Event()
def worker():  # one worker's two one-thread jobs, with another worker's solo job in between
    job(1)
    go.set()
    again.wait()
    job(1)
w = threading.Thread(target=worker)
w.start()
go.wait()
t = threading.Thread(target=job, args=(2,))
t.start()
t.join()
again.set()
w.join()
print(seen)
"""


def test_every_worker_thread_gets_the_limit_even_on_a_reused_thread_id():
    # Bug caught: no BLAS/OpenMP limit at all, or one skipped on a new thread (Linux reuses finished threads' ids:
    # a worker replaced after a timeout, a new pool) or after another thread set another count (OpenBLAS's count is
    # process-wide). In a fresh process: other tests' worker threads would change the process-wide count meanwhile.
    import ast
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _THREADS_PROBE], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    seen = ast.literal_eval(out.strip().splitlines()[-1])
    assert [n for n, _ in seen] == [1, 1, 2, 1, 1, 1, 2, 1]
    assert all(counts == [1] for n, counts in seen if n == 1), seen  # every one-thread job: one thread everywhere
    assert all(2 in counts for n, counts in seen if n == 2), seen
