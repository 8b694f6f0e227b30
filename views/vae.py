"""Image VAE: squeeze an image into a Stable Diffusion VAE's latent space, look at it, and decode it back."""

import streamlit as st

from components import resources, ui
from components.image_input import image_input
from components.vae import views
from encoderscope import images

st.title("🖼️ Image VAE")
st.caption(
    "Stable Diffusion never sees pixels: its VAE encoder squeezes a 512×512×3 image into a 4×64×64 latent "
    "(48× fewer numbers), diffusion runs there, and the decoder paints the pixels back. Try it on your image."
)

left, right = st.columns([2, 1])
with right:
    ref = views.vae_picker()
    size = st.select_slider(
        "Working size (long side)",
        list(images.SIZES),
        value=512,
        key="size",
        help="256 is 4× faster: the full SD-VAE takes ~15 s at 512 on a CPU.",
    )
    fit = st.radio(
        "Make the sides multiples of 8 by",
        list(images.FITS),
        horizontal=True,
        key="fit",
        format_func={"crop": "centre-crop", "pad": "padding", "square": "square crop"}.get,
    )
with left:
    chosen = image_input()
if chosen is None or ref is None:
    st.stop()
name, data = chosen
vae = views.load(ref)
if vae is None:
    st.stop()

sample = False
seed = 0
if vae.kind == "kl":
    s1, s2 = st.columns([2, 1])
    sample = s1.toggle(
        "Sample the latent instead of taking its mean",
        key="sample",
        help="The KL encoder outputs a Gaussian per latent value. The mean (mode) is deterministic and "
        "what pipelines use for img2img; a sample adds that Gaussian's noise.",
    )
    seed = int(s2.number_input("Seed", 0, 2**31 - 1, 0, key="seed", disabled=not sample))
st.caption(vae.describe())
for note in vae.notes:  # how the VAE was read (e.g. a config inferred from the weights, a folder with several pairs)
    st.caption(ui.escape_markdown(note))

if vae.kind == "kl" and size > 256 and vae.device.type == "cpu":
    st.info(f"A full AutoencoderKL at {size} px takes 15-20 s on a small CPU; 256 px is about 4× faster.")
bar = st.empty()
if vae.kind == "kl":
    bar.progress(0.0, text=f"Encoding with {vae.name} at {size} px …")


def report(fraction: float, text: str) -> None:
    bar.progress(fraction, text=f"{text} ({vae.name}, {size} px)")


with ui.guard("run the VAE on this image") as run:
    rt = resources.vae_round_trip(ref, data, size, fit, sample, seed, progress=report)
bar.empty()
if run.failed:
    st.stop()

with st.expander("Preprocessing (what was encoded)", expanded=bool(rt.notes)):
    st.text("\n".join(rt.notes) or "The image was used as it is.")
    st.image(
        images.to_png(rt.input),
        caption=f"{ui.escape_markdown(name)} as encoded: {rt.input.size[0]}×{rt.input.size[1]}",
        width=min(rt.input.size[0], 512),
        output_format="PNG",
    )

# One view at a time: tabs would fit the RGB preview, draw both comparison images and re-encode the
# playground's pictures (decoding its edits, for a new image) on every run, whichever view is shown.
other_name = next(n for n in views.SAMPLES if n != name)
ui.one_view(
    {
        "Latents": lambda: views.latents_view(rt, vae),
        "Reconstruction": lambda: views.reconstruction_view(rt),
        "Latent playground": lambda: views.playground(
            ref, rt, other_name, lambda data: views.partner_latents(ref, rt, data, size, fit, sample, seed)
        ),
    },
    key="vae_view",
)
views.exports(rt)
