"""Benchmark: the image VAE page. Prints one JSON object.

- TAEF2 (real weights from ../shared/models/taef2) encode/decode at 256 and 512, and an SD 1.x-sized
  AutoencoderKL (random weights: the timing is architectural) at 256 and 512;
- the speed-up of the library's call (torch.inference_mode + channels_last + threads) over the naive
  diffusers-style call (autograd on, contiguous tensors), each tuning measured on its own;
- peak RSS; the whole page rerun under AppTest (a new upload at 512 with a warm model, and a cached rerun).
Medians over repeats. Usage: python bench/vae.py [--repeats 3] [--skip-sd]
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import encoderscope as es  # noqa: E402
from encoderscope import images  # noqa: E402
from encoderscope import vae as vae_lib  # noqa: E402

TAEF2 = Path(os.environ.get("ENCODERSCOPE_TAEF2_DIR", ROOT.parent / "shared" / "models" / "taef2"))


def median_ms(fn, repeats: int, warm: bool = True) -> float:
    if warm:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def image(size: int) -> torch.Tensor:
    prepared, _ = images.prepare(china(), size, "square")
    return torch.from_numpy(images.to_array(prepared).copy()).permute(2, 0, 1)[None]


def sd_sized_kl():
    """An AutoencoderKL with SD 1.x's architecture (block_out_channels 128-256-512-512), random weights."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    model = AutoencoderKL(
        block_out_channels=[128, 256, 512, 512],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        layers_per_block=2,
        latent_channels=4,
        scaling_factor=0.18215,
    )
    return vae_lib._from_diffusers(model, "sd-vae-sized (random)")


def library_times(vae, size: int, repeats: int) -> dict:
    x = image(size).to(vae.device, vae.dtype).contiguous(memory_format=torch.channels_last)
    z = vae_lib.encode(vae, x)
    return {
        "encode_ms": median_ms(lambda: vae_lib.encode(vae, x), repeats),
        "decode_ms": median_ms(lambda: vae_lib.decode(vae, z), repeats),
        "latents": list(z.shape[1:]),
    }


def tuning(vae, size: int, repeats: int) -> dict:
    """Encode + decode of one image: the naive call, then each tuning on top; ms and speed-up over naive."""
    x = image(size)
    contiguous = copy.deepcopy(vae)
    for part in {id(contiguous.encoder): contiguous.encoder, id(contiguous.decoder): contiguous.decoder}.values():
        part.to(memory_format=torch.contiguous_format)
    if contiguous.module is not None:
        contiguous.module = contiguous.encoder  # KL: encoder, decoder and module are the same model

    def run(v, xx):
        if v.kind == "taesd":
            return v.decoder(v.encoder(xx))
        return v.module.decode(v.module.encode(xx * 2 - 1).latent_dist.mode()).sample

    x_last = x.contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()

    def with_threads(n, fn):
        def run_n():
            torch.set_num_threads(n)
            try:
                return fn()
            finally:
                torch.set_num_threads(threads)

        return run_n

    variants = {
        "naive (autograd, contiguous)": lambda: run(contiguous, x),
        "no_grad": lambda: torch.no_grad()(run)(contiguous, x),
        "inference_mode": lambda: torch.inference_mode()(run)(contiguous, x),
        "inference_mode + channels_last": lambda: torch.inference_mode()(run)(vae, x_last),
    }
    tuned = variants["inference_mode + channels_last"]
    for n in sorted({1, os.cpu_count() or 1} - {threads}):
        variants[f"inference_mode + channels_last + {n} thread(s)"] = with_threads(n, tuned)
    # Round-robin over the variants, so that load from other processes hits them all alike.
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # warm
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out = {name: round(statistics.median(t) * 1000, 1) for name, t in times.items()}
    out["torch_threads"] = threads
    naive = out["naive (autograd, contiguous)"]
    out["speedup_library_call"] = round(naive / out["inference_mode + channels_last"], 2)
    out["speedup_best"] = round(naive / min(v for k, v in out.items() if k.startswith(("no_grad", "inference"))), 2)
    return out


def page_rerun(repeats: int) -> dict:
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
    for i in range(repeats):
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
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-sd", action="store_true", help="skip the SD 1.x-sized AutoencoderKL (slow)")
    parser.add_argument("--skip-page", action="store_true")
    args = parser.parse_args()
    result: dict = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }
    if TAEF2.is_dir():
        taef2 = es.load_vae(str(TAEF2))
        result["taef2"] = {str(s): library_times(taef2, s, args.repeats) for s in (256, 512)}
        result["taef2"]["tuning_512"] = tuning(taef2, 512, args.repeats)
        rt = es.round_trip(taef2, china(), 512, "square")
        result["taef2"]["psnr_china_512"] = round(rt.psnr, 2)
    if not args.skip_sd:
        sd = sd_sized_kl()
        result["sd_vae_sized"] = {"256": library_times(sd, 256, args.repeats), "512": library_times(sd, 512, 1)}
        result["sd_vae_sized"]["tuning_256"] = tuning(sd, 256, 1)
        del sd
    if TAEF2.is_dir() and not args.skip_page:
        result["page"] = page_rerun(args.repeats)
    result["load_average_1_5_15"] = [round(v, 2) for v in os.getloadavg()]  # other work on the machine skews times
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))


def china():
    from PIL import Image
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image("china.jpg"))


if __name__ == "__main__":
    main()
