"""Loaders for image encoders (ViT, DeiT, DINOv2 with or without registers, CLIP/SigLIP vision towers) and for
two-tower CLIP/SigLIP models, from hub ids or local folders.

Same rules as the text loaders in `encoderscope.models`, whose helpers they reuse: eager attention (so the weights
exist), safetensors preferred, never remote code, a fast and plain failure when the hub is offline. Image
processors use the PIL backend (no torchvision). Classification checkpoints (ViT, DeiT, DINOv2
`*ForImageClassification`) load whole, head included: `enc.model` is their encoder (no pooler) and `enc.classifier`
the full model, for `classify` and `explain_image`. Nothing randomly initialised is ever used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .. import model_kinds, models
from ..models import LoadedModel, ModelLoadError, ModelRef

CURATED_IMAGE_ENCODERS = [
    "google/vit-base-patch16-224",
    "facebook/dinov2-small",
    "facebook/dinov2-with-registers-small",
    "openai/clip-vit-base-patch32",
    "google/siglip-base-patch16-224",
]
CURATED_CLIP = ["openai/clip-vit-base-patch32", "google/siglip-base-patch16-224"]

# config.model_type -> (transformers class of the bare vision encoder, extra from_pretrained kwargs,
#                       whether forward() takes interpolate_pos_encoding; DINOv2 always interpolates)
_VISION = {
    "vit": ("ViTModel", {"add_pooling_layer": False}, True),
    "deit": ("DeiTModel", {"add_pooling_layer": False}, True),
    "dinov2": ("Dinov2Model", {}, False),
    "dinov2_with_registers": ("Dinov2WithRegistersModel", {}, False),
    "clip": ("CLIPVisionModel", {}, True),
    "clip_vision_model": ("CLIPVisionModel", {}, True),
    "siglip": ("SiglipVisionModel", {}, True),
    "siglip_vision_model": ("SiglipVisionModel", {}, True),
}
_TWO_TOWER = {"clip": "CLIPModel", "siglip": "SiglipModel"}
# families whose image-classification classes wrap exactly the bare encoder above (as `base_model`)
_HEADS = {"vit", "deit", "dinov2", "dinov2_with_registers"}
_TEXT_TOWERS = {"clip_text_model", "siglip_text_model", "t5", "mt5", "umt5", "bart", "mbart"}
_SUPPORTED = "ViT, DeiT, DINO, DINOv2 (with or without registers), and the vision towers of CLIP and SigLIP"


@dataclass
class ImageEncoder(LoadedModel):
    """A vision transformer ready for :func:`encoderscope.image_attention` (a LoadedModel of kind "image").

    model: the bare encoder (eval mode, eager attention); processor: its image processor (PIL backend);
    family: the vision model_type ("vit", "deit", "dinov2", "dinov2_with_registers", "clip", "siglip");
    prefix_names: the tokens before the patches, in order ("[CLS]", "[DIST]", "[REG0]", ...);
    interpolate: whether forward() takes `interpolate_pos_encoding`;
    classifier: the whole `*ForImageClassification` model when the checkpoint has a head (its encoder is
                `model`, the same weights), else None; labels: its class names by index (`config.id2label`).
    """

    processor: object = None
    family: str = ""
    patch_size: int = 0
    prefix_names: tuple[str, ...] = ()
    interpolate: bool = False
    classifier: object = None
    labels: tuple[str, ...] = ()


@dataclass
class ClipModel(LoadedModel):
    """A two-tower image-text model for :func:`encoderscope.clip_similarity` (a LoadedModel of kind "clip").

    model: CLIPModel or SiglipModel (eval mode); family: "clip" (softmax over texts) or "siglip" (sigmoid).
    """

    processor: object = None
    family: str = ""


def _offline_message(ref: ModelRef) -> str:
    return (
        f"Cannot download {ref.location!r}: the Hugging Face Hub is unreachable (offline) and the model is not in "
        "the local cache. No image model ships with Encoderscope: download it where there is a network "
        f"(`huggingface-cli download {ref.location} --local-dir FOLDER`) and give that local model folder here "
        "(config.json, preprocessor_config.json and *.safetensors)."
    )


def _config(ref: ModelRef, kwargs: dict):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(ref.location, trust_remote_code=False, **kwargs)
    except Exception as err:  # OSError, ValueError, KeyError... for missing or unknown models
        if kwargs.get("local_files_only") and ref.source == "hub":
            raise ModelLoadError(_offline_message(ref)) from err
        raise ModelLoadError(f"Could not load the configuration of {ref.name!r}: {models._short(err)}") from err


def _processor(ref: ModelRef, kwargs: dict):
    from transformers import AutoImageProcessor

    try:  # the PIL backend: the torchvision one would need torchvision, which pins its own torch
        return AutoImageProcessor.from_pretrained(ref.location, backend="pil", trust_remote_code=False, **kwargs)
    except Exception as err:
        raise ModelLoadError(
            f"Could not load the image processor of {ref.name!r} (preprocessor_config.json): {models._short(err)}"
        ) from err


def _is_text_model(config) -> bool:
    causal, _, text = model_kinds._model_type_sets()
    mtype = getattr(config, "model_type", "")
    return mtype in causal or mtype in text or mtype in _TEXT_TOWERS or bool(getattr(config, "is_encoder_decoder", 0))


def _loaded(model, tokenizer, ref: ModelRef, kind: str, revision: str | None) -> dict:
    """The LoadedModel fields of a model just loaded from `ref`."""
    model.eval().to(models.device())
    path = ref.location if ref.source != "hub" else None
    return dict(
        model=model, tokenizer=tokenizer, name=ref.name, kind=kind, source=ref.source, path=path, revision=revision
    )


def prefix_names(family: str, config) -> tuple[str, ...]:
    """Names of the tokens before the patches, in the model's own order (SigLIP has none)."""
    if family == "siglip":
        return ()
    if family == "deit":
        return ("[CLS]", "[DIST]")
    if family == "dinov2_with_registers":
        return ("[CLS]", *(f"[REG{i}]" for i in range(int(config.num_register_tokens))))
    return ("[CLS]",)


def load_image_encoder(ref: str | os.PathLike | None, revision: str | None = None) -> ImageEncoder:
    """Load a vision transformer's encoder from a hub id or a local folder (a full CLIP/SigLIP: its vision tower)."""
    transformers = model_kinds.import_transformers()

    model_ref = models.resolve(ref, "image", CURATED_IMAGE_ENCODERS)  # no bundled image model: empty is an error
    kwargs = models._hub_kwargs(model_ref, revision)
    config = _config(model_ref, kwargs)
    mtype = getattr(config, "model_type", "")
    if _is_text_model(config):
        raise ModelLoadError(
            f"{model_ref.name!r} is a text model ({mtype}), not an image encoder: load it on the attention pages. "
            f"Image encoders here are {_SUPPORTED}."
        )
    if mtype not in _VISION:
        raise ModelLoadError(
            f"{model_ref.name!r} ({mtype or 'unknown type'}) is not a supported image encoder: this page shows "
            f"patch attention of {_SUPPORTED}."
        )
    class_name, extra, interpolate = _VISION[mtype]
    processor = _processor(model_ref, kwargs)
    head = _head_class(transformers, config)
    classifier, labels = None, ()
    if head is not None:  # the whole classifier; its encoder is the bare model the page reads
        classifier = models._from_pretrained(head, model_ref.location, model_ref, kwargs, attn_implementation="eager")
        classifier.eval().to(models.device())
        model = classifier.base_model
        labels = tuple(str(classifier.config.id2label.get(i, f"class {i}")) for i in range(classifier.num_labels))
    else:
        loader = getattr(transformers, class_name)
        model = models._from_pretrained(
            loader, model_ref.location, model_ref, kwargs, attn_implementation="eager", **extra
        )
    family = mtype.removesuffix("_vision_model")
    return ImageEncoder(
        **_loaded(model, None, model_ref, "image", revision),
        processor=processor,
        family=family,
        patch_size=int(model.config.patch_size),
        prefix_names=prefix_names(family, model.config),
        interpolate=interpolate,
        classifier=classifier,
        labels=labels,
    )


def _head_class(transformers, config):
    """The transformers class of the checkpoint's image-classification head, or None when it has none (or
    one whose encoder is not the bare model the page reads). DeiT's distilled checkpoints name
    `DeiTForImageClassificationWithTeacher` (two heads, averaged), which is what they were evaluated with."""
    if getattr(config, "model_type", "") not in _HEADS:
        return None
    for arch in getattr(config, "architectures", None) or []:
        if "ForImageClassification" in str(arch) and hasattr(transformers, str(arch)):
            return getattr(transformers, str(arch))
    return None


def load_clip(ref: str | os.PathLike | None, revision: str | None = None) -> ClipModel:
    """Load a CLIP or SigLIP model with both towers, its tokenizer and its image processor."""
    transformers = model_kinds.import_transformers()

    model_ref = models.resolve(ref, "clip", CURATED_CLIP)
    kwargs = models._hub_kwargs(model_ref, revision)
    config = _config(model_ref, kwargs)
    mtype = getattr(config, "model_type", "")
    if mtype not in _TWO_TOWER:
        what = "a text model" if _is_text_model(config) else "an image encoder" if mtype in _VISION else "a model"
        raise ModelLoadError(
            f"{model_ref.name!r} is {what} ({mtype or 'unknown type'}) without a shared image-text space: "
            "image-text similarity needs a CLIP or SigLIP model with both towers, e.g. 'openai/clip-vit-base-patch32'."
        )
    processor = _processor(model_ref, kwargs)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_ref.location, trust_remote_code=False, **kwargs)
    except Exception as err:  # SigLIP's SentencePiece tokenizer also needs the sentencepiece and protobuf packages
        raise ModelLoadError(f"Could not load the tokenizer of {model_ref.name!r}: {models._short(err)}") from err
    loader = getattr(transformers, _TWO_TOWER[mtype])
    model = models._from_pretrained(loader, model_ref.location, model_ref, kwargs, attn_implementation="eager")
    return ClipModel(**_loaded(model, tokenizer, model_ref, "clip", revision), processor=processor, family=mtype)
