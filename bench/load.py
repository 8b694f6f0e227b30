"""Load test: N concurrent Chromium pages against a real `streamlit run` on 127.0.0.1. Prints JSON.

Bounded: each run lasts --seconds (default 120) and every user stops after --max-actions actions.
Only loopback is targeted. Reports p50/p95 latency per action, errors, exception boxes, the server's RSS at
start, after warm-up, at its peak and at the end, how often each model was loaded (from the server log: once
means shared by every session), and a verdict against the pass criteria (0 errors, 0 exception boxes, end RSS
within 15% of the RSS after warm-up, every model loaded once). Exit code 1 when a criterion fails.

Usage: python bench/load.py --users 8 [--seconds 120] [--users 16 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

SENTENCES = [
    "The bank of the river was steep.", "She deposited the cheque at the bank.", "A bat flew out of the cave.",
    "He swung the bat and missed.", "Spring is the season of new leaves.", "The spring in the clock broke.",
]


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


async def _wait_idle(page) -> None:
    await page.wait_for_selector('[data-testid="stApp"]')
    await page.wait_for_timeout(300)  # let the rerun triggered by the last action start
    await page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")


class User:
    """One browser context looping over a realistic mix of actions (async: all users act at once)."""

    def __init__(self, context, url: str, index: int, pages: set[str]):
        self.context, self.url, self.index, self.pages = context, url, index, pages
        self.page = None
        self.latency: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.exception_boxes = 0

    async def timed(self, name: str, action) -> None:
        start = time.perf_counter()
        try:
            await action()
            await _wait_idle(self.page)
            self.latency.setdefault(name, []).append(time.perf_counter() - start)
            self.exception_boxes += await self.page.locator('[data-testid="stException"]').count()
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
            await thumb.focus()
            await thumb.press("ArrowRight")

        await self.timed("switch layer", next_layer)

    async def embeddings(self, step: int) -> None:
        await self.timed("open embeddings", lambda: self.page.goto(f"{self.url}/embeddings"))
        await self.timed("pick typed sentences", lambda: self.page.get_by_text("Your sentences").click())
        box = self.page.get_by_label("Sentences (one per line)")
        lines = "\n".join(f"{SENTENCES[i % len(SENTENCES)]} #{self.index}-{step}-{i}" for i in range(200))

        async def embed():
            await box.first.fill(lines)
            await box.first.press("Control+Enter")

        await self.timed("embed 200 sentences", embed)  # a missing text box counts as an error

    async def vae(self, step: int) -> None:
        await self.timed("open vae", lambda: self.page.goto(f"{self.url}/vae"))
        await self.timed("pick upload", lambda: self.page.get_by_text("Upload", exact=True).click())
        chooser = self.page.locator('[data-testid="stFileUploaderDropzoneInput"]')
        await self.timed("upload image", lambda: chooser.first.set_input_files(str(IMAGE)))

    async def run(self, deadline: float, max_rounds: int) -> None:
        if self.page is None:
            self.page = await self.context.new_page()
            self.page.set_default_timeout(120_000)
        mix = [self.attention] + [getattr(self, p) for p in ("embeddings", "vae") if p in self.pages]
        for step in range(max_rounds):
            if time.monotonic() >= deadline:
                break
            await mix[(self.index + step) % len(mix)](step)


IMAGE = ROOT / "screenshots" / "load_upload.png"


def _sample_image() -> None:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    IMAGE.parent.mkdir(exist_ok=True)
    Image.fromarray(load_sample_image("flower.jpg")).resize((320, 240)).save(IMAGE)


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
            user.latency, user.errors, user.exception_boxes = {}, [], 0
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
        _sample_image()
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
    boxes = sum(u.exception_boxes for u in crowd)
    growth = marks["end"] / marks["warm"] - 1
    failed = [
        *([f"{len(errors)} errors"] if errors else []),
        *([f"{boxes} exception boxes"] if boxes else []),
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
        "exception_boxes": boxes,
        "model_loads": loads,
        "rss_mb": {"start": round(marks["start"], 1), "after_warmup": round(marks["warm"], 1),
                   "peak": round(max(samples or [marks["warm"]]), 1), "end": round(marks["end"], 1),
                   "end_vs_warmup": round(growth, 3)},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--max-rounds", type=int, default=60, help="action rounds per user (bounds the loop)")
    args = parser.parse_args()
    results = [run(n, args.seconds, args.max_rounds) for n in args.users]
    print(json.dumps(results, indent=1))
    sys.exit(0 if all(r["pass"] for r in results) else 1)


if __name__ == "__main__":
    main()
