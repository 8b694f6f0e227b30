// Encoderscope canvas renderers: the colour bar (legend) the heatmap and the pair map both draw. Plain JS, no
// state; components/renderer_shared/__init__.py puts it in front of each renderer's own JS (one module per
// component: components v2 takes the module inline, and nothing is bundled or built).

// A vertical colour bar, 12 px wide and `h` px tall, its top left corner at (x, y). rgbAt(f) -> [r, g, b] is the
// colour at f in [0, 1] (f = 1 at the top); ticks: [[f, text], ...] drawn right of the bar at height f; label:
// drawn under the bar at (x + labelDx, y + h + labelDy), none when empty. Leaves textAlign at "start".
function colourBar(ctx, { x, y, h, rgbAt, ticks, label, font, labelDx, labelDy }) {
  const w = 12;
  for (let k = 0; k < h; k++) {
    const c = rgbAt(1 - k / (h - 1));
    ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
    ctx.fillRect(x, y + k, w, 1.5);
  }
  ctx.strokeStyle = "#999";
  ctx.strokeRect(x - 0.5, y - 0.5, w + 1, h + 1);
  ctx.fillStyle = "#31333f";
  ctx.font = font;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (const [f, text] of ticks) ctx.fillText(text, x + w + 4, y + (1 - f) * h);
  if (label) {
    ctx.textBaseline = "top";
    ctx.fillText(label, x + labelDx, y + h + labelDy);
  }
  ctx.textAlign = "start";
}
