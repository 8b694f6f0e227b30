"""Sentence and contextual token embeddings, self-similarity, anisotropy and nearest neighbours.

Shapes: N sentences, D hidden size, L layers; token vectors across layers are `[L + 1, M, D]` for M
occurrences of a word (index 0 = the static input embedding).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .errors import UserFacingError

if TYPE_CHECKING:
    from .models import LoadedModel

MAX_OCCURRENCES = 5000  # occurrences of one word embedded for the word view (memory: [L+1, M, D])

Progress = Callable[[int, int], None]  # (done, total)


# Text towers whose model computes its own sentence vector (mode "head"), with the padding it was trained with:
# CLIP pools at the end-of-text token, then projects (text_embeds); SigLIP pools the last position of a
# max_length-padded input through its head (pooler_output).
_HEADS = {"clip_text_model": True, "siglip_text_model": "max_length"}


@dataclass(frozen=True)
class Pooling:
    """How a model turns token vectors into one sentence vector.

    mode: "mean", "cls", "head" (the model's own pooling head: CLIP and SigLIP text towers), or what a
          sentence-transformers folder declares: "max", "lasttoken" or "weightedmean" (see `pool_tokens`);
    padding: the tokenizer's `padding` argument for a batch.
    """

    mode: str
    max_length: int
    padding: bool | str = True


def pooling_of(model: LoadedModel, mode: str = "auto") -> Pooling:
    """The model's own pooling for mode="auto" (a sentence-transformers config: each of its single pooling
    modes, or a UserFacingError for what es.embed cannot reproduce; the pooling head of a CLIP or SigLIP text
    tower; else mean), else "mean" / "cls"."""
    max_length = model.max_length
    head_padding = _HEADS.get(getattr(model.config, "model_type", ""))
    declared = False
    if model.is_sentence_transformer:
        folder = Path(model.path)
        sbert = folder / "sentence_bert_config.json"
        if sbert.is_file():
            max_length = min(max_length, int(json.loads(sbert.read_text()).get("max_seq_length", max_length)))
        if mode == "auto":
            mode = _sentence_transformers_mode(model, folder)
            declared = True
    if mode == "auto":
        mode = "head" if head_padding else "mean"
    if mode not in ("mean", "cls", "head") and not (declared and mode in _TOKEN_MODES):
        raise ValueError(f"pooling must be 'auto', 'mean' or 'cls', not {mode!r}")
    if mode == "head" and not head_padding:
        raise UserFacingError(f"{model.name} has no pooling head of its own; use 'mean' or 'cls' pooling.")
    if mode == "cls" and model.causal:
        raise UserFacingError(
            f"{model.name} reads left to right, so its first token sees only itself and [CLS] pooling would give "
            "every text the same vector; use 'auto' or 'mean' pooling."
        )
    return Pooling(mode, max_length, head_padding if mode == "head" else True)


# sentence-transformers' pooling modes, by the legacy boolean key of 1_Pooling/config.json, and what es.embed
# does for each (None: refused). mean_sqrt_len_tokens is the mean scaled by sqrt(len) / len: the same direction,
# so the same L2-normalised vector.
_ST_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_TOKEN_MODES = ("max", "lasttoken", "weightedmean")
# modules a sentence-transformers folder may list for es.embed to equal its encode (Normalize: we normalise too)
_ST_MODULES = ("Transformer", "Pooling", "Normalize")


def _sentence_transformers_mode(model: LoadedModel, folder: Path) -> str:
    """The pooling mode a sentence-transformers folder declares (its 1_Pooling/config.json, old boolean keys or
    the newer `pooling_mode`), or a UserFacingError for what es.embed cannot reproduce exactly: several modes
    concatenated, or modules after the pooling other than Normalize (a Dense projection, ...)."""
    modules = json.loads((folder / "modules.json").read_text())
    other = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)]
    other = [name for name in other if name not in _ST_MODULES]
    if other:
        raise UserFacingError(
            f"{model.name} is a sentence-transformers model with a {', '.join(other)} module after its pooling, "
            "which this app does not run: its embeddings would differ from the model's own. Pick another encoder."
        )
    pool_cfg = next(folder.glob("*_Pooling/config.json"), None)
    cfg = json.loads(pool_cfg.read_text()) if pool_cfg else {}
    declared = cfg.get("pooling_mode")
    if declared is None:
        modes = [mode for key, mode in _ST_MODES.items() if cfg.get(key)] or ["mean"]
    else:
        modes = [declared] if isinstance(declared, str) else list(declared)
    if len(modes) != 1 or modes[0] not in (*_ST_MODES.values(),):
        raise UserFacingError(
            f"{model.name} pools with {' + '.join(map(str, modes))} (sentence-transformers), which this app does "
            "not reproduce: its embeddings would differ from the model's own. Pick another encoder."
        )
    return "mean" if modes[0] == "mean_sqrt_len_tokens" else modes[0]


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Sentence vectors `[B, D]` from token vectors `hidden` `[B, T, D]` and the attention mask `[B, T]`, as
    sentence-transformers pools them: "mean" over real tokens; "cls" the first token; "max" per dimension over
    real tokens; "lasttoken" the last real token (left or right padding); "weightedmean" real tokens weighted
    1, 2, ... by position (counted from the first real token)."""
    if mode == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    if mode == "max":
        return hidden.masked_fill(m == 0, float("-inf")).max(dim=1).values
    if mode == "lasttoken":
        last = mask.shape[1] - 1 - mask.flip(1).to(torch.int32).argmax(dim=1)  # [B]
        return (hidden * m)[torch.arange(hidden.shape[0], device=hidden.device), last]
    if mode == "weightedmean":
        start = mask.to(torch.int32).argmax(dim=1).view(-1, 1, 1)  # left padding: count from the first real token
        weights = m * (torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
                       - start)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def embedding_size(model: LoadedModel, pool: Pooling) -> int:
    """D, the length of the sentence vectors `pool` gives: a pooling head's output size, else the hidden size."""
    config = model.config
    if pool.mode == "head":  # CLIP's projection_dim, SigLIP's projection_size
        return int(getattr(config, "projection_dim", None) or getattr(config, "projection_size", None))
    return int(config.hidden_size)


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


@torch.inference_mode()
def embed(
    model: LoadedModel, texts: list[str], batch_size: int = 32, pooling: str = "auto", progress: Progress | None = None
) -> np.ndarray:
    """Sentence embeddings `[N, D]`, float32, L2-normalised.

    Sentence-transformers models use their own pooling and length limit (so the result matches
    `SentenceTransformer.encode`); CLIP and SigLIP text towers their own pooling head (so the vectors live in
    the shared image-text space, D = the projection size); other encoders use attention-masked mean pooling,
    or the [CLS] vector. Texts are batched by length (less padding), and returned in input order.
    """
    texts = [str(t) for t in texts]
    pool = pooling_of(model, pooling)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), embedding_size(model, pool)), np.float32)
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = model.tokenizer(
            [texts[i] for i in idx],
            padding=pool.padding,
            truncation=True,
            max_length=pool.max_length,
            return_tensors="pt",
        ).to(model.device)
        inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        output = model.model(**inputs)
        hidden = output.last_hidden_state  # [B, T, D]
        if pool.mode == "head":  # CLIP: text_embeds (projected); SigLIP: pooler_output
            text_embeds = getattr(output, "text_embeds", None)
            vec = output.pooler_output if text_embeds is None else text_embeds
        else:
            vec = pool_tokens(hidden, enc["attention_mask"], pool.mode)
        out[idx] = vec.float().cpu().numpy()
        if progress:
            progress(min(start + batch_size, len(texts)), len(texts))
    return _normalise(out)


# --- contextual token embeddings ------------------------------------------------------------

_WORD = re.compile(r"\w+(?:['’-]\w+)*", re.UNICODE)


@dataclass(frozen=True)
class WordOccurrences:
    """Every occurrence of one word in a corpus, embedded at every layer.

    vectors:   float32 `[L + 1, M, D]` (word-pieces averaged into the word); index 0 is the static,
               context-free token embedding, 1..L the outputs of the transformer layers
    sentence:  `[M]` index of the sentence each occurrence comes from
    """

    word: str
    vectors: np.ndarray
    sentence: np.ndarray

    @property
    def count(self) -> int:
        return int(self.sentence.size)


def repeated_words(texts: list[str], n: int = 8, min_length: int = 4) -> list[str]:
    """The `n` most frequent words (case-folded, at least `min_length` letters) that occur more than once."""
    from collections import Counter

    counts = Counter(m.group(0).casefold() for t in texts[:5000] for m in _WORD.finditer(t))
    return [w for w, c in counts.most_common() if c > 1 and len(w) >= min_length][:n]


def _word_spans(text: str, word: str) -> list[tuple[int, int]]:
    target = word.casefold()
    return [m.span() for m in _WORD.finditer(text) if m.group(0).casefold() == target]


@torch.inference_mode()
def word_occurrences(
    model: LoadedModel, texts: list[str], word: str, batch_size: int = 16, max_occurrences: int = MAX_OCCURRENCES
) -> WordOccurrences:
    """Embed every occurrence of `word` (case-insensitive, whole word) across `texts`, at every layer."""
    word = word.strip()
    if not _WORD.fullmatch(word or ""):
        raise ValueError("Pick a single word (letters or digits, no spaces).")
    if not getattr(model.tokenizer, "is_fast", False):  # e.g. SigLIP's SentencePiece tokenizer
        raise UserFacingError(
            f"The word view needs each token's place in the text, which the tokenizer of {model.name} "
            "(SentencePiece, without a fast version) does not report. Pick another encoder for this view."
        )
    hits = [(i, spans) for i, t in enumerate(texts) if (spans := _word_spans(t, word))]
    if not hits:
        common = ", ".join(repeated_words(texts, 8))
        raise ValueError(
            f"The word {word!r} appears in none of the sentences."
            + (f" Words that occur more than once: {common}." if common else "")
        )
    L, D = model.num_layers, model.config.hidden_size
    vectors: list[np.ndarray] = []
    owners: list[int] = []
    for start in range(0, len(hits), batch_size):
        chunk = hits[start : start + batch_size]
        enc = model.tokenizer(
            [texts[i] for i, _ in chunk],
            padding=True,
            truncation=True,
            max_length=model.max_length,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping")
        inputs = {
            k: v.to(model.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        hidden = torch.stack(model.model(**inputs, output_hidden_states=True).hidden_states)  # [L+1, B, T, D]
        # Layer 0 is the static token embedding (the embedding-matrix row, before position embeddings),
        # so every occurrence of a word is the same point there.
        hidden[0] = model.model.get_input_embeddings()(inputs["input_ids"])
        for b, (i, spans) in enumerate(chunk):
            for lo, hi in spans:
                pieces = [t for t, (s, e) in enumerate(offsets[b].tolist()) if e > s and s >= lo and e <= hi]
                if pieces:  # empty when truncation cut the word off
                    vectors.append(hidden[:, b, pieces].mean(dim=1).float().cpu().numpy())
                    owners.append(i)
        if len(owners) >= max_occurrences:
            break
    if not vectors:
        raise ValueError(f"Every occurrence of {word!r} lies beyond the model's length limit.")
    stacked = np.stack(vectors, axis=1)[:, :max_occurrences]  # [L+1, M, D]
    assert stacked.shape[0] == L + 1 and stacked.shape[2] == D
    return WordOccurrences(word, stacked.astype(np.float32), np.asarray(owners[:max_occurrences]))


def self_similarity(vectors: np.ndarray) -> np.ndarray:
    """Mean pairwise cosine between occurrences, per layer (Ethayarajh 2019): `[L + 1, M, D]` -> `[L + 1]`.

    NaN for layers with fewer than two occurrences.
    """
    L1, M, _ = vectors.shape
    if M < 2:
        return np.full(L1, np.nan)
    unit = _normalise(vectors.astype(np.float64))
    gram = unit @ unit.transpose(0, 2, 1)  # [L+1, M, M]
    off_diagonal = gram.sum(axis=(1, 2)) - np.trace(gram, axis1=1, axis2=2)
    return off_diagonal / (M * (M - 1))


@torch.inference_mode()
def anisotropy(
    model: LoadedModel, texts: list[str], n_pairs: int = 2000, seed: int = 0, max_sentences: int = 200
) -> np.ndarray:
    """Baseline: mean cosine between random (non-special) tokens of different sentences, per layer `[L + 1]`."""
    rng = np.random.default_rng(seed)
    chosen = [texts[i] for i in rng.permutation(len(texts))[:max_sentences]]
    per_layer: list[list[np.ndarray]] = []
    owners: list[int] = []
    for start in range(0, len(chosen), 16):
        batch = chosen[start : start + 16]
        enc = model.tokenizer(
            batch,
            padding=True,
            truncation=True,
            max_length=min(128, model.max_length),  # CLIP's text tower has 77 positions
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
        special = enc.pop("special_tokens_mask").bool() | ~enc["attention_mask"].bool()
        inputs = {
            k: v.to(model.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        hidden = torch.stack(model.model(**inputs, output_hidden_states=True).hidden_states)  # [L+1, B, T, D]
        hidden[0] = model.model.get_input_embeddings()(inputs["input_ids"])  # static, as in word_occurrences
        keep = ~special
        per_layer.append(hidden[:, keep].float().cpu().numpy())  # [L+1, tokens, D]
        owners.extend(np.repeat(np.arange(start, start + len(batch)), keep.sum(1).numpy()))
    tokens = np.concatenate(per_layer, axis=1)
    owners_arr = np.asarray(owners)
    if tokens.shape[1] < 2:
        return np.full(tokens.shape[0], np.nan)
    a, b = rng.integers(0, tokens.shape[1], size=(2, n_pairs))
    keep = owners_arr[a] != owners_arr[b]
    if not keep.any():  # a single sentence: fall back to pairs of different tokens
        keep = a != b
    a, b = a[keep], b[keep]
    unit = _normalise(tokens.astype(np.float64))
    return (unit[:, a] * unit[:, b]).sum(-1).mean(axis=1)


def nearest(query: np.ndarray, corpus: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of `corpus` `[N, D]` by cosine to `query` `[D]`: (indices `[k]`, scores `[k]`)."""
    scores = _normalise(corpus.astype(np.float32)) @ _normalise(query.astype(np.float32))
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    return top, scores[top]
