"""The query and key vectors behind one head's attention: `es.query_key(model, text, layer, head)`.

A capture function is registered with transformers' attention-function registry (`AttentionInterface`) under its
own name, together with the eager mask builder (`AttentionMaskInterface`: without it, Llama-style models would get
`attention_mask=None` for an unknown implementation name). For one forward pass the model's configs point at it;
it records what the attention function receives (queries and keys after rotary embeddings, the additive mask, T5's
relative position bias, the scale) and then runs the model's own eager attention, so the output is unchanged.
Models that compute attention inside their own modules (MPNet) are read by forward hooks instead: the q and k
projections' outputs, and the mask and relative position bias the self-attention module receives (`_HOOKED`).

Contract (tested): softmax(q kᵀ · scale + bias) equals the model's attention weights to 1e-4.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..attention_maps import tokenize
from ..errors import UserFacingError
from .inputs import check_text

if TYPE_CHECKING:
    from ..models import LoadedModel

CAPTURE = "encoderscope_capture"
_switch = threading.Lock()  # one capture at a time may point the shared model's configs at CAPTURE
_local = threading.local()  # the recorder of the capture running in this thread


@dataclass(frozen=True)
class QueryKey:
    """One head's queries and keys for one input. T tokens, d the head size.

    tokens:  the tokenizer's tokens, as `es.attention` gives them; special: bool `[T]`
    q, k:    float32 `[T, d]`: queries of `head` and the keys of the key head it reads (`kv_head`, which differs
             under grouped-query attention), after rotary embeddings where the model applies them
    scale:   the factor on q·k (1/sqrt(d) for most models, 1 for T5)
    bias:    float32 `[T, T]` added to the scaled scores (the padding/causal mask as -inf, T5's relative position
             bias, ALiBi), or None when nothing is added
    weights: float32 `[T, T]`, the model's attention of this head (== es.attention(...).weights[layer, head])
    """

    tokens: list[str]
    special: np.ndarray
    layer: int
    head: int
    kv_head: int
    q: np.ndarray
    k: np.ndarray
    scale: float
    bias: np.ndarray | None
    weights: np.ndarray
    causal: bool = False

    def scores(self) -> np.ndarray:
        """q kᵀ · scale + bias, float32 `[T, T]` (rows: queries); its row softmax is `weights`."""
        s = (self.q @ self.k.T) * self.scale
        return s if self.bias is None else s + self.bias

    def softmax(self) -> np.ndarray:
        """Row softmax of :meth:`scores`, float32 `[T, T]`."""
        s = self.scores().astype(np.float64)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        return (s / s.sum(axis=1, keepdims=True)).astype(np.float32)

    def products(self, i: int) -> np.ndarray:
        """`[T, d]`: q_i ⊙ k_j · scale for every key j; row j sums to query i's score for key j (before the bias)."""
        return self.q[i][None, :] * self.k * self.scale


class _Recorder:
    def __init__(self, layer: int, head: int):
        self.layer, self.head, self.calls, self.seen = layer, head, 0, None

    def record(self, query, key, mask, scaling, position_bias, weights, softcap) -> None:
        if self.calls == self.layer:
            if softcap:
                raise UserFacingError(
                    "This model soft-caps its attention scores (tanh), so softmax(q·k) is not its attention; "
                    "the query·key view does not apply to it."
                )
            h = self.head
            kv = h * key.shape[1] // query.shape[1]  # grouped-query attention: query heads share a key head
            scale = float(query.shape[-1] ** -0.5 if scaling is None else scaling)
            self.seen = _seen(query[0, h], key[0, kv], kv, scale, _bias(mask, position_bias, h), weights[0, h])
        self.calls += 1


def _bias(mask, position_bias, h: int):
    """Head `h`'s additive `[T, T]` term: the relative position bias (T5, MPNet) plus the mask as 0 / -inf."""
    bias = None
    if position_bias is not None:
        bias = position_bias[0, min(h, position_bias.shape[1] - 1)].float()
    if mask is not None:
        m = mask[0, min(h, mask.shape[1] - 1)].float()
        blocked = m <= torch.finfo(mask.dtype).min / 2 if mask.dtype.is_floating_point else ~m.bool()
        m = torch.where(blocked, torch.tensor(-float("inf")), m if mask.dtype.is_floating_point else 0.0)
        bias = m if bias is None else bias + m
    return bias


def _seen(q, k, kv: int, scale: float, bias, weights) -> dict:
    """What a capture found, as numpy: q, k `[T, d]`, bias `[T, T]` or None (nothing added), weights `[T, T]`."""
    return dict(
        q=q.float().cpu().numpy(),
        k=k.float().cpu().numpy(),
        kv=kv,
        scale=scale,
        bias=None if bias is None or not bias.any() else bias.cpu().numpy(),
        weights=weights.float().cpu().numpy(),
    )


# Models whose attention is computed inside their own module, outside transformers' attention functions:
# model_type -> the self-attention module of a layer. Their queries and keys are read by forward hooks on the
# module's q and k projections, the mask and relative position bias from the arguments the module receives.
_HOOKED = {"mpnet": lambda body, layer: body.encoder.layer[layer].attention.attn}


def _hooked(model: LoadedModel, inputs: dict, layer: int, head: int) -> dict:
    """One forward pass with hooks on `layer`'s self-attention (MPNet): q, k, scale, bias and weights of `head`.

    MPNet: scores = q kᵀ / sqrt(d) + position_bias + attention_mask, where position_bias `[B, H, T, T]` is what
    the encoder computed once (`compute_position_bias`, T5-style buckets) and passes to every layer."""
    body = model.model.base_model
    attn = _HOOKED[model.config.model_type](body, layer)
    found: dict = {}

    def arguments(module, args, kwargs):
        bound = dict(zip(("hidden_states", "attention_mask", "position_bias"), args, strict=False))
        found.update(bound, **{k: v for k, v in kwargs.items() if k in ("attention_mask", "position_bias")})

    def keep(name):
        return lambda module, args, output: found.__setitem__(name, output)

    hooks = [
        attn.register_forward_pre_hook(arguments, with_kwargs=True),
        attn.q.register_forward_hook(keep("q")),
        attn.k.register_forward_hook(keep("k")),
    ]
    try:
        with torch.inference_mode():
            out = model.model(**inputs, output_attentions=True)
    finally:
        for hook in hooks:
            hook.remove()
    d = attn.attention_head_size
    q = found["q"][0].view(-1, attn.num_attention_heads, d)[:, head]  # [T, H*d] -> [T, d]
    k = found["k"][0].view(-1, attn.num_attention_heads, d)[:, head]
    bias = _bias(found.get("attention_mask"), found.get("position_bias"), head)
    return _seen(q, k, head, float(d**-0.5), bias, out.attentions[layer][0, head])


def _capture(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Records (in a thread with a recorder) and runs the module's own eager attention: same output as eager."""
    eager = sys.modules[type(module).__module__].eager_attention_forward
    out = eager(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    recorder = getattr(_local, "recorder", None)
    if recorder is not None:
        recorder.record(
            query, key, attention_mask, scaling, kwargs.get("position_bias"), out[1], kwargs.get("softcap")
        )
    return out


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(CAPTURE, _capture)
    AttentionMaskInterface.register(CAPTURE, eager_mask)


def _configs(model: torch.nn.Module) -> list:
    """Every distinct config object the model's modules read (text towers keep their own sub-config)."""
    found = {id(model.config): model.config}
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            found.setdefault(id(config), config)
    return list(found.values())


def _check(model: LoadedModel, layer: int, head: int) -> None:
    if not 0 <= int(layer) < model.num_layers:
        raise UserFacingError(f"Layer {layer} does not exist: {model.name} has layers 0 to {model.num_layers - 1}.")
    if not 0 <= int(head) < model.num_heads:
        raise UserFacingError(f"Head {head} does not exist: {model.name} has heads 0 to {model.num_heads - 1}.")


def query_key(
    model: LoadedModel, text: str, layer: int, head: int, text_pair: str | None = None, max_length: int | None = None
) -> QueryKey:
    """Queries, keys, scale and bias of (`layer`, `head`) for `text`, tokenized exactly as `es.attention` does."""
    check_text(text)
    _check(model, layer, head)
    _register()
    pair = text_pair if text_pair and text_pair.strip() else None
    enc, _ = tokenize(model, text, pair, max_length)
    ids = enc["input_ids"][0].tolist()
    inputs = {k: v.to(model.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    if getattr(model.config, "model_type", "") in _HOOKED:
        return _result(model, ids, int(layer), int(head), _hooked(model, inputs, int(layer), int(head)))
    recorder = _Recorder(int(layer), int(head))
    configs = _configs(model.model)
    with _switch:
        before = [c._attn_implementation for c in configs]
        _local.recorder = recorder
        try:
            for c in configs:
                c._attn_implementation = CAPTURE
            with torch.inference_mode():
                model.model(**inputs)
        finally:
            _local.recorder = None
            for c, impl in zip(configs, before, strict=True):
                c._attn_implementation = impl
    if recorder.seen is None:
        raise UserFacingError(
            f"{model.name} computes attention outside transformers' attention functions, so its queries and keys "
            "cannot be read; the query·key view supports BERT-likes, MPNet, T5 encoders, CLIP text and Llama-style models."
        )
    return _result(model, ids, int(layer), int(head), recorder.seen)


def _result(model: LoadedModel, ids: list[int], layer: int, head: int, seen: dict) -> QueryKey:
    special_ids = set(model.tokenizer.all_special_ids)
    return QueryKey(
        tokens=model.tokenizer.convert_ids_to_tokens(ids),
        special=np.array([i in special_ids for i in ids], bool),
        layer=layer,
        head=head,
        kv_head=seen["kv"],
        q=seen["q"],
        k=seen["k"],
        scale=seen["scale"],
        bias=seen["bias"],
        weights=seen["weights"],
        causal=model.causal,
    )
