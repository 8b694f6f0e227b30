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


def test_a_slow_load_does_not_block_another_models_load():
    # Bug caught: one global load lock (issue 17): one user's multi-GB hub download held up every other load.
    release, started = threading.Event(), threading.Event()

    def slow(ref, *args):
        started.set()
        assert release.wait(30)
        return f"slow {ref}"

    slow_thread = threading.Thread(target=resources._logged_load, args=("encoder", slow, "big/model", None))
    slow_thread.start()
    try:
        assert started.wait(30)
        done = []
        other = threading.Thread(target=lambda: done.append(resources._logged_load("vae", lambda ref: ref, "taef2")))
        other.start()
        other.join(10)
        assert done == ["taef2"]  # finished while the slow load still holds its own lock
    finally:
        release.set()
        slow_thread.join(30)


def test_loads_of_the_same_model_still_take_turns():
    # Bug caught: per-reference locks keyed so loosely (or not at all) that one model loads twice at once.
    lock_a = resources._load_lock("encoder", "m", (None,))
    assert lock_a is resources._load_lock("encoder", "m", (None,))
    assert lock_a is not resources._load_lock("encoder", "other", (None,))
    assert lock_a is not resources._load_lock("decoder", "m", (None,))


def test_transformers_is_imported_before_any_load(monkeypatch):
    # Bug caught: dropping the global lock without the import-race fix (two threads importing transformers at once).
    calls = []
    monkeypatch.setattr(resources, "import_transformers", lambda: calls.append("import"))
    resources._logged_load("vae", lambda ref: calls.append("load") or ref, "x")
    assert calls == ["import", "load"]
