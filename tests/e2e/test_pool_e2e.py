"""Three users on a one-worker server, in real Chromium: a waiting user reads their place in the queue, every page
still ends with its own result, and the server logs one line per job (the compute pool, issue 18)."""

import re

from components.resources import EMBED_BLOCK
from tests.e2e.conftest import exception_boxes, open_page, shot, start_server, stop_server, wait_idle

USERS, SENTENCES = 3, 300  # 300 sentences: more than one block, so several pool jobs per user
BLOCKS = -(-SENTENCES // EMBED_BLOCK)

_PLACE = """() => [...document.querySelectorAll('[data-testid="stSpinner"]')]
  .some(s => /The server is busy: \\d+ jobs? ahead of yours/.test(s.textContent))"""


def _corpus(user: int) -> str:
    return "\n".join(f"User {user} wrote sentence {i} about the bank of the river." for i in range(SENTENCES))


def test_waiting_users_see_their_place_and_all_get_their_own_results(browser):
    # Bugs caught: a frozen page with no word while the job waits; a job lost or handed to the wrong user when the
    # queue is long (a page that never shows its own "300 vectors"); jobs bypassing the pool (no log lines).
    proc, url, log = start_server({"ENCODERSCOPE_WORKERS": "1"})
    contexts, pages = [], []
    try:
        for user in range(USERS):
            contexts.append(browser.new_context(viewport={"width": 1280, "height": 900}))
            page = contexts[-1].new_page()
            page.set_default_timeout(180_000)
            open_page(page, url, "embeddings")
            page.get_by_text("Your sentences").click()
            wait_idle(page)
            page.get_by_label("Sentences (one per line)").first.fill(_corpus(user))
            pages.append(page)
        for page in pages:
            page.get_by_label("Sentences (one per line)").first.press("Control+Enter")
        last = pages[-1]
        last.wait_for_function(_PLACE, timeout=90_000, polling=100)
        shot(last, "pool_place_in_queue", full_page=False)
        for user, page in enumerate(pages):
            page.wait_for_function(
                "t => (document.querySelector('[data-testid=\"stMain\"]')?.textContent || '').includes(t)",
                arg=f"{SENTENCES:,} vectors", timeout=180_000)
            wait_idle(page)
            assert exception_boxes(page) == 0, f"user {user}"
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0, f"user {user}"
    finally:
        for context in contexts:
            context.close()
        stop_server(proc)
    jobs = re.findall(r"encoderscope: job embedding done: waited ([\d.]+) s", log.read_text(errors="replace"))
    assert BLOCKS > 1 and len(jobs) >= USERS * BLOCKS  # each user's blocks went through the pool
    assert max(float(w) for w in jobs) > 0.2  # and some of them really waited in the queue
