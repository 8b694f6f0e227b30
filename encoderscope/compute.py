"""A bounded compute pool for heavy work shared by many users (model forward passes, embedding, projection, VAE).

Why: every server session runs in its own thread, and torch, numba and BLAS each start a thread pool per
call; eight users on two cores then run dozens of threads at once and the machine thrashes. The pool runs at
most `workers` short jobs at once, each with `threads` intra-op threads, so that workers × threads ≤ cores.

- **Quick jobs first, nobody starves.** Each job gets a start-by time when it is queued: its submission time
  plus `patience` × its kind's measured run time (the median of the last runs). The queue is served in that
  order, so a 0.1 s attention pass queued behind a 3 s VAE round trip passes it, but only until the VAE job
  has waited `patience` × 3 s. The order never changes once a job is queued (:meth:`Pool.position` is the
  place the user sees, exact until a quicker job arrives).
- **An express worker.** Non-preemptive workers make even the first job in line wait for a running one to end.
  So one job at a time whose kind is at least `EXPRESS_RATIO` times quicker than every job running (an attention
  pass beside VAE round trips and corpus embeddings) starts at once on one worker more, with `threads` threads:
  the cores are oversubscribed by one share, for a moment. A quick job's place in line counts only the quick
  jobs ahead of it (they take the express worker in turn).
- **A job alone uses the whole machine.** A short job that starts on an idle pool with nothing queued gets
  `solo_threads` = min(cores, workers × threads) threads (one user alone is as fast as without the pool). It
  counts as one worker like any other: a job arriving while it runs starts at once on a free worker (the cores
  are then oversubscribed by at most solo_threads - threads threads, until the solo job ends or reports
  progress: at a progress report it drops to `threads`).
- **A long lane beside the short one.** Jobs in the ``"long"`` lane (a 10^4-sentence corpus, a large
  projection, the placeholder of a background atlas build) run on their own `long_workers` threads at a lower
  CPU priority (nice + `long_nice`, Linux), never on the short workers: a short job never waits for a long job,
  on any worker count, and the kernel gives the cores to the short jobs first.
- **Shared.** A job submitted while an identical one (same kind and key) is queued or running is not run
  again: the second caller waits for the first one's result.
- **Dropped when nobody waits.** Each caller holds a :class:`Ticket`; a queued job whose tickets are all
  withdrawn (the user left, see :meth:`Pool.cancel_owner`) never runs.
- **Timeouts.** A job running longer than its timeout fails its callers with :class:`JobTimeout` and its worker
  is replaced at once. Python threads cannot be killed: the timed-out ("stuck") thread is left to finish and
  then exits, and until then it still counts as a busy worker of its lane (nothing bursts beside it). While a
  lane has stuck jobs it may run one job more than its workers, so a hung job never blocks the others; more
  hung jobs than that wait for a stuck thread to end (the number of threads stays bounded).
- **Errors.** A job that raises hands the exception to its own callers; the worker goes on with the next job.
- **Logged.** One line per job on the logger ``encoderscope``: kind, outcome, wait and run time.

Pure Python: no Streamlit, and torch/numba are only touched when the caller already imported them.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from .cpu import cores, limit_threads, lower_priority, thread_env  # noqa: F401 - part of this module's API
from .errors import UserFacingError

log = logging.getLogger("encoderscope")

LANES = ("short", "long")
QUEUED, RUNNING, DONE, DROPPED, TIMED_OUT = "queued", "running", "done", "dropped", "timed out"
PATIENCE = 2.0  # a job may be passed by quicker ones until it has waited this many times its kind's run time
UNKNOWN_RUN_S = 1.0  # the expected run time of a kind the pool has not run yet
MIN_RUN_S = 0.05  # expected run times below this count as this (timer noise must not decide the order)
HISTORY = 16  # run times kept per kind
LONG_NICE = 10  # how much lower the long lane's CPU priority is (nice 10 gets about a tenth of a shared core)
EXPRESS_RATIO = 4.0  # a kind this many times quicker than every job running may take the express worker


class JobTimeout(UserFacingError):
    """A job ran past the pool's timeout; the message says so, for the user who asked for it."""


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
    express: bool = False  # started on the express worker (see Pool)
    timeout: float | None = None  # seconds it may run (the pool's unless submitted with its own)
    submitted: float = field(default_factory=time.monotonic)
    start_by: float = 0.0  # its place in the queue: submitted + patience × its kind's expected run time
    started: float | None = None
    finished: float | None = None
    state: str = QUEUED
    result: Any = None
    error: BaseException | None = None
    reports: list[tuple[float, str]] = field(default_factory=list)
    tickets: set = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)
    on_report: Callable[[Job], None] | None = field(default=None, repr=False)  # the pool's hook, in the job's thread

    def report(self, fraction: float, text: str = "") -> None:
        """Progress callback a job function may call from its worker (`progress=job.report`)."""
        self.reports.append((float(fraction), str(text)))
        if self.on_report is not None:
            self.on_report(self)


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
    def __init__(self, pool: Pool, lane: str, number: int):
        self.lane = lane
        self.retired = False
        self.ident: int | None = None  # the thread's id once it runs (a job's progress hook checks it)
        self.thread = threading.Thread(target=pool._work, args=(self,), name=f"encoderscope-{lane}-worker-{number}",
                                       daemon=True)


class Pool:
    """At most `workers` short jobs at once (default: one per core), each limited to `threads` intra-op threads
    (default cores // workers, at least 1); `long_workers` long-lane jobs beside them (default workers - 1, at
    least 1) at nice + `long_nice`; `timeout` (seconds, None = no limit) bounds one job's run time; `burst`: a
    job alone on an idle pool gets `solo_threads` = min(cores, workers × threads) threads; `patience`: how many
    times its kind's run time a job may be passed by quicker ones; `express`: one quick job at a time may start
    beside the workers. Threads start with the first job."""

    def __init__(self, workers: int | None = None, *, long_workers: int | None = None, threads: int | None = None,
                 timeout: float | None = 120.0, burst: bool = True, patience: float = PATIENCE,
                 long_nice: int = LONG_NICE, express: bool = True):
        self.workers = max(1, workers or cores())
        self.long_workers = max(1, min(self.workers, long_workers or self.workers - 1))
        self.threads = max(1, threads or cores() // self.workers)
        self.slots = self.workers * self.threads  # the short lane's threads, but for a solo job's extra ones
        self.solo_threads = max(self.threads, min(cores(), self.slots)) if burst else self.threads
        self.timeout = timeout
        self.patience = patience
        self.long_nice = long_nice
        self.express = express
        self._cond = threading.Condition()
        self._queue: list[Job] = []  # both lanes, unordered: `_order` decides
        self._running: dict[Job, _Worker] = {}  # started, callers still waiting
        self._stuck: dict[Job, _Worker] = {}  # timed out, their threads still inside
        self._inflight: dict[tuple[str, Hashable], Job] = {}
        self._live: dict[str, list[_Worker]] = {lane: [] for lane in LANES}  # workers that take jobs
        self._runs: dict[str, deque[float]] = {}  # kind -> its last run times (s)
        self._expected: dict[str, float] = {}  # kind -> median of its last run times (s)
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
                job.start_by = job.submitted + self.patience * self.expected(kind)
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

    def expected(self, kind: str) -> float:
        """The run time (s) the pool expects of a job of `kind`: the median of its last runs (see UNKNOWN_RUN_S)."""
        with self._cond:
            return max(MIN_RUN_S, self._expected.get(kind, UNKNOWN_RUN_S))

    def position(self, job: Job) -> int:
        """How many queued jobs will start before `job` (0 when it is next or already running): the jobs of its
        lane ahead of it in the pool's order (a job queued later may still pass it, if it is quicker); for a job
        quick enough for the express worker, the quick jobs ahead of it."""
        with self._cond:
            if job.state != QUEUED:
                return 0
            mine = _order(job)
            ahead = [j for j in self._queue if j.lane == job.lane and _order(j) < mine]
            if self._quick(job):
                ahead = [j for j in ahead if self._quick(j)]
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
        """(Under the lock.) Start workers up to `workers` (+ 1, express) and `long_workers` (long), and the watchdog."""
        for lane, size in (("short", self.workers + self.express), ("long", self.long_workers)):
            while len(self._live[lane]) < size:
                worker = _Worker(self, lane, next(self._numbers))
                self._live[lane].append(worker)
                worker.thread.start()
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="encoderscope-watchdog", daemon=True)
            self._watchdog.start()

    def _busy(self, lane: str) -> tuple[int, int]:
        """(Under the lock.) Jobs of `lane` running, and stuck (timed out, thread still inside)."""
        return sum(j.lane == lane for j in self._running), sum(j.lane == lane for j in self._stuck)

    def _quick(self, job: Job) -> bool:
        """(Under the lock.) Whether `job` may take the express worker now: a short job at least EXPRESS_RATIO
        times quicker than every short job running (stuck ones included)."""
        busy = [j for j in (*self._running, *self._stuck) if j.lane == "short"]
        return (self.express and job.lane == "short" and bool(busy)
                and self.expected(job.kind) * EXPRESS_RATIO <= min(self.expected(j.kind) for j in busy))

    def _next(self, lane: str) -> Job | None:
        """(Under the lock.) Pop the first queued job of `lane` in the pool's order, with its thread count set, when
        the lane has a free worker: stuck jobs count as busy, but a lane with stuck jobs may run one job more (so
        a hung job blocks nobody, and hung jobs cannot add threads without end). With every worker busy, the
        first quick job in order takes the express worker if it is free."""
        queued = sorted((job for job in self._queue if job.lane == lane), key=_order)
        if not queued:
            return None
        running, stuck = self._busy(lane)
        express = sum(job.express for job in self._running)
        size = self.workers if lane == "short" else self.long_workers
        if running - express + stuck < size + (stuck > 0):
            job = queued[0]
        elif not express and (job := next((j for j in queued if self._quick(j)), None)) is not None:
            job.express = True
        else:
            return None
        # a long job never bursts (it would hold every core for minutes), nor a job beside any other
        alone = lane == "short" and not self._running and not self._stuck and len(self._queue) == 1
        job.threads = self.solo_threads if alone else self.threads
        self._queue.remove(job)
        return job

    def _work(self, worker: _Worker) -> None:
        in_worker.active = True
        worker.ident = threading.get_ident()
        if worker.lane == "long":
            lower_priority(self.long_nice)  # for good: a thread may not raise its priority back
        while True:
            with self._cond:
                job = None
                while job is None:
                    if worker.retired or self._closed:
                        return
                    job = self._next(worker.lane)
                    if job is None:
                        self._cond.wait()
                job.state, job.started = RUNNING, time.monotonic()
                job.on_report = self._reported if job.threads > self.threads else None
                self._running[job] = worker
            try:  # a failure here must not kill the worker: its job would stay "running" until the timeout
                limit_threads(job.threads)
            except Exception:  # noqa: BLE001 - the job still runs, with the libraries' current thread counts
                log.warning("encoderscope: could not set %d threads for job %s", job.threads, job.kind, exc_info=True)
            try:
                kwargs = {**job.kwargs, "progress": job.report} if job.reporting else job.kwargs
                result, error = job.fn(*job.args, **kwargs), None
            except BaseException as err:  # noqa: BLE001 - handed to the job's callers; the worker carries on
                result, error = None, err
            with self._cond:
                self._running.pop(job, None)
                self._stuck.pop(job, None)
                if job.state == RUNNING:  # not timed out meanwhile
                    self._forget(job)
                    job.result, job.error = result, error
                    self._finish(job, DONE)
                self._cond.notify_all()  # a worker, or a stuck job's place, is free

    def _reported(self, job: Job) -> None:
        """A solo job reported progress (in its own worker thread): if others run beside it now, it gives back
        its extra threads, so the cores are no longer oversubscribed."""
        worker = self._running.get(job)
        if worker is None or worker.ident != threading.get_ident():
            return
        with self._cond:
            if job.threads <= self.threads or len(self._running) + len(self._stuck) < 2:
                return
            job.threads, job.on_report = self.threads, None
        limit_threads(self.threads)

    def _watch(self) -> None:
        """Fail jobs that run past their timeout and replace their workers."""
        while not self._closed:
            with self._cond:
                limits = [job.timeout for job in self._running if job.timeout]
            time.sleep(min([1.0, *(t / 4 for t in limits)]))
            now = time.monotonic()
            with self._cond:
                for job, worker in list(self._running.items()):
                    if job.state == RUNNING and job.timeout is not None and now - job.started > job.timeout:
                        self._time_out(job, worker)

    def _time_out(self, job: Job, worker: _Worker) -> None:
        """(Under the lock.) Fail `job` for its callers; its thread goes on as a stuck one and a new worker
        takes its place."""
        self._running.pop(job)
        self._stuck[job] = worker
        self._forget(job)
        job.error = JobTimeout(
            f"This {job.kind} took more than {job.timeout:g} s, the limit on this server, so the "
            "server stopped waiting for it. Try a smaller input, or try again when it is less busy."
        )
        self._finish(job, TIMED_OUT)
        worker.retired = True  # it exits when its job ends
        self._live[worker.lane].remove(worker)
        self._start_threads()
        running, stuck = self._busy(job.lane)
        if stuck > (self.workers if job.lane == "short" else self.long_workers):
            log.error("encoderscope: %d %s-lane compute threads are stuck in jobs past the timeout", stuck, job.lane)
        self._cond.notify_all()

    def _forget(self, job: Job) -> None:
        if self._inflight.get((job.kind, job.key)) is job:
            del self._inflight[(job.kind, job.key)]

    def _finish(self, job: Job, state: str) -> None:
        """(Under the lock.) Record the outcome (and the run time, for the kind's expected run time), wake the
        job's callers and log one line."""
        job.state, job.finished = state, time.monotonic()
        job.done.set()
        start = job.started or job.finished
        if job.started is not None:
            runs = self._runs.setdefault(job.kind, deque(maxlen=HISTORY))
            runs.append(job.finished - start)
            self._expected[job.kind] = statistics.median(runs)
        outcome = state if job.error is None or state == TIMED_OUT else f"failed ({type(job.error).__name__})"
        log.info("encoderscope: job %s %s: waited %.2f s, ran %.2f s", job.kind, outcome,
                 start - job.submitted, job.finished - start)


def _order(job: Job) -> tuple[float, int]:
    """The queue's order: earliest start-by time first, then first submitted."""
    return job.start_by, job.number


in_worker = threading.local()  # `in_worker.active` is True in the pool's threads (nested jobs run inline)


def inside_worker() -> bool:
    """True on a pool worker thread: a job that needs another job's result computes it inline (no deadlock)."""
    return getattr(in_worker, "active", False)
