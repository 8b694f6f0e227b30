"""The server's one compute pool (`encoderscope.compute.Pool`), seen from Streamlit.

Heavy calls go through :func:`run` inside the cached functions of the cache layer, one call per job::

    @st.cache_data(max_entries=16, show_spinner=False)
    def masked_runs(model_ref, revision, text, max_length=None):
        model = encoder(model_ref, revision)                      # loads stay outside the pool
        return pool.run("masks", (model_ref, revision, text, max_length), _masked_runs, model, text, max_length)

A cache hit never reaches the pool, so a layer change or a click that needs no model call is answered at once.
The pool starts quick kinds of job first (by each kind's measured run time, without starving the slow ones) and
runs `lane="long"` jobs on their own lower-priority threads, so a short job never waits for a long one; one
quick job at a time starts at once beside the workers (the express worker). While a
job waits, its user sees their place ("2 jobs ahead of yours": the jobs that will start before it) in a spinner;
a session that goes away (its browser tab closed: Streamlit's runtime no longer lists it as active) withdraws its
queued jobs, and a queued job nobody waits for is dropped. Settings: `ENCODERSCOPE_WORKERS`,
`ENCODERSCOPE_LONG_WORKERS`, `ENCODERSCOPE_JOB_TIMEOUT` (docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import streamlit as st
from streamlit.logger import get_logger
from streamlit.runtime.scriptrunner import get_script_run_ctx

from encoderscope import compute, settings

get_logger("encoderscope")  # route the library's logger (one line per job) to the server log, like Streamlit's own
POLL_S = 0.1  # how often a waiting session looks at its job
SHOW_S = 1.0  # a spinner text stays at least this long (Streamlit shows a spinner after 0.5 s)


@st.cache_resource(show_spinner=False)
def shared() -> compute.Pool:
    """The process's pool, sized by the settings (shared by every session)."""
    conf = settings.get()
    return compute.Pool(conf.workers or None, long_workers=conf.long_workers or None,
                        timeout=conf.job_timeout if conf.job_timeout > 0 else None)


def digest(*parts) -> str:
    """A short content key for arrays, bytes and strings (a job key must be hashable; an array is not)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.shape, part.dtype.str)).encode())
            h.update(np.ascontiguousarray(part).data)
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


def session_alive(session_id: str) -> bool:
    """False once Streamlit's runtime no longer lists the session as active (the browser went away: the
    websocket's disconnect removes it and asks its script to stop). True outside a server (AppTest)."""
    from streamlit.runtime import Runtime

    return not Runtime.exists() or Runtime.instance().is_active_session(session_id)


def run(kind: str, key: Hashable | None, fn: Callable[..., Any], *args, lane: str = "short",
        progress: Callable[[float, str], None] | None = None, **kwargs) -> Any:
    """`fn(*args, **kwargs)` on the pool: queued (quick kinds first, see `encoderscope.compute`), shared with an
    identical request in flight (same `kind` and `key`; `key=None` never shares), raising the job's own error.
    `kind` names what the user waits for ("embedding") and is the unit the pool measures run times by: give a new
    kind of work its own name. `lane="long"`: work that may take minutes (it runs beside the short jobs, at a
    lower priority, and never bursts).

    `progress(fraction, text)`: when given, `fn` gets `progress=` a callback it may call from the worker, and
    `progress` runs in this session's script thread with the latest value (so it may draw).
    Inside a pool job (nested) or outside a script run (background threads) no spinner is drawn."""
    pool = shared()
    if compute.inside_worker():
        return fn(*args, **kwargs)
    ctx = get_script_run_ctx(suppress_warning=True)
    key = None if key is None else (getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn)), key)
    ticket = pool.submit(kind, key, fn, *args, lane=lane, owner=ctx.session_id if ctx else None,
                         reporting=progress is not None, **kwargs)
    try:
        if ctx is None:
            return ticket.result()
        _wait(pool, ticket, ctx.session_id, progress)
        return ticket.result()
    finally:
        pool.withdraw(ticket)


def wait_text(pool: compute.Pool, job: compute.Job) -> str:
    """What the waiting user reads: their place in the queue, or that their job runs."""
    if job.state == compute.RUNNING:
        return f"Computing ({job.kind}) …"
    ahead = pool.position(job)
    if ahead == 0 and job.lane == "long":
        return "Your large job is next: waiting for a free long-lane worker …"
    if ahead == 0:
        return "Your job is next: waiting for a free worker …"
    return f"The server is busy: {ahead} job{'s' if ahead != 1 else ''} ahead of yours …"


def _wait(pool: compute.Pool, ticket: compute.Ticket, session_id: str, progress) -> None:
    """Wait for the ticket's job in a spinner that shows the place in the queue; give up when the session left."""
    job, drawn = ticket.job, 0

    def draw_progress() -> int:  # in order, every report since the last one drawn (the list only grows)
        reports = job.reports[drawn:]
        for report in reports if progress is not None else ():
            progress(*report)
        return drawn + len(reports)

    while not job.done.is_set():
        text = wait_text(pool, job)
        with st.spinner(text):
            until = time.monotonic() + SHOW_S
            while not job.done.wait(POLL_S):
                if not session_alive(session_id):
                    pool.withdraw(ticket)
                    st.stop()  # the script was asked to stop anyway; nothing is drawn for a closed tab
                drawn = draw_progress()
                if time.monotonic() > until and wait_text(pool, job) != text:
                    break
    draw_progress()
