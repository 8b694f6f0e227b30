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


def test_a_job_alone_gets_every_core_and_a_job_beside_it_only_its_share(make_pool):
    # Bug caught: one user alone slowed down to one thread (the pool must not slow a single user), or jobs beside a
    # solo job bursting too (each taking every core: the oversubscription the pool exists to stop).
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
    assert counts[1:-1] == [1] * 10  # with jobs queued behind it, each job gets its share: one thread
    assert peak[0] <= alone + 1  # the solo job's threads and one share beside it, never more
    long = pool.run("big corpus", None, torch.get_num_threads, lane="long")
    assert long == 1  # a long job never takes every core


def test_a_short_job_does_not_wait_for_a_solo_job_with_a_worker_idle(make_pool):
    # Bug caught (issue 24, 3a): a job that started alone held every thread slot for its whole run, so a 0 s job
    # waited behind it with the second worker idle.
    pool = make_pool(2, threads=1, timeout=None)
    hold, release, started = blocker()
    solo = pool.submit("VAE round trip", None, hold)
    try:
        assert started.wait(WAIT)
        assert solo.job.threads == pool.solo_threads
        quick = pool.submit("attention", None, lambda: "quick")
        assert quick.result(1.0) == "quick"  # while the solo job still runs
    finally:
        release.set()
    assert solo.result(WAIT) == "held"


def test_a_solo_job_gives_its_extra_threads_back_at_a_progress_report(make_pool):
    # Bug caught: a solo VAE round trip keeping every core for all its stages while another job runs beside it.
    torch = pytest.importorskip("torch")
    if compute.cores() < 2:
        pytest.skip("a solo job gets more threads than its share only with 2 or more cores")
    pool = make_pool(2, threads=1, timeout=None)
    go = threading.Event()

    def stages(progress):
        before = torch.get_num_threads()
        assert go.wait(WAIT)
        progress(0.5, "encoded")
        return before, torch.get_num_threads()

    solo = pool.submit("VAE round trip", None, stages, reporting=True)
    deadline = time.monotonic() + WAIT
    while solo.job.state == compute.QUEUED and time.monotonic() < deadline:
        time.sleep(0.005)
    hold, release, beside_started = blocker()
    beside = pool.submit("attention", None, hold)
    assert beside_started.wait(WAIT)
    go.set()
    try:
        assert solo.result(WAIT) == (2, 1)
    finally:
        release.set()
    beside.result(WAIT)


def test_a_short_job_never_waits_for_a_long_job_even_on_one_worker(make_pool):
    # Bug caught (issue 24, 3b): with one worker the long lane was clamped to that worker, so a background atlas
    # build (no timeout) held it for the whole build while the page told each user "Your job is next".
    pool = make_pool(1, timeout=None)
    hold, release, started = blocker()
    build = pool.submit("atlas build", None, hold, lane="long", timeout=None)
    try:
        assert started.wait(WAIT)
        begin = time.monotonic()
        assert pool.run("attention", None, lambda: "short") == "short"
        assert time.monotonic() - begin < 1.0
        second = pool.submit("big corpus", None, lambda: "long", lane="long")
        assert pool.position(second.job) == 0 and second.job.state == compute.QUEUED  # the long lane is full
    finally:
        release.set()
    assert build.result(WAIT) == "held" and second.result(WAIT) == "long"


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_long_jobs_run_at_a_lower_cpu_priority(make_pool):
    # Bug caught: long jobs running beside the short workers at the same priority (each short job slowed by them).
    import os

    pool = make_pool(2, timeout=None)

    def nice():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert pool.run("test", None, nice) == base
    assert pool.run("big corpus", None, nice, lane="long") == min(19, base + compute.LONG_NICE)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # as a background atlas build
    try:
        assert compute.lower_priority(compute.LONG_NICE, child.pid)
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == min(19, base + compute.LONG_NICE)
    finally:
        child.kill()
        child.wait()


def test_quick_jobs_pass_slow_ones_until_the_slow_ones_waited_long_enough(make_pool):
    # Bug caught: strict arrival order (a 0.1 s attention pass waiting behind VAE round trips), a slow job starved
    # by a stream of quick ones, or a place in the queue that does not match the order jobs start in.
    pool = make_pool(1, timeout=None, patience=2.0, express=False)  # the order alone
    for _ in range(3):  # the pool learns each kind's run time
        pool.run("slow", None, time.sleep, 0.3)
        pool.run("quick", None, lambda: None)
    assert 0.25 < pool.expected("slow") < 0.6 and pool.expected("quick") == compute.MIN_RUN_S
    hold, release, started = blocker()
    pool.submit("test", None, hold)
    assert started.wait(WAIT)
    order = []
    slow = [pool.submit("slow", None, order.append, f"slow {i}") for i in range(2)]
    quick = pool.submit("quick", None, order.append, "quick")
    assert [pool.position(t.job) for t in (*slow, quick)] == [1, 2, 0]
    time.sleep(1.5)  # the slow jobs have now waited past their patience (2 × 0.3 s): no quick job passes them
    late = pool.submit("quick", None, order.append, "late quick")
    assert [pool.position(t.job) for t in (*slow, quick, late)] == [1, 2, 0, 3]
    release.set()
    for ticket in (*slow, quick, late):
        ticket.result(WAIT)
    assert order == ["quick", "slow 0", "slow 1", "late quick"]  # the place each was told


def test_a_quick_job_starts_at_once_beside_slow_ones_on_the_express_worker(make_pool):
    # Bug caught: a 0.1 s attention pass waiting for a running VAE round trip to end, though first in line (workers
    # do not preempt), or the express worker taking more than one job at a time (oversubscription without bound).
    pool = make_pool(1, threads=1, timeout=None)
    for _ in range(2):  # the pool learns each kind's run time
        pool.run("slow", None, time.sleep, 0.4)
        pool.run("quick", None, lambda: None)
    hold, release, started = blocker()
    slow = pool.submit("slow", None, hold)
    assert started.wait(WAIT)
    queued_slow = pool.submit("slow", None, lambda: "slow")
    try:
        assert pool.submit("quick", None, lambda: "quick").result(1.0) == "quick"  # beside the running slow job
        express_hold, express_release, express_started = blocker()
        express = pool.submit("quick", None, express_hold)
        assert express_started.wait(WAIT) and express.job.express
        waiting = pool.submit("quick", None, lambda: "next quick")
        time.sleep(0.3)
        assert waiting.job.state == compute.QUEUED and pool.position(waiting.job) == 0  # the express worker is taken
        assert pool.position(queued_slow.job) == 1  # the waiting quick job goes first on the next free worker
        express_release.set()
        assert waiting.result(WAIT) == "next quick"
        assert queued_slow.job.state == compute.QUEUED  # the slow one still waits for its worker
    finally:
        release.set()
    assert slow.result(WAIT) == "held" and queued_slow.result(WAIT) == "slow"
    off = make_pool(1, threads=1, timeout=None, express=False)
    hold, release, started = blocker()
    off.submit("slow", None, hold)
    assert started.wait(WAIT)
    try:
        with pytest.raises(TimeoutError):
            off.submit("quick", None, lambda: None).result(0.5)
    finally:
        release.set()


def test_the_pool_keeps_a_live_worker_after_more_timeouts_than_workers(make_pool):
    # Bug caught (issue 24, 2): after more than `workers` timeouts no worker was replaced, and none restarted when a
    # stuck thread ended, so queued jobs waited until someone else submitted (the reproduction).
    pool = make_pool(1, timeout=0.4)
    slow = [pool.submit("slow", None, time.sleep, 1.5) for _ in range(2)]
    quick = pool.submit("quick", None, lambda: "quick")
    for ticket in slow:
        with pytest.raises(compute.JobTimeout):
            ticket.result(WAIT)
    assert quick.result(4.0) == "quick"


def test_a_stuck_job_still_counts_as_a_busy_worker(make_pool):
    # Bug caught (issue 24, 2): a timed-out job's thread, still computing, no longer counted against the workers,
    # so hung jobs could start (and add threads) without bound.
    pool = make_pool(1, threads=1, timeout=0.3)
    holds = [blocker() for _ in range(2)]
    hung = [pool.submit("hung", None, hold) for hold, _, _ in holds]
    try:
        for ticket in hung:
            with pytest.raises(compute.JobTimeout):
                ticket.result(WAIT)
        waiting = pool.submit("quick", None, lambda: "quick")
        time.sleep(0.6)
        assert waiting.job.state == compute.QUEUED  # two stuck threads on one worker: the lane is full
        holds[0][1].set()  # one stuck thread ends: its place is free again
        assert waiting.result(WAIT) == "quick"
    finally:
        for _, release, _ in holds:
            release.set()


def test_no_job_bursts_beside_a_stuck_one(make_pool):
    # Bug caught (issue 24, 2): the next job after a timeout thought it was alone and took every core while the
    # timed-out job's threads still computed.
    if compute.cores() < 2:
        pytest.skip("a job alone gets more threads than its share only with 2 or more cores")
    pool = make_pool(2, threads=1, timeout=0.3)
    hold, release, started = blocker()
    hung = pool.submit("hung", None, hold)
    try:
        assert started.wait(WAIT) and hung.job.threads == 2  # it was alone
        with pytest.raises(compute.JobTimeout):
            hung.result(WAIT)
        after = pool.submit("test", None, lambda: None)
        after.result(WAIT)
        assert after.job.threads == 1
    finally:
        release.set()


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


def test_a_half_imported_numba_does_not_kill_the_worker(make_pool, monkeypatch):
    # Bug seen under AppTest: the UMAP warm-up thread was importing numba while a worker set its threads; numba had
    # no set_num_threads yet, the AttributeError killed the worker before its job ran, and the job sat "running"
    # until the 120 s timeout. limit_threads must skip a half-initialised numba, and the worker must survive
    # any failure to set threads.
    import types

    from encoderscope import cpu

    monkeypatch.setitem(sys.modules, "numba", types.ModuleType("numba"))  # no set_num_threads, no config yet
    cpu.limit_threads(1)  # no AttributeError

    def broken(_n):
        raise RuntimeError("thread limits unavailable")

    monkeypatch.setattr(compute, "limit_threads", broken)
    pool = make_pool(1, timeout=5)
    assert pool.run("quick", None, lambda: 42) == 42
    assert pool.run("quick", None, lambda: 43) == 43  # the same worker goes on
