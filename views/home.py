"""Home: what an encoder is, and the tools."""

import streamlit as st

from components import sidebar

st.title("🔭 Encoderscope")
st.markdown(
    "An **encoder** is the *understanding* half of a transformer. Every token looks at the whole input, "
    "**left and right**, so *bank* in “the bank of the river” already knows about the river. "
    "BERT and sentence-embedding models (the vectors behind search and RAG) are encoders; CLIP encodes "
    "text and images into one space; T5 pairs an encoder with a decoder; and Stable Diffusion's VAE "
    "encodes pixels into a small latent image. A **decoder** such as GPT reads strictly left to right."
)

TOOLS = [
    ("views/attention.py", "🎯 Attention explorer",
     "Every layer and head of a real encoder: heatmaps, head patterns, rollout, and what one token looks at."),
    ("views/masks.py", "🎭 Encoder vs decoder",
     "Bidirectional vs causal masks on the same text, the “bank” experiment, and a real causal LM."),
    ("views/embeddings.py", "🗺️ Embeddings",
     "Sentence and token embeddings projected with UMAP, PCA or t-SNE, plus nearest-neighbour search."),
    ("views/vae.py", "🖼️ Image VAE",
     "Squeeze an image into a Stable Diffusion VAE's latent space, look at the channels, and decode it back."),
    ("views/vision.py", "👁️ Image encoders",
     "How ViT, DINOv2, CLIP and SigLIP read a picture as patches, and where it lands next to sentences in CLIP's space."),
    ("views/atlas.py", "🌌 Corpus atlas",
     "A whole corpus, up to a million sentences, as one map: clusters, near-duplicates, search and selection."),
]
cols = st.columns(2)
for i, (path, title, text) in enumerate(TOOLS):
    with cols[i % 2].container(border=True):
        st.page_link(path, label=title)
        st.caption(text)

st.subheader("Status")
rows = sidebar.status_rows()
st.table({"": [label for label, _ in rows], "status": [value for _, value in rows]})
st.caption(
    "Works offline with the bundled models. With internet access, any Hugging Face encoder id "
    "(e.g. bert-base-uncased) can be typed into a page's model picker."
)
