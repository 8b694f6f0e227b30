"""Background atlas builds from the Embeddings page (components/atlas/jobs.py): who gets the button, a real
build of a small corpus through the CLI, its progress and its failure."""

from __future__ import annotations

import io
import types
from pathlib import Path

import pandas as pd
import pytest

from components.atlas import jobs
from encoderscope import settings
from tests.app.conftest import app, no_exceptions

TOPICS = ["The cat sat on the mat", "Interest rates rose at the bank", "Knead the dough and bake the bread",
          "The striker scored in the final"]
# 40 short sentences (with a comma, a quote and a semicolon, which a CSV round trip could break)
TEXTS = [f'{TOPICS[i % 4]}, take "{i}"; again.' for i in range(40)]
LABELS = [f"t{i % 4}" for i in range(40)]
BUTTON = "Build this atlas in the background"


@pytest.fixture(autouse=True)
def _forget_jobs():
    """The job registry lives as long as the process: a finished job must not show up in later tests' pages."""
    yield
    jobs.registry().clear()


def _csv() -> bytes:
    buffer = io.StringIO()
    pd.DataFrame({"sentence": TEXTS, "topic": LABELS}).to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def _embeddings_page(environ: dict):
    """The Embeddings page (through app.py, so page links resolve) with a 40-row CSV above a cap of 10."""
    settings.reload({"ENCODERSCOPE_MAX_SENTENCES": "10", **environ})
    at = app("app")
    at.run()
    at.switch_page("views/embeddings.py").run()
    at.radio(key="source").set_value("CSV upload").run()
    at.file_uploader(key="csv_upload").set_value(("my corpus!.csv", _csv(), "text/csv")).run()
    at.selectbox(key="label_col").set_value("topic").run()
    no_exceptions(at)
    assert at.code, "the atlas build command is shown above the cap"
    return at


def _buttons(at) -> list[str]:
    return [b.label for b in at.button]


@pytest.mark.parametrize(
    "environ",
    [{"ENCODERSCOPE_PUBLIC": "1"}, {"ENCODERSCOPE_ALLOW_LOCAL_PATHS": "0"}],
    ids=["public", "no-local-paths"],
)
def test_no_background_build_without_local_paths(tmp_path, environ):
    try:
        at = _embeddings_page({"ENCODERSCOPE_ATLAS_DIR": str(tmp_path), **environ})
        assert BUTTON not in _buttons(at)
    finally:
        settings.reload()


def test_background_build_writes_the_atlas_and_links_to_it(tmp_path):
    # Bugs: the build fed the page's own reading of the file (capped at max_csv_rows: 20 here, so 20 rows and
    # ids that stop matching the CSV); the .jobs folder left behind after the build.
    try:
        at = _embeddings_page({"ENCODERSCOPE_ATLAS_DIR": str(tmp_path), "ENCODERSCOPE_MAX_CSV_ROWS": "20"})
        assert at.text_input(key="atlas_job_name").value == "my-corpus"  # sanitised file name
        at.button(key="atlas_job_start").click().run()
        no_exceptions(at)
        assert any("Building atlas my-corpus" in bar.proto.text.replace("\\", "") for bar in at.get("progress"))
        job = jobs.registry()["my-corpus"]
        # one build per name at a time (the subprocess is still importing torch here)
        with pytest.raises(jobs.JobError, match="already being built"):
            jobs.start("my-corpus", jobs.Source("x.csv", ["a"]), None, None, "auto")
        assert job.wait(timeout=240) == 0, jobs.status(job).lines
        assert not (tmp_path / ".jobs").exists()
        at.run()
        no_exceptions(at)
        points = pd.read_parquet(tmp_path / "my-corpus" / "points.parquet")
        assert len(points) == 40  # the whole file, not the page's 10 sentences or its 20 rows
        assert list(points["text"]) == TEXTS and list(points["label"]) == LABELS
        links = at.get("page_link")
        assert [(link.proto.page, link.proto.query_string) for link in links if "Open" in link.proto.label] == [
            ("atlas", "atlas=my-corpus")
        ]
    finally:
        settings.reload()


def test_a_failed_build_shows_the_cli_error(tmp_path):
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(tmp_path)})
    try:
        job = jobs.start("broken", jobs.Source("b.txt", ["fine", " "]), None, None, "auto")
        assert job.wait(timeout=120) == 2
        now = jobs.status(job)
        assert now.state == "failed" and not (tmp_path / "broken" / "atlas.json").exists()
        assert any("error:" in line and "1 empty text(s)" in line for line in now.lines)
        assert not (tmp_path / ".jobs").exists()  # a failed build's folder goes too; its log lines stay
    finally:
        settings.reload()


def test_progress_reads_the_latest_stage_of_the_log(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("read: 100%|##| 1/1 [00:00]\rembed:   0%|  | 0/2 [00:00]\rembed:  50%|#  | 1/2 [00:03<00:03]\r"
                   "Batches: 100%|##| 3/3 [00:01]\n")  # a library's own bar is not a stage
    running = jobs.Job("x", types.SimpleNamespace(poll=lambda: None), tmp_path, Path(tmp_path / "x"))
    now = jobs.status(running)
    # 7 stages (read, embed, reduce, layout, duplicates, names, write); embed is the second, half done
    assert (now.state, now.stage, now.fraction, now.lines) == ("running", "embed", pytest.approx(1.5 / 7), [])


def test_names_are_sanitised_and_bad_ones_refused(tmp_path):
    assert jobs.job_name("../my corpus/é") == "my-corpus"
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(tmp_path)})
    try:
        with pytest.raises(jobs.JobError, match="letters, digits"):
            jobs.start("../x", jobs.Source("x.csv", ["a"]), None, None, "auto")
        assert not any(tmp_path.iterdir())
    finally:
        settings.reload()


def test_one_build_at_a_time_the_others_queue_in_order(tmp_path):
    # Bug: every click started its own build process: three builds each embedding on every core at once.
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(tmp_path)})
    try:
        first = jobs.start("first", jobs.Source("a.txt", ["fine", " "]), None, None, "auto")
        second = jobs.start("second", jobs.Source("b.txt", ["also fine", " "]), None, None, "auto")
        third = jobs.start("third", jobs.Source("c.txt", ["fine again", " "]), None, None, "auto")
        assert first.process is not None and second.process is None and third.process is None
        assert jobs.status(second) == jobs.Status("queued", None, None, ["first"])
        assert jobs.status(third) == jobs.Status("queued", None, None, ["first", "second"])
        assert (tmp_path / ".jobs" / "second").is_dir()  # its corpus is written, waiting
        for job in (first, second, third):
            assert job.wait(timeout=180) == 2
            assert jobs.status(job).state == "failed"
            assert any("1 empty text(s)" in line for line in jobs.status(job).lines)
        assert not (tmp_path / ".jobs").exists()
    finally:
        settings.reload()


def test_the_page_says_a_build_is_queued(tmp_path):
    # Bug: a second build started beside the running one, or waited without the page saying why.
    import subprocess
    import sys

    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(tmp_path)})
    # a build that runs for as long as the test needs (a real one could end while the page is set up)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        jobs.registry()["first"] = jobs.Job("first", sleeper, tmp_path / ".jobs" / "first", tmp_path / "first")
        at = _embeddings_page({"ENCODERSCOPE_ATLAS_DIR": str(tmp_path)})
        at.button(key="atlas_job_start").click().run()
        no_exceptions(at)
        texts = [bar.proto.text.replace("\\", "") for bar in at.get("progress")]
        assert any("my-corpus is queued" in t and "one atlas at a time" in t and "(first)" in t for t in texts), texts
        queued = jobs.registry()["my-corpus"]
        assert queued.process is None and (tmp_path / ".jobs" / "my-corpus" / "corpus.csv").is_file()
    finally:
        sleeper.kill()
        sleeper.wait()
        settings.reload()
