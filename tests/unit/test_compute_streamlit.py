"""The compute pool inside Streamlit (components/pool.py): a page's jobs run on the shared pool, a session that
went away withdraws its queued job, the waiting user reads their place, the sidebar shows the queue."""

import logging
import threading

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import encoderscope as es
from components import pool as pool_glue
from components import sidebar
from tests.app.conftest import main_heatmap, no_exceptions, opened

RAN: list[str] = []  # what the page's job did (AppTest runs the page in this process)


@pytest.fixture
def busy_pool(monkeypatch):
    """The server's shared pool with every worker held until the test ends; yields the pool."""
    pool = pool_glue.shared()
    monkeypatch.setattr(pool, "solo_threads", pool.threads)  # the first holder must not take every slot alone
    monkeypatch.setattr(pool, "express", False)  # no quick job may start beside the holders
    release, holders = threading.Event(), []
    for _ in range(pool.workers):
        started = threading.Event()

        def hold(started=started):
            started.set()
            release.wait(60)

        holders.append((pool.submit("test hold", None, hold), started))
    for _, started in holders:
        assert started.wait(30)
    yield pool
    release.set()
    for ticket, _ in holders:
        ticket.result(60)
        pool.withdraw(ticket)


def _page_with_a_job():
    import streamlit as st

    from components import pool
    from tests.unit.test_compute_streamlit import RAN

    value = pool.run("test job", None, lambda: RAN.append("ran") or "computed")
    st.markdown(f"result {value}")


def test_a_session_that_went_away_drops_its_queued_job(busy_pool, monkeypatch):
    # Bug caught: a closed tab's queued job still computed, taking a worker from the users who are still there.
    RAN.clear()
    monkeypatch.setattr(pool_glue, "session_alive", lambda session_id: False)  # as after the websocket closed
    at = AppTest.from_function(_page_with_a_job).run(timeout=30)
    assert not at.exception
    assert "result" not in " ".join(m.value for m in at.markdown)  # the script stopped while waiting
    assert busy_pool.stats().queued == 0  # withdrawn, not left in the queue
    monkeypatch.undo()
    busy_pool.run("test after", None, lambda: None)  # waits for a worker: everything queued before has been handled
    assert RAN == []


def test_session_alive_asks_streamlits_runtime(monkeypatch):
    # Bug caught: the liveness check always True (a gone session never detected) or always False (every job dropped).
    from streamlit.runtime import Runtime

    class FakeRuntime:
        active = {"here"}

        def is_active_session(self, session_id):
            return session_id in self.active

    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: True))
    monkeypatch.setattr(Runtime, "instance", classmethod(lambda cls: FakeRuntime()))
    assert pool_glue.session_alive("here") and not pool_glue.session_alive("gone")


def test_the_waiting_user_reads_their_place(busy_pool):
    # Bug caught: a frozen page with no word on why, or the place counted wrongly ("0 ahead" while 2 wait first).
    tickets = [busy_pool.submit("embedding", None, lambda: None) for _ in range(3)]
    try:
        texts = [pool_glue.wait_text(busy_pool, t.job) for t in tickets]
    finally:
        for ticket in tickets:
            busy_pool.withdraw(ticket)
    assert texts[0] == "Your job is next: waiting for a free worker …"
    assert texts[1] == "The server is busy: 1 job ahead of yours …"
    assert texts[2] == "The server is busy: 2 jobs ahead of yours …"


def test_a_short_job_is_not_told_to_wait_behind_a_long_one():
    # Bug caught (issue 24, 3b): on one worker a user read "Your job is next" for a whole atlas build, which held the
    # only worker; a short job must run beside the long lane, and a waiting long job says what it waits for.
    from encoderscope import compute

    pool = compute.Pool(1, timeout=None)
    release = threading.Event()
    try:
        build = pool.submit("atlas build", None, release.wait, 30, lane="long", timeout=None)
        second = pool.submit("big corpus", None, lambda: None, lane="long")
        short = pool.submit("attention", None, lambda: "drawn")
        assert short.result(2) == "drawn"
        assert pool_glue.wait_text(pool, build.job) == "Computing (atlas build) …"
        assert pool_glue.wait_text(pool, second.job) == "Your large job is next: waiting for a free long-lane worker …"
    finally:
        release.set()
        pool.shutdown()


def test_the_sidebar_shows_the_queue_only_when_there_is_one(busy_pool):
    # Bug caught: the queue invisible to users while they wait (or a "0 waiting" row on an idle server).
    assert "Queue" not in dict(sidebar.status_rows())
    tickets = [busy_pool.submit("embedding", None, lambda: None) for _ in range(3)]
    try:
        rows = dict(sidebar.status_rows())
    finally:
        for ticket in tickets:
            busy_pool.withdraw(ticket)
    workers = busy_pool.workers
    assert rows["Queue"] == f"3 jobs waiting, {workers} running on {workers} worker{'s' if workers > 1 else ''}"


def test_the_attention_page_computes_through_the_pool(encoder):
    # Bug caught: the page's forward pass bypassing the pool (no bound on concurrent work), or the pool handing the
    # page another request's result.
    text = "The pool computed this bank sentence for the page."
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("encoderscope")
    logger.addHandler(handler)
    try:
        at = opened("attention", {"text": text, "layer": "1", "head": "2"})
    finally:
        logger.removeHandler(handler)
    no_exceptions(at)
    jobs = [r.getMessage() for r in records if "job attention done" in r.getMessage()]
    assert len(jobs) == 1
    expected = es.attention(encoder, text).weights[1, 2]
    layer, head, drawn, _ = main_heatmap(at)  # the canvas map's payload, decoded (exact to 1/65535)
    assert (layer, head) == (1, "2")
    np.testing.assert_allclose(drawn, expected, atol=2e-5)


HANG = threading.Event()


def _page_with_a_hung_job():
    import streamlit as st

    from components import pool, ui
    from tests.unit.test_compute_streamlit import HANG

    with ui.guard("embed these sentences"):
        pool.run("embedding", None, HANG.wait, 60)
    st.markdown("the page went on")


def test_a_hung_job_is_reported_to_its_user_in_the_page(monkeypatch):
    # Bug caught: a user staring at a spinner forever (no timeout), or a traceback instead of the message.
    from encoderscope import compute

    short = compute.Pool(1, timeout=0.5)
    monkeypatch.setattr(pool_glue, "shared", lambda: short)
    HANG.clear()
    try:
        at = AppTest.from_function(_page_with_a_hung_job).run(timeout=30)
        assert not at.exception
        shown = " ".join(e.value for e in at.error).replace("\\", "")
        assert "This embedding took more than 0.5 s, the limit on this server" in shown
        assert "the page went on" in " ".join(m.value for m in at.markdown)
        assert short.run("test", None, lambda: "free") == "free"  # the single worker was replaced
    finally:
        HANG.set()
        short.shutdown()
