"""`models.folder_kind`: which local folders the pickers offer as encoders or decoders, by `check_kind`'s rules."""

import json

import pytest
from transformers import BartConfig, BertConfig, GPT2Config, RobertaConfig, T5Config, ViTConfig

from encoderscope import models


def _folder(tmp_path, name, config):
    folder = tmp_path / name
    config.save_pretrained(folder)  # config.json only: folder_kind must not need weights
    return folder


@pytest.mark.parametrize(
    ("name", "config", "kind"),
    [
        ("bert", BertConfig(num_hidden_layers=2), "encoder"),
        ("gpt2", GPT2Config(n_layer=2), "decoder"),
        # A causal-LM head on an encoder architecture is still an encoder (a name-based rule says "decoder").
        ("roberta-causal", RobertaConfig(num_hidden_layers=2, architectures=["RobertaForCausalLM"]), "encoder"),
        ("t5", T5Config(num_layers=2), "encoder"),  # encoder-decoder: its encoder (T5EncoderModel) loads
        ("bart", BartConfig(encoder_layers=1, decoder_layers=1), ""),  # other encoder-decoders stay refused
        ("vit", ViTConfig(num_hidden_layers=2), ""),  # not a text model
    ],
)
def test_kind_follows_check_kind(tmp_path, name, config, kind):
    assert models.folder_kind(_folder(tmp_path, name, config)) == kind


def test_not_a_model_folder(tmp_path):
    assert models.folder_kind(tmp_path) == ""  # no config.json
    (tmp_path / "config.json").write_text("{not json")
    assert models.folder_kind(tmp_path) == ""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    assert models.folder_kind(tmp_path) == ""
    assert models.folder_kind(tmp_path / "missing") == ""


def test_bundled_encoder_folder():
    folder = models.bundled_encoder_path()
    assert folder is not None and models.folder_kind(folder) == "encoder"
