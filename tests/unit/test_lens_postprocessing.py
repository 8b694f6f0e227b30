"""Issue 24 §4: the logit lens on models that post-process their logits (Gemma-2 soft-capping, Granite and
Cohere scaling). Tiny random models, with weights scaled up so the post-processing changes the probabilities;
the references come from each model's own forward pass and from the formulas written out here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import encoderscope as es
from encoderscope.errors import UserFacingError

TEXT = "The capital of France is"
COMMON = dict(hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
              num_key_value_heads=1, max_position_embeddings=64)
# model -> (config class, its post-processing option, the post-processing written out, the head's weight scale:
# chosen so that the model's probability of its top token and the raw head's differ a lot, e.g. Gemma-2 0.57
# against 0.79)
KINDS = {
    "gemma2": ("Gemma2", {"final_logit_softcapping": 30.0, "head_dim": 32}, lambda z: torch.tanh(z / 30) * 30, 15),
    "granite": ("Granite", {"logits_scaling": 4.0}, lambda z: z / 4, 40),
    "cohere": ("Cohere", {"logit_scale": 0.25}, lambda z: z * 0.25, 40),
}


def tiny(kind: str, folder, tokenizer):
    import transformers

    name, extra, _, scale = KINDS[kind]
    torch.manual_seed(0)
    config = getattr(transformers, f"{name}Config")(vocab_size=len(tokenizer), **COMMON, **extra)
    model = getattr(transformers, f"{name}ForCausalLM")(config)
    with torch.no_grad():  # large logits, so that capping or scaling changes the softmax a lot
        model.get_output_embeddings().weight.mul_(scale)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return es.load_decoder(str(folder))


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_row_goes_through_the_models_own_post_processing(decoder_model, tmp_path, kind):
    # Bug: the head's raw output was soft-maxed: the last row was not the model's prediction (Gemma-2, cap 30:
    # 0.41 against the model's 0.80), and a mismatch was read as a missing final norm.
    dec = tiny(kind, tmp_path, decoder_model.tokenizer)
    lens = es.logit_lens(dec, TEXT, k=3)
    ids = dec.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = dec.model(input_ids=ids, output_hidden_states=True)
        own = torch.softmax(out.logits[0].float(), -1)  # [T, V], the model's own
        post = KINDS[kind][2]
        norm, head = dec.model.model.norm, dec.model.get_output_embeddings()
        layer1 = torch.softmax(post(head(norm(out.hidden_states[1][0])).float()), -1)
        raw = torch.softmax(head(out.hidden_states[-1][0]).float(), -1)
    target = int(own[-1].argmax())
    assert lens.target_id == target
    assert lens.target_prob[-1] == pytest.approx(float(own[-1, target]), abs=1e-5)
    assert abs(float(raw[-1, target]) - float(own[-1, target])) > 0.2  # the post-processing matters here
    np.testing.assert_allclose(lens.top_probs[-1], own.topk(3).values.numpy(), atol=1e-5)
    np.testing.assert_allclose(lens.top_probs[1], layer1.topk(3).values.numpy(), atol=1e-5)
    assert any("as the model's are" in note for note in lens.notes)


def test_logits_it_cannot_reproduce_are_refused(decoder_model, tmp_path):
    # Bug: any mismatch between head(last state) and the logits was taken for a missing norm, and the row was
    # still shown as the model's real prediction.
    dec = tiny("granite", tmp_path, decoder_model.tokenizer)
    forward = dec.model.forward

    def doubled(*args, **kwargs):  # post-processing this app does not know
        out = forward(*args, **kwargs)
        out.logits = out.logits * 2
        return out

    dec.model.forward = doubled
    with pytest.raises(UserFacingError, match="cannot reproduce .* own prediction"):
        es.logit_lens(dec, TEXT)
