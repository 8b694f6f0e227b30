"""The colour bar the heatmap and the pair map share (components/renderer_shared/colourbar.js), drawn by each
renderer's own module (the JS its canvas.py registers) under Node onto a context that records every call.

Expected colours are the schemes' end stops, written out here; tick texts and heights by hand."""

from __future__ import annotations

import pytest

from components.compare import canvas as pair_canvas
from components.heatmap import canvas as heat_canvas
from tests.unit.test_heatmap_hover_js import run_js

RECORDER = """
function recorder() {
  const calls = [];
  const state = {};
  const ctx = new Proxy(state, {
    get: (t, k) => (k in t ? t[k] : (...a) => calls.push({ call: k, args: a, fill: t.fillStyle, align: t.textAlign,
                                                           base: t.textBaseline, font: t.font })),
    set: (t, k, v) => ((t[k] = v), true),
  });
  return { ctx, calls, state };
}
function summary(r) {
  const bars = r.calls.filter((c) => c.call === "fillRect");
  return { top: bars[0], bottom: bars[bars.length - 1], n: bars.length, frame: r.calls.find((c) => c.call === "strokeRect"),
           texts: r.calls.filter((c) => c.call === "fillText"), align: r.state.textAlign };
}
"""


def _texts(drawn: dict) -> list[tuple[str, float, float, str]]:
    return [(t["args"][0], t["args"][1], t["args"][2], t["base"]) for t in drawn["texts"]]


def test_heatmap_colour_bar_runs_from_zmax_to_zmin():
    # Bugs: the bar upside down (zmin's colour at the top), ticks that do not match their height, the legend
    # title lost or drawn over the ticks.
    out = run_js(RECORDER + """
const r = recorder();
legend(r.ctx, { legendX: 100, y0: 10, ph: 100 }, { zmin: -1, zmax: 3, legend: "weight" }, lut("blues"));
out.drawn = summary(r);
""")
    drawn = out["drawn"]
    assert drawn["n"] == 100 and drawn["top"]["args"] == [100, 10, 12, 1.5] and drawn["bottom"]["args"][1] == 109
    assert drawn["top"]["fill"] == "rgb(8,48,107)" and drawn["bottom"]["fill"] == "rgb(247,251,255)"  # blues' ends
    assert drawn["frame"]["args"] == [99.5, 9.5, 13, 101]
    ticks = [(f"{v:.3f}", 116, 10 + 25 * t, "middle") for t, v in enumerate([3, 2, 1, 0, -1])]
    assert _texts(drawn) == [*ticks, ("weight", 98, 118, "top")]
    assert {t["font"] for t in drawn["texts"]} == {"11px sans-serif"} and drawn["align"] == "start"


@pytest.mark.parametrize("legend", ["overlap", None])
def test_pair_map_colour_bar_runs_from_one_to_zero(legend):
    out = run_js(RECORDER + f"""
const r = recorder();
legend(r.ctx, {{ legendX: 500, panels: [{{ top: 22 }}], side: 300 }}, {{ legend: {'"overlap"' if legend else 'null'} }});
out.drawn = summary(r);
""", module=pair_canvas._JS)
    drawn = out["drawn"]
    assert drawn["n"] == 200 and drawn["top"]["args"] == [500, 22, 12, 1.5]  # capped at 200 px
    assert drawn["top"]["fill"] == "rgb(69,117,180)" and drawn["bottom"]["fill"] == "rgb(215,48,39)"  # 1 blue, 0 red
    ticks = [("1.0", 516, 22, "middle"), ("0.5", 516, 122, "middle"), ("0.0", 516, 222, "middle")]
    assert _texts(drawn) == ticks + ([("overlap", 496, 228, "top")] if legend else [])
    assert {t["font"] for t in drawn["texts"]} == {"12px sans-serif"}


def test_both_renderers_use_the_one_shared_colour_bar_and_canvas_sizing():
    # Bug: a renderer module that lost the shared file (the component would throw on its first draw), or a copy
    # of the colour bar creeping back into a renderer.
    for module in (heat_canvas._JS, pair_canvas._JS):
        for shared in ("function colourBar(", "function sizeCanvas("):
            assert module.count(shared) == 1
            assert module.index(shared) < module.index("export default function")
