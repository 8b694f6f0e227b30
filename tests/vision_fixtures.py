"""Tiny random vision and CLIP-style models saved to folders, loaded through the same public path as real ones.

Each builder writes config.json, *.safetensors weights and the preprocessor (and tokenizer) files into `folder` and
returns the folder. Weights are random and seeded: these models are for plumbing and exactness tests, never for
looking at. Images are 32 px on the short side with 8 px patches (4 × 4 patches when square).

Shared by the library tests (tests/unit/test_vision.py, test_clip.py) and the page tests.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 32  # processor size and config image_size
PATCH = 8
TOWER = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}


def _save(model, processor, folder: Path, tokenizer=None) -> Path:
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def _vit_processor(cls_name: str = "ViTImageProcessorPil", **extra):
    import transformers

    cls = getattr(transformers, cls_name)
    size = {"height": SIDE, "width": SIDE}
    return cls(size=size, image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.25, 0.3], **extra)


def tiny_vit(folder: Path, classifier: bool = False, seed: int = 0) -> Path:
    """A ViT (`classifier=True`: a ViTForImageClassification checkpoint with 3 labels and a pooler-free encoder)."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTModel

    torch.manual_seed(seed)
    config = ViTConfig(image_size=SIDE, patch_size=PATCH, **TOWER)
    if classifier:
        config.num_labels = 3
        config.architectures = ["ViTForImageClassification"]
        model = ViTForImageClassification(config)
    else:
        model = ViTModel(config)
    return _save(model.eval(), _vit_processor(), folder)


def tiny_deit(folder: Path, seed: int = 0) -> Path:
    """A DeiT encoder: [CLS] and [DIST] then the patches."""
    import torch
    from transformers import DeiTConfig, DeiTModel

    torch.manual_seed(seed)
    config = DeiTConfig(image_size=SIDE, patch_size=PATCH, **TOWER)
    return _save(
        DeiTModel(config, add_pooling_layer=False).eval(),
        _vit_processor("DeiTImageProcessorPil", crop_size={"height": SIDE, "width": SIDE}),
        folder,
    )


def tiny_dinov2(folder: Path, registers: int = 0, seed: int = 0) -> Path:
    """A DINOv2 encoder; `registers` > 0 builds Dinov2WithRegisters with that many register tokens."""
    import torch
    from transformers import BitImageProcessorPil

    torch.manual_seed(seed)
    tower = {k: v for k, v in TOWER.items() if k != "intermediate_size"}
    if registers:
        from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

        config = Dinov2WithRegistersConfig(
            image_size=SIDE, patch_size=PATCH, mlp_ratio=2, num_register_tokens=registers, **tower
        )
        model = Dinov2WithRegistersModel(config)
    else:
        from transformers import Dinov2Config, Dinov2Model

        model = Dinov2Model(Dinov2Config(image_size=SIDE, patch_size=PATCH, mlp_ratio=2, **tower))
    processor = BitImageProcessorPil(
        size={"shortest_edge": SIDE + 8},
        crop_size={"height": SIDE, "width": SIDE},
        do_center_crop=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    return _save(model.eval(), processor, folder)


def tiny_bert_config(folder: Path) -> Path:
    """A text encoder folder (config + weights only) to hand to the image loaders by mistake."""
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=100, **TOWER)).save_pretrained(folder)
    return Path(folder)


# --- CLIP and SigLIP: both towers, a tokenizer, an image processor ----------------------------------------------


def clip_tokenizer():
    """A byte-level CLIP BPE tokenizer with no merges: every character is a token ("a", "a</w>", ...)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in chars:
        vocab[ch] = len(vocab)
    for ch in chars:
        vocab[ch + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=24)


SENTENCES = [
    "a photo of a cat",
    "a photo of a dog sitting on the grass",
    "a red car parked in the street",
    "two birds flying over the sea at sunset",
    "a bowl of fruit on a wooden table",
    "the quick brown fox jumps over the lazy dog",
]


def siglip_tokenizer(folder: Path):
    """A SigLIP tokenizer on a SentencePiece model trained here from a few sentences (vocabulary of 40)."""
    import sentencepiece as spm
    from transformers import SiglipTokenizer

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 4),
        model_writer=buffer,
        vocab_size=40,
        model_type="unigram",
        pad_id=-1,
        unk_id=2,
        bos_id=-1,
        eos_id=1,
        eos_piece="</s>",
        unk_piece="<unk>",
        minloglevel=2,
    )
    spm_file = Path(folder) / "spiece.model"
    Path(folder).mkdir(parents=True, exist_ok=True)
    spm_file.write_bytes(buffer.getvalue())
    return SiglipTokenizer(vocab_file=str(spm_file), model_max_length=16)


def _text_tower(vocab_size: int, length: int, bos: int, eos: int) -> dict:
    """A tiny text tower config whose special ids lie in its own vocabulary (padding with the end token)."""
    return {
        **TOWER,
        "vocab_size": vocab_size,
        "max_position_embeddings": length,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": eos,
    }


def tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A CLIPModel (text + vision towers, projection 16) with a CLIP tokenizer and image processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    config = CLIPConfig(
        text_config=_text_tower(len(tokenizer), 24, bos=0, eos=1),
        vision_config={**TOWER, "image_size": SIDE, "patch_size": PATCH},
        projection_dim=16,
    )
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": SIDE},
        crop_size={"height": SIDE, "width": SIDE},
    )
    return _save(CLIPModel(config).eval(), processor, folder, tokenizer)


def tiny_siglip(folder: Path, seed: int = 0) -> Path:
    """A SiglipModel (text + vision towers, no [CLS]) with a SentencePiece tokenizer and image processor."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel

    torch.manual_seed(seed)
    tokenizer = siglip_tokenizer(folder)
    config = SiglipConfig(
        text_config=_text_tower(len(tokenizer), 16, bos=1, eos=1),
        vision_config={**TOWER, "image_size": SIDE, "patch_size": PATCH},
    )
    model = SiglipModel(config).eval()
    with torch.no_grad():  # a visible bias, so a test notices if it is dropped
        model.logit_bias.fill_(-1.5)
    processor = SiglipImageProcessorPil(size={"height": SIDE, "width": SIDE})
    return _save(model, processor, folder, tokenizer)


# --- images -------------------------------------------------------------------------------------------------------


def photo(width: int = 48, height: int = 32, seed: int = 0) -> Image.Image:
    """A random RGB image with some structure (a gradient plus noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / max(width - 1, 1), y / max(height - 1, 1), 0.5 + 0 * x], axis=-1) * 200
    noise = rng.integers(0, 55, size=(height, width, 3))
    return Image.fromarray((base + noise).astype(np.uint8), "RGB")


def encoded(image: Image.Image, fmt: str = "PNG", **save) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def tiny_head(folder: Path, arch: str, seed: int = 0) -> Path:
    """A classification checkpoint with 3 labels: `arch` is "Dinov2ForImageClassification" (head on [CLS] joined
    with the mean patch token), "DeiTForImageClassificationWithTeacher" (a [CLS] and a [DIST] head, averaged) or
    "DeiTForImageClassification" ([CLS] only)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    if arch.startswith("Dinov2"):
        tower = {k: v for k, v in TOWER.items() if k != "intermediate_size"}
        config = transformers.Dinov2Config(image_size=SIDE, patch_size=PATCH, mlp_ratio=2, **tower)
        processor = _vit_processor()
    else:
        config = transformers.DeiTConfig(image_size=SIDE, patch_size=PATCH, **TOWER)
        processor = _vit_processor("DeiTImageProcessorPil", crop_size={"height": SIDE, "width": SIDE})
    config.num_labels, config.architectures = 3, [arch]
    return _save(getattr(transformers, arch)(config).eval(), processor, folder)
