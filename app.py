"""Encoderscope entry point: page config, navigation and the shared sidebar. No logic here."""

import streamlit as st

from components import resources, sidebar

st.set_page_config(page_title="Encoderscope", page_icon="🔭", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon="🏠", url_path="home", default=True),
    st.Page("views/attention.py", title="Attention", icon="🎯", url_path="attention"),
    st.Page("views/masks.py", title="Encoder vs decoder", icon="🎭", url_path="masks"),
    st.Page("views/embeddings.py", title="Embeddings", icon="🗺️", url_path="embeddings"),
    st.Page("views/vae.py", title="Image VAE", icon="🖼️", url_path="vae"),
]

page = st.navigation(PAGES)
resources.umap_warm_up()  # compile UMAP in the background from the first request on
sidebar.render()
page.run()
