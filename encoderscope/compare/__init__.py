"""Compare two models (or two layers, or a model and its untrained twin) on the same inputs.

    import encoderscope as es
    a, b = es.load_encoder(None), es.load_encoder("sentence-transformers/all-mpnet-base-v2")
    sim = es.compare.layer_similarity(a, b, texts, metric="cka")    # .matrix float64 [La+1, Lb+1], .metric, .n
    Fa = es.compare.layer_features(a, texts)                         # float32 [La+1, N, Da]: run the model once...
    es.compare.similarity_matrix(Fa, Fb, "mknn", k=10)               # ...then any metric, without re-running it
    nb = es.compare.neighbours(Xa, Xb, k=10)     # .overlap [N], .mutual_knn, .neighbours_a/_b [N, k], .movers
    al = es.compare.align(Ya, Yb)                # .aligned [N, 2]: b's 2-D map rotated/scaled/shifted onto a's
    r = es.compare.retrieval(a, b, queries, texts, k=10)   # per query: top-k under each model, ranks, overlap@k
    u = es.compare.untrained(a, seed=0)          # same architecture and tokenizer, fresh random weights

Modules: `metrics` (linear CKA, debiased CKA, mutual k-NN; numpy only), `features` (per-layer sentence or image
vectors, one batched forward pass per model), `similarity` (`layer_similarity`), `baseline` (`untrained`),
`neighbourhood` (`neighbours`, `knn`: exact blocked k-NN), `procrustes` (`align`), `search` (`retrieval`), `checks`
(input checks with messages for the user). No module shares a public name (importing a submodule would shadow it).
Names load lazily, so `import encoderscope.compare` imports no torch.
"""

from __future__ import annotations

import importlib

_API = {
    "layer_similarity": "similarity",
    "LayerSimilarity": "similarity",
    "similarity_matrix": "similarity",
    "layer_features": "features",
    "pooling_name": "features",
    "METRICS": "metrics",
    "linear_cka": "metrics",
    "debiased_cka": "metrics",
    "mutual_knn": "metrics",
    "untrained": "baseline",
    "is_untrained": "baseline",
    "neighbours": "neighbourhood",
    "Neighbours": "neighbourhood",
    "knn": "neighbourhood",
    "align": "procrustes",
    "Alignment": "procrustes",
    "retrieval": "search",
    "retrieval_from_vectors": "search",
    "Retrieval": "search",
    "CompareError": "checks",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:  # names load on first use: see the module docstring
        raise AttributeError(f"module 'encoderscope.compare' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
