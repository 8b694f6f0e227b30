"""`layer_similarity`: a layer × layer map between two models (or one model and itself) on the same inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import metrics
from .checks import check_count, check_metric, check_same_n, check_vectors, duplicate_notice

if TYPE_CHECKING:
    from ..models import LoadedModel

Progress = Callable[[str, int, int], None]  # (stage, done, total); stages "a", "b" (forward passes), "metric"


@dataclass(frozen=True)
class LayerSimilarity:
    """A layer × layer similarity map.

    matrix: float64 `[La + 1, Lb + 1]`; matrix[i, j] compares layer i of a with layer j of b (0 = embedding
            output). cka: [0, 1]; cka_debiased: about [0, 1], may dip slightly below 0; mknn: [0, 1].
    metric: "cka", "cka_debiased" or "mknn"; k: the k of mknn (kept for the others, unused);
    n:      the number of inputs compared;
    name_a / name_b: the models' names ("" when built from bare features);
    notes:  notices for the user (e.g. duplicate texts, which tie in k-NN).
    """

    matrix: np.ndarray
    metric: str
    n: int
    k: int = 10
    name_a: str = ""
    name_b: str = ""
    notes: tuple[str, ...] = ()

    @property
    def best_match_a(self) -> np.ndarray:
        """`[La + 1]`: for each layer of a, the layer of b most similar to it."""
        return self.matrix.argmax(axis=1)

    @property
    def best_match_b(self) -> np.ndarray:
        """`[Lb + 1]`: for each layer of b, the layer of a most similar to it."""
        return self.matrix.argmax(axis=0)


def similarity_matrix(
    Fa: np.ndarray, Fb: np.ndarray | None = None, metric: str = "cka", k: int = 10, progress=None
) -> LayerSimilarity:
    """Any metric from two feature stacks `[La + 1, N, Da]`, `[Lb + 1, N, Db]` (from :func:`layer_features`);
    `Fb` None (or `Fb is Fa`) gives the self-map. Switching the metric never re-runs a model.

    Raises CompareError for an unknown metric, too few inputs (CKA: N >= 4; mknn: N > k), different N, NaN."""
    check_metric(metric, metrics.METRICS)
    Fa = check_vectors(Fa, "model a", ndim=3)
    Fb = Fa if Fb is None or Fb is Fa else check_vectors(Fb, "model b", ndim=3)
    check_same_n(Fa.shape[1], Fb.shape[1], "inputs")
    check_count(Fa.shape[1], metric, k)
    values = metrics.matrix(Fa, Fb, metric, int(k), progress)
    notes = [constant_notice(F, side) for F, side in ((Fa, "a"), (Fb, "b")) if Fb is not Fa or side == "a"]
    return LayerSimilarity(np.asarray(values, np.float64), metric, int(Fa.shape[1]), int(k),
                           notes=tuple(n for n in notes if n))


def constant_notice(F: np.ndarray, side: str) -> str | None:
    """A notice naming the layers of `F` `[L, N, D]` that give every input the same vector (an image encoder's
    [CLS] token before any attention): similarity to them is undefined and shown as 0."""
    spread = np.abs(F - F[:, :1]).max(axis=(1, 2))
    scale = np.abs(F).max(axis=(1, 2))
    constant = np.flatnonzero(spread <= 1e-6 * np.maximum(scale, 1e-30))
    if not constant.size:
        return None
    layers = ", ".join(str(i) for i in constant)
    subject = f"Layers {layers} of model {side} give" if constant.size > 1 else f"Layer {layers} of model {side} gives"
    return (
        f"{subject} every input the same vector (a "
        "[CLS] token before any attention reads the input), so similarity to them is undefined and shown as 0."
    )


def layer_similarity(
    a: LoadedModel,
    b: LoadedModel,
    texts: list,
    metric: str = "cka",
    k: int = 10,
    token_budget: int | None = None,
    progress: Progress | None = None,
) -> LayerSimilarity:
    """Layer × layer similarity of models `a` and `b` on the same `texts` (or PIL images, for image encoders).

    -> LayerSimilarity with `.matrix` float64 `[La + 1, Lb + 1]` (row i: layer i of a, 0 = embedding output),
    `.metric`, `.n`. Each layer's vector for a text is the model's own sentence pooling of that layer's hidden
    states (see `features`), so models with different tokenizers compare on the same texts. `a` may be `b` (the
    self-map: one forward pass). metric: "cka" (linear CKA, Kornblith et al. 2019), "cka_debiased" (unbiased
    HSIC, Nguyen et al. 2021) or "mknn" (mutual k-NN, Huh et al. 2024: mean share of shared k nearest
    neighbours by cosine, self excluded). Each model runs once; to switch metrics without re-running, call
    :func:`layer_features` once per model and :func:`similarity_matrix`.

    token_budget: padded tokens per forward batch (default `features.TOKEN_BUDGET`); progress(stage, done,
    total) with stage "a" and "b" (texts run through each model) and "metric" (layers of a done).
    `.notes` carries notices: duplicate inputs (they tie in k-NN), layers that are one vector for every input.
    """
    from .features import TOKEN_BUDGET, layer_features

    check_metric(metric, metrics.METRICS)
    items = list(texts) if not isinstance(texts, str) else texts
    check_count(len(items), metric, k)
    budget = TOKEN_BUDGET if token_budget is None else token_budget

    def stage(name):
        return (lambda done, total: progress(name, done, total)) if progress else None

    Fa = layer_features(a, items, budget, stage("a"))
    Fb = Fa if b is a else layer_features(b, items, budget, stage("b"))
    sim = similarity_matrix(Fa, Fb, metric, k, stage("metric"))
    hashable = [t if isinstance(t, str) else id(t) for t in items]
    note = duplicate_notice(hashable)
    return LayerSimilarity(sim.matrix, metric, sim.n, int(k), a.name, b.name, sim.notes + ((note,) if note else ()))
