"""Reusable Streamlit pieces shared by every page: model picker, safe messages, query params, charts."""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import streamlit as st
from streamlit.logger import get_logger

from components import resources
from encoderscope import models, settings
from encoderscope.errors import UserFacingError

_log = get_logger("encoderscope")  # the server log (Streamlit's handler and level)

# --- uploads --------------------------------------------------------------------------------


def file_uploader(label: str, key: str, **kwargs):
    """st.file_uploader capped at settings.max_upload_mb (in the browser and again here, since a client can
    skip the browser's check). Returns the upload, or None after saying why it was refused; with
    `accept_multiple_files=True`, the list of uploads within the limit."""
    limit_mb = settings.get().max_upload_mb
    upload = st.file_uploader(label, key=key, max_upload_size=limit_mb, **kwargs)
    if isinstance(upload, list):  # accept_multiple_files=True: keep the files within the limit
        return [one for one in upload if _within_limit(one, limit_mb)]
    return upload if upload is None or _within_limit(upload, limit_mb) else None


def _within_limit(upload, limit_mb: int) -> bool:
    if upload.size <= limit_mb * 1_000_000:
        return True
    user_error(f"{upload.name} is {upload.size / 1e6:.1f} MB; the limit on this server is {limit_mb} MB.")
    return False


# --- downloads ------------------------------------------------------------------------------


def npy_bytes(array: np.ndarray) -> Callable[[], bytes]:
    """Deferred `.npy` bytes for `st.download_button(data=...)`: built only when the user clicks, so a
    151 MB attention tensor is not serialised on every rerun."""
    return lambda: _npy(array)


def _npy(array: np.ndarray) -> bytes:
    """The .npy file of `array` (what np.save writes), built with one copy of the data: np.save into a
    BytesIO and then getvalue() held two copies at the peak, which is why /vision capped its download."""
    from numpy.lib import format as npy

    array = np.ascontiguousarray(array)
    head = io.BytesIO()
    npy.write_array_header_1_0(head, npy.header_data_from_array_1_0(array))  # plain dtypes: always fits v1.0
    return b"".join((head.getvalue(), memoryview(array).cast("B")))


# --- safe text ------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def escape_markdown(text: str) -> str:
    """Backslash-escape everything Streamlit's markdown would interpret (links, images, :colour[] ...)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def code_span(text: str) -> str:
    """`text` as a markdown code span: shown literally (no escapes needed or processed inside), backticks
    replaced since they would end the span early."""
    return "`" + (str(text).replace("`", "ˋ").replace("\n", " ") or " ") + "`"


def user_error(message: str) -> None:
    """Show a user-facing error; the message may contain user text, so it is shown literally."""
    st.error(escape_markdown(message), icon="⚠️")


def user_warning(message: str) -> None:
    st.warning(escape_markdown(message), icon="ℹ️")


# --- the one error path ---------------------------------------------------------------------


@dataclass
class Guarded:
    """What `guard` saw: `failed` is True once the guarded block raised (and the error was shown)."""

    failed: bool = False
    error: Exception | None = None


# An absolute file path in an error text: /a/b, ~/a, C:\a (not a URL's //host/path, not a hub id's org/name).
_PATH = re.compile(r"(?<![\w:/.~-])(?:~|[A-Za-z]:)?[/\\](?:[\w.@+~-]+[/\\])*[\w.@+~-]+")


def hide_paths(text: str) -> str:
    """`text` with every absolute server path replaced by "<server path>" (public mode shows no file layout)."""
    return _PATH.sub("<server path>", text)


def error_message(what: str, err: Exception, context: str | None = None) -> str:
    """The text shown for `err`: a UserFacingError's own message (after "`context`: " when given); for anything
    else, which is a bug or an odd model, "Could not {what}: TypeName: first 200 characters". In public mode,
    server paths in the text are hidden (`hide_paths`)."""
    if isinstance(err, UserFacingError):
        text = f"{context}: {err}" if context else str(err)
    else:
        detail = " ".join(str(err).split())[:200]
        text = f"Could not {what}: {type(err).__name__}" + (f": {detail}" if detail else "")
    return hide_paths(text) if settings.get().public else text


@contextmanager
def guard(what: str, context: str | None = None) -> Iterator[Guarded]:
    """Run a block that may fail on user input; show any error as one escaped box, never a traceback.

    `what` completes "Could not …" (e.g. "load the model"); see `error_message`. The block stops at the
    error, the page goes on after the `with`; check `.failed` to stop it::

        with ui.guard("run the model on this text") as run:
            res = resources.attention(...)
        if run.failed:
            st.stop()

    Streamlit's own control flow (st.stop, reruns) is not an Exception and passes through."""
    outcome = Guarded()
    try:
        yield outcome
    except Exception as err:  # shown to the user in place of a traceback, logged in full for the operator
        outcome.failed, outcome.error = True, err
        if isinstance(err, UserFacingError):
            _log.info("encoderscope: could not %s: %s", what, " ".join(str(err).split())[:300])
        else:
            _log.error("encoderscope: could not %s", what, exc_info=err)
        user_error(error_message(what, err, context))


def clean_text(text: str | None, max_chars: int | None = None) -> tuple[str, list[str]]:
    """Make user text safe to tokenize. Returns (text, notices).

    Removes NUL / control characters (keeping tab and newline) and lone surrogates, then enforces
    `max_chars` (default: settings.max_chars) by truncation. Notices say what was changed.
    """
    limit = settings.get().max_chars if max_chars is None else max_chars
    text = "" if text is None else str(text)
    notices = []
    kept = "".join(
        c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs")
    )
    if len(kept) != len(text):
        notices.append(f"Removed {len(text) - len(kept)} control or invalid characters from the text.")
    if len(kept) > limit:
        notices.append(f"The text has {len(kept):,} characters; only the first {limit:,} are used.")
        kept = kept[:limit]
    return kept, notices


# --- query parameters (shareable URLs) ------------------------------------------------------


def query_str(name: str, default: str = "", max_len: int = 10_000) -> str:
    value = st.query_params.get(name, default)
    return value[:max_len] if isinstance(value, str) else default


def query_int(name: str, default: int, lo: int, hi: int) -> int:
    """An int from the URL, clamped to [lo, hi]. Out-of-range or junk values fall back with a notice."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        user_warning(f"Ignored {name}={str(raw)[:40]} in the URL: it is not a number.")
        return default
    if not lo <= value <= hi:
        clamped = min(max(value, lo), hi)
        user_warning(f"{name}={value} in the URL is out of range {lo}–{hi}; showing {clamped}.")
        return clamped
    return value


URL_TEXT_LIMIT = 2000  # characters of text kept in a shareable link (browsers and proxies cap URL length)


def share_texts(**texts: str) -> None:
    """Write texts into the URL, cut to URL_TEXT_LIMIT, saying so when a link would not restore all of one."""
    sync_query(**{name: text[:URL_TEXT_LIMIT] for name, text in texts.items()})
    if any(len(text) > URL_TEXT_LIMIT for text in texts.values()):
        st.caption(f"The page link keeps only the first {URL_TEXT_LIMIT:,} characters of the text.")


def sync_query(**values) -> None:
    """Write the current view into the URL (only when it changed, to avoid extra reruns)."""
    for key, value in values.items():
        text = "" if value is None else str(value)
        if not text:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != text:
            st.query_params[key] = text


# --- pickers: a select box whose choice lives in the URL, with an optional free-text entry ----------

CUSTOM_MODEL = "Other (hub id or local folder)…"


@dataclass
class Picked:
    """A picker's answer: `value` is the chosen option or the typed text ("" while the box is empty)."""

    value: str
    custom: bool


def url_picker(
    param: str,
    label: str,
    options: list[str],
    custom: tuple[str, str],
    unavailable: Callable[[str, str | None], str],
    refusal: Callable[[str], str | None] = lambda _: None,
    max_chars: int = 300,
    placeholder: str = "",
    **selectbox_kwargs,
) -> Picked:
    """A select box over `options`; `?{param}=` in the URL picks the start value. When the settings allow
    custom models or local paths, `custom` = (option text, label of the free-text box) adds an option that
    opens a free-text box.

    A URL value that is not an option goes into the free-text box when custom input is allowed and
    `refusal(value)` (why the settings refuse it) is None; otherwise `unavailable(value, refusal(value))` is
    shown as a warning and the first option is selected (never a silent switch).
    Widget keys: `{param}_select`, `{param}_custom`."""
    conf = settings.get()
    allow_custom = conf.allow_custom_models or conf.allow_local_paths
    custom_option, custom_label = custom
    choices = [*options, custom_option] if allow_custom else list(options)
    wanted = query_str(param, "", max_chars).strip()
    index = 0
    if wanted in options:
        index = choices.index(wanted)
    elif wanted:
        reason = refusal(wanted)
        if allow_custom and reason is None:
            st.session_state.setdefault(f"{param}_custom", wanted)
            index = choices.index(custom_option)
        else:
            user_warning(unavailable(wanted, reason))
    choice = st.selectbox(label, choices, index=index, key=f"{param}_select", **selectbox_kwargs)
    if choice != custom_option:
        return Picked(choice, custom=False)
    typed = st.text_input(custom_label, key=f"{param}_custom", placeholder=placeholder, max_chars=max_chars)
    return Picked(typed.strip(), custom=True)


def _local_models(kind: str) -> list[str]:
    """Model folders (with config.json) under settings.models_dir, when local paths are allowed."""
    from encoderscope import local_models

    return local_models.find(kind)


def model_picker(kind: str = "encoder", key: str = "model", label: str | None = None) -> tuple[str | None, str | None]:
    """A select box of bundled, curated, local and custom models; the choice lives in the URL (`?model=`).

    Returns (ref, revision): ref None means the bundled model.
    """
    conf = settings.get()
    bundled = models.BUNDLED_ENCODER if kind == "encoder" else models.BUNDLED_DECODER
    curated = models.CURATED_ENCODERS if kind == "encoder" else models.CURATED_DECODERS
    hint = "a hub id such as bert-base-uncased" if conf.allow_custom_models else ""
    if conf.allow_local_paths:
        hint += (" or " if hint else "") + "a local folder"
    picked = url_picker(
        key,
        label or ("Encoder" if kind == "encoder" else "Decoder"),
        [bundled, *curated, *_local_models(kind)],
        (CUSTOM_MODEL, "Model"),
        unavailable=lambda wanted, _reason: f"The model {wanted[:100]!r} from the link is not available on this "
        "server; pick one of the listed models.",
        placeholder=hint,
    )
    revision = None
    if picked.custom:
        revision = st.text_input("Revision (optional)", key=f"{key}_revision", max_chars=100).strip() or None
        if not picked.value:
            st.info(f"Type {hint}.")
            return None, None
    ref = None if picked.value == bundled else picked.value
    sync_query(**{key: ref})
    return ref, revision


def load_model(kind: str, ref: str | None, revision: str | None = None):
    """The cached model, or None after showing a clear error. Never raises for a bad model."""
    loader: Callable = resources.encoder if kind == "encoder" else resources.decoder
    name = ref or (models.BUNDLED_ENCODER if kind == "encoder" else models.BUNDLED_DECODER)
    with guard(f"load {name}"), st.spinner(f"Loading {escape_markdown(name)} …"):
        return loader(ref, revision)
    return None


# --- widgets --------------------------------------------------------------------------------


def index_slider(container, label: str, count: int, key: str, value: int = 0, **kwargs) -> int:
    """A 0-based slider over `count` items (layers, heads). With one item there is nothing to slide
    (st.slider refuses min == max), so it shows the fixed value instead."""
    if count <= 1:
        container.caption(f"{label}: 0 (the only one)")
        return 0
    if key not in st.session_state:
        kwargs["value"] = min(max(value, 0), count - 1)
    return int(container.slider(label, 0, count - 1, key=key, **kwargs))


def view_picker(labels: list[str], key: str) -> str:
    """A page's views as one segmented control (labelled "View" for screen readers and browser tests); returns the
    label shown, the first at the start. Unlike st.tabs, which run every tab's body (and compute its results) on
    each run, the page then draws only the view shown."""
    chosen = st.segmented_control("View", labels, default=labels[0], required=True, key=key,
                                  label_visibility="collapsed", persist_state="page")  # kept through a run that stops early
    return chosen if chosen in labels else labels[0]


def one_view(sections: dict[str, Callable[[], object]], key: str) -> str:
    """`view_picker` over `sections` (label -> the function that draws that view), then only the chosen one runs;
    returns its label. A widget inside a view keeps its value while another view is shown only when it is created
    with `persist_state="page"` (Streamlit forgets widgets that were not drawn)."""
    view = view_picker(list(sections), key)
    sections[view]()
    return view


# --- charts ---------------------------------------------------------------------------------


def plotly(fig, key: str | None = None, filename: str = "encoderscope", **kwargs):
    """st.plotly_chart with the mode bar's camera button exporting in the sidebar-chosen format."""
    fmt = st.session_state.get("image_format", "png")
    config = {
        "displaylogo": False,
        "toImageButtonOptions": {"format": fmt, "filename": filename, "scale": 2 if fmt == "png" else 1},
        "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    }
    return st.plotly_chart(fig, width="stretch", config=config, key=key, **kwargs)
