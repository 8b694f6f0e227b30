"""Encoderscope: look inside encoders (and, for contrast, causal decoders).

The public API is imported lazily so `import encoderscope` stays fast and one page's
module never breaks another's::

    import encoderscope as es
    enc = es.load_encoder(None)          # bundled all-MiniLM-L6-v2
    res = es.attention(enc, "The bank of the river.")
    res.weights.shape                    # [layers, heads, T, T]
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    # models
    "load_encoder": "models",
    "load_decoder": "models",
    "LoadedModel": "models",
    "ModelLoadError": "models",
    "device": "models",
    # errors: every domain error subclasses this; its message is for the user
    "UserFacingError": "errors",
    # attention (the module is `attention_maps`, so `es.attention` is always the function)
    "attention": "attention_maps",
    "AttentionResult": "attention_maps",
    "head_stats": "attention_maps",
    "flag_heads": "attention_maps",
    "rollout": "attention_maps",
    "merge_word_pieces": "attention_maps",
    "drop_special": "attention_maps",
    "token_focus": "attention_maps",
    "pick_head": "head_choice",
    # masks
    "hidden_states": "masks",
    # embeddings and projection
    "embed": "embeddings",
    "project": "projection",
    # image encoders and CLIP/SigLIP
    "load_image_encoder": "vision.loading",
    "ImageEncoder": "vision.loading",
    "load_clip": "vision.loading",
    "ClipModel": "vision.loading",
    "image_attention": "vision.patch_attention",
    "ImageAttention": "vision.patch_attention",
    "patch_map": "vision.patch_attention",
    "attention_distance": "vision.patch_attention",
    "pca_rgb": "vision.features",
    "patch_norms": "vision.features",
    "to_pixels": "vision.features",
    "heat_overlay": "vision.features",
    "clip_similarity": "vision.clip",
    "ClipSimilarity": "vision.clip",
    "modality_gap": "vision.clip",
    "apply_template": "vision.inputs",
    "VisionError": "vision.inputs",
    # attribution: why a model produced its output
    "explain_similarity": "attribution.similarity",
    "SimilarityExplanation": "attribution.similarity",
    "query_key": "attribution.query_key",
    "QueryKey": "attribution.query_key",
    "logit_lens": "attribution.lens",
    "LogitLens": "attribution.lens",
    "token_attribution": "attribution.next_token",
    "TokenAttribution": "attribution.next_token",
    "classify": "vision.classify",
    "explain_image": "attribution.image",
    "ImageRelevance": "attribution.image",
    # images
    "load_vae": "vae",
    "round_trip": "vae",
}

__all__ = sorted(_API) + ["atlas", "compare", "faithfulness", "features", "figures", "settings"]


def __getattr__(name: str):
    if name in ("atlas", "compare", "faithfulness", "features", "figures", "settings"):  # subpackages, imported on first use
        return importlib.import_module(f".{name}", __name__)
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'encoderscope' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return __all__
