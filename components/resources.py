"""The cache layer of the app (with its page sections `components.vision.cache` and `components.atlas.cache`).

`st.cache_resource` holds models: one shared object per (kind, id, revision) across all sessions,
bounded with `max_entries` so switching models cannot grow memory without bound. Treat them as read-only.
`st.cache_data` holds arrays (hashable inputs in, pickled outputs out, one copy per caller).
Exceptions are never cached by Streamlit, so a failed load is retried on the next attempt.
Each page keeps its cached functions in its own section below.
"""

from __future__ import annotations

import threading
import time

import streamlit as st
from streamlit.logger import get_logger

import encoderscope as es
from components import pool
from encoderscope import settings
from encoderscope.model_kinds import import_transformers

_MODELS = settings.get().model_cache_size
_log = get_logger(__name__)


# --- models (shared, bounded) ---------------------------------------------------------------


# One lock per model reference: a multi-GB hub download must not hold up another user's load of another model.
# The import race a global lock once hid (a page and the background preload importing transformers at once, one
# of them getting the half-initialised package without its classes) is fixed where it happens: transformers is
# imported once, by one thread, before any load (`import_transformers`).
_LOCKS_GUARD = threading.Lock()
_LOAD_LOCKS: dict[tuple, threading.Lock] = {}


def _load_lock(kind: str, ref, args: tuple) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOAD_LOCKS.setdefault((kind, str(ref), args), threading.Lock())


def _logged_load(kind: str, loader, ref, *args):
    """Load and log one line to the server log: the load test counts these to prove models are shared."""
    import_transformers()
    start = time.perf_counter()
    with _load_lock(kind, ref, args):
        loaded = loader(ref, *args)
    _log.info("encoderscope: loaded %s %s in %.1f s", kind, ref or "(bundled)", time.perf_counter() - start)
    return loaded


@st.cache_resource(max_entries=_MODELS, show_spinner=False)
def encoder(ref: str | None, revision: str | None = None):
    """A loaded encoder (see `encoderscope.models.load_encoder`)."""
    return _logged_load("encoder", es.load_encoder, ref, revision)


@st.cache_resource(max_entries=_MODELS, show_spinner=False)
def decoder(ref: str | None, revision: str | None = None):
    """A loaded causal decoder (see `encoderscope.models.load_decoder`)."""
    return _logged_load("decoder", es.load_decoder, ref, revision)


@st.cache_resource(max_entries=_MODELS, show_spinner=False)
def vae(ref: str):
    """A loaded VAE (see `encoderscope.vae.load_vae`)."""
    return _logged_load("vae", es.load_vae, ref)


@st.cache_data(ttl=60, show_spinner=False)
def hub_online() -> bool:
    from encoderscope import models

    return models.hub_online()


# --- masks page -----------------------------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner=False)
def masked_runs(model_ref: str | None, revision: str | None, text: str, max_length: int | None = None) -> dict:
    """{"bidirectional" | "causal": MaskedRun} for the encoder: hidden `[L+1, T, D]`, weights `[L, H, T, T]`."""
    from encoderscope import masks

    model = encoder(model_ref, revision)
    return pool.run("masks", (model_ref, revision, text, max_length),
                    lambda: {mask: masks.run(model, text, mask, max_length) for mask in masks.MASKS})


@st.cache_data(max_entries=16, show_spinner=False)
def context_probe(model_ref: str | None, revision: str | None, text_a: str, text_b: str):
    from encoderscope import masks

    model = encoder(model_ref, revision)
    return pool.run("context probe", (model_ref, revision, text_a, text_b), masks.context_probe, model, text_a, text_b)


@st.cache_data(max_entries=16, show_spinner=False)
def decoder_view(model_ref: str | None, revision: str | None, text: str, max_length: int | None = None):
    """(AttentionResult `[L, H, T, T]`, top-5 next tokens) of the cached decoder, from one forward pass."""
    from encoderscope import decoder as dec

    model = decoder(model_ref, revision)
    return pool.run("decoder", (model_ref, revision, text, max_length), dec.attention_and_next_tokens, model, text,
                    max_length)



# --- embeddings page ------------------------------------------------------------------------

EMBED_BLOCK = 256  # sentences per cached block: progress between blocks, edits re-embed one block only, and a
# typical paste (up to 256 sentences) is one pool job: one wait in the queue under load, not one per block
LONG_EMBED = 2_000  # sentences: a corpus above this embeds in the pool's long lane (it cannot take every worker)
LONG_PROJECTION = 5_000  # points: a projection above this runs in the long lane


@st.cache_resource
def start_background_warm_up() -> bool:
    """Once per server process, from the first request on: compile UMAP in a background thread (see
    components/warmup.py) and load the bundled encoder in another, so the first page that needs
    either does not wait for it. Returns at once."""
    # The warm-up thread imports umap, which imports sklearn; a page importing sklearn at the same moment
    # could get the half-initialised sklearn.base ("cannot import name 'clone'"). Import it here first.
    import sklearn.base  # noqa: F401
    from streamlit.runtime.scriptrunner import add_script_run_ctx

    from components.embeddings import warmup

    warmup.start()

    def preload() -> None:
        try:
            encoder(None, None)  # the same cache key as the pages' load_model("encoder", None, None)
        except Exception:  # noqa: S110 - the page that asks for it shows the error
            pass

    add_script_run_ctx(threading.Thread(target=preload, name="encoder-preload", daemon=True)).start()
    return True


@st.cache_data(max_entries=512, show_spinner=False)
def embed_block(model_ref: str | None, revision: str | None, texts: tuple[str, ...], pooling: str, _lane: str = "short"):
    """Sentence embeddings `[len(texts), D]` of one block (see `encoderscope.embeddings.embed`). `_lane`: the pool
    lane, "long" for a block of a large corpus (not part of the cache key)."""
    from encoderscope import embeddings

    model = encoder(model_ref, revision)
    return pool.run("embedding", (model_ref, revision, texts, pooling), embeddings.embed, model, list(texts),
                    pooling=pooling, lane=_lane)


@st.cache_data(max_entries=32, show_spinner=False)
def projection(X, method: str, dim: int, seed: int, n_neighbors: int, min_dist: float, perplexity: float):
    """`encoderscope.projection.project_with_info` of `X` `[N, D]`."""
    from encoderscope import projection as proj

    key = (pool.digest(X), method, dim, seed, n_neighbors, min_dist, perplexity)
    return pool.run("projection", key, proj.project_with_info, X, method, dim, seed, n_neighbors=n_neighbors,
                    min_dist=min_dist, perplexity=perplexity, lane="long" if len(X) > LONG_PROJECTION else "short")


@st.cache_data(max_entries=32, show_spinner=False)
def kmeans_labels(X, k: int, seed: int) -> list[str]:
    """k-means cluster names `[N]` for `X` `[N, D]` (see `encoderscope.clustering.kmeans`)."""
    from encoderscope import clustering

    return pool.run("k-means", (pool.digest(X), k, seed), lambda: clustering.cluster_names(clustering.kmeans(X, k, seed)),
                    lane="long" if len(X) > LONG_PROJECTION else "short")


@st.cache_data(max_entries=32, show_spinner=False)
def word_occurrences(model_ref: str | None, revision: str | None, texts: tuple[str, ...], word: str):
    from encoderscope import embeddings

    model = encoder(model_ref, revision)
    return pool.run("word occurrences", (model_ref, revision, texts, word), embeddings.word_occurrences, model,
                    list(texts), word, lane="long" if len(texts) > LONG_EMBED else "short")


@st.cache_data(max_entries=16, show_spinner=False)
def anisotropy(model_ref: str | None, revision: str | None, texts: tuple[str, ...]):
    from encoderscope import embeddings

    model = encoder(model_ref, revision)
    return pool.run("anisotropy", (model_ref, revision, texts), embeddings.anisotropy, model, list(texts),
                    lane="long" if len(texts) > LONG_EMBED else "short")



# --- vae page -------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _vae_results() -> dict:
    """A bounded LRU of round trips, shared by sessions. Not st.cache_data: the computation reports progress
    into the caller's page, and st.cache_data would replay those elements on a hit (CacheReplayClosureError)."""
    import threading
    from collections import OrderedDict

    return {"lock": threading.Lock(), "items": OrderedDict(), "max": 16}


def vae_round_trip(ref: str, image_bytes: bytes, size: int, fit: str, sample: bool, seed: int, progress=None):
    """`encoderscope.vae.round_trip` of an uploaded image, memoised on (ref, sha256(bytes), options).

    The result is shared: treat it as read-only. `progress(fraction, text)` only runs on a miss."""
    import hashlib

    from encoderscope import images
    from encoderscope import vae as vae_lib

    key = (ref, hashlib.sha256(image_bytes).hexdigest(), size, fit, sample, seed)
    memo = _vae_results()
    with memo["lock"]:
        if key in memo["items"]:
            memo["items"].move_to_end(key)
            return memo["items"][key]
    image, notes = images.open_image(image_bytes)
    model = vae(ref)
    result = pool.run("VAE round trip", key, vae_lib.round_trip, model, image, size, fit, sample, seed,
                      progress=progress)
    result.notes = notes + result.notes
    with memo["lock"]:
        memo["items"][key] = result
        while len(memo["items"]) > memo["max"]:
            memo["items"].popitem(last=False)
    return result


@st.cache_data(max_entries=16, show_spinner=False)
def vae_encode(ref: str, image_bytes: bytes, size: int, fit: str, sample: bool, seed: int):
    """Latents `[C, h, w]` of an image (encoder only), e.g. the playground's interpolation partner."""
    from encoderscope import images
    from encoderscope import vae as vae_lib

    image, _ = images.open_image(image_bytes)
    model = vae(ref)
    key = (ref, pool.digest(image_bytes), size, fit, sample, seed)
    return pool.run("VAE encode", key, vae_lib.encode_image, model, image, size, fit, sample, seed)


@st.cache_data(show_spinner=False)
def sample_image_bytes(name: str) -> bytes:
    """PNG bytes of a scikit-learn sample photo ("china.jpg", "flower.jpg")."""
    import io

    from PIL import Image
    from sklearn.datasets import load_sample_image

    buf = io.BytesIO()
    Image.fromarray(load_sample_image(name)).save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(max_entries=8, show_spinner=False)
def fitted_png(data: bytes, size: tuple[int, int]) -> bytes:
    """PNG bytes of the image in `data`, resized and centre-cropped to `size` = (width, height).

    Raises images.ImageError for a file that is not a usable image."""
    from encoderscope import images

    image, _ = images.open_image(data)
    return images.to_png(images.fit_to(image, size)[0])


@st.cache_data(max_entries=64, show_spinner=False)
def vae_decode(ref: str, latents) -> bytes:
    """PNG bytes of `decode(latents)` for latents `[C, h, w]` (playground edits)."""
    import torch

    from encoderscope import images
    from encoderscope import vae as vae_lib

    model = vae(ref)
    return pool.run("VAE decode", (ref, pool.digest(latents)),
                    lambda: images.to_png(vae_lib.to_image(vae_lib.decode(model, torch.from_numpy(latents)[None]))))
