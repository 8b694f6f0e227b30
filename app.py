"""Encoderscope entry point: page config, navigation and the shared sidebar. No logic here."""

import streamlit as st

from components import resources, sidebar

st.set_page_config(page_title="Encoderscope", page_icon="🔭", layout="wide")

HOME = dict(page="views/home.py", title="Home", icon="🏠")
PAGES = [
    # Streamlit serves the default page at / only and ignores its url_path, so /home gets a hidden alias.
    # Page identity is the url_path: the default page needs one of its own, distinct from the alias's.
    st.Page(**HOME, url_path="start", default=True),
    st.Page(**HOME, url_path="home", visibility="hidden"),
    st.Page("views/attention.py", title="Attention", icon="🎯", url_path="attention"),
    st.Page("views/masks.py", title="Encoder vs decoder", icon="🎭", url_path="masks"),
    st.Page("views/embeddings.py", title="Embeddings", icon="🗺️", url_path="embeddings"),
    st.Page("views/vae.py", title="Image VAE", icon="🖼️", url_path="vae"),
    st.Page("views/vision.py", title="Image encoders", icon="👁️", url_path="vision"),
    st.Page("views/atlas.py", title="Corpus atlas", icon="🌌", url_path="atlas"),
    st.Page("views/compare.py", title="Compare models", icon="⚖️", url_path="compare"),
]

page = st.navigation(PAGES)
resources.start_background_warm_up()  # compile UMAP and load the bundled encoder from the first request on
sidebar.render()
page.run()
