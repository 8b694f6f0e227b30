"""Image encoders: how a vision transformer reads a picture, and where pictures meet sentences in CLIP's space."""

import streamlit as st

from components import ui
from components.image_input import image_input
from components.vision import cache, why
from components.vision import clip as clip_views
from components.vision import compare as vision_compare
from components.vision import controls as vision_controls
from components.vision import views as vision_views

SECTIONS = {"attention": "Attention over the picture", "clip": "CLIP: images and texts"}

st.title("👁️ Image encoders")
st.caption(
    "A vision transformer cuts the picture into square patches and reads them as a sequence of tokens, the way "
    "BERT reads words. Pick a layer and a head to see where each patch looks."
)
if "v_section" not in st.session_state:
    wanted = ui.query_str("section", "attention", 20)
    st.session_state.v_section = wanted if wanted in SECTIONS else "attention"
section = st.radio(
    "Section", list(SECTIONS), format_func=SECTIONS.get, horizontal=True, key="v_section", label_visibility="collapsed"
)
ui.sync_query(section=None if section == "attention" else section)
if section == "clip":
    clip_views.section()
    st.stop()

left, right = st.columns([2, 1])
with right:
    picked = vision_controls.encoder_picker()
    square = st.toggle(
        "Square (the processor's own crop)",
        key="v_square",
        help="Off: the short side is scaled to the model's input size and the aspect ratio kept, so nothing is "
        "cut away. On: exactly the resize and centre crop the checkpoint was trained with.",
    )
with left:
    chosen = image_input(key="v_image")
if picked is None or chosen is None:
    st.stop()
enc = vision_controls.load(cache.image_encoder, *picked)
if enc is None:
    st.stop()
name, data = chosen
digest = cache.digest(data)
with ui.guard("run the model on this image") as run, st.spinner("Running the model …"):
    views = cache.image_views(*picked, digest, square, data)
if run.failed:
    st.stop()

vision_views.describe(enc, views, name)
view, opacity = vision_controls.controls(views.res)
values, relevance = why.overlays(enc, picked, views, view, digest, square, data, opacity)
# One view at a time: tabs would blend every head's thumbnail and build the hidden charts on every click.
ui.one_view(
    {
        "All heads of this layer": lambda: vision_views.heads(views, view, opacity),
        "Rollout": lambda: vision_views.rollout(views, view, opacity),
        "Attention distance": lambda: vision_views.distance(views, view),
        "Patch features": lambda: vision_views.features(views),
    },
    key="v_view",
)
vision_views.exports(views, view, values, opacity)
if relevance is not None:
    why.relevance_downloads(relevance, opacity, f"relevance_class{relevance.target}")
vision_compare.section(picked[0], picked[1], data)  # layer x layer self-similarity, on request
