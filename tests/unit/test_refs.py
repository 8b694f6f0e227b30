"""`refs`: hub id or path, from the string alone; one rule set for models and VAEs."""

import pytest

from encoderscope import refs


@pytest.mark.parametrize(
    "text",
    ["bert-base-uncased", "owner/name", "BAAI/bge-small-en-v1.5", "madebyollin/taesd", "gpt2"],
)
def test_hub_ids(text):
    assert refs.is_hub_id(text) and not refs.looks_like_path(text)


@pytest.mark.parametrize(
    "text",
    [
        "/models/bert",
        "./bert",
        "~/models/bert",
        "..",
        "a/b/c",  # more than one '/'
        "owner/na..me",  # '..' never occurs in a hub id
        "C:\\models\\vae",
        "vae.safetensors",
        "owner/taesd_encoder.pth",
        "model.BIN",
        "sd.ckpt",
        "config.json",
    ],
)
def test_paths(text):
    assert refs.looks_like_path(text) and not refs.is_hub_id(text)


@pytest.mark.parametrize("text", ["a b c", "owner/", "-leading-dash", "x" * 97, "own er/name", "name;rm"])
def test_neither(text):
    assert not refs.is_hub_id(text) and not refs.looks_like_path(text)


def test_revisions_and_unusable():
    assert refs.is_revision("main") and refs.is_revision("v1.0") and refs.is_revision("a" * 40)
    assert not refs.is_revision("bad rev; rm -rf /") and not refs.is_revision("") and not refs.is_revision("-x")
    assert refs.unusable("a\x00b", 300) and refs.unusable("a" * 301, 300) and not refs.unusable("a" * 300, 300)
