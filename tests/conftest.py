"""Shared fixtures: real bundled models, loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"


@pytest.fixture(scope="session")
def encoder():
    """The bundled all-MiniLM-L6-v2 (real weights)."""
    import encoderscope as es

    return es.load_encoder(None)


@pytest.fixture(scope="session")
def taef2_dir() -> Path:
    folder = Path(os.environ.get("ENCODERSCOPE_TAEF2_DIR", SHARED_MODELS / "taef2"))
    if not (folder / "taef2_encoder.pth").is_file():
        pytest.skip(f"real TAEF2 weights not found at {folder} (CI has them in ../shared/models/taef2)")
    return folder


@pytest.fixture(scope="session")
def decoder_model():
    """The bundled SmolLM2-135M-Instruct via the converted cache (converted on first use, ~25 s)."""
    import encoderscope as es

    return es.load_decoder(None)
