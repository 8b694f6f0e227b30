"""JavaScript the canvas renderers share: `colourbar.js` (the colour bar of the heatmap and the pair map) and
`canvas.js` (`sizeCanvas`: a canvas sized for the screen's pixel ratio).

Components v2 takes each component's JS as one inline ES module and nothing is bundled, so a renderer's module
is the shared files followed by its own, concatenated here (functions only: no name is defined twice).
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent
SHARED = ("colourbar.js", "canvas.js")


def module(*files: Path) -> str:
    """The source of one renderer module: the shared JS, then `files` (the renderer's own, in order)."""
    return "\n".join(p.read_text(encoding="utf-8") for p in (*(_HERE / name for name in SHARED), *files))
