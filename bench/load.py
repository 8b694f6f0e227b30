"""Load test: N concurrent Chromium pages against a real `streamlit run` on 127.0.0.1. Prints JSON.

Bounded: each run lasts --seconds (default 120) and every user stops after --max-rounds action rounds.
Only loopback is targeted. Every user types its own texts and uploads its own images, new in every round
(warm-up included), so each action makes the server compute instead of answering from its caches.
Reports p50/p95 latency per action, errors (failed actions, and every error box on the page after an action:
an uncaught exception or an `st.error` message), the server's RSS at start, after warm-up, at its peak and at
the end, how often each model was loaded (from the server log: once means shared by every session), and a
verdict against the pass criteria (0 errors, end RSS within 15% of the RSS after warm-up, every model loaded
once). Exit code 1 when a criterion fails.

Fair share: with a 1-user run among `--users` (e.g. `--users 1 8 16`), each larger run also reports, per action,
its fair share (the 1-user p50 × users ÷ CPUs: what each user would wait if the machine were split evenly
between them) and the ratio of its p50 to it. The criterion holds for the heavy actions (HEAVY: embed 200
sentences, upload image, switch layer, open attention, type sentence): a ratio ≤ 1.5 up to 8 users, ≤ 2 above
(a class on one server); the other actions' ratios are reported too. Read ratios from a machine that other
work shares with care: the `machine` block has its load average at the start and the end.

When an action's script run ended is read from the server's own messages on the page's websocket (a
`new_session` ForwardMsg starts each run, `script_finished` ends it), not from the page's
`data-test-script-state` attribute alone: the attribute sometimes never changes for a fast run (the browser
renders "running" and "notRunning" in one go), which made a pick that did rerun look like one that did not.
`state_changes_missed` counts those runs.

Usage: python bench/load.py [--users 1 8 16] [--seconds 120] [--max-rounds 60] [--workers N] [--quick]
  (--quick: 2 users, 20 s, 3 rounds each after the warm-up; --seconds takes one value, or one per --users entry;
   --workers sets the server's ENCODERSCOPE_WORKERS)
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
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

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


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the server (its threads and children) and by the whole machine
    (from /proc/stat: browsers that closed a page are counted too, unlike a sum over live processes)."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    used = {"server": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if server_pid in (int(stat.parent.name), int(fields[1])):
            used["server"] += (int(fields[11]) + int(fields[12])) / tick
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]  # user nice system idle iowait irq softirq steal
    used["machine"] = sum(int(cpu[i]) for i in (0, 1, 2, 5, 6, 7)) / tick
    return used


HEAVY = ("embed 200 sentences", "upload image", "switch layer", "open attention", "type sentence")


def fair_share_target(users: int) -> float:
    """How many times its fair share a heavy action's p50 may be at `users` users: 1.5 up to 8, 2 above."""
    return 1.5 if users <= 8 else 2.0
_NEW_SESSION = ForwardMsg.DESCRIPTOR.fields_by_name["new_session"].number  # sent at the start of every script run
_FINISHED = ForwardMsg.DESCRIPTOR.fields_by_name["script_finished"].number
_EARLY = ForwardMsg.FINISHED_EARLY_FOR_RERUN  # a run cut short by a rerun: the rerun's own end is the one to wait for


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if byte < 0x80:
            return value, i


def run_event(frame: bytes) -> str | None:
    """"start" / "finish" for a ForwardMsg frame that starts / ends a script run, else None. Reads only the
    top-level field tags (a chart delta can be megabytes; parsing each one would load the measuring process)."""
    i = 0
    while i < len(frame):
        tag, i = _varint(frame, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(frame, i)
            if field == _FINISHED:
                return None if value == _EARLY else "finish"
        elif wire == 2:
            size, i = _varint(frame, i)
            if field == _NEW_SESSION:
                return "start"
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            return None
    return None


class Runs:
    """The script runs the server reports to one page (all its websockets, so a navigation's new one too)."""

    def __init__(self, page):
        self.events: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        if isinstance(payload, bytes) and (event := run_event(payload)):
            self.events.append(event)

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait until a run started after event `after` and then finished; False if none started in `timeout`."""
        deadline = time.monotonic() + timeout
        while "start" not in self.events[after:]:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        start = self.events.index("start", after)
        while "finish" not in self.events[start:]:
            await asyncio.sleep(0.02)
        return True


# Streamlit also writes the script's state on its root element (data-test-script-state: initial, running,
# rerunRequested, notRunning, ...); the page is drawn once that says notRunning. Each action notes whether the
# attribute changed at all, to count the runs it missed.
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


async def _until_rerun_done(page, runs: Runs, action) -> bool:
    """Run `action`, then wait for the script run it triggers to start (15 s at most) and to finish, as the
    server reports it; then for the page to say so. Returns False when the page's state attribute never changed."""
    await page.evaluate(_WATCH_RUNS)
    mark = len(runs.events)
    await action()
    if not await runs.wait(mark, timeout=15):
        raise RuntimeError("no script run followed the action")
    seen = await page.evaluate(_RUN_STARTED)
    await page.wait_for_function(_RUN_FINISHED)
    return seen


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
        self.runs: Runs | None = None
        self.rounds = 0
        self.missed = 0
        self.latency: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.error_boxes = 0

    async def timed(self, name: str, action, expect: str | None = None) -> None:
        """Time `action` up to the end of the script run it triggers; `expect`: text the result must show."""
        start = time.perf_counter()
        try:
            self.missed += not await _until_rerun_done(self.page, self.runs, action)
            self.latency.setdefault(name, []).append(time.perf_counter() - start)
            if expect:  # the page may draw a moment after it says the run ended
                try:
                    await self.page.wait_for_function(
                        "t => (document.querySelector('[data-testid=\"stMain\"]')?.textContent || '').includes(t)",
                        arg=expect, timeout=10_000)
                except Exception:
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
            self.runs = Runs(self.page)
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
            user.latency, user.errors, user.error_boxes, user.missed = {}, [], 0, 0
        on_warm()
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(user.run(deadline, max_rounds) for user in crowd))
        await browser.close()
    return crowd, pages


def run(users: int, seconds: float, max_rounds: int, workers: int | None = None) -> dict:
    env = {"MALLOC_ARENA_MAX": "2", **({"ENCODERSCOPE_WORKERS": str(workers)} if workers else {})}
    proc, url, log = start_server(env)  # as `make run` serves it
    samples: list[float] = []
    marks: dict[str, float] = {"start": rss_mb(proc.pid)}
    cpu: dict = {}
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            samples.append(rss_mb(proc.pid))
            stop.wait(1.0)

    def on_warm():
        marks["warm"] = rss_mb(proc.pid)
        cpu["warm"], cpu["t_warm"] = cpu_seconds(proc.pid), time.monotonic()
        threading.Thread(target=sampler, daemon=True).start()

    try:
        crowd, pages = asyncio.run(_session(url, users, seconds, max_rounds, on_warm))
        stop.set()
        time.sleep(2)  # let the last reruns finish before the final reading
        marks["end"] = rss_mb(proc.pid)
        cpu["end"], cpu["t_end"] = cpu_seconds(proc.pid), time.monotonic()
    finally:
        stop.set()
        stop_server(proc)
    loads: dict[str, int] = {}
    server_log = log.read_text(errors="replace")
    for match in re.finditer(r"encoderscope: loaded (\S+ \S+)", server_log):
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
        "state_changes_missed": sum(u.missed for u in crowd),
        "pool_jobs": pool_jobs(server_log),
        # where the cores went in the measured window: the rest is the browsers (and this script), which in a
        # class run on the students' own machines; CFS shares the cores per thread, so 16 pages' threads outweigh
        # the server's few
        "cpu_cores_used": cores_used(cpu),
        "model_loads": loads,
        "rss_mb": {"start": round(marks["start"], 1), "after_warmup": round(marks["warm"], 1),
                   "peak": round(max(samples or [marks["warm"]]), 1), "end": round(marks["end"], 1),
                   "end_vs_warmup": round(growth, 3)},
    }


def cores_used(cpu: dict) -> dict[str, float]:
    """Cores busy on average in the measured window: the server's, the rest of the machine's (browsers), all."""
    span = cpu["t_end"] - cpu["t_warm"]
    server = (cpu["end"]["server"] - cpu["warm"]["server"]) / span
    machine = (cpu["end"]["machine"] - cpu["warm"]["machine"]) / span
    return {"server": round(server, 2), "browsers_and_rest": round(machine - server, 2), "machine": round(machine, 2)}


def pool_jobs(server_log: str) -> dict:
    """Per job kind, from the server's one line per job: count, and median wait and run times (s)."""
    found: dict[str, dict[str, list[float]]] = {}
    for m in re.finditer(r"encoderscope: job (.+?) (done|failed \(\w+\)|dropped|timed out): waited ([\d.]+) s, "
                         r"ran ([\d.]+) s", server_log):
        entry = found.setdefault(m.group(1), {"wait": [], "run": [], "not_done": []})
        entry["wait"].append(float(m.group(3)))
        entry["run"].append(float(m.group(4)))
        if m.group(2) != "done":
            entry["not_done"].append(m.group(2))
    return {kind: {"n": len(v["wait"]), "wait_p50": round(statistics.median(v["wait"]), 3),
                   "run_p50": round(statistics.median(v["run"]), 3), "not_done": len(v["not_done"])}
            for kind, v in sorted(found.items())}


def add_fair_share(results: list[dict], cpus: int) -> None:
    """Give each run with more than one user, when a 1-user run exists, each action's fair share (1-user p50 ×
    users ÷ cpus) and its p50's ratio to it; a heavy action's ratio above `fair_share_target` fails the run."""
    base = next((r["latency_s"] for r in results if r["users"] == 1), None)
    if base is None:
        return
    for r in results:
        if r["users"] == 1:
            continue
        share = {}
        for action, stats in r["latency_s"].items():
            if action in base:
                fair = base[action]["p50"] * r["users"] / cpus
                share[action] = {"p50_1_user": base[action]["p50"], "fair_share_s": round(fair, 3),
                                 "p50": stats["p50"], "ratio": round(stats["p50"] / fair, 2)}
        r["fair_share"] = share
        target = fair_share_target(r["users"])
        r["fair_share_target"] = target
        over = [f"{a} {v['ratio']}x" for a, v in share.items() if a in HEAVY and v["ratio"] > target]
        if over:
            r["failed"].append(f"p50 above {target}x the fair share: {', '.join(over)}")
            r["pass"] = False


def main() -> None:
    parser = arguments(__doc__, runs=None)
    parser.add_argument("--users", type=int, nargs="+", default=None, help="users per run (default 1 8 16)")
    parser.add_argument("--seconds", type=float, nargs="+", default=None,
                        help="measured seconds per run, one value or one per --users entry (default 120)")
    parser.add_argument("--max-rounds", type=int, default=None, help="action rounds per user (default 60)")
    parser.add_argument("--workers", type=int, default=None, help="the server's ENCODERSCOPE_WORKERS (default: its own)")
    args = parse(parser)
    quick = args.quick
    users = args.users or ([2] if quick else [1, 8, 16])
    seconds = args.seconds or [20 if quick else 120]
    if len(seconds) not in (1, len(users)):
        parser.error("--seconds takes one value or one per --users entry")
    seconds = seconds * len(users) if len(seconds) == 1 else seconds
    max_rounds = args.max_rounds or (3 if quick else 60)
    out = {"machine": machine(), "quick": quick, "workers": args.workers or "default (one per CPU)",
           "results": [run(n, s, max_rounds, args.workers) for n, s in zip(users, seconds, strict=True)]}
    add_fair_share(out["results"], out["machine"]["cpus"])
    emit(out)
    sys.exit(0 if all(r["pass"] for r in out["results"]) else 1)


if __name__ == "__main__":
    main()
