"""es.logit_lens and es.token_attribution on the real bundled SmolLM2-135M.

Expected values come from the model's own logits (computed here with transformers) and `decoder.next_tokens`.
"""

import numpy as np
import pytest
import torch

import encoderscope as es
from encoderscope import decoder, settings

TEXT = "The capital of France is"


@pytest.fixture(scope="module")
def lens(decoder_model):
    return es.logit_lens(decoder_model, TEXT, k=5)


def test_last_layer_is_the_models_own_prediction(decoder_model, lens):
    # Bug caught: the final norm applied twice to the last hidden state (transformers returns it normed already),
    # or the lens read from the wrong position.
    ids = decoder_model.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        probs = torch.softmax(decoder_model.model(input_ids=ids).logits[0].float(), -1)
    top = torch.topk(probs, 5, -1)
    L = decoder_model.num_layers
    assert lens.top_probs.shape == (L + 1, ids.shape[1], 5)
    np.testing.assert_array_equal(lens.top_ids[L], top.indices.numpy())
    np.testing.assert_allclose(lens.top_probs[L], top.values.numpy(), atol=1e-4)


def test_target_is_next_tokens_top_guess(decoder_model, lens):
    (word, p), *_ = decoder.next_tokens(decoder_model, TEXT)
    assert lens.target == word == " Paris"
    assert lens.top_tokens[-1][-1][0] == word
    assert lens.target_prob[-1] == pytest.approx(p, abs=1e-4)


def test_the_model_knows_paris_only_in_its_last_layers(lens):
    # Semantics of the lens: the answer is absent from the early residual stream and emerges late.
    assert lens.target_prob[: len(lens.target_prob) // 2].max() < 0.01
    assert lens.target_prob[-1] > 0.5
    assert ((lens.target_prob >= 0) & (lens.target_prob <= 1)).all()


def test_layer_zero_reads_back_each_input_token(decoder_model, lens):
    # With tied embeddings, row 0 (the embedding output) unembeds to the token itself: catches an off-by-one
    # between positions and rows, or a lens that skips the embedding layer.
    inputs = [decoder_model.tokenizer.decode([i]) for i in decoder_model.tokenizer(TEXT)["input_ids"]]
    assert sum(lens.top_tokens[0][t][0] == inputs[t] for t in range(len(inputs))) >= len(inputs) - 1


def test_lens_refuses_an_encoder_and_empty_text(encoder, decoder_model):
    with pytest.raises(es.UserFacingError, match="causal decoder"):
        es.logit_lens(encoder, TEXT)
    with pytest.raises(es.UserFacingError, match="empty"):
        es.logit_lens(decoder_model, " \n ")


@pytest.fixture(scope="module")
def attribution(decoder_model):
    return es.token_attribution(decoder_model, TEXT, steps=64)


def test_token_attribution_completeness_at_64_steps(decoder_model, attribution):
    # Bug caught: a missing (x − baseline) factor or 1/steps; the sum must close the gap to the baseline.
    assert attribution.target == " Paris"
    assert attribution.completeness <= 0.05
    assert attribution.scores.sum() == pytest.approx(attribution.logprob - attribution.baseline_logprob, rel=0.05)
    (_, p), *_ = decoder.next_tokens(decoder_model, TEXT)
    assert attribution.logprob == pytest.approx(np.log(p), abs=1e-4)


def test_france_and_capital_raise_paris(attribution):
    # Semantics: the content words that point at Paris carry positive scores; the kept first token gets 0.
    score = dict(zip(attribution.tokens, attribution.scores, strict=True))
    assert score["ĠFrance"] > 0 and score["Ġcapital"] > 0
    assert attribution.scores[0] == 0.0
    assert any("attention sink" in note for note in attribution.notes)


def test_target_given_as_text_and_multi_token_note(decoder_model):
    one = es.token_attribution(decoder_model, TEXT, target=" London", steps=4)
    assert one.target == " London" and not any("tokens;" in n for n in one.notes)
    many = es.token_attribution(decoder_model, TEXT, target=" Parisiennesque", steps=4)
    assert any("the first" in n for n in many.notes)


def test_bad_targets_and_inputs_are_clear_messages(encoder, decoder_model):
    with pytest.raises(es.UserFacingError, match="outside the vocabulary"):
        es.token_attribution(decoder_model, TEXT, target=10**9, steps=4)
    with pytest.raises(es.UserFacingError, match="empty"):
        es.token_attribution(decoder_model, "", steps=4)
    with pytest.raises(es.UserFacingError, match="causal decoder"):
        es.token_attribution(encoder, TEXT, steps=4)
    with pytest.raises(es.UserFacingError, match="Unknown method"):
        es.token_attribution(decoder_model, TEXT, method="saliency")


def test_long_text_keeps_its_last_tokens_under_the_cap(decoder_model):
    settings.reload({"ENCODERSCOPE_ATTRIBUTION_MAX_TOKENS": "8"})
    try:
        long = "Once upon a time there was a small village by the sea, and the capital of France is"
        ta = es.token_attribution(decoder_model, long, steps=4)
    finally:
        settings.reload()
    assert len(ta.tokens) == len(ta.scores) == 8 and ta.tokens[-1] == "Ġis"
    assert any("last 8" in note for note in ta.notes)
