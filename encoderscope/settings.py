"""All limits and switches in one place, each overridable by an environment variable.

Read once at import; call :func:`load` again (e.g. in tests) after changing the environment.
`ENCODERSCOPE_PUBLIC=1` selects the public-deployment defaults: curated models only, no local
paths, lower limits. An explicit variable still wins over the public default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Limits for one server process. Field name `max_chars` <-> env `ENCODERSCOPE_MAX_CHARS`."""

    public: bool = False
    max_chars: int = 100_000  # text box input, per text
    max_tokens: int = 512  # attention inputs are truncated beyond min(this, model limit)
    max_sentences: int = 20_000  # embeddings corpus
    max_csv_bytes: int = 50_000_000
    max_csv_rows: int = 100_000
    max_projection_points: int = 20_000  # above this, sample with a notice
    max_image_pixels: int = 40_000_000  # refused before decoding
    max_image_patches: int = 1_024  # /vision and image_attention downscale to at most this many patches (T² memory)
    # image relevance (explain_image) keeps every layer's attention maps and their gradients, float32:
    # layers x heads x T^2 x 8 bytes, bounded by this (ViT-B at 1,024 patches would need about 1.2 GB)
    image_gradient_bytes: int = 1_000_000_000
    vision_cache_mb: int = 1_024  # bytes, not entries: cached /vision results (attention, relevance) share this budget
    max_upload_mb: int = 200  # keep equal to .streamlit/config.toml server.maxUploadSize
    model_cache_size: int = 4  # models per kind kept in st.cache_resource
    allow_custom_models: bool = True  # free-text hub ids
    allow_local_paths: bool = True  # model/VAE folders on the server's disk
    hub_probe_timeout: float = 1.5  # seconds, for the one-off "is the hub reachable" probe
    cache_dir: str = str(Path.home() / ".cache" / "encoderscope")
    models_dir: str = ""  # scanned for local VAEs and models
    # Corpus atlases (`atlas build --out`) the Atlas page lists; default <cache_dir>/atlases. "" = none listed.
    atlas_dir: str = ""
    # Attribution (gradients): tokens per text for integrated gradients, the most interpolation steps, and the
    # tokens one batched backward pass may hold (steps are chunked to stay under it: the memory bound).
    attribution_max_tokens: int = 128
    attribution_max_steps: int = 64
    attribution_batch_tokens: int = 1024  # SmolLM2-135M: about 1.2 MB of saved activations per token
    # The compute pool (encoderscope.compute, docs/deploy.md): heavy jobs at once (0 = one per core), how many of
    # them the long lane may take (0 = workers - 1), and the seconds one job may run before its user is told.
    workers: int = 0
    long_workers: int = 0
    job_timeout: float = 120.0
    atlas_upload_bytes: int = 200_000_000  # an uploaded points.parquet: uncompressed bytes of the columns read
    atlas_hover_points: int = 100_000  # up to this many points, the map gets each text for hover
    atlas_build_queue: int = 8  # background atlas builds waiting their turn (one runs at a time per server)
    features_min_sentences: int = 2000  # the Embeddings page learns SAE features for corpora at least this big
    # seconds the Embeddings page's feature training may run (0 = no limit): minutes, past job_timeout, at 10^4 x 2,048
    features_timeout: float = 3600.0


_PUBLIC_DEFAULTS = dict(
    max_chars=5_000,
    max_tokens=256,
    max_sentences=2_000,
    max_csv_bytes=5_000_000,
    max_csv_rows=5_000,
    max_projection_points=5_000,
    max_image_pixels=16_000_000,
    max_image_patches=576,
    image_gradient_bytes=256_000_000,  # ViT-B: at most about 470 patches
    vision_cache_mb=256,
    max_upload_mb=20,
    model_cache_size=2,
    allow_custom_models=False,
    allow_local_paths=False,
    attribution_max_tokens=64,
    attribution_max_steps=16,
    attribution_batch_tokens=256,
    atlas_dir="",  # public: no server folder unless the operator names one (uploads only)
    atlas_upload_bytes=20_000_000,
    atlas_hover_points=20_000,
    features_timeout=900.0,
)


def load(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from `environ` (default `os.environ`). Bad values raise ValueError naming the variable."""
    env = os.environ if environ is None else environ
    public = _flag(env.get("ENCODERSCOPE_PUBLIC", "0"))
    values: dict = dict(_PUBLIC_DEFAULTS) if public else {}
    values["public"] = public
    defaults = Settings()
    for f in fields(Settings):
        key = "ENCODERSCOPE_" + f.name.upper()
        if f.name == "public" or key not in env:
            continue
        raw = env[key]
        kind = type(getattr(defaults, f.name))
        try:
            values[f.name] = _flag(raw) if kind is bool else kind(raw)
        except ValueError:
            raise ValueError(f"{key}={raw!r} is not a valid {kind.__name__}") from None
    if "atlas_dir" not in values:  # follows ENCODERSCOPE_CACHE_DIR, as the numba cache does
        values["atlas_dir"] = str(Path(values.get("cache_dir", defaults.cache_dir)) / "atlases")
    return Settings(**values)


SETTINGS = load()


def get() -> Settings:
    """The current settings (a module attribute so tests can swap them with `reload`)."""
    return SETTINGS


def reload(environ: dict[str, str] | None = None) -> Settings:
    global SETTINGS
    SETTINGS = load(environ)
    return SETTINGS
