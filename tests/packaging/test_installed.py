"""The installed copy, run from a folder outside the checkout with only the install target on PYTHONPATH: the
library, the `encoderscope` command and its bad-input messages, and a background atlas build the app starts."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
import time

import encoderscope
from tests.e2e.conftest import _free_port

COMMANDS = ("serve", "embed", "atlas", "warm-up", "fetch-models")


def _no_traceback(run: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in run.stderr + run.stdout, run.stderr


def test_import_comes_from_the_installed_copy(installed):
    code = "import encoderscope, encoderscope.serve as s; print(encoderscope.__file__); print(encoderscope.__version__); print(s.app_dir())"
    run = subprocess.run([sys.executable, "-c", code], cwd=installed.cwd, env=installed.env(), capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    where, version, app = run.stdout.split()
    assert where == str(installed.target / "encoderscope" / "__init__.py")
    assert version == encoderscope.__version__
    assert app == str(installed.target / "encoderscope_app")  # the installed app, not this checkout's


def test_help_lists_the_commands(installed):
    run = installed.run("--help")
    assert run.returncode == 0, run.stderr
    listed = re.findall(r"^    (\S+)", run.stdout.split("positional arguments:")[-1], re.M)  # argparse's listing
    assert set(COMMANDS) <= set(listed), run.stdout
    # `python -m encoderscope` is the same command
    module = subprocess.run([sys.executable, "-m", "encoderscope", "--help"], cwd=installed.cwd, env=installed.env(),
                            capture_output=True, text=True, timeout=60)
    assert module.returncode == 0 and module.stdout == run.stdout
    version = installed.run("--version")
    assert version.stdout.strip() == f"encoderscope {encoderscope.__version__}"


def test_unknown_subcommand(installed):
    run = installed.run("frobnicate")
    assert run.returncode == 2
    assert "invalid choice: 'frobnicate'" in run.stderr and "serve" in run.stderr
    _no_traceback(run)


def test_serve_refuses_a_missing_atlas_or_models_folder(installed):
    run = installed.run("serve", "--port", str(_free_port()), "--atlas-dir", "no-such-atlases")
    assert run.returncode == 2
    assert "The atlas folder 'no-such-atlases' does not exist" in run.stderr and "atlas build" in run.stderr
    _no_traceback(run)
    run = installed.run("serve", "--port", str(_free_port()), "--models-dir", "no-such-models")
    assert run.returncode == 2 and "The models folder 'no-such-models' does not exist" in run.stderr


def test_serve_refuses_a_bad_setting(installed):
    run = installed.run("serve", "--port", str(_free_port()), ENCODERSCOPE_MAX_CHARS="lots")
    assert run.returncode == 2 and "ENCODERSCOPE_MAX_CHARS='lots' is not a valid int" in run.stderr
    _no_traceback(run)


def test_serve_refuses_a_busy_port(installed):
    # Bug: Streamlit started anyway, printed its banner and then failed (or moved to another port) in the log.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        run = installed.run("serve", "--port", str(port))
        elapsed = time.monotonic() - start
    assert run.returncode == 2
    assert f"Port {port} on 127.0.0.1 is already in use" in run.stderr and "--port" in run.stderr
    assert "Streamlit" not in run.stdout + run.stderr and elapsed < 30  # refused before Streamlit was started
    _no_traceback(run)


def test_background_atlas_build_runs_the_installed_library(installed, tmp_path):
    # The Embeddings page's background build runs `python -m encoderscope atlas build` in a child process. Here
    # the server's sys.path has the install (as site-packages would) but the child's environment does not: it
    # must still run the same installed library. The build is refused (an empty text) after the CLI started.
    script = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(installed.target)!r}, {str(installed.target / "encoderscope_app")!r}]
        from components.atlas import jobs
        from encoderscope import settings
        settings.reload({{"ENCODERSCOPE_ATLAS_DIR": {str(tmp_path)!r}}})
        job = jobs.start("broken", jobs.Source("b.txt", ["fine", " "]), None, None, "auto")
        code = job.wait(timeout=120)
        print(json.dumps({{"code": code, "lines": jobs.status(job).lines, "lib": str(jobs.LIBRARY_ROOT)}}))
    """)
    env = {k: v for k, v in installed.env().items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", script], cwd=installed.cwd, env=env, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["lib"] == str(installed.target)
    assert result["code"] == 2, result["lines"]  # not 1 with "No module named encoderscope"
    assert any("error:" in line and "1 empty text(s)" in line for line in result["lines"]), result["lines"]

