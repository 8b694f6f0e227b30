"""Sections of the image VAE page: input, VAE picker, latents, reconstruction, playground, exports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from components import resources, ui
from components.image_input import SAMPLES, UPLOAD_TYPES
from encoderscope import figures, images, latents
from encoderscope import vae as vae_lib
from encoderscope.vae import taesd

_CUSTOM = "Other (hub id, folder or .safetensors)…"


def vae_label(ref: str) -> str:
    """How the picker shows a VAE reference: a TAESD `*_encoder.pth` by its pair's name
    ("taesdxl · /models/vae_approx/taesdxl_encoder.pth"), anything else as it is."""
    path = Path(ref)
    if path.name.endswith(taesd.ENCODER_SUFFIX):
        return f"{taesd.pair_name(path)} · {ref}"
    return ref


def vae_picker() -> str | None:
    """A VAE reference: local VAEs first, then curated hub ids, then free text (when allowed).

    `?vae=` in the URL picks one. A value this server does not offer is put in the free-text box when the
    settings allow it, and otherwise answered with a warning (never a silent switch to another VAE)."""
    local = vae_lib.local_vaes()
    options = [*local, *vae_lib.CURATED_VAES]
    picked = ui.url_picker(
        "vae",
        "VAE",
        options,
        (_CUSTOM, "Hub id, folder or .safetensors file"),
        unavailable=lambda wanted, reason: f"The VAE {wanted[:100]!r} from the link is not available on this "
        f"server: {reason or 'it is not one of the listed VAEs.'} Showing {vae_label(options[0])} instead.",
        refusal=lambda wanted: vae_lib.refusal(wanted, local),
        max_chars=500,
        format_func=lambda o: f"{vae_label(o)} (local)" if o in local else o,
        help="Local VAEs come from ENCODERSCOPE_MODELS_DIR; hub VAEs need internet on first use.",
    )
    if not picked.value:
        st.info("Type a VAE hub id (e.g. madebyollin/taesd) or a local path.")
        return None
    ui.sync_query(vae=picked.value)
    return picked.value


def load(ref: str):
    """The cached VAE, or None after showing why it could not be loaded."""
    with ui.guard(f"load the VAE {ref}"), st.spinner(f"Loading {ui.escape_markdown(ref)} …"):
        return resources.vae(ref)
    return None


def latents_view(rt, vae) -> None:
    z = rt.latents
    C, h, w = z.shape
    cols = st.columns(4)
    cols[0].metric("Latent shape", f"{C}×{h}×{w}")
    cols[1].metric("Compression", f"{rt.compression:.0f}×", help="pixels × 3 / latent numbers")
    cols[2].metric("Value range", f"{z.min():.2f} … {z.max():.2f}")
    cols[3].metric("Image", f"{rt.input.size[0]}×{rt.input.size[1]}")
    left, right = st.columns([3, 1])
    with left:
        ui.plotly(figures.latent_grid(z), key="latent_grid", filename="latent_channels")
        st.caption(
            "Every latent channel as a heatmap (red positive, blue negative, one shared scale centred on 0). "
            "Channel numbers are in each tile's corner."
        )
    with right:
        preview = images.latent_rgb_preview(z, images.to_array(rt.input))
        st.image(
            Image.fromarray((preview * 255).astype(np.uint8)).resize((w * 4, h * 4), Image.Resampling.NEAREST),
            caption="Latent “RGB preview”: a linear map from channels to RGB, least-squares fitted on this image "
            "itself (so it shows what the latents can express linearly, not a decoder).",
            width="stretch",
            output_format="PNG",  # lossless: JPEG artefacts would pass for VAE loss
        )
    stats = pd.DataFrame({"channel": range(C), **latents.channel_stats(z)}).round(3)
    a, b = st.columns([1, 2])
    a.dataframe(stats, hide_index=True, height=320, width="stretch")
    with b:
        ui.plotly(figures.channel_histograms(z), key="histograms", filename="latent_histograms")
        st.caption("Histogram of each channel's values (one row per channel).")


def reconstruction_view(rt) -> None:
    cols = st.columns(4)
    cols[0].metric("PSNR", f"{rt.psnr:.2f} dB")
    cols[1].metric("SSIM", f"{rt.ssim:.3f}")
    cols[2].metric("Encode", f"{rt.encode_s * 1000:.0f} ms")
    cols[3].metric("Decode", f"{rt.decode_s * 1000:.0f} ms")
    original, recon = np.asarray(rt.input), np.asarray(rt.reconstruction)
    ui.plotly(figures.side_by_side(original, recon), key="compare", filename="reconstruction")
    st.caption(
        "Drag a box on either image to zoom both (double-click to reset): fine texture and text are where "
        "the VAE loses most."
    )
    ui.plotly(
        figures.difference_heatmap(original / 255.0, recon / 255.0),
        key="difference",
        filename="difference",
    )
    st.caption("Absolute difference between original and reconstruction (mean over RGB; brighter = larger error).")


_PARTNER_SAMPLE, _PARTNER_UPLOAD = "sample", "upload"
_SECOND_IMAGE_UNUSABLE = "The second image cannot be used"


def partner_latents(ref: str, rt, data: bytes, size: int, fit: str, sample: bool, seed: int) -> np.ndarray:
    """Latents `[C, h, w]` of a second image, fitted to `rt.input`'s pixel size first, so they have the same
    shape as `rt.latents`. Raises images.ImageError / vae.VAEError."""
    png = resources.fitted_png(data, rt.input.size)  # already W×H with sides multiples of 8: prepare() keeps it as it is
    return resources.vae_encode(ref, png, size, fit, sample, seed)


def _second_upload(upload, size: tuple[int, int]) -> bytes | None:
    """The second upload's bytes, or None after a message (not a usable image). It is decoded and fitted to
    `size` at once, so a bad file is reported before any slider moves."""
    data = upload.getvalue()
    with ui.guard("read the second image", context=_SECOND_IMAGE_UNUSABLE) as reading:
        resources.fitted_png(data, size)
    return None if reading.failed else data


def _fresh_amount() -> None:
    """A newly picked edit starts at its neutral amount: forget what its slider (persisted, one per edit) held."""
    st.session_state.pop(f"pg_amount_{st.session_state.pg_op}", None)


@st.fragment
def playground(ref: str, rt, other_name: str, partner: Callable[[bytes], np.ndarray]) -> None:
    """Edit the latents `[C, h, w]` and decode: one channel scaled/zeroed/shifted, Gaussian noise, and
    interpolation towards a second image's latents: the other sample photo (`other_name`) or a second upload.
    `partner(image_bytes)` gives that image's latents `[C, h, w]` after fitting it to the first image's pixel
    size (computed only when asked for). A fragment: moving a slider reruns only this section. The edits keep
    their values while the page shows another view (persist_state; a second upload is forgotten)."""
    z = rt.latents
    C = z.shape[0]
    keep = dict(persist_state="page")
    c1, c2, c3 = st.columns(3)
    channel = int(c1.number_input("Channel", 0, C - 1, 0, key="pg_channel", **keep))
    op = c2.selectbox("Edit", list(latents.OPS), key="pg_op", on_change=_fresh_amount, **keep)
    amount = c3.slider(
        "Amount",
        -3.0,
        3.0,
        latents.NEUTRAL.get(op, 0.0),
        0.1,
        key=f"pg_amount_{op}",
        **keep,
        disabled=op == "zero",
        help="scale: multiply the channel; shift: add this many of the channel's standard deviations",
    )
    n1, n2 = st.columns(2)
    sigma = n1.slider("Gaussian noise σ (× latent std)", 0.0, 2.0, 0.0, 0.05, key="pg_sigma", **keep)
    with n2:
        t = st.slider(
            "Interpolate towards a second image",
            0.0,
            1.0,
            0.0,
            0.05,
            key="pg_t",
            **keep,
            help="Linear interpolation of the two latents, then decode. The second image is resized and "
            "centre-cropped to this image's size first, so the latents have the same shape.",
        )
        source = st.radio(
            "Second image",
            [_PARTNER_SAMPLE, _PARTNER_UPLOAD],
            horizontal=True,
            key="pg_partner",
            **keep,
            format_func={
                _PARTNER_SAMPLE: f"the other sample photo ({SAMPLES[other_name]})",
                _PARTNER_UPLOAD: "upload a second image",
            }.get,
        )
        data, partner_name = None, SAMPLES[other_name]
        if source == _PARTNER_UPLOAD:
            upload = ui.file_uploader(
                "Second image (PNG, JPEG, WebP, BMP, GIF or TIFF)", type=UPLOAD_TYPES, key="pg_upload"
            )
            if upload is None:
                if t > 0:
                    st.info("Upload a second image to interpolate towards it.")
            else:
                data, partner_name = _second_upload(upload, rt.input.size), upload.name
        elif t > 0:
            data = resources.sample_image_bytes(SAMPLES[other_name])
        if data is not None:
            st.image(
                resources.fitted_png(data, rt.input.size),
                caption=f"{ui.escape_markdown(partner_name)}, fitted to {rt.input.size[0]}×{rt.input.size[1]}",
                width=160,
                output_format="PNG",
            )
    edited = latents.add_noise(latents.edit_channel(z, channel, op, amount), sigma, scale=z.std())
    towards = None
    if t > 0 and data is not None:
        with (
            ui.guard("encode the second image", context=_SECOND_IMAGE_UNUSABLE),
            st.spinner("Encoding the second image …"),
        ):
            towards = partner(data)
        if towards is not None and towards.shape != z.shape:  # cannot happen after fitting; never crash if it does
            ui.user_error(f"The second image's latents are {towards.shape}, not {z.shape}: cannot interpolate.")
            towards = None
        if towards is not None:
            edited = latents.interpolate(edited, towards, t)
    original = images.to_png(rt.reconstruction)
    if np.array_equal(edited, z):
        png = original  # nothing edited yet: no need to run the decoder
        caption = "decoded latents, unedited (move a slider above to edit them)"
    else:
        with ui.guard("decode the edited latents") as decoding:
            png = resources.vae_decode(ref, edited.astype(np.float32))
        if decoding.failed:
            return
        target = "the other photo" if source == _PARTNER_SAMPLE else "the second image"
        edits = []
        if latents.changes(op, amount):
            edits.append(f"channel {channel}: {op}" + (f" {amount:g}" if op != "zero" else ""))
        if sigma:
            edits.append(f"noise σ {sigma:g}")
        if towards is not None:
            edits.append(f"{t:.0%} towards {target}")
        caption = f"decoded edited latents ({', '.join(edits)})"
    a, b = st.columns(2)
    a.image(original, caption="decoded original latents", width="stretch")
    b.image(png, caption=caption, width="stretch")


def exports(rt) -> None:
    from safetensors.numpy import save as save_safetensors

    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "⬇️ Latents (.npy)",
        ui.npy_bytes(rt.latents),
        "latents.npy",
        "application/octet-stream",
        help=f"float32 [C, h, w] = {list(rt.latents.shape)}, scaled as the diffusion model sees them",
    )
    c2.download_button(
        "⬇️ Latents (.safetensors)",
        lambda: save_safetensors({"latents": np.ascontiguousarray(rt.latents)}),
        "latents.safetensors",
        "application/octet-stream",
    )
    c3.download_button(
        "⬇️ Reconstruction (.png)", lambda: images.to_png(rt.reconstruction), "reconstruction.png", "image/png"
    )
