"""`untrained(model, seed)`: the same architecture and tokenizer with freshly initialised weights.

A baseline, never a model to present as real: it separates what training learned from what the architecture
gives for free (random transformers already score high on CKA at early layers, because every layer adds to the
same residual stream of the same token embeddings). Its name says "untrained", its `source` is "untrained" and
`extras["untrained"]` is True; pages must label it so.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING

import torch

from ..model_kinds import BUILD_LOCK
from .checks import CompareError

if TYPE_CHECKING:
    from ..models import LoadedModel

UNTRAINED = "untrained"


def is_untrained(model) -> bool:
    """Whether `model` came from :func:`untrained` (random weights: label it, never present it as real)."""
    return bool(getattr(model, "extras", {}).get(UNTRAINED))


def untrained(model: LoadedModel, seed: int = 0) -> LoadedModel:
    """A copy of `model` (a LoadedModel or ImageEncoder) whose weights are freshly initialised by transformers'
    own initialiser (the config's initializer_range), seeded by `seed`; same config, tokenizer, processor,
    pooling and kind, eval mode, eager attention. Usable by every function that takes a model.

    name: "<name> (untrained, seed <seed>)"; source: "untrained"; extras: {"untrained": True, "seed": seed,
    "trained_name": <name>}. An image classifier's head is dropped (random labels mean nothing). The global
    random state is left as it was.
    """
    if is_untrained(model):
        raise CompareError(f"{model.name} is already an untrained baseline.")
    module = getattr(model, "model", None)
    if not isinstance(module, torch.nn.Module) or not hasattr(module, "config"):
        raise CompareError(f"{getattr(model, 'name', 'This model')} is not a transformers model: no baseline.")
    config = copy.deepcopy(module.config)
    with BUILD_LOCK, torch.random.fork_rng(devices=[]):  # BUILD_LOCK: another thread's from_pretrained
        torch.manual_seed(int(seed))  # would otherwise skip or misplace this initialisation (model_kinds)
        fresh = type(module)._from_config(config, attn_implementation="eager")
    fresh.eval().to(model.device)
    changes = dict(
        model=fresh,
        name=f"{model.name} (untrained, seed {int(seed)})",
        source=UNTRAINED,
        extras={**model.extras, UNTRAINED: True, "seed": int(seed), "trained_name": model.name},
    )
    fields = {f.name for f in dataclasses.fields(model)}
    if "classifier" in fields:
        changes.update(classifier=None, labels=())
    return dataclasses.replace(model, **changes)
