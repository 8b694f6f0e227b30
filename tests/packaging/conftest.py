"""The wheel, built once per session from this checkout, and its installed copy in a temporary target.

`pip wheel --no-deps --no-build-isolation` (hatchling comes from requirements-dev.txt, so no network) and
`pip install --no-deps --target`: the dependencies are already in .venv, and the project itself is never
installed into .venv. `installed.run(...)` runs the installed copy from another working directory with only the
target on PYTHONPATH, so nothing of the checkout can stand in for a file the wheel forgot.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_FILES = ["app.py", "views", "components", ".streamlit/config.toml"]  # carried into encoderscope_app/


def project_files(*paths: str) -> list[str]:
    """The checkout's files under `paths` that belong to the project: tracked, or new and not git-ignored (a
    page someone just added counts; __pycache__, screenshots and weights do not)."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *paths],
                                cwd=ROOT, capture_output=True, text=True)
    except FileNotFoundError:  # no git on this machine
        listed = subprocess.CompletedProcess([], 1)
    if listed.returncode == 0:
        names = listed.stdout.splitlines()
    else:  # not a git checkout (an unpacked sdist): every file but byte-code
        names = [str(f.relative_to(ROOT)) for p in paths for f in ([ROOT / p] if (ROOT / p).is_file()
                 else (ROOT / p).rglob("*")) if "__pycache__" not in f.parts and f.suffix != ".pyc"]
    return sorted(n for n in names if (ROOT / n).is_file())  # not a file deleted but not yet committed


@dataclass(frozen=True)
class Installed:
    target: Path  # what `pip install --target` wrote: encoderscope/, encoderscope_app/, bin/, the dist-info
    cwd: Path  # an empty folder outside the checkout

    @property
    def script(self) -> Path:
        return self.target / "bin" / "encoderscope"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENCODERSCOPE_")}
        return {**env, "PYTHONPATH": str(self.target), "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1",
                **extra}

    def run(self, *args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
        """`encoderscope ARGS` through the installed console script, from `cwd`."""
        return subprocess.run([str(self.script), *args], cwd=self.cwd, env=self.env(**extra), capture_output=True,
                              text=True, timeout=timeout)


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
                          capture_output=True, text=True, timeout=300)
    # no hatchling here means requirements-dev.txt was not installed (`make test` installs it)
    assert done.returncode == 0, f"pip {args[0]} failed: {done.stderr[-3000:]}"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    # Byte-code caches next to the sources, as any test run leaves them: the wheel must not carry them.
    for folder in ("encoderscope", "components", "views"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT))
    (built,) = out.glob("encoderscope-*.whl")
    return built


@pytest.fixture(scope="session")
def wheel_names(wheel) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return [n for n in zf.namelist() if not n.endswith("/")]


@pytest.fixture(scope="session")
def installed(wheel, tmp_path_factory) -> Installed:
    target = tmp_path_factory.mktemp("site")
    _pip("install", "--no-deps", "--target", str(target), str(wheel))
    return Installed(target, tmp_path_factory.mktemp("elsewhere"))
