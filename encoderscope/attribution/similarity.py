"""Why are two texts close? `explain_similarity` splits their cosine into token contributions.

"decomposition" (exact, mean-pooled encoders): with u = mean of the output token vectors h_i of text A and v = mean
of g_j of text B, cos(u, v) = Σ_i Σ_j (h_i · g_j) / (n · m · |u| · |v|). `pairs[i, j]` is that term, the scores are
its row and column sums. It attributes to *contextual output* tokens, not to the input words: h_i has already
mixed in the whole sentence.

"integrated_gradients" (any pooling, [CLS] and CLIP heads included): each side's cosine to the other side's fixed
vector, attributed to that side's input token embeddings (`integrated.py`).

Centred ("what is specific to this pair"): mean-pooled sentence vectors share one common direction (anisotropy),
so every token pair adds to the plain cosine. With `centre=c` (say the corpus mean of `es.embed`'s unit vectors)
the cosine explained is cos(û − c, v̂ − c), û = u/|u|. Since û − c = mean_i (h_i/|u| − c), the decomposition stays
exact: pairs[i, j] = (h_i/|u| − c) · (g_j/|v| − c) / (n · m · |û − c| · |v̂ − c|). `explains` names the cosine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..embeddings import Pooling, pool_tokens, pooling_of
from ..errors import UserFacingError
from .inputs import Encoded, check_text, clamp_steps, encode, gradient_limit, truncation_note
from .integrated import integrated_gradients

if TYPE_CHECKING:
    from ..models import LoadedModel

METHODS = ("auto", "decomposition", "integrated_gradients")


@dataclass(frozen=True)
class SimilarityExplanation:
    """Why `text_a` and `text_b` are close.

    tokens_a, tokens_b: the tokenizer's own tokens (`convert_ids_to_tokens`), special tokens included; Ta, Tb long
    special_a, special_b: bool `[Ta]`, `[Tb]`, True for special tokens
    cosine:       the cosine of the two sentence vectors (equal to that of `es.embed` for untruncated texts)
    pairs:        float64 `[Ta, Tb]` token-pair terms summing to `cosine` ("decomposition"), else None
    scores_a/_b:  float64 `[Ta]`, `[Tb]`; row/column sums of `pairs`, or integrated-gradients scores
    method:       "decomposition" or "integrated_gradients"
    completeness: relative error of the scores' sum against what it must sum to (0 for the exact method);
                  for integrated gradients the larger of the two sides'
    explains:     which cosine the scores split: "cosine" (plain) or "centred cosine", cos(û − c, v̂ − c)
    centre:       float64 `[D]`, the c subtracted (None: plain);  plain_cosine: the uncentred cosine, always
    baseline:     integrated gradients only: (cos of A's baseline to B, cos of B's baseline to A); each side's
                  scores sum to cosine − its baseline value
    steps:        integration steps used (None for the exact method)
    notes:        sentences for the user (truncation, lowered steps, the baseline token)
    """

    tokens_a: list[str]
    tokens_b: list[str]
    cosine: float
    pairs: np.ndarray | None
    scores_a: np.ndarray
    scores_b: np.ndarray
    method: str
    completeness: float
    special_a: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    special_b: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    baseline: tuple[float, float] | None = None
    steps: int | None = None
    pooling: str = "mean"
    notes: tuple[str, ...] = ()
    explains: str = "cosine"
    centre: np.ndarray | None = None
    plain_cosine: float | None = None

    @property
    def sum_a(self) -> float:
        """Σ scores_a: the cosine (exact) or the cosine minus A's baseline value (integrated gradients)."""
        return float(np.sum(self.scores_a))

    @property
    def sum_b(self) -> float:
        return float(np.sum(self.scores_b))


def _st_pooling_is_max(model: LoadedModel) -> bool:
    """Whether a sentence-transformers folder asks for max pooling (not a sum, so not decomposable)."""
    if not model.is_sentence_transformer:
        return False
    cfg = next(Path(model.path).glob("*_Pooling/config.json"), None)
    return bool(cfg and json.loads(cfg.read_text()).get("pooling_mode_max_tokens"))


def choose_method(model: LoadedModel, method: str = "auto") -> tuple[str, Pooling]:
    """(method, pooling) for `model`: "auto" is the exact decomposition where the pooling is a mean."""
    if method not in METHODS:
        raise UserFacingError(f"Unknown method {method!r}: use one of {', '.join(METHODS)}.")
    pool = pooling_of(model)
    mean = pool.mode == "mean" and not _st_pooling_is_max(model)
    if method == "auto":
        return ("decomposition" if mean else "integrated_gradients"), pool
    if method == "decomposition" and not mean:
        raise UserFacingError(
            f"The exact decomposition needs mean pooling, but {model.name} pools with {pool.mode!r}; "
            "use integrated gradients."
        )
    return method, pool


def explain_similarity(
    model: LoadedModel, text_a: str, text_b: str, method: str = "auto", steps: int = 32, max_tokens: int | None = None,
    centre: np.ndarray | None = None,
) -> SimilarityExplanation:
    """Explain the cosine between `text_a` and `text_b` under `model`'s own pooling (see the module docstring).

    `max_tokens` lowers the tokens per text for integrated gradients (capped anyway by the server's
    `attribution_max_tokens`, the memory bound); longer texts are cut with a note. `centre` `[D]`: explain the
    centred cosine cos(û − c, v̂ − c) of the unit sentence vectors instead (`explains` says which).
    """
    check_text(text_a, "The first text")
    check_text(text_b, "The second text")
    method, pool = choose_method(model, method)
    c = check_centre(model, centre)
    if method == "decomposition":
        return _decompose(model, text_a, text_b, pool, c)
    return _integrated(model, text_a, text_b, pool, steps, max_tokens, c)


def check_centre(model: LoadedModel, centre) -> torch.Tensor | None:
    """`centre` as float64 `[D]` on the model's device (None stays None); a UserFacingError for a wrong shape,
    non-finite values, or a centre that sits on the unit sphere's vectors (norm ≥ 1: nothing would be left)."""
    if centre is None:
        return None
    try:
        c = np.asarray(centre, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserFacingError("The centre must be one vector of numbers.") from None
    if c.ndim != 1 or c.size == 0:
        raise UserFacingError(f"The centre must be one vector (the sentence vectors' width), got shape {list(c.shape)}.")
    if not np.all(np.isfinite(c)):
        raise UserFacingError("The centre holds values that are not finite numbers.")
    if np.linalg.norm(c) >= 1.0:
        raise UserFacingError("The centre is a mean of unit vectors, so its norm must be below 1 "
                              f"(got {np.linalg.norm(c):.3f}).")
    return torch.from_numpy(c).to(model.device)


def vectors_cosine(V: torch.Tensor, w: torch.Tensor, centre=None) -> torch.Tensor:
    """Cosine of each row of `V` `[B, D]` with `w` `[D]`; with `centre` `[D]` the centred cosine
    cos(v̂ − c, ŵ − c) of the unit vectors (the value a centred explanation splits). Returns `[B]`."""
    if centre is not None:
        if centre.shape[-1] != V.shape[-1]:
            raise UserFacingError(f"The centre has {centre.shape[-1]} numbers; this model's sentence vectors have "
                                  f"{V.shape[-1]}.")
        c = torch.as_tensor(centre, dtype=V.dtype, device=V.device)
        V = torch.nn.functional.normalize(V, dim=-1) - c
        w = torch.nn.functional.normalize(w, dim=-1) - c
    return torch.nn.functional.cosine_similarity(V, w[None].expand_as(V), dim=-1)


def pooled(output, enc_mask: torch.Tensor, pool: Pooling) -> torch.Tensor:
    """The sentence vectors `[B, D]` of a model output, pooled as `es.embed` pools them."""
    if pool.mode == "head":  # CLIP: projected text_embeds; SigLIP: pooler_output
        embeds = getattr(output, "text_embeds", None)
        return output.pooler_output if embeds is None else embeds
    return pool_tokens(output.last_hidden_state, enc_mask, pool.mode)  # [B, T, D] -> [B, D]


def _special(model: LoadedModel, ids: list[int]) -> np.ndarray:
    special = set(model.tokenizer.all_special_ids)
    return np.array([i in special for i in ids], bool)


@torch.inference_mode()
def _decompose(model: LoadedModel, text_a: str, text_b: str, pool: Pooling, centre=None) -> SimilarityExplanation:
    tok = model.tokenizer
    batch = tok([text_a, text_b], padding=True, truncation=True, max_length=pool.max_length, return_tensors="pt")
    inputs = {k: v.to(model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    hidden = model.model(**inputs).last_hidden_state.double()  # [2, T, D]
    keep = batch["attention_mask"].bool()
    h, g = hidden[0][keep[0]], hidden[1][keep[1]]  # [Ta, D], [Tb, D]: the tokens the mean pools
    u, v = h.mean(0), g.mean(0)
    plain = float(torch.dot(u, v) / (u.norm() * v.norm()))
    if centre is not None:  # h_i/|u| − c averages to û − c (module docstring)
        vectors_cosine(u[None], v, centre)  # the width check
        h, g = h / u.norm() - centre, g / v.norm() - centre
        u, v = h.mean(0), g.mean(0)
    pairs = (h @ g.T) / (len(h) * len(g) * u.norm() * v.norm())  # [Ta, Tb]
    pairs_np = pairs.cpu().numpy()
    notes = []
    for label, text in (("The first text", text_a), ("The second text", text_b)):
        n_full = len(tok(text, truncation=False, verbose=False)["input_ids"])
        if n_full > pool.max_length:
            notes.append(f"{label} has {n_full} tokens; the model reads only the first {pool.max_length}.")
    ids_a = batch["input_ids"][0][keep[0]].tolist()
    ids_b = batch["input_ids"][1][keep[1]].tolist()
    return SimilarityExplanation(
        tokens_a=tok.convert_ids_to_tokens(ids_a),
        tokens_b=tok.convert_ids_to_tokens(ids_b),
        cosine=float(torch.dot(u, v) / (u.norm() * v.norm())),
        pairs=pairs_np,
        scores_a=pairs_np.sum(1),
        scores_b=pairs_np.sum(0),
        method="decomposition",
        completeness=0.0,
        special_a=_special(model, ids_a),
        special_b=_special(model, ids_b),
        pooling=pool.mode,
        notes=tuple(notes),
        **_about_centre(centre, plain),
    )


def _about_centre(centre, plain: float) -> dict:
    """The `explains`, `centre` and `plain_cosine` fields of a result."""
    if centre is None:
        return {"explains": "cosine", "centre": None, "plain_cosine": plain}
    return {"explains": "centred cosine", "centre": centre.double().cpu().numpy(), "plain_cosine": plain}


def _vector(model: LoadedModel, enc: Encoded, pool: Pooling) -> torch.Tensor:
    with torch.inference_mode():
        return pooled(model.model(**enc.inputs()), enc.mask, pool)[0].float().clone()


def _integrated(
    model: LoadedModel, text_a: str, text_b: str, pool: Pooling, steps: int, max_tokens: int | None, centre=None
) -> SimilarityExplanation:
    limit = gradient_limit(model, max_tokens)
    padding = pool.padding if pool.padding == "max_length" else False
    enc_a, enc_b = encode(model, text_a, limit, padding), encode(model, text_b, limit, padding)
    steps, steps_note = clamp_steps(steps)
    va, vb = _vector(model, enc_a, pool), _vector(model, enc_b, pool)

    def towards(other: torch.Tensor, enc: Encoded):
        def objective(output, n: int) -> torch.Tensor:
            return vectors_cosine(pooled(output, enc.mask.expand(n, -1), pool), other, centre)

        return objective

    ig_a = integrated_gradients(model, enc_a, towards(vb, enc_a), steps)
    ig_b = integrated_gradients(model, enc_b, towards(va, enc_b), steps)
    why = "integrated gradients run a backward pass per step, so this server caps the tokens per text"
    notes = [
        truncation_note("The first text", enc_a, why),
        truncation_note("The second text", enc_b, why),
        steps_note,
        f"Baseline: the same tokens with every non-special token replaced by {ig_a.baseline!r}.",
    ]
    return SimilarityExplanation(
        tokens_a=enc_a.tokens,
        tokens_b=enc_b.tokens,
        cosine=float(vectors_cosine(va[None], vb, centre)[0]),
        pairs=None,
        scores_a=ig_a.scores,
        scores_b=ig_b.scores,
        method="integrated_gradients",
        completeness=max(ig_a.completeness, ig_b.completeness),
        special_a=np.asarray(enc_a.special, bool),
        special_b=np.asarray(enc_b.special, bool),
        baseline=(ig_a.baseline_value, ig_b.baseline_value),
        steps=steps,
        pooling=pool.mode,
        notes=tuple(n for n in notes if n),
        **_about_centre(centre, float(torch.nn.functional.cosine_similarity(va, vb, dim=0))),
    )
