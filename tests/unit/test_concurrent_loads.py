"""Two different real models loaded from two threads at the same moment (the bundled MiniLM encoder and the
bundled SmolLM2 decoder), as two users opening two pages do.

Bug: transformers' from_pretrained sets process-wide torch state while it builds a model (the "meta" default
device, the default dtype, a patched torch.linspace); two builds at once read each other's state and failed with
"Cannot copy out of meta tensor", or left the state changed after both finished. Fixed by one construction lock
(`encoderscope.model_kinds.BUILD_LOCK`)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import encoderscope as es

TEXT = "The striker scored twice before half time."
ROUNDS = 3  # each round starts both loads together; the race needs their builds to overlap


def _hidden(model) -> np.ndarray:
    return es.hidden_states(model, TEXT, mask="causal" if model.kind == "decoder" else "bidirectional")


def _load_together(loaders: dict) -> tuple[dict, dict]:
    """Start every loader at the same moment, each in its own thread: ({kind: model}, {kind: exception})."""
    start = threading.Barrier(len(loaders))
    loaded, failed = {}, {}

    def load(kind: str) -> None:
        start.wait()
        try:
            loaded[kind] = loaders[kind](None)
        except BaseException as err:  # reported by the test, with its kind
            failed[kind] = err

    threads = [threading.Thread(target=load, args=(kind,)) for kind in loaders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return loaded, failed


@pytest.mark.slow
def test_two_models_load_at_once_from_two_threads_and_both_work(encoder, decoder_model):
    expected = {"encoder": _hidden(encoder), "decoder": _hidden(decoder_model)}  # loaded one at a time
    linspace = torch.linspace
    for _ in range(ROUNDS):
        loaded, failed = _load_together({"encoder": es.load_encoder, "decoder": es.load_decoder})
        assert not failed, failed
        assert set(loaded) == {"encoder", "decoder"}
        for kind, model in loaded.items():
            devices = {p.device.type for p in model.model.parameters()} | {b.device.type for b in model.model.buffers()}
            assert devices == {"cpu"}, (kind, devices)
            np.testing.assert_allclose(_hidden(model), expected[kind], rtol=1e-4, atol=1e-4, err_msg=kind)
        # the process-wide state each build changes is back as it was
        assert torch.get_default_device() == torch.device("cpu") and torch.get_default_dtype() == torch.float32
        assert torch.linspace is linspace
