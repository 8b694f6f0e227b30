"""VAEs from the Hugging Face Hub (a diffusers repo), or from its local cache when the hub is unreachable."""

from __future__ import annotations

import json
from pathlib import Path

from .. import models
from .results import LoadedVAE, VAEError
from .wrap import diffusers_class, from_diffusers

CURATED_VAES = ["madebyollin/taesd", "stabilityai/sd-vae-ft-mse", "madebyollin/taesdxl", "stabilityai/sdxl-vae"]
DEFAULT_HUB_VAE = "madebyollin/taesd"


def load_hub(repo: str) -> LoadedVAE:
    """The diffusers VAE in hub repo `repo`; offline, only from the local Hugging Face cache (never waits)."""
    from huggingface_hub import hf_hub_download

    online = models.hub_online()
    try:
        config_path = hf_hub_download(repo, "config.json", local_files_only=not online)
        cls = diffusers_class(json.loads(Path(config_path).read_text()))
        with models.BUILD_LOCK:
            model = cls.from_pretrained(repo, local_files_only=not online)
    except VAEError:
        raise
    except Exception as err:
        if not online:
            raise VAEError(
                f"Cannot download {repo!r}: the Hugging Face Hub is unreachable (offline) and it is not in "
                "the local cache. Use a local VAE folder (diffusers folder or *_encoder.pth + "
                "*_decoder.pth) or set ENCODERSCOPE_MODELS_DIR."
            ) from err
        raise VAEError(f"Could not load the VAE {repo!r}: {str(err).splitlines()[0][:200]}") from err
    return from_diffusers(model, repo)
