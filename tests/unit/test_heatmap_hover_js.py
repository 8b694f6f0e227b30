"""Issue 24 §6: the heatmap's hover text, title and file name with token labels that look like patterns.

Runs the renderer's own JavaScript (the module components/heatmap/canvas.py registers) under Node, calling its
`hover` with a mouse event over a chosen cell and reading the tooltip text it sets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from components.heatmap import canvas

NODE = shutil.which("node")
if NODE is None and os.environ.get("REQUIRE_BROWSER") == "1":  # CI: a missing Node fails instead of skipping
    raise RuntimeError("node is needed to run the heatmap renderer's JavaScript (tests/unit/test_heatmap_hover_js.py)")


def run_js(calls: str, module: str | None = None) -> dict:
    """Evaluate a renderer module (default: the heatmap's) followed by `calls` (which assigns `out`) under Node;
    returns `out`."""
    if NODE is None:
        pytest.skip("node is not installed")
    source = (module or canvas._JS) + "\nconst out = {};\n" + calls + "\nconsole.log(JSON.stringify(out));\n"
    done = subprocess.run([NODE, "--input-type=module", "-"], input=source, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# A 2 x 2 map of 10 px cells, exact values (hi/lo bytes) 0, 1/3, 2/3, 1.
STATE = """
const hi = new Uint8Array([0, 85, 170, 255]), lo = new Uint8Array([0, 85, 170, 255]);
function state(rows, cols, hover) {
  return {
    header: { mode: "matrix", hover, zmin: 0, zmax: 1, id: "t", title: "Attention, {view}", filename: "map_{view}" },
    L: { x0: 0, y0: 0, cw: 10, ch: 10, R: 2, C: 2, W: 500, rows, cols },
    canvas: { getBoundingClientRect: () => ({ left: 0, top: 0 }) },
    blocks: { "hi:0": hi, "lo:0": lo }, view: 0, root: {}, tip: { style: {} },
  };
}
function over(st, i, j) { hover(st, { clientX: 10 * j + 5, clientY: 10 * i + 5 }); return st.tip.textContent; }
"""

LABELS = ["$&", "{col}", "$`x", "$'$$", "{value}", "a{row}b"]


@pytest.mark.parametrize("template", [None, "from {row} → to {col}: {value}", "{col} in {row}: {value}"])
def test_hover_shows_labels_as_written(template):
    # Bug: String.replace with string arguments: "$&" became the placeholder, "$`" / "$'" the text around it,
    # "$$" one "$", and a label "{col}" took the column's value in a chain of replaces.
    cases = [(r, c, i, j) for i, r in enumerate(LABELS[:2]) for j, c in enumerate(LABELS[2:4])]
    cases += [(LABELS[4], LABELS[5], 0, 1), (LABELS[1], LABELS[4], 1, 0)]
    calls = [
        f"out[{n}] = over(state({json.dumps([r, r] if i == 0 else ['?', r])}, "
        f"{json.dumps([c, c] if j == 0 else ['?', c])}, {json.dumps(template)}), {i}, {j});"
        for n, (r, c, i, j) in enumerate(cases)
    ]
    out = run_js(STATE + "\n".join(calls))
    values = ["0.0000", "0.3333", "0.6667", "1.0000"]
    for n, (r, c, i, j) in enumerate(cases):
        expected = (template or "{row} → {col}: {value}").format_map(
            {"row": f"{i}: {r}", "col": f"{j}: {c}", "value": values[2 * i + j]}
        )
        assert out[str(n)] == expected


def test_title_and_file_name_fill_only_their_placeholder():
    out = run_js(STATE + """
const st = state(["a", "b"], ["c", "d"], null);
st.header.title = "Heads of $& {view} {other}";
st.header.filename = "x_{view}";
st.view = "mean"; out.mean = title(st); out.file = fileName(st);
st.view = 3; out.head = title(st);
""")
    assert out == {"mean": "Heads of $& mean over heads {other}", "head": "Heads of $& head 3 {other}",
                   "file": "x_mean"}
