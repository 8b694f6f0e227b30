"""A bounded compute pool for heavy work shared by many users (model forward passes, embedding, projection, VAE).

Why: every server session runs in its own thread, and torch, numba and BLAS each start a thread pool per
call; eight users on two cores then run dozens of threads at once and the machine thrashes. The pool runs at
most `workers` jobs at once, each with `threads` intra-op threads, so that workers × threads ≤ cores.

- **A job alone uses the whole machine.** A short job that starts on an idle pool with nothing queued behind it gets
  min(cores, workers × threads) threads (one user alone is as fast as without the pool) and holds that many
  thread slots while it runs: the next job waits for it instead of oversubscribing the cores.

- **In order.** Jobs start first come, first served; :meth:`Pool.position` says how many wait ahead of one.
- **Lanes.** A job in the ``"long"`` lane (a 10^4-sentence corpus, a large projection) may only take
  `long_workers` workers (default workers - 1), so short jobs always find a free worker soon.
- **Shared.** A job submitted while an identical one (same kind and key) is queued or running is not run
  again: the second caller waits for the first one's result.
- **Dropped when nobody waits.** Each caller holds a :class:`Ticket`; a queued job whose tickets are all
  withdrawn (the user left, see :meth:`Pool.cancel_owner`) never runs.
- **Timeouts.** A job running longer than `timeout` seconds fails its callers with :class:`JobTimeout`; its
  worker is replaced, so a hung job does not block the others (Python threads cannot be killed: the hung
  thread is left to finish and then exits).
- **Errors.** A job that raises hands the exception to its own callers; the worker goes on with the next job.
- **Logged.** One line per job on the logger ``encoderscope``: kind, outcome, wait and run time.

Pure Python: no Streamlit, and torch/numba are only touched when the caller already imported them.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from .errors import UserFacingError

log = logging.getLogger("encoderscope")

LANES = ("short", "long")
QUEUED, RUNNING, DONE, DROPPED, TIMED_OUT = "queued", "running", "done", "dropped", "timed out"


class JobTimeout(UserFacingError):
    """A job ran past the pool's timeout; the message says so, for the user who asked for it."""


def cores() -> int:
    """CPUs this process may use (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# threadpoolctl's limits are partly per thread (OpenMP) and partly process-wide (OpenBLAS with pthreads, MKL).


def limit_threads(n: int) -> None:
    """Cap the intra-op threads of the calling thread's numeric libraries at `n`.

    torch and numba keep the count per thread (torch through OpenMP's per-thread setting), so each worker sets
    its own; BLAS and OpenMP libraries go through threadpoolctl. Libraries not yet imported are left alone
    (no torch import here).
    """
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    # BLAS/OpenMP pools are process-wide and other code (a context that restores its caller's threads) may have
    # changed them since: set them on every job (about 1 ms), never from a memo.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)


def thread_env(n: int) -> dict[str, str]:
    """Environment variables that cap a child process's numeric libraries at `n` threads (torch and BLAS read
    them at start), for work the pool accounts for but runs in another process (a background atlas build)."""
    return {name: str(n) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "NUMBA_NUM_THREADS")}


@dataclass(eq=False)
class Job:
    """One unit of heavy work. `reports`: every (fraction, text) the job reported so far, in order."""

    kind: str
    key: Hashable
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    lane: str
    number: int
    reporting: bool = False  # call fn with progress=self.report
    threads: int = 0  # intra-op threads it runs with (set when it starts)
    timeout: float | None = None  # seconds it may run (the pool's unless submitted with its own)
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    state: str = QUEUED
    result: Any = None
    error: BaseException | None = None
    reports: list[tuple[float, str]] = field(default_factory=list)
    tickets: set = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)

    def report(self, fraction: float, text: str = "") -> None:
        """Progress callback a job function may call from its worker (`progress=job.report`)."""
        self.reports.append((float(fraction), str(text)))


@dataclass(eq=False)
class Ticket:
    """A caller's claim on a job: `owner` is the caller's session (None: no session)."""

    job: Job
    owner: Hashable | None

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job; return its value or raise its error (JobTimeout when it ran too long)."""
        if not self.job.done.wait(timeout):
            raise TimeoutError("the job has not finished yet")
        if self.job.error is not None:
            raise self.job.error
        if self.job.state == DROPPED:
            raise RuntimeError("the job was dropped: nobody was waiting for it")
        return self.job.result


@dataclass(frozen=True)
class PoolStats:
    workers: int
    threads: int
    queued: int
    running: int


class _Worker:
    def __init__(self, pool: Pool, number: int):
        self.retired = False
        self.thread = threading.Thread(target=pool._work, args=(self,), name=f"encoderscope-worker-{number}",
                                       daemon=True)


class Pool:
    """At most `workers` jobs at once (default: one per core), each limited to `threads` intra-op threads
    (default cores // workers, at least 1); `long_workers` caps the long lane (default workers - 1, at least 1);
    `timeout` (seconds, None = no limit) bounds one job's run time; `burst`: a job alone on an idle pool gets
    `solo_threads` = min(cores, workers × threads) threads. Threads start with the first job."""

    def __init__(self, workers: int | None = None, *, long_workers: int | None = None, threads: int | None = None,
                 timeout: float | None = 120.0, burst: bool = True):
        self.workers = max(1, workers or cores())
        self.long_workers = max(1, min(self.workers, long_workers or self.workers - 1))
        self.threads = max(1, threads or cores() // self.workers)
        self.slots = self.workers * self.threads  # thread slots: the running jobs' threads never add up to more
        self.solo_threads = max(self.threads, min(cores(), self.slots)) if burst else self.threads
        self.timeout = timeout
        self._cond = threading.Condition()
        self._queue: list[Job] = []
        self._running: dict[Job, _Worker] = {}
        self._inflight: dict[tuple[str, Hashable], Job] = {}
        self._live: list[_Worker] = []  # workers that take jobs
        self._stuck: list[_Worker] = []  # retired by a timeout, still inside their job
        self._numbers = itertools.count(1)
        self._watchdog: threading.Thread | None = None
        self._closed = False

    # --- callers -----------------------------------------------------------------------------

    def submit(self, kind: str, key: Hashable | None, fn: Callable[..., Any], *args, lane: str = "short",
               owner: Hashable | None = None, reporting: bool = False, timeout: float | None | bool = True,
               **kwargs) -> Ticket:
        """Queue `fn(*args, **kwargs)`, or join the identical job (same `kind` and `key`) already queued or
        running. `key=None` never shares. `reporting`: call `fn` with `progress=job.report` as well (its reports
        collect in `job.reports`). `timeout`: True for the pool's, else this job's own (None: no limit; e.g. a
        job that holds a long-lane worker while a background process runs). Returns the caller's ticket;
        withdraw it when no longer waiting."""
        if lane not in LANES:
            raise ValueError(f"lane must be one of {LANES}, not {lane!r}")
        with self._cond:
            if self._closed:
                raise RuntimeError("the compute pool is shut down")
            job = self._inflight.get((kind, key)) if key is not None else None
            if job is None:
                job = Job(kind, key, fn, args, kwargs, lane, next(self._numbers), reporting,
                          timeout=self.timeout if timeout is True else timeout)
                self._queue.append(job)
                if key is not None:
                    self._inflight[(kind, key)] = job
                self._start_threads()
                self._cond.notify_all()
            ticket = Ticket(job, owner)
            job.tickets.add(ticket)
            return ticket

    def run(self, kind: str, key: Hashable | None, fn: Callable[..., Any], *args, lane: str = "short",
            owner: Hashable | None = None, **kwargs) -> Any:
        """Submit and wait for the result (re-raising the job's error); the ticket is withdrawn on the way out."""
        ticket = self.submit(kind, key, fn, *args, lane=lane, owner=owner, **kwargs)
        try:
            return ticket.result()
        finally:
            self.withdraw(ticket)

    def withdraw(self, ticket: Ticket) -> None:
        """The ticket's caller stops waiting. A queued job nobody waits for any more is dropped, unrun."""
        with self._cond:
            job = ticket.job
            job.tickets.discard(ticket)
            if job.state == QUEUED and not job.tickets:
                self._queue.remove(job)
                self._forget(job)
                self._finish(job, DROPPED)

    def cancel_owner(self, owner: Hashable) -> int:
        """Withdraw every ticket of `owner` (a session that went away). Returns how many queued jobs were dropped."""
        with self._cond:
            tickets = [t for job in [*self._queue, *self._running] for t in list(job.tickets) if t.owner == owner]
            before = len(self._queue)
            for ticket in tickets:
                self.withdraw(ticket)
            return before - len(self._queue)

    def position(self, job: Job) -> int:
        """How many queued jobs will start before `job` (0 when it is next or already running)."""
        with self._cond:
            if job.state != QUEUED:
                return 0
            ahead = self._queue[: self._queue.index(job)]
            if job.lane == "short":  # a short job passes long jobs that wait for a long-lane worker
                blocked = self._long_running() >= self.long_workers
                ahead = [j for j in ahead if not (blocked and j.lane == "long")]
            return len(ahead)

    def stats(self) -> PoolStats:
        with self._cond:
            return PoolStats(self.workers, self.threads, len(self._queue), len(self._running))

    def shutdown(self) -> None:
        """Stop taking jobs; queued jobs are dropped, running ones finish. Worker threads exit."""
        with self._cond:
            self._closed = True
            for job in list(self._queue):
                self._forget(job)
                self._finish(job, DROPPED)
            self._queue.clear()
            self._cond.notify_all()

    # --- workers -----------------------------------------------------------------------------

    def _start_threads(self) -> None:
        """(Under the lock.) Start workers up to `workers`, and the timeout watchdog."""
        while len(self._live) < self.workers:
            worker = _Worker(self, len(self._live) + len(self._stuck) + 1)
            self._live.append(worker)
            worker.thread.start()
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="encoderscope-watchdog", daemon=True)
            self._watchdog.start()

    def _long_running(self) -> int:
        return sum(job.lane == "long" for job in self._running)

    def _next(self) -> Job | None:
        """(Under the lock.) Pop the first queued job that may start, with its thread count set: a long one only
        below the long-lane cap, and only when its threads fit in the free slots (so a job running alone with
        every core holds back the next until it ends)."""
        if not self._queue:
            return None
        # a long job never bursts: holding every slot for minutes would make the short jobs wait
        alone = not self._running and len(self._queue) == 1 and self._queue[0].lane == "short"
        threads = self.solo_threads if alone else self.threads
        if sum(job.threads for job in self._running) + threads > self.slots:
            return None
        long_free = self._long_running() < self.long_workers
        for i, job in enumerate(self._queue):
            if job.lane == "short" or long_free:
                job.threads = threads
                return self._queue.pop(i)
        return None

    def _work(self, worker: _Worker) -> None:
        in_worker.active = True
        while True:
            with self._cond:
                job = None
                while job is None:
                    if worker.retired or self._closed:
                        return
                    job = self._next()
                    if job is None:
                        self._cond.wait()
                job.state, job.started = RUNNING, time.monotonic()
                self._running[job] = worker
            limit_threads(job.threads)
            try:
                kwargs = {**job.kwargs, "progress": job.report} if job.reporting else job.kwargs
                result, error = job.fn(*job.args, **kwargs), None
            except BaseException as err:  # noqa: BLE001 - handed to the job's callers; the worker carries on
                result, error = None, err
            with self._cond:
                self._running.pop(job, None)
                if job.state == RUNNING:  # not timed out meanwhile
                    self._forget(job)
                    job.result, job.error = result, error
                    self._finish(job, DONE)
                if worker.retired:
                    self._stuck.remove(worker)
                self._cond.notify_all()  # a long-lane slot may be free

    def _watch(self) -> None:
        """Fail jobs that run past the timeout and replace their workers."""
        while not self._closed:
            time.sleep(min(1.0, (self.timeout or 4) / 4))
            now = time.monotonic()
            with self._cond:
                for job, worker in list(self._running.items()):
                    if job.state == RUNNING and job.timeout is not None and now - job.started > job.timeout:
                        self._running.pop(job)
                        self._forget(job)
                        job.error = JobTimeout(
                            f"This {job.kind} took more than {job.timeout:g} s, the limit on this server, so the "
                            "server stopped waiting for it. Try a smaller input, or try again when it is less busy."
                        )
                        self._finish(job, TIMED_OUT)
                        worker.retired = True
                        self._live.remove(worker)
                        self._stuck.append(worker)
                        if len(self._stuck) <= self.workers:  # bounded: a flood of hung jobs cannot spawn threads forever
                            self._start_threads()
                        else:
                            log.error("encoderscope: %d compute workers are stuck in jobs past the timeout",
                                      len(self._stuck))
                        self._cond.notify_all()

    def _forget(self, job: Job) -> None:
        if self._inflight.get((job.kind, job.key)) is job:
            del self._inflight[(job.kind, job.key)]

    def _finish(self, job: Job, state: str) -> None:
        """(Under the lock.) Record the outcome, wake the job's callers and log one line."""
        job.state, job.finished = state, time.monotonic()
        job.done.set()
        start = job.started or job.finished
        outcome = state if job.error is None or state == TIMED_OUT else f"failed ({type(job.error).__name__})"
        log.info("encoderscope: job %s %s: waited %.2f s, ran %.2f s", job.kind, outcome,
                 start - job.submitted, job.finished - start)


in_worker = threading.local()  # `in_worker.active` is True in the pool's threads (nested jobs run inline)


def inside_worker() -> bool:
    """True on a pool worker thread: a job that needs another job's result computes it inline (no deadlock)."""
    return getattr(in_worker, "active", False)
