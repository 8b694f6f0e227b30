"""`import encoderscope` stays light: no torch until a model is used (notebooks, the CLI's --help, the figures)."""

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return set(out.split())


def test_package_figures_and_tokens_import_no_torch():
    loaded = _modules_after(
        "import encoderscope, encoderscope.figures, encoderscope.tokens, encoderscope.settings, encoderscope.errors\n"
        "import encoderscope.figures.attention, encoderscope.figures.masks, encoderscope.figures.vae\n"
        "import encoderscope.figures.vision, encoderscope.figures.embeddings, encoderscope.images"
    )
    assert "encoderscope.tokens" in loaded  # the probe really ran the imports
    assert "torch" not in loaded and "transformers" not in loaded


def test_public_attention_name_is_the_function():
    """`es.attention` is the function, whatever was imported before (the module is `attention_maps`)."""
    loaded = _modules_after(
        "import encoderscope as es\n"
        "from encoderscope import attention_maps\n"
        "assert es.attention is attention_maps.attention, es.attention"
    )
    assert "torch" in loaded  # using the attention code does load torch


def test_every_public_name_resolves():
    # Bug caught: an _API entry naming the wrong module (README documents es.<name> that raises AttributeError).
    import encoderscope as es

    missing = [name for name in es.__all__ if not hasattr(es, name)]
    assert not missing, missing
    assert callable(es.attention) and callable(es.image_attention) and callable(es.atlas.search)
