"""Masks as arrays, the encoder under a causal mask, and the context probe (real MiniLM)."""

import numpy as np
import pytest

from encoderscope import masks

BANK_A = "The bank was steep and muddy near the river."
BANK_B = "The bank was closed for the holiday weekend."


def test_gallery_shapes_and_values():
    assert masks.bidirectional(4).all() and masks.bidirectional(4).shape == (4, 4)
    c = masks.causal(4)
    assert c.dtype == bool and c[3].all() and not c[0, 1:].any() and np.array_equal(c, np.tril(np.ones((4, 4), bool)))
    p = masks.prefix_lm(5, 2)
    assert p[0, 1] and p[1, 0] and not p[1, 2] and p[4].all() and not p[2, 3] and p[2, :3].all()
    assert np.array_equal(masks.prefix_lm(5, 0), masks.causal(5))
    assert np.array_equal(masks.prefix_lm(5, 5), masks.bidirectional(5))
    with pytest.raises(ValueError, match="out of range"):
        masks.prefix_lm(5, 6)
    assert masks.cross_attention(3, 7).shape == (3, 7) and masks.cross_attention(3, 7).all()
    pad = masks.padding([4, 2])
    assert pad.shape == (2, 4, 4) and pad[0].all()
    assert pad[1, :2, :2].all() and not pad[1, :, 2:].any() and not pad[1, 2:, :].any()


def test_additive_mask():
    add = masks.additive(masks.causal(3))
    assert add.shape == (1, 1, 3, 3) and add[0, 0, 0, 1] == float("-inf") and add[0, 0, 1, 0] == 0


def test_causal_mask_really_blocks_the_future(encoder):
    run = masks.run(encoder, BANK_A, "causal")
    assert np.triu(run.weights, k=1).max() == 0.0
    np.testing.assert_allclose(run.weights.sum(-1), 1.0, atol=1e-5)
    bi = masks.run(encoder, BANK_A, "bidirectional")
    assert np.triu(bi.weights, k=1).max() > 0.1


def test_hidden_states_shape(encoder):
    h = masks.hidden_states(encoder, BANK_A)
    T = len(encoder.tokenizer(BANK_A)["input_ids"])
    assert h.shape == (7, T, 384)
    with pytest.raises(ValueError):
        masks.hidden_states(encoder, BANK_A, mask="sideways")


def test_last_token_least_affected_by_causal_mask(encoder):
    sim = masks.cosine(masks.hidden_states(encoder, BANK_A), masks.hidden_states(encoder, BANK_A, "causal"))
    assert np.allclose(sim[0], 1.0, atol=1e-6)  # embeddings never attend
    # Layer 1: the last token reads the same embeddings under both masks, so it is unchanged there.
    assert sim[1, -1] == pytest.approx(1.0, abs=1e-5) and sim[1, -1] >= sim[1].max() - 1e-6
    mean = sim[1:].mean(axis=0)  # over layers
    assert mean[-1] > mean.mean()  # and less affected than the average token over all layers


def test_exact_prefix_invariance(encoder):
    probe = masks.context_probe(encoder, BANK_A, BANK_B)
    assert probe.diverge == 4  # [CLS] the bank was | steep / closed
    causal = {
        m: (masks.hidden_states(encoder, BANK_A, m), masks.hidden_states(encoder, BANK_B, m)) for m in masks.MASKS
    }
    a, b = causal["causal"]
    np.testing.assert_allclose(a[:, : probe.diverge], b[:, : probe.diverge], atol=1e-5)  # every layer
    a, b = causal["bidirectional"]
    bank = masks.find_word(probe.tokens_a, "bank")
    assert bank == 2
    assert np.abs(a[-1, bank] - b[-1, bank]).max() > 1e-3
    assert probe.similarity["causal"][:, : probe.diverge].min() > 1 - 1e-6
    assert probe.similarity["bidirectional"][-1, bank] < 0.99


def test_probe_edge_cases(encoder):
    same = masks.context_probe(encoder, "Same words here.", "Same words here.")
    assert same.identical and np.allclose(same.similarity["bidirectional"], 1, atol=1e-6)
    different = masks.context_probe(encoder, "Apples are red.", "Quantum fields fluctuate wildly today.")
    assert different.diverge == 1
    short = masks.context_probe(encoder, "The bank", "The bank was closed for the holiday.")
    assert short.similarity["causal"].shape[1] == len(short.tokens_a) - 0  # compared up to the shorter


def test_find_word():
    assert masks.find_word(["[CLS]", "the", "token", "##ization", "[SEP]"], "tokenization") == 2
    assert masks.find_word(["The", "Ġbank", "Ġwas"], "bank") == 1
    assert masks.find_word(["[CLS]", "a"], "zebra") is None
    assert masks.find_word(["[CLS]", "a"], " ") is None


def _tiny(config_cls, **kwargs):
    return config_cls(num_hidden_layers=2, num_attention_heads=2, intermediate_size=16, **kwargs)


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta", "electra", "mpnet"])
def test_causal_mask_blocks_the_future_in_other_encoders(encoder, arch):
    """Plumbing on tiny random models: the 4-D additive mask is honoured by every curated encoder family."""
    import torch
    from transformers import AutoModel, BertConfig, DistilBertConfig, ElectraConfig, MPNetConfig, RobertaConfig

    from encoderscope.models import LoadedModel

    vocab = encoder.tokenizer.vocab_size
    config = {
        "bert": lambda: _tiny(BertConfig, vocab_size=vocab, hidden_size=16),
        "distilbert": lambda: DistilBertConfig(vocab_size=vocab, dim=16, n_layers=2, n_heads=2, hidden_dim=16),
        "roberta": lambda: _tiny(RobertaConfig, vocab_size=vocab, hidden_size=16),
        "electra": lambda: _tiny(ElectraConfig, vocab_size=vocab, hidden_size=16, embedding_size=16),
        "mpnet": lambda: _tiny(MPNetConfig, vocab_size=vocab, hidden_size=16),
    }[arch]()
    torch.manual_seed(0)
    model = AutoModel.from_config(config, attn_implementation="eager").eval()
    tiny = LoadedModel(model, encoder.tokenizer, arch, "encoder", "local")
    run = masks.run(tiny, BANK_A, "causal")
    assert run.weights.shape[:2] == (2, 2) and np.triu(run.weights, k=1).max() == 0.0
    a, b = (masks.hidden_states(tiny, s, "causal") for s in (BANK_A, BANK_B))
    np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-6)
