"""Text towers as encoders: CLIP's causal text encoder, SigLIP's text tower and T5's encoder.

Tiny random CLIP, SigLIP and T5 folders (tokenizers included) load through `es.load_encoder`, the same path as
real hub models; expected values come from transformers' own classes, from the vision library's
`clip_similarity`, or by hand from the weights — never from the code under test.
"""

import io

import numpy as np
import pytest
import torch

import encoderscope as es
from encoderscope import embeddings, masks, models
from encoderscope.attention_maps import merge_word_pieces
from encoderscope.errors import UserFacingError
from encoderscope.tokens import clean_token, display_tokens, word_ids
from encoderscope.vision import clip_similarity, load_clip
from tests import vision_fixtures as vf

TEXTS = ["a photo of a cat", "the quick brown fox jumps over the lazy dog", "a red car"]


def tiny_clip_text(folder):
    """A CLIPTextModelWithProjection alone (model_type clip_text_model) with the tiny byte-level CLIP tokenizer."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(1)
    tokenizer = vf.clip_tokenizer()
    config = CLIPTextConfig(**vf.TOWER, vocab_size=len(tokenizer), max_position_embeddings=24, projection_dim=8)
    config.bos_token_id, config.eos_token_id, config.pad_token_id = 0, 1, 1
    CLIPTextModelWithProjection(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_t5(folder):
    """A T5ForConditionalGeneration checkpoint (as t5-small ships) with a SentencePiece model trained here."""
    import sentencepiece as spm
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(vf.SENTENCES * 4),
        model_writer=buffer,
        vocab_size=40,
        model_type="unigram",
        **{"pad_id": 0, "eos_id": 1, "unk_id": 2, "bos_id": -1},  # T5's ids
        minloglevel=2,
    )
    (folder / "spiece.model").write_bytes(buffer.getvalue())
    tokenizer = T5Tokenizer.from_pretrained(folder, extra_ids=0)
    torch.manual_seed(2)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=16,
        d_ff=37,
        num_layers=2,
        num_decoder_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
    )
    T5ForConditionalGeneration(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("towers")
    return {
        "clip": vf.tiny_clip(root / "clip"),
        "clip_text": tiny_clip_text(root / "clip_text"),
        "siglip": vf.tiny_siglip(root / "siglip"),
        "t5": tiny_t5(root / "t5"),
    }


@pytest.fixture(scope="module")
def encoders(folders):
    return {name: es.load_encoder(str(folder)) for name, folder in folders.items()}


# --- loading -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls", "causal"),
    [
        ("clip", "CLIPTextModelWithProjection", True),
        ("clip_text", "CLIPTextModelWithProjection", True),
        ("siglip", "SiglipTextModel", False),
        ("t5", "T5EncoderModel", False),
    ],
)
def test_text_towers_load_as_encoders(encoders, folders, name, cls, causal):
    enc = encoders[name]
    assert type(enc.model).__name__ == cls and enc.kind == "encoder" and enc.causal is causal
    assert models.folder_kind(folders[name]) == "encoder"
    assert enc.num_layers == 2 and enc.num_heads == 2


def test_full_clip_folder_gives_the_text_weights_of_the_checkpoint(encoders, folders):
    from transformers import CLIPModel

    full = CLIPModel.from_pretrained(folders["clip"]).state_dict()
    tower = encoders["clip"].model.state_dict()
    assert tower["text_projection.weight"].shape == (16, 32)  # CLIP's projection_dim lives on the outer config
    for key, value in tower.items():
        torch.testing.assert_close(value, full[key], rtol=0, atol=0)


def test_image_encoders_stay_refused_and_point_to_the_vision_page(tmp_path):
    from transformers import BartConfig

    folder = vf.tiny_vit(tmp_path / "vit")
    with pytest.raises(models.ModelLoadError, match="not a text encoder") as err:
        es.load_encoder(str(folder))
    assert "/vision" in str(err.value) and "Image VAE" in str(err.value)
    BartConfig(encoder_layers=1, decoder_layers=1).save_pretrained(tmp_path / "bart")
    with pytest.raises(models.ModelLoadError, match="encoder-decoder"):
        es.load_encoder(str(tmp_path / "bart"))


# --- attention ---------------------------------------------------------------------------------------------------


def test_clip_text_attention_is_lower_triangular(encoders):
    for name in ("clip", "clip_text"):
        res = es.attention(encoders[name], "a photo of a cat")
        assert res.causal
        assert res.tokens[0] == "<|startoftext|>" and res.tokens[-1] == "<|endoftext|>"
        assert np.triu(res.weights, k=1).max() == 0.0  # exactly zero: the future is masked out
        np.testing.assert_allclose(res.weights.sum(-1), 1.0, atol=1e-5)


def test_t5_encoder_attention_is_bidirectional(encoders):
    res = es.attention(encoders["t5"], "a photo of a cat")
    assert not res.causal and res.tokens[-1] == "</s>"
    np.testing.assert_allclose(res.weights.sum(-1), 1.0, atol=1e-5)
    assert np.triu(res.weights, k=1).sum(-1).mean() > 0.1  # real weight on tokens to the right


def test_siglip_text_attention(encoders):
    res = es.attention(encoders["siglip"], "a photo of a cat")
    assert not res.causal and res.tokens[-1] == "</s>"
    np.testing.assert_allclose(res.weights.sum(-1), 1.0, atol=1e-5)


def test_t5_head_stats_count_the_final_eos_as_end_token_not_cls(encoders):
    res = es.attention(encoders["t5"], "a photo of a cat")
    assert res.special.tolist() == [False] * (len(res.tokens) - 1) + [True]  # </s> is T5's only special token
    stats = es.head_stats(res)
    assert stats["cls"].isna().all()
    by_hand = res.weights[:, :, :-1, -1].mean(-1).reshape(-1)  # non-special queries' attention to </s>
    np.testing.assert_allclose(stats["sep"].to_numpy(), by_hand, atol=1e-6)


def test_clip_head_stats_start_and_end_tokens(encoders):
    res = es.attention(encoders["clip"], "a cat")
    stats = es.head_stats(res)
    w = res.weights[:, :, 1:-1]  # non-special queries
    np.testing.assert_allclose(stats["cls"].to_numpy(), w[..., 0].mean(-1).reshape(-1), atol=1e-6)
    np.testing.assert_allclose(stats["sep"].to_numpy(), w[..., -1].mean(-1).reshape(-1), atol=1e-6)
    assert (stats["sep"] == 0).all()  # causal: no query before the end token can see it


# --- embeddings --------------------------------------------------------------------------------------------------


def test_clip_embed_is_the_models_own_text_embeds(encoders, folders):
    from transformers import AutoTokenizer, CLIPTextModelWithProjection

    model = CLIPTextModelWithProjection.from_pretrained(folders["clip_text"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(folders["clip_text"])
    # One text at a time (no padding, no batching order); the long one is cut to the 24-token limit.
    with torch.inference_mode():
        expected = np.stack(
            [model(**tokenizer(t, truncation=True, return_tensors="pt")).text_embeds[0].numpy() for t in TEXTS]
        )
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    got = es.embed(encoders["clip_text"], TEXTS, batch_size=2)
    assert got.shape == (3, 8)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_clip_embed_lives_in_clips_joint_space(encoders, folders):
    s = clip_similarity(load_clip(str(folders["clip"])), [vf.photo()], TEXTS)
    got = es.embed(encoders["clip"], TEXTS)
    assert got.shape == s.text_embeds.shape == (3, 16)
    np.testing.assert_allclose(got, s.text_embeds, atol=1e-5)


def test_siglip_embed_is_the_models_own_pooled_head(encoders, folders):
    s = clip_similarity(load_clip(str(folders["siglip"])), [vf.photo()], TEXTS)
    np.testing.assert_allclose(es.embed(encoders["siglip"], TEXTS), s.text_embeds, atol=1e-5)


def test_t5_embed_is_the_masked_mean_of_the_encoder_output(encoders, folders):
    from transformers import AutoTokenizer, T5EncoderModel

    model = T5EncoderModel.from_pretrained(folders["t5"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(folders["t5"])
    with torch.inference_mode():
        expected = np.stack([model(**tokenizer(t, return_tensors="pt")).last_hidden_state[0].mean(0) for t in TEXTS])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(es.embed(encoders["t5"], TEXTS), expected, atol=1e-5)


def test_word_view_on_text_towers(encoders):
    long = ["a photo of a cat " * 3, "the cat and the dog " * 3]  # longer than the tiny CLIP's 24 positions
    for name in ("clip", "t5"):
        occ = embeddings.word_occurrences(encoders[name], long, "cat")
        assert occ.vectors.shape == (3, occ.count, 32)
        assert embeddings.anisotropy(encoders[name], long).shape == (3,)
        # CLIP (a character per token here) keeps 24 tokens, so some of the six "cat"s are cut off; T5 keeps all
        assert occ.count < 6 if name == "clip" else occ.count == 6
    with pytest.raises(UserFacingError, match="SentencePiece"):  # SigLIP's tokenizer reports no offsets
        embeddings.word_occurrences(encoders["siglip"], long, "cat")


def test_cls_pooling_of_a_causal_encoder_is_refused(encoders):
    # Its first token sees only itself: every text would get the same vector.
    with pytest.raises(UserFacingError, match="left to right"):
        es.embed(encoders["clip"], TEXTS, pooling="cls")


# --- the masks page's two runs -------------------------------------------------------------------------------------


def test_bidirectional_run_of_clip_passes_a_real_all_ones_mask(encoders):
    enc = encoders["clip"]
    text = "a photo of a cat"
    bi, causal = masks.run(enc, text, "bidirectional"), masks.run(enc, text, "causal")
    assert bi.trained_causal and causal.trained_causal
    assert np.triu(bi.weights, k=1).sum(-1).mean() > 0.1  # the model's own causal mask was replaced
    assert np.triu(causal.weights, k=1).max() == 0.0
    assert np.abs(bi.hidden[-1] - causal.hidden[-1]).max() > 1e-3
    # The explicit causal mask is the model's own: the same weights as a plain forward pass.
    np.testing.assert_allclose(causal.weights, es.attention(enc, text).weights, atol=1e-6)


def test_causal_run_of_t5_blocks_the_future(encoders):
    enc = encoders["t5"]
    bi, causal = masks.run(enc, "a photo of a cat", "bidirectional"), masks.run(enc, "a photo of a cat", "causal")
    assert not bi.trained_causal
    assert np.triu(causal.weights, k=1).max() == 0.0 and np.triu(bi.weights, k=1).max() > 0
    np.testing.assert_allclose(bi.weights, es.attention(enc, "a photo of a cat").weights, atol=1e-6)


# --- tokens ------------------------------------------------------------------------------------------------------


def test_clean_token_strips_word_markers():
    assert clean_token("photo</w>") == "photo "  # CLIP: end of word -> trailing space
    assert clean_token("▁photo") == " photo"  # SentencePiece: start of word -> leading space
    assert clean_token(clean_token("photo</w>")) == "photo "  # idempotent (figures clean again)


def test_word_ids_follow_each_convention():
    assert word_ids(["<|startoftext|>", "a</w>", "p", "h", "o</w>", ",</w>", "<|endoftext|>"]) == [
        None,
        0,
        1,
        1,
        1,
        2,
        None,
    ]
    assert word_ids(["▁a", "▁p", "h", "▁", "c", "a", "t", "</s>"]) == [0, 1, 1, 2, 2, 2, 2, None]
    assert word_ids(["[CLS]", "the", "token", "##ization", "[SEP]"]) == [None, 0, 1, 1, None]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("clip", ["a", "photo", "of", "a", "cat"]),  # fast tokenizer: its own word ids
        ("siglip", ["a", "photo", "of", "a", "cat"]),  # SentencePiece-backed: word ids from the '▁' markers
        ("t5", ["a", "photo", "of", "a", "cat"]),
    ],
)
def test_merged_words_display_without_markers(encoders, name, words):
    res = es.attention(encoders[name], "a photo of a cat")
    merged = merge_word_pieces(res)
    shown = [t.strip() for t, s in zip(display_tokens(merged.tokens), merged.special, strict=True) if not s]
    assert shown == words
    assert not any("</w>" in t or "▁" in t for t in display_tokens(res.tokens))
    np.testing.assert_allclose(merged.weights.sum(-1), 1.0, atol=1e-5)


def test_find_word_in_clip_and_sentencepiece_pieces(encoders):
    for name in ("clip", "siglip", "t5"):
        tokens = es.attention(encoders[name], "the quick brown fox").tokens
        index = masks.find_word(tokens, "brown")
        assert index is not None and clean_token(tokens[index]).strip()[:1] == "b"
        assert masks.find_word(tokens, "zebra") is None
