// Encoderscope canvas renderers: sizing a <canvas> for the screen, shared by the heatmap and the pair map (see
// colourbar.js for how the shared files join each renderer's module).

// Give canvas `c` the layout's CSS size (L.W × L.H px) backed by dpr× as many pixels, so it is sharp on any
// screen; returns its 2-D context, scaled so that drawing is in CSS pixels.
function sizeCanvas(c, L, dpr) {
  c.width = Math.round(L.W * dpr);
  c.height = Math.round(L.H * dpr);
  c.style.width = L.W + "px";
  c.style.height = L.H + "px";
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}
