"""The cache layer under faults and concurrency (real Streamlit caches, real weights)."""

import shutil
import threading

import pytest

import encoderscope as es
from components import resources
from encoderscope import models


@pytest.fixture
def model_copy(tmp_path):
    """A private copy of the bundled MiniLM folder, so its cache key is fresh."""
    folder = tmp_path / "minilm"
    shutil.copytree(models.bundled_encoder_path(), folder)
    return folder


def test_failed_load_is_not_cached_and_retries(model_copy):
    weights = model_copy / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 3])  # truncated download
    with pytest.raises(models.ModelLoadError):
        resources.encoder(str(model_copy))
    weights.write_bytes(good)  # repaired: the next attempt loads instead of replaying the failure
    enc = resources.encoder(str(model_copy))
    assert enc.num_layers == 6


def test_concurrent_requests_load_once(model_copy, monkeypatch):
    calls = []
    real = es.load_encoder

    def counting(ref, revision=None):
        calls.append(ref)
        return real(ref, revision=revision)

    monkeypatch.setattr(es, "load_encoder", counting)
    results, barrier = [], threading.Barrier(3)

    def session():
        barrier.wait()
        results.append(resources.encoder(str(model_copy)))

    threads = [threading.Thread(target=session) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 3 and all(r is results[0] for r in results)  # one shared object
    assert len(calls) == 1
