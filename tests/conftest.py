"""Shared fixtures: real bundled models, loaded once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def tiny_bert(folder: Path, **config) -> Path:
    """Save a tiny random BertModel with the bundled MiniLM tokenizer into `folder` (plumbing tests only).

    `config` overrides the BertConfig fields (default: 2 layers, 2 heads, hidden size 16).
    """
    from transformers import BertConfig, BertModel

    from encoderscope.models import bundled_encoder_path

    config = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, **config}
    BertModel(BertConfig(vocab_size=30522, **config)).save_pretrained(folder)
    src = bundled_encoder_path()
    for name in TOKENIZER_FILES:
        (Path(folder) / name).write_bytes((src / name).read_bytes())
    return Path(folder)


@pytest.fixture(scope="session")
def encoder():
    """The bundled all-MiniLM-L6-v2 (real weights)."""
    import encoderscope as es

    return es.load_encoder(None)


@pytest.fixture(scope="session")
def taef2_dir() -> Path:
    """Folder of the real TAEF2 weights (taef2_encoder.pth + taef2_decoder.pth).

    Missing weights skip the test locally; with REQUIRE_TAEF2=1 (set by .ci/run) they fail it, so CI
    cannot silently lose the VAE tests.
    """
    folder = Path(os.environ.get("ENCODERSCOPE_TAEF2_DIR", SHARED_MODELS / "taef2"))
    missing = [name for name in ("taef2_encoder.pth", "taef2_decoder.pth") if not (folder / name).is_file()]
    if missing:
        message = f"real TAEF2 weights not found at {folder}: {', '.join(missing)} (CI has them in ../shared/models/taef2)"
        if os.environ.get("REQUIRE_TAEF2") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return folder


MPNET_ID = "sentence-transformers/all-mpnet-base-v2"


@pytest.fixture(scope="session")
def mpnet_dir() -> Path:
    """The verified all-mpnet-base-v2 folder (`python -m encoderscope fetch-models`, run by `make`).

    Missing: skipped locally; with REQUIRE_MPNET=1 (set by .ci/run) the test fails, as with REQUIRE_TAEF2.
    """
    from encoderscope import bundled_models

    folder = bundled_models.installed()
    if folder is None:
        message = "all-mpnet-base-v2 is not installed: run `.venv/bin/python -m encoderscope fetch-models`"
        if os.environ.get("REQUIRE_MPNET") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def mpnet(mpnet_dir):
    """The real all-mpnet-base-v2 (MPNet, 12 layers x 12 heads, 768-d, mean pooling), loaded by its hub id."""
    import encoderscope as es

    return es.load_encoder(MPNET_ID)


VIT_TINY = SHARED_MODELS / "vit-tiny-patch16-224"


@pytest.fixture(scope="session")
def vit():
    """The real ViT-Ti/16 ImageNet classifier from ../shared/models (5.7 M parameters, 12 layers x 3 heads).

    Missing weights fail the test: every machine that runs the suite has ../shared/models."""
    import encoderscope as es

    if not (VIT_TINY / "model.safetensors").is_file():
        pytest.fail(f"the real ViT-Ti weights are missing at {VIT_TINY} (see ../shared/models/README.md)")
    return es.load_image_encoder(str(VIT_TINY))


@pytest.fixture(scope="session")
def decoder_model():
    """The bundled SmolLM2-135M-Instruct via the converted cache (converted on first use, ~25 s)."""
    import encoderscope as es

    return es.load_decoder(None)


@pytest.fixture(scope="session")
def playwright_session():
    """The one Playwright instance of the session (its sync API allows one running instance at a time): every
    browser of every browser test (tests/e2e/, tests/packaging/) is launched from it, in whatever order they run."""
    from tests.e2e.conftest import CHROMIUM

    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        message = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


def _launched(pw, args: list[str]):
    """Chromium launched with `args`, yielded, closed after (the body of a browser fixture)."""
    from tests.e2e.conftest import CHROMIUM

    b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    yield b
    b.close()


def _fresh_page(browser, width: int, height: int):
    """A page in a fresh context (no cookies, storage or listeners left by another test), yielded, closed after."""
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    pg = context.new_page()
    pg.set_default_timeout(90_000)
    yield pg
    context.close()


@pytest.fixture(scope="session")
def browser(playwright_session):
    """Headless Chromium, one for every browser test of the session."""
    from tests.e2e.conftest import CHROMIUM_ARGS

    yield from _launched(playwright_session, CHROMIUM_ARGS)


@pytest.fixture
def page(browser):
    yield from _fresh_page(browser, 1400, 1000)


@pytest.fixture(scope="session")
def gl_browser(playwright_session):
    """Headless Chromium with WebGL in software (SwiftShader: no GPU here), for the Atlas page's WebGL map."""
    from tests.e2e.conftest import WEBGL_ARGS

    yield from _launched(playwright_session, WEBGL_ARGS)


@pytest.fixture
def gl_page(gl_browser):
    """A fresh page of the WebGL browser, 1200 x 1400 (the atlas map and its panels fit without scrolling)."""
    yield from _fresh_page(gl_browser, 1200, 1400)
