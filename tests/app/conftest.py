"""AppTest helpers: run a page script headless and read its figures."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as _app_test

ROOT = Path(__file__).resolve().parents[2]


# --- files a page serves (download buttons, st.image) ---------------------------------------
# AppTest builds a fresh in-memory media manager for every run and drops it afterwards, so nothing could read
# back what a download button or an image would serve. Keep each run's manager on its AppTest (`at.media`).


class _RecordingMediaFileManager(MediaFileManager):
    latest: MediaFileManager | None = None

    def __init__(self, storage) -> None:
        super().__init__(storage)
        _RecordingMediaFileManager.latest = self


def _run_keeping_media(self, *args, **kwargs):
    result = _original_run(self, *args, **kwargs)
    self.media = _RecordingMediaFileManager.latest
    _keep_heatmap_stores(result)
    return result


if not getattr(AppTest._run, "_keeps_media", False):
    _original_run = AppTest._run
    _app_test.MediaFileManager = _RecordingMediaFileManager
    _run_keeping_media._keeps_media = True
    AppTest._run = _run_keeping_media


def app(page: str, query: dict | None = None, timeout: float = 180) -> AppTest:
    """An AppTest for views/<page>.py (or app.py when page == "app"), with URL query parameters."""
    path = ROOT / "app.py" if page == "app" else ROOT / "views" / f"{page}.py"
    at = AppTest.from_file(str(path), default_timeout=timeout)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at


def opened(page: str, query: dict | None = None) -> AppTest:
    """`app(page, query)` after its first run, which must not have raised."""
    at = app(page, query)
    at.run()
    no_exceptions(at)
    return at


def figures(at: AppTest) -> list[dict]:
    """Every plotly chart on the page as a figure dict (data + layout)."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def show(at: AppTest, key: str, view: str) -> AppTest:
    """Pick `view` on the page's one-view control `key` (components/ui.py `one_view`) and run: only that view runs."""
    at.segmented_control(key=key).set_value(view).run()
    no_exceptions(at)
    return at


@pytest.fixture
def jobs():
    """`jobs()`: the kinds of the compute-pool jobs that finished since the last call, read from the pool's one log
    line per job (`encoderscope: job KIND done: ...`), so a test sees what a page computed without patching it."""
    import logging
    import re

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("encoderscope")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def ran() -> set[str]:
        found = {m.group(1) for r in records if (m := re.match(r"encoderscope: job (.+?) done", r.getMessage()))}
        records.clear()
        return found

    yield ran
    logger.removeHandler(handler)
    logger.setLevel(old)


def messages(at: AppTest) -> str:
    """All error/warning/info text on the page, with markdown escapes removed."""
    parts = [m.value for kind in ("error", "warning", "info") for m in getattr(at, kind)]
    return " ".join(parts).replace("\\", "")


def array(value) -> np.ndarray:
    """A figure array as numpy: plotly >= 6 sends numpy data as base64 typed arrays ({dtype, bdata, shape})."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = [int(n) for n in str(value["shape"]).split(",")] if "shape" in value else [len(flat)]
        return flat.reshape(shape)
    return np.asarray(value, dtype=float)


def download(at: AppTest, label: str) -> tuple[str, bytes]:
    """(file name, bytes) the download button whose label contains `label` serves after the latest run.

    Deferred data (a callable, see components/ui.py npy_bytes) is built as a click would build it."""
    buttons = [b for b in at.get("download_button") if label in b.label]
    assert len(buttons) == 1, f"{len(buttons)} download buttons match {label!r}: {[b.label for b in at.get('download_button')]}"
    proto = buttons[0].proto
    url = at.media.execute_deferred(proto.deferred_file_id) if proto.HasField("deferred_file_id") else proto.url
    stored = at.media.read_file(url.rsplit("/", 1)[-1])
    assert stored is not None, f"{label!r}: no file behind {url}"
    return stored.filename, stored.content


def image(at: AppTest, caption: str):
    """The PIL image shown by st.image whose caption contains `caption` (markdown escapes ignored)."""
    import io

    from PIL import Image

    found = [
        url
        for element in at.get("image")
        for url, text in zip(element.value, element.captions, strict=True)
        if caption in text.replace("\\", "")
    ]
    assert len(found) == 1, f"{len(found)} images have a caption with {caption!r}"
    stored = at.media.read_file(found[0].rsplit("/", 1)[-1])
    assert stored is not None, f"no file behind {found[0]}"
    return Image.open(io.BytesIO(stored.content))


# --- a tiny VAE, so VAE page tests need no downloaded weights --------------------------------

TINY_KL_SCALE, TINY_KL_SHIFT = 0.5, 0.1  # not 1 and 0, so a missing or inverted scaling shows


@pytest.fixture(scope="session")
def tiny_kl_dir(tmp_path_factory) -> str:
    """A diffusers folder `.../vaes/tiny-kl` with a seeded random AutoencoderKL: 4 latent channels and 8×
    downsampling like SD's VAE, 8 feature channels so it runs in milliseconds."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    model = AutoencoderKL(
        block_out_channels=[8, 8, 8, 8],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=TINY_KL_SCALE,
        shift_factor=TINY_KL_SHIFT,
    )
    folder = tmp_path_factory.mktemp("vaes") / "tiny-kl"
    model.save_pretrained(folder)
    return str(folder)


# --- the heatmap component (components/heatmap): its binary payload, decoded here independently -----------


def heatmap(at: AppTest, key: str) -> tuple[dict, dict[str, np.ndarray]] | None:
    """(header, {block name: uint8 array}) of the heatmap component mounted with `key`, or None.

    Payload: b"ESH1", uint32 LE header length, header JSON, then the blocks at header["blocks"][name] =
    [offset, size] after the header."""
    import struct

    for element in at.get("bidi_component"):
        proto = element.proto
        if proto.id.endswith(f"-{key}") and proto.bytes:
            data = proto.bytes
            assert data[:4] == b"ESH1"
            (n,) = struct.unpack("<I", data[4:8])
            header = json.loads(data[8 : 8 + n])
            blocks = {name: np.frombuffer(data, np.uint8, size, 8 + n + off)
                      for name, (off, size) in header["blocks"].items()}
            return header, blocks
    return None


def _keep_heatmap_stores(at: AppTest) -> None:
    """After every run: keep the attention page's layer stores by id, as the browser does (the page sends a
    layer's store once per session, not on every rerun)."""
    found = heatmap(at, "main_heatmap_store")
    if found is not None:
        at.__dict__.setdefault("_es_stores", {})[found[0]["id"]] = found[1]


def heatmap_values(header: dict, blocks: dict, view: str, exact: bool = True) -> np.ndarray:
    """The values `[rows, cols]` of one view: from the high and low bytes (uint16 over zmin..zmax) when
    `exact`, else the centre of the colour byte's bin (what the colour stands for)."""
    rows = len(header["rows"])
    cols = len(header["cols"] or header["rows"]) if "cols" in header else rows
    hi = blocks[f"hi:{view}"].astype(np.float64)
    q = hi * 256 + (blocks[f"lo:{view}"] if exact else 128)
    return (header["zmin"] + q / 65535 * (header["zmax"] - header["zmin"])).reshape(rows, cols)


def main_heatmap(at: AppTest) -> tuple[int, str, np.ndarray, dict]:
    """The attention page's main map: (layer, view, exact values `[T, T]`, header). The first payload carries
    the selected view's colour bytes; the store (sent after it) every view's colour and low bytes."""
    header, blocks = heatmap(at, "main_heatmap")
    kept = at.__dict__.get("_es_stores", {})
    assert header["id"] in kept, "no store was ever sent for the drawn layer"
    store = kept[header["id"]]
    view = header["view"]
    assert np.array_equal(blocks[f"hi:{view}"], store[f"hi:{view}"]), "first draw and store disagree"
    layer = int(header["tag_prefix"].rstrip(":"))
    return layer, view, heatmap_values(header, store, view), header
