"""Background `atlas build` jobs started from the Embeddings page when a corpus is above its cap.

Only where local paths are allowed (never in public mode) and an atlas folder is set. A job writes the corpus
to `<atlas_dir>/.jobs/<name>/`: an uploaded file exactly as uploaded (so `atlas build` reads it with its own
reader, the one the page uses too: the same rows and ids as the CLI), typed sentences as corpus.parquet. It
runs `python -m encoderscope atlas build` on it in its own process (output in `build.log` beside it) and
writes the atlas to `<atlas_dir>/<name>`, which the Atlas page lists.

One build runs at a time per server (each one embeds on every core); others wait in a queue, in order, and
the page says so. When a build ends, finished or failed, its last log lines are kept in memory and its .jobs
folder is removed. Jobs live in a per-server registry (cache.job_registry); one per name at a time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

import encoderscope
from components import pool, ui
from components.atlas import cache
from encoderscope import compute, settings
from encoderscope.errors import UserFacingError

# The folder holding the encoderscope package this server runs (the checkout, or site-packages for an installed
# wheel, where the app lives in encoderscope_app/): `python -m encoderscope` started there runs that same copy.
LIBRARY_ROOT = Path(encoderscope.__file__).resolve().parents[1]
JOBS = ".jobs"  # inside the atlas folder; the Atlas page lists only folders holding points.parquet
# the builder's stages in order (builder.build reports them); "normalise" replaces "embed" for --vectors
_SLOT = {"read": 0, "embed": 1, "normalise": 1, "reduce": 2, "layout": 3, "duplicates": 4, "names": 5, "write": 6}
# one tqdm update as the CLI writes it: "embed:  50%|█████     | 1/2 [00:03<00:03, ...]", then whatever was
# printed after it on the same line (an `error: ...` follows a bar without a line break)
_BAR = re.compile(r"^(\w+):\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)(?:\s*\[[^\]]*\])?(.*)$")
_LOCK = threading.Lock()  # check-then-start is atomic across sessions


class JobError(UserFacingError):
    """A build that cannot start (bad name, one already running, unwritable folder)."""


@dataclass
class Source:
    """The whole corpus (before the page's cap): texts `[N]`, labels `[N]` or None, and its file's name; for an
    uploaded file also its bytes and columns, so the build reads the file itself (see the module docstring)."""

    filename: str
    texts: list[str]
    labels: list[str] | None = None
    data: bytes | None = None
    text_column: str = "text"
    label_column: str | None = None


@dataclass(frozen=True)
class Status:
    state: str  # "queued", "running", "done" or "failed"
    stage: str | None  # the builder's latest stage
    fraction: float | None  # of the whole build, 0..1, when a stage has reported
    lines: list[str]  # the log's last lines that are not progress bars (queued: the builds ahead)


@dataclass
class Job:
    name: str
    process: subprocess.Popen | None  # None while queued
    folder: Path  # the job folder: the corpus and build.log (removed when the build ends)
    out: Path  # the atlas folder it writes
    command: list[str] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)  # set once it ended and was cleaned up
    code: int | None = None  # exit status, once ended
    final: Status | None = None  # the status at the end (the log is gone with the folder)

    @property
    def log(self) -> Path:
        return self.folder / "build.log"

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the build ended and its folder was removed; returns its exit status."""
        self.ended.wait(timeout)
        return self.code


def available() -> bool:
    """Whether this server may build atlases itself: local paths allowed, not public, an atlas folder set."""
    conf = settings.get()
    return conf.allow_local_paths and not conf.public and bool(conf.atlas_dir)


def job_name(text: str) -> str:
    """A safe folder name: runs of anything but letters, digits, - and _ become "-" ("" if nothing is left)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:80]


def registry() -> dict[str, Job]:
    """Jobs of this server process, by name (a server restart forgets them; their folders stay)."""
    return cache.job_registry()


def _atlas_root() -> Path:
    return Path(settings.get().atlas_dir).expanduser().resolve()


def start(name: str, source: Source, model: str | None, revision: str | None, pooling: str) -> Job:
    """Write the corpus and queue `atlas build` for it (it starts at once when no other build runs); raises
    JobError."""
    if not available():
        raise JobError("This server does not build atlases: local paths are off or no atlas folder is set.")
    if not name or name != job_name(name):
        raise JobError("Name the atlas with letters, digits, - and _ only.")
    with _LOCK:
        current = registry().get(name)
        if current is not None and not current.ended.is_set():
            raise JobError(f"An atlas named {name!r} is already being built; wait for it or pick another name.")
        if len(_queued()) >= settings.get().atlas_build_queue:
            raise JobError(f"{len(_queued())} atlas builds are already waiting on this server; try again later.")
        root = _atlas_root()
        folder, out = root / JOBS / name, root / name
        try:
            shutil.rmtree(folder, ignore_errors=True)  # a folder left by a server killed mid-build
            folder.mkdir(parents=True, exist_ok=True)
            corpus, (text_column, label_column) = _write_corpus(folder, source)
        except OSError as err:
            raise JobError(f"Could not write the corpus in the atlas folder: {err.strerror or err}.") from err
        command = [sys.executable, "-m", "encoderscope", "atlas", "build", str(corpus), "--text-column", text_column,
                   "--out", str(out), "--pooling", pooling]
        if label_column:
            command += ["--label-column", label_column]
        if model:
            command += ["--model", model]
        if revision:
            command += ["--revision", revision]
        job = registry()[name] = Job(name, None, folder, out, command)
        _pump()
        return job


def _write_corpus(folder: Path, source: Source) -> tuple[Path, tuple[str, str | None]]:
    """The corpus file for `atlas build` in `folder`, and its (text, label) columns."""
    if source.data is not None:  # the upload itself: atlas build reads it as the page did (tabular.parse_delimited)
        path = folder / "corpus.csv"
        path.write_bytes(source.data)
        return path, (source.text_column, source.label_column)
    columns = {"text": source.texts} | ({"label": source.labels} if source.labels is not None else {})
    path = folder / "corpus.parquet"  # typed lines: Parquet keeps every text exactly as the page read it
    pd.DataFrame(columns).to_parquet(path, index=False)
    return path, ("text", "label" if source.labels is not None else None)


def _queued() -> list[Job]:
    return [job for job in registry().values() if job.process is None and not job.ended.is_set()]


def _pump() -> None:
    """Start the oldest queued job when no build runs (called under _LOCK)."""
    if any(job.process is not None and not job.ended.is_set() for job in registry().values()):
        return
    waiting = _queued()
    if not waiting:
        return
    job = waiting[0]
    try:
        with open(job.log, "wb") as log:
            # own session: a page rerun or a closed tab never interrupts it; the env keeps HF_HUB_OFFLINE
            job.process = subprocess.Popen(
                job.command, cwd=LIBRARY_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **compute.thread_env(pool.shared().threads)},
                start_new_session=True,
            )
    except OSError as err:
        job.process = _NotStarted()
        _finish(job, [f"Could not start the atlas build: {err.strerror or err}."])
        _pump()
        return
    compute.lower_priority(compute.LONG_NICE, job.process.pid)  # like the pool's long lane: the pages' jobs first
    threading.Thread(target=_watch, args=(job,), name=f"atlas-build-{job.name}", daemon=True).start()


class _NotStarted:
    """Stands in for a build process that could not be started."""

    def poll(self) -> int:
        return 1

    def wait(self, timeout: float | None = None) -> int:
        return 1


def _watch(job: Job) -> None:
    """Wait for the build, keep its last log lines, remove its folder, start the next one. While it runs it holds
    a long-lane worker of the compute pool, so the pages' short jobs keep the others."""
    held = pool.shared().submit("atlas build", None, job.process.wait, lane="long", timeout=None)
    job.process.wait()
    pool.shared().withdraw(held)
    with _LOCK:
        _finish(job, status(job).lines)
        _pump()


def _finish(job: Job, lines: list[str]) -> None:
    job.code = job.process.poll()
    state = "done" if job.code == 0 and (job.out / "atlas.json").is_file() else "failed"
    shutil.rmtree(job.folder, ignore_errors=True)
    try:  # the .jobs folder itself goes once no job uses it
        job.folder.parent.rmdir()
    except OSError:
        pass
    job.final = Status(state, None, 1.0 if state == "done" else None, lines)
    job.ended.set()


def status(job: Job, tail_bytes: int = 8192) -> Status:
    """Where `job` stands, from its exit status, its atlas.json and the end of its log (kept in memory once the
    build ended)."""
    if job.final is not None:
        return job.final
    if job.process is None:
        running = [other.name for other in registry().values() if other.process is not None and not other.ended.is_set()]
        queued = _queued()
        ahead = queued[: queued.index(job)] if job in queued else []
        return Status("queued", None, None, running + [other.name for other in ahead])
    try:
        with open(job.log, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - tail_bytes))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    stage, fraction, lines = None, None, []
    for line in re.split(r"[\r\n]+", text):
        bar = _BAR.match(line.strip())
        if bar and bar.group(1) in _SLOT and int(bar.group(3)) > 0:
            stage = bar.group(1)
            fraction = (_SLOT[stage] + int(bar.group(2)) / int(bar.group(3))) / (max(_SLOT.values()) + 1)
        if bar:  # other bars (a library's own) are not stages; neither is kept as a log line
            line = bar.group(4)
        if line.strip():
            lines.append(line.strip())
    code = job.process.poll()
    state = "running" if code is None else "done" if code == 0 and (job.out / "atlas.json").is_file() else "failed"
    return Status(state, stage, fraction, lines[-8:])


# --- the page section --------------------------------------------------------------------------


def section(source: Source, model: str | None, revision: str | None, pooling: str) -> None:
    """Name box, "Build this atlas in the background" button and the status of that name's job."""
    default = job_name(Path(source.filename).stem) or "corpus"
    typed = st.text_input("Atlas name", default, key="atlas_job_name", max_chars=80)
    name = job_name(typed)
    if typed.strip() and name != typed.strip():
        st.caption(f"Saved as {ui.code_span(name or '?')}: letters, digits, - and _ only.")
    job = registry().get(name)
    busy = job is not None and not job.ended.is_set()
    if name and not busy and (_atlas_root() / name / "atlas.json").is_file():
        st.caption(f"An atlas named {ui.code_span(name)} exists: building again replaces it.")
    if st.button("Build this atlas in the background", key="atlas_job_start", disabled=busy or not name):
        with ui.guard("start the atlas build") as starting:
            job = start(name, source, model, revision, pooling)
        if starting.failed:
            return
    if job is None:
        if not name:
            ui.user_warning("Name the atlas with at least one letter or digit.")
        return
    if status(job).state in ("running", "queued"):
        _live(job)
    else:
        _show(job, status(job))


@st.fragment(run_every=2)
def _live(job: Job) -> None:
    """Redraws the status every 2 s while the job runs; once it ends, the whole page reruns (no more polling)."""
    now = status(job)
    if now.state not in ("running", "queued"):
        st.rerun()
    _show(job, now)


def _show(job: Job, now: Status) -> None:
    if now.state == "queued":
        text = (f"Atlas {job.name} is queued: this server builds one atlas at a time, and {len(now.lines)} "
                f"build(s) come first ({', '.join(now.lines)}). It starts by itself; you may close this tab.")
        st.progress(0.0, text=ui.escape_markdown(text))
    elif now.state == "running":
        text = f"Building atlas {job.name}: {now.stage or 'starting'} …"
        st.progress(now.fraction or 0.0, text=ui.escape_markdown(text))
    elif now.state == "done":
        st.success(f"Atlas {ui.code_span(job.name)} is ready.")
        st.page_link("views/atlas.py", label=f"Open {job.name} on the Atlas page", icon="🌌",
                     query_params={"atlas": job.name})
    else:
        code = job.code if job.code is not None else job.process.poll()
        ui.user_error(f"The atlas build for {job.name} failed (exit status {code}):\n\n" + "\n\n".join(now.lines))
