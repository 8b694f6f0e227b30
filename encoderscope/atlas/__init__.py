"""Corpus atlas: map a whole corpus (up to millions of texts) with the encoders Encoderscope explains.

    import encoderscope as es
    es.atlas.build("atlas/", "corpus.csv", text_column="text")     # or: python -m encoderscope atlas build ...
    atlas = es.atlas.load("atlas/")        # .points (DataFrame), .vectors [N, D] memory-mapped, .clusters, .meta
    ids, cosines = es.atlas.search(atlas, "a query", k=10)

Modules: corpus (reading input), shards (resumable embedding), engines (local, Dask), layout (PCA -> UMAP on a
sample, clusters, names, near-duplicates), builder (the stages), store (load, search). Every module keeps torch, Dask,
pandas and pyarrow imports inside the functions that need them, so opening the package is cheap.
"""

from __future__ import annotations

from .builder import build
from .compare import Comparison, compare_atlases, list_compares, load_compare
from .io import AtlasError
from .store import Atlas, load, search

__all__ = ["Atlas", "AtlasError", "Comparison", "build", "compare_atlases", "list_compares", "load", "load_compare",
           "search"]
