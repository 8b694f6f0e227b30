"""Sparse autoencoder features: a dictionary of directions learned from a corpus's vectors, with names.

    sae = es.features.train(X, n_features=2048, k=16)      # X [N, D]
    ids, values = sae.encode(X)                            # [N, k], [N, k] >= 0
    table = es.features.describe(sae, X, texts)            # feature, frequency, mean_activation, label, top_ids, ...
    ex = es.features.explain(sae, X[0], X[1])              # ex.terms.value.sum() + ex.residual == cos(X[0], X[1])
    sae.save("features.safetensors"); es.features.load("features.safetensors")

Importing this package does not import torch: only `train` does, when called.
"""

from __future__ import annotations

from .describe import describe, feature_stats, search_labels
from .explain import FeatureExplanation, explain
from .sae import SAE, FeaturesError, load
from .train import estimate_seconds, train

__all__ = ["SAE", "FeatureExplanation", "FeaturesError", "describe", "estimate_seconds", "explain",
           "feature_stats", "load", "search_labels", "train"]
