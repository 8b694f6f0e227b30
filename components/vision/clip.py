"""The CLIP section of the image encoders page: several images and captions scored in one shared space.

Images: the sample photos and uploads (at most `vision.MAX_IMAGES`); texts: labels or captions, one per line
(at most `vision.MAX_TEXTS`), put into an editable prompt template. Shows the cosine matrix, zero-shot scores
per image, and images and texts projected together with the modality gap measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components import image_input, resources, ui
from components.vision import cache, controls, why
from encoderscope import projection, vision
from encoderscope.figures import vision as figures
from encoderscope.figures.embeddings import projection_scatter

# Labels for the two sample photos (a Chinese temple, a flower) plus distractors, so the matrix has an answer.
DEFAULT_LABELS = "a Chinese temple\na flower\na dog\na city street at night\na plate of food"
DEFAULT_TEMPLATE = "a photo of {}"


def section() -> None:
    st.caption(
        "CLIP and SigLIP train an image encoder and a text encoder together so that a picture and its caption "
        "land close in one vector space. Compare several pictures with several captions, and see the space."
    )
    left, right = st.columns([2, 1])
    with right:
        picked = controls.model_picker(
            "clip",
            "CLIP or SigLIP model",
            vision.CURATED_CLIP,
            "clip",
            "A two-tower model (image and text encoders with a shared space). Hub models need internet on first "
            "use; local folders come from ENCODERSCOPE_MODELS_DIR.",
        )
    with left:
        pictures = image_set()
    texts = captions()
    if picked is None or not pictures or texts is None:
        return
    clip = controls.load(cache.clip_model, *picked)
    if clip is None:
        return
    names = [name for name, _, _ in pictures]
    labels, prompts = texts
    with ui.guard("compare the images and texts") as run, st.spinner("Encoding images and texts …"):
        sim = cache.clip_similarity(
            *picked, tuple(cache.digest(data) for _, data, _ in pictures), tuple(prompts), [d for _, d, _ in pictures]
        )
    if run.failed:
        return
    if any(sim.truncated):
        cut = [labels[i] for i, flag in enumerate(sim.truncated) if flag]
        ui.user_warning(f"{len(cut)} caption(s) are longer than the model reads and were cut: {', '.join(cut)[:300]}")
    similarity(sim, names, labels, prompts)
    why.match(picked, sim, pictures, labels, chosen_cell(sim))
    zero_shot(sim, pictures, labels)
    joint_space(sim, names, labels)


# --- inputs -------------------------------------------------------------------------------------------------


def _uploads() -> list:
    """The uploaded files within the server's size limit (each larger one refused with a message)."""
    return ui.file_uploader(
        "Your images (PNG, JPEG, WebP, BMP, GIF, TIFF)",
        key="c_uploads",
        type=image_input.UPLOAD_TYPES,
        accept_multiple_files=True,
    )


def image_set() -> list[tuple[str, bytes, bytes]]:
    """(name, file bytes, thumbnail PNG) of each usable picture: the chosen samples, then the uploads.
    Files that are not usable images are named in a message and left out; beyond MAX_IMAGES the rest is
    left out with a warning."""
    offered = list(image_input.SAMPLES)
    samples = st.multiselect("Sample photos", offered, default=offered, key="c_samples")
    files = [image_input.SAMPLES[name] for name in samples]  # "china.jpg": short enough for an axis label
    chosen = [(file, resources.sample_image_bytes(file)) for file in files]
    chosen += [(upload.name, upload.getvalue()) for upload in _uploads()]
    if len(chosen) > vision.MAX_IMAGES:
        ui.user_warning(f"{len(chosen)} images: only the first {vision.MAX_IMAGES} are compared (the limit).")
        chosen = chosen[: vision.MAX_IMAGES]
    pictures = []
    for name, data in chosen:
        with ui.guard("read the image", context=name) as reading:
            thumb, _ = cache.thumbnail(cache.digest(data), data)
        if not reading.failed:
            pictures.append((name, data, thumb))
    if pictures:
        st.image([thumb for _, _, thumb in pictures], caption=[ui.escape_markdown(n) for n, _, _ in pictures], width=96)
    else:
        st.info("Pick a sample photo or upload an image.")
    return pictures


def captions() -> tuple[list[str], list[str]] | None:
    """(labels, prompts): the non-empty lines of the text box, and each put into the template; None after a
    message when there is none or the template lacks its "{}"."""
    left, right = st.columns([3, 2])
    raw = left.text_area("Labels or captions, one per line", DEFAULT_LABELS, key="c_labels", height=150)
    template = right.text_input(
        "Prompt template",
        DEFAULT_TEMPLATE,
        key="c_template",
        max_chars=200,
        help='Each line goes where "{}" is. Use "{}" alone to compare the lines as typed.',
    )
    right.caption("Zero-shot classification puts each label into a sentence like the captions CLIP was trained on.")
    text, notices = ui.clean_text(raw, max_chars=vision.MAX_TEXTS * 1_000)
    for notice in notices:
        ui.user_warning(notice)
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if len(labels) > vision.MAX_TEXTS:
        ui.user_warning(f"{len(labels)} lines: only the first {vision.MAX_TEXTS} are compared (the limit).")
        labels = labels[: vision.MAX_TEXTS]
    with ui.guard("build the prompts") as building:
        prompts = vision.apply_template(template, labels)
    return None if building.failed else (labels, prompts)


# --- results ------------------------------------------------------------------------------------------------


def similarity(sim: vision.ClipSimilarity, names: list[str], labels: list[str], prompts: list[str]) -> None:
    ui.plotly(
        figures.similarity_heatmap(sim.cosine, names, labels),
        key=MATRIX_KEY,
        filename="clip_similarity",
        on_select="rerun",
        selection_mode="points",
    )
    bias = sim.logit_bias
    logit = f"cosine × {sim.logit_scale:.1f}" + (
        "" if bias is None else f" {'+' if bias >= 0 else '−'} {abs(bias):.2f}"
    )
    st.caption(
        f"Cosine similarity of the L2-normalised image and text embeddings (texts as prompts, e.g. "
        f"“{ui.escape_markdown(prompts[0])}”). The model's logit is {logit}. Colours span this matrix's own range: "
        "CLIP's cosines sit in a narrow band, so small differences decide."
    )


MATRIX_KEY, CELL_KEY = "c_matrix", "c_cell"


def chosen_cell(sim: vision.ClipSimilarity) -> tuple[int, int]:
    """(image, text) to explain: the cell last clicked in the matrix, else the first image's best caption.
    A kept cell outside a smaller matrix (fewer images or captions now) falls back to that default."""
    point = controls.new_click(MATRIX_KEY)
    if point and point.get("x") is not None and point.get("y") is not None:  # the cell's marker sits at (text, image)
        st.session_state[CELL_KEY] = (int(round(point["y"])), int(round(point["x"])))
    n_images, n_texts = sim.cosine.shape
    cell = st.session_state.get(CELL_KEY)
    if not (isinstance(cell, tuple) and 0 <= cell[0] < n_images and 0 <= cell[1] < n_texts):
        cell = (0, int(sim.cosine[0].argmax()))
    return cell


def zero_shot(sim: vision.ClipSimilarity, pictures: list[tuple[str, bytes, bytes]], labels: list[str]) -> None:
    names = [name for name, _, _ in pictures]
    # Assigned on every run: a run that stopped earlier (say, an empty caption box) unmounted these widgets, and
    # a remounted widget would show its default instead of the value kept here.
    kept = st.session_state.get("c_image", 0)
    st.session_state.c_image = kept if kept < len(names) else 0
    index = st.selectbox("Zero-shot scores of", range(len(names)), format_func=lambda i: names[i], key="c_image")
    siglip = sim.family == "siglip"
    value = "sigmoid score" if siglip else "probability"
    left, right = st.columns([1, 3])
    left.image(pictures[index][2], caption=ui.escape_markdown(names[index]), width=160)  # the 160 px thumbnail
    with right:
        ui.plotly(
            figures.prob_bars(sim.probs[index], labels, f"Zero-shot: {names[index]}", value),
            key="c_bars",
            filename="zero_shot",
        )
    st.caption(
        "SigLIP scores every image-text pair on its own (a sigmoid of the logit), so the bars need not sum to 1."
        if siglip
        else "CLIP's softmax over these texts only: the probabilities say which of *these* captions fits best "
        "and always sum to 1, even when none fits."
    )
    best = sim.probs.argmax(axis=1)
    score = sim.probs[np.arange(len(names)), best].round(3)
    table = pd.DataFrame({"image": names, "best match": [labels[j] for j in best], value: score})
    st.dataframe(table, hide_index=True, width="stretch")


def joint_space(sim: vision.ClipSimilarity, names: list[str], labels: list[str]) -> None:
    st.session_state.c_projection = st.session_state.get("c_projection", "pca")  # see zero_shot
    method = st.radio(
        "Projection", ["pca", "umap"], format_func=projection.NAMES.get, horizontal=True, key="c_projection"
    )
    X = np.vstack([sim.image_embeds, sim.text_embeds])
    proj = resources.projection(X, method, 2, 0, 15, 0.1, 30.0)
    for notice in proj.notices:
        st.caption(ui.escape_markdown(notice))
    groups = ["image"] * len(names) + ["text"] * len(labels)
    axes = ("PC 1", "PC 2") if proj.method == "pca" else ()
    fig = projection_scatter(
        proj.coords, [*names, *labels], groups, title="Images and texts in one space", axis_titles=axes
    )
    ui.plotly(fig, key="c_space", filename="clip_space")
    gap = vision.modality_gap(sim)
    c1, c2 = st.columns(2)
    c1.metric("Modality gap", f"{gap:.3f}", help="‖mean image embedding − mean text embedding‖ (unit vectors)")
    c2.metric("Mean image–text cosine", f"{float(sim.cosine.mean()):.3f}")
    st.caption(
        "Images and texts projected together, coloured by modality. In CLIP-like models they do not mix: each "
        "modality sits in its own narrow cone, and the distance between the two centroids is the modality gap "
        "(Liang et al. 2022, “Mind the Gap”), which starts at initialisation and survives contrastive training."
    )
