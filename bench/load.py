"""Load test: N concurrent Chromium pages against a real `streamlit run` on 127.0.0.1. Prints JSON.

Bounded: each run lasts --seconds (default 120) and every user stops after --max-rounds action rounds.
Only loopback is targeted. Every user types its own texts and uploads its own images, new in every round
(warm-up included), so each action makes the server compute instead of answering from its caches.
Reports p50/p95 latency per action, errors (failed actions, and every error box on the page after an action:
an uncaught exception or an `st.error` message), the server's RSS at start, after warm-up, at its peak and at
the end, how often each model was loaded (from the server log: once means shared by every session), and a
verdict against the pass criteria (0 errors, end RSS within 15% of the RSS after warm-up, every model loaded
once). Exit code 1 when a criterion fails.

Usage: python bench/load.py [--users 8 16] [--seconds 120] [--max-rounds 60] [--quick]
  (--quick: 2 users, 20 s, 3 rounds each after the warm-up)
"""

from __future__ import annotations

import asyncio
import io
import re
import statistics
import sys
import threading
import time
from pathlib import Path

from _common import arguments, emit, machine, parse

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server

SENTENCES = [
    "The bank of the river was steep.", "She deposited the cheque at the bank.", "A bat flew out of the cave.",
    "He swung the bat and missed.", "Spring is the season of new leaves.", "The spring in the clock broke.",
]
# What a user sees when something went wrong: an uncaught exception, or an st.error message. An exception box
# draws its own error alert inside it, so alerts inside exceptions are not counted twice.
ERROR_BOXES = (
    '[data-testid="stException"], '
    '[data-testid="stAlertContentError"]:not([data-testid="stException"] *)'
)


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its children (MB), from /proc."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Pid", "").strip() == str(pid) or fields.get("PPid", "").strip() == str(pid):
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total / 1024


# Streamlit writes the script's state on its root element (data-test-script-state: initial, running,
# rerunRequested, notRunning, ...). A fixed pause plus "no status widget" can pass before the rerun an action
# triggered has even started (under load it starts late), which would time nothing; so each action first
# notes every change of that state, then waits for a change (a run started) and for the run to end.
_WATCH_RUNS = """() => {
  window.__benchRan = false;
  const app = document.querySelector('[data-testid="stApp"]');
  if (app) new MutationObserver(() => { window.__benchRan = true; })
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
# A document the action navigated to has no mark: its first run is the one to wait for.
_RUN_STARTED = "() => window.__benchRan !== false"
_RUN_FINISHED = """() => ['notRunning', 'compilationError'].includes(
  document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state'))"""


async def _until_rerun_done(page, action) -> None:
    """Run `action`, then wait for the script run it triggers to start (15 s at most) and to finish."""
    await page.evaluate(_WATCH_RUNS)
    await action()
    try:
        await page.wait_for_function(_RUN_STARTED, timeout=15_000)
    except Exception as err:
        raise RuntimeError("no script run followed the action") from err
    await page.wait_for_function(_RUN_FINISHED)


def upload_image(user: int, round_: int) -> dict:
    """A PNG no other user or round uploads (the page caches results by the image's bytes), as a Playwright file
    payload: the sample photo shifted per user and round, with (user, round) written into its first pixels."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photo = np.asarray(Image.fromarray(load_sample_image("flower.jpg")).resize((320, 240))).copy()
    photo = np.roll(photo, (user * 37 + round_ * 11) % photo.shape[1], axis=1)
    photo[0, 0] = (user % 256, round_ // 256 % 256, round_ % 256)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    return {"name": f"user{user}-round{round_}.png", "mimeType": "image/png", "buffer": buf.getvalue()}


class User:
    """One browser context looping over a realistic mix of actions (async: all users act at once).

    `rounds` counts this user's rounds across warm-up and measurement, so no text or image is ever sent twice.
    """

    def __init__(self, context, url: str, index: int, pages: set[str]):
        self.context, self.url, self.index, self.pages = context, url, index, pages
        self.page = None
        self.rounds = 0
        self.latency: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.error_boxes = 0

    async def timed(self, name: str, action, expect: str | None = None) -> None:
        """Time `action` up to the end of the script run it triggers; `expect`: text the result must show."""
        start = time.perf_counter()
        try:
            await _until_rerun_done(self.page, action)
            self.latency.setdefault(name, []).append(time.perf_counter() - start)
            if expect and expect not in (await self.page.text_content('[data-testid="stMain"]') or ""):
                self.errors.append(f"{name}: the page does not show {expect!r}")
            boxes = self.page.locator(ERROR_BOXES)
            if count := await boxes.count():
                self.error_boxes += count
                first = " ".join((await boxes.first.inner_text()).split())
                self.errors.append(f"{name}: {count} error box(es) on the page: {first[:160]}")
        except Exception as err:  # record and go on: a load test counts failures, it does not stop at one
            self.errors.append(f"{name}: {type(err).__name__}: {str(err)[:160]}")

    async def attention(self, step: int) -> None:
        await self.timed("open attention", lambda: self.page.goto(f"{self.url}/attention"))
        box = self.page.get_by_label("Text")
        text = SENTENCES[(self.index + step) % len(SENTENCES)] + f" ({self.index}.{step})"

        async def type_text():
            await box.fill(text)
            await box.press("Control+Enter")

        await self.timed("type sentence", type_text)
        thumb = self.page.locator('[data-testid="stSlider"] input[type="range"]').first

        async def next_layer():
            at_end = await thumb.evaluate("e => e.value === e.max")  # the page may open on the last layer
            await thumb.focus()
            await thumb.press("ArrowLeft" if at_end else "ArrowRight")

        await self.timed("switch layer", next_layer)

    async def embeddings(self, step: int) -> None:
        await self.timed("open embeddings", lambda: self.page.goto(f"{self.url}/embeddings"))
        await self.timed("pick typed sentences", lambda: self.page.get_by_text("Your sentences").click())
        box = self.page.get_by_label("Sentences (one per line)")
        lines = "\n".join(f"{SENTENCES[i % len(SENTENCES)]} #{self.index}-{step}-{i}" for i in range(200))

        async def embed():
            await box.first.fill(lines)
            await box.first.press("Control+Enter")

        await self.timed("embed 200 sentences", embed, expect="200 vectors")  # a missing text box is an error

    async def vae(self, step: int) -> None:
        await self.timed("open vae", lambda: self.page.goto(f"{self.url}/vae"))
        await self.timed("pick upload", lambda: self.page.get_by_text("Upload", exact=True).click())
        chooser = self.page.locator('[data-testid="stFileUploaderDropzoneInput"]')
        image = upload_image(self.index, step)
        await self.timed("upload image", lambda: chooser.first.set_input_files(image), f"{image['name']} as encoded")

    async def run(self, deadline: float, max_rounds: int) -> None:
        if self.page is None:
            self.page = await self.context.new_page()
            self.page.set_default_timeout(120_000)
        mix = [self.attention] + [getattr(self, p) for p in ("embeddings", "vae") if p in self.pages]
        for _ in range(max_rounds):
            if time.monotonic() >= deadline:
                break
            step, self.rounds = self.rounds, self.rounds + 1
            await mix[(self.index + step) % len(mix)](step)


async def _session(url: str, users: int, seconds: float, max_rounds: int, on_warm) -> tuple[list[User], set]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = {"embeddings", "vae"}  # each action checks that its widgets exist before using them
        crowd = [User(await browser.new_context(viewport={"width": 1280, "height": 900}), url, i + 1, pages)
                 for i in range(users)]
        # Warm-up: every user runs one round of each page (models load, caches and allocator arenas fill),
        # then the measured run starts from that steady state.
        await asyncio.gather(*(user.run(time.monotonic() + 300, 1 + len(pages)) for user in crowd))
        for user in crowd:
            user.latency, user.errors, user.error_boxes = {}, [], 0
        on_warm()
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(user.run(deadline, max_rounds) for user in crowd))
        await browser.close()
    return crowd, pages


def run(users: int, seconds: float, max_rounds: int) -> dict:
    proc, url, log = start_server({"MALLOC_ARENA_MAX": "2"})  # as `make run` serves it
    samples: list[float] = []
    marks: dict[str, float] = {"start": rss_mb(proc.pid)}
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            samples.append(rss_mb(proc.pid))
            stop.wait(1.0)

    def on_warm():
        marks["warm"] = rss_mb(proc.pid)
        threading.Thread(target=sampler, daemon=True).start()

    try:
        crowd, pages = asyncio.run(_session(url, users, seconds, max_rounds, on_warm))
        stop.set()
        time.sleep(2)  # let the last reruns finish before the final reading
        marks["end"] = rss_mb(proc.pid)
    finally:
        stop.set()
        stop_server(proc)
    loads: dict[str, int] = {}
    for match in re.finditer(r"encoderscope: loaded (\S+ \S+)", log.read_text(errors="replace")):
        loads[match.group(1)] = loads.get(match.group(1), 0) + 1
    latency: dict[str, list[float]] = {}
    for user in crowd:
        for name, values in user.latency.items():
            latency.setdefault(name, []).extend(values)
    errors = [e for u in crowd for e in u.errors]
    boxes = sum(u.error_boxes for u in crowd)
    growth = marks["end"] / marks["warm"] - 1
    failed = [
        *([f"{len(errors)} errors ({boxes} error boxes)"] if errors else []),
        *([f"RSS grew {growth:.0%} after warm-up (limit 15%)"] if growth > 0.15 else []),
        *([f"models loaded more than once: {loads}"] if any(n > 1 for n in loads.values()) else []),
        *(["no model load found in the server log"] if not loads else []),
    ]
    return {
        "users": users,
        "pass": not failed,
        "failed": failed,
        "seconds": seconds,
        "pages": sorted(pages | {"attention"}),
        "actions": sum(map(len, latency.values())),
        "latency_s": {
            name: {"n": len(v), "p50": round(statistics.median(v), 3),
                   "p95": round(sorted(v)[max(0, int(round(0.95 * len(v))) - 1)], 3)}
            for name, v in sorted(latency.items())
        },
        "errors": errors,
        "error_boxes": boxes,
        "model_loads": loads,
        "rss_mb": {"start": round(marks["start"], 1), "after_warmup": round(marks["warm"], 1),
                   "peak": round(max(samples or [marks["warm"]]), 1), "end": round(marks["end"], 1),
                   "end_vs_warmup": round(growth, 3)},
    }


def main() -> None:
    parser = arguments(__doc__, runs=None)
    parser.add_argument("--users", type=int, nargs="+", default=None, help="users per run (default 8 16)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per run (default 120)")
    parser.add_argument("--max-rounds", type=int, default=None, help="action rounds per user (default 60)")
    args = parse(parser)
    quick = args.quick
    users = args.users or ([2] if quick else [8, 16])
    seconds = args.seconds or (20 if quick else 120)
    max_rounds = args.max_rounds or (3 if quick else 60)
    out = {"machine": machine(), "quick": quick, "results": [run(n, seconds, max_rounds) for n in users]}
    emit(out)
    sys.exit(0 if all(r["pass"] for r in out["results"]) else 1)


if __name__ == "__main__":
    main()
