"""Benchmark: the image VAE page. Prints one JSON object.

- TAEF2 (real weights from ../shared/models/taef2) encode/decode at 256 and 512, and an SD 1.x-sized
  AutoencoderKL (random weights: the timing is architectural) at 256 and 512, through the library's
  `encoderscope.vae.encode` / `decode` (the functions the page runs);
- the speed-up of that library call (torch.inference_mode + channels_last) over the naive diffusers-style call
  (autograd on, contiguous weights and tensors), with ablations that show where it comes from;
- peak RSS; the whole page rerun under AppTest (a new upload at 512 with a warm model, and a cached rerun), with
  its default Latents view shown (the page runs one view at a time, so charts and metrics are that view's).
Every median comes from `runs` timed runs after one warm-up call.
Usage: python bench/vae.py [--runs 3] [--skip-sd] [--skip-page] [--quick]
  (--quick: 256 px only, 1 run, and a tiny random AutoencoderKL in place of the SD 1.x-sized one)
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import ROOT, arguments, emit, machine, median_time, ms, parse, round_robin

import encoderscope as es
from encoderscope import images
from encoderscope import vae as vae_lib

TAEF2 = Path(os.environ.get("ENCODERSCOPE_TAEF2_DIR", ROOT.parent / "shared" / "models" / "taef2"))


def library_input(vae, size: int) -> torch.Tensor:
    """china.jpg as `round_trip` feeds it to `encode`: square at `size`, `[1, 3, H, W]` in [0, 1], channels-last."""
    prepared, _ = images.prepare(china(), size, "square")
    return vae_lib.to_tensor(prepared, vae)


def random_kl(sd_sized: bool = True):
    """An AutoencoderKL with random weights (the timing is architectural) as the library wraps it.

    sd_sized: SD 1.x's architecture (block_out_channels 128-256-512-512); else a tiny one for --quick.
    """
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    blocks = [128, 256, 512, 512] if sd_sized else [32, 64]
    model = AutoencoderKL(
        block_out_channels=blocks,
        down_block_types=["DownEncoderBlock2D"] * len(blocks),
        up_block_types=["UpDecoderBlock2D"] * len(blocks),
        layers_per_block=2 if sd_sized else 1,
        latent_channels=4,
        scaling_factor=0.18215,
    )
    return vae_lib.from_diffusers(model, "sd-vae-sized (random)" if sd_sized else "kl-tiny (random)")


def library_times(vae, size: int, runs: int) -> dict:
    """Median ms of the library's `encode` and `decode` of one image at `size`."""
    x = library_input(vae, size)
    z = vae_lib.encode(vae, x)
    return {
        "encode_ms": ms(median_time(lambda: vae_lib.encode(vae, x), runs)[0]),
        "decode_ms": ms(median_time(lambda: vae_lib.decode(vae, z), runs)[0]),
        "latents": list(z.shape[1:]),
    }


def naive_call(vae, x01: torch.Tensor) -> torch.Tensor:
    """Encode + decode as a diffusers user writes it, with no inference tuning (the baseline, not the library)."""
    if vae.kind == "taesd":
        return vae.decoder(vae.encoder(x01))
    if vae.kind == "tiny":
        return vae.module.decode(vae.module.encode(x01 * 2 - 1).latents).sample
    return vae.module.decode(vae.module.encode(x01 * 2 - 1).latent_dist.mode()).sample


def contiguous_copy(vae):
    """A deep copy of `vae` with its weights back in the default (contiguous) memory format."""
    plain = copy.deepcopy(vae)  # deepcopy keeps encoder / decoder / module the same object where they were
    for part in {id(plain.encoder): plain.encoder, id(plain.decoder): plain.decoder}.values():
        part.to(memory_format=torch.contiguous_format)
    return plain


def tuning(vae, size: int, runs: int) -> dict:
    """Encode + decode of one image, median ms of `runs` runs per variant (taking turns).

    The headline, speedup_library_call, is the naive call over the library's own call: `encoderscope.vae.encode`
    then `.decode`, as the page runs them (inference_mode, channels-last weights and tensors). Ablations:
    the naive call under no_grad and under inference_mode (inference mode's share, layout unchanged); the
    library's own code with autograd on (its functions without their inference_mode decorator); the library
    call at other thread counts.
    """
    x = library_input(vae, size)
    plain, x_plain = contiguous_copy(vae), x.contiguous()
    encode, decode = vae_lib.encode, vae_lib.decode
    threads = torch.get_num_threads()

    def naive(mode=contextlib.nullcontext):
        def run():
            with mode():
                return naive_call(plain, x_plain)

        return run

    def library(n_threads: int = threads):
        def run():
            torch.set_num_threads(n_threads)
            try:
                return decode(vae, encode(vae, x))
            finally:
                torch.set_num_threads(threads)

        return run

    variants = {
        "naive (autograd, contiguous)": naive(),
        "naive + no_grad": naive(torch.no_grad),
        "naive + inference_mode": naive(torch.inference_mode),
        "library (encode/decode)": library(),
    }
    if hasattr(encode, "__wrapped__") and hasattr(decode, "__wrapped__"):  # the undecorated functions
        def library_autograd():
            with torch.enable_grad():
                return decode.__wrapped__(vae, encode.__wrapped__(vae, x))

        variants["library, autograd on"] = library_autograd
    for n in sorted({1, os.cpu_count() or 1} - {threads}):
        variants[f"library + {n} thread(s)"] = library(n)
    out = {name: ms(statistics.median(t)) for name, t in round_robin(variants, runs).items()}
    out["runs"], out["torch_threads"] = runs, threads
    naive_ms = out["naive (autograd, contiguous)"]
    out["speedup_library_call"] = round(naive_ms / out["library (encode/decode)"], 2)
    fastest = min(v for k, v in out.items() if k.startswith("library (") or k.startswith("library + "))
    out["speedup_best"] = round(naive_ms / fastest, 2)
    return out


def page_rerun(runs: int) -> dict:
    """The VAE page under AppTest with TAEF2: a new upload at 512 (warm model, new image), then a cached rerun."""
    from PIL import Image
    from sklearn.datasets import load_sample_image
    from streamlit.testing.v1 import AppTest

    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(TAEF2.parent)})
    at = AppTest.from_file(str(ROOT / "views" / "vae.py"), default_timeout=300)
    start = time.perf_counter()
    at.run()
    cold = time.perf_counter() - start
    at.radio(key="image_source").set_value("Upload").run()
    photo = np.asarray(Image.fromarray(load_sample_image("flower.jpg")))
    new_upload, cached = [], []
    for i in range(runs):
        buf = io.BytesIO()
        Image.fromarray(np.roll(photo, 7 * (i + 1), axis=1)).save(buf, format="PNG")  # a new image each time
        at.file_uploader(key="image_upload").set_value((f"f{i}.png", buf.getvalue(), "image/png"))
        start = time.perf_counter()
        at.run()
        new_upload.append(time.perf_counter() - start)
        assert not at.exception, [e.value for e in at.exception]
        start = time.perf_counter()
        at.run()
        cached.append(time.perf_counter() - start)
    figure_bytes = sum(len(c.proto.spec) for c in at.get("plotly_chart"))
    settings.reload()
    return {
        "first_run_with_load_s": round(cold, 2),
        "new_upload_512_s": round(statistics.median(new_upload), 2),
        "cached_rerun_s": round(statistics.median(cached), 2),
        "charts": len(at.get("plotly_chart")),
        "figure_json_bytes": figure_bytes,
        "metrics": {m.label: m.value for m in at.metric},
    }


def main() -> None:
    parser = arguments(__doc__, runs=3)
    parser.add_argument("--skip-sd", action="store_true", help="skip the SD 1.x-sized AutoencoderKL (slow)")
    parser.add_argument("--skip-page", action="store_true")
    args = parse(parser)
    sizes = (256,) if args.quick else (256, 512)
    result: dict = {"machine": machine(), "runs": args.runs, "quick": args.quick}
    if TAEF2.is_dir():
        taef2 = es.load_vae(str(TAEF2))
        result["taef2"] = {str(s): library_times(taef2, s, args.runs) for s in sizes}
        result["taef2"][f"tuning_{sizes[-1]}"] = tuning(taef2, sizes[-1], args.runs)
        rt = es.round_trip(taef2, china(), 512, "square")
        result["taef2"]["psnr_china_512"] = round(rt.psnr, 2)
    else:
        result["taef2"] = f"skipped: no weights at {TAEF2}"
    if not args.skip_sd:
        kl = random_kl(sd_sized=not args.quick)
        key = "kl_tiny" if args.quick else "sd_vae_sized"
        result[key] = {str(s): library_times(kl, s, args.runs) for s in sizes}
        result[key]["tuning_256"] = tuning(kl, 256, args.runs)
        del kl
    if TAEF2.is_dir() and not args.skip_page:
        result["page"] = page_rerun(args.runs)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    emit(result)


def china():
    from PIL import Image
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image("china.jpg"))


if __name__ == "__main__":
    main()
