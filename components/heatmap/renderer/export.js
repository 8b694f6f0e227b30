// Encoderscope heatmap: exports of what a map draws (PNG of the canvas; SVG with the cells as an embedded
// one-pixel-per-cell image and vector labels, divider, outline and legend). Concatenated before heatmap.js by
// components/heatmap/canvas.py, whose layout (`st.L`), `trim`, `step`, `legendTicks`, `fill` and `title` it uses.

// --- export ----------------------------------------------------------------------------------------
function save(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => {
    URL.revokeObjectURL(a.href);
    a.remove();
  }, 1000);
}

function fileName(st) {
  return fill(st.header.filename || "heatmap", { view: st.view || "" });
}

function exportPng(st) {
  st.canvas.toBlob((b) => save(b, fileName(st) + ".png"), "image/png");
}

function esc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

// SVG of what is drawn: the cells as an embedded image at one pixel per cell (crisp when scaled), labels,
// divider, outline and legend as vector shapes.
function exportSvg(st) {
  const L = st.L, h = st.header;
  if (!st.cells) return;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${L.W}" height="${L.H}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`];
  if (h.title) parts.push(`<text x="2" y="14" font-weight="bold" font-size="13">${esc(title(st))}</text>`);
  parts.push(`<image x="${L.x0}" y="${L.y0}" width="${L.pw}" height="${L.ph}" preserveAspectRatio="none" ` +
    `style="image-rendering:pixelated" href="${st.cells.toDataURL("image/png")}"/>`);
  for (let i = 0; i < L.R; i += step(L.ch)) {
    parts.push(`<text x="${L.x0 - 4}" y="${L.y0 + (i + 0.5) * L.ch + 4}" text-anchor="end">${esc(trim(L.rows[i], 22))}</text>`);
  }
  if (h.col_labels !== false) {
    for (let j = 0; j < L.C; j += step(L.cw)) {
      const x = L.x0 + (j + 0.5) * L.cw + 4, y = L.y0 - 4;
      parts.push(`<text transform="translate(${x},${y}) rotate(-90)">${esc(trim(L.cols[j], 22))}</text>`);
    }
  }
  if (h.divider !== null && h.divider !== undefined) {
    const x = L.x0 + h.divider * L.cw, y = L.y0 + h.divider * L.ch;
    parts.push(`<path d="M${x},${L.y0}V${L.y0 + L.ph}M${L.x0},${y}H${L.x0 + L.pw}" stroke="#dc2626" stroke-dasharray="4 3" stroke-width="1.5"/>`);
  }
  if (h.outline_col !== null && h.outline_col !== undefined) {
    parts.push(`<rect x="${L.x0 + h.outline_col * L.cw}" y="${L.y0}" width="${L.cw}" height="${L.ph}" fill="none" stroke="#dc2626" stroke-width="2"/>`);
  }
  const stops = [];
  for (let t = 0; t <= 8; t++) {
    const q = Math.round(255 * (1 - t / 8));
    stops.push(`<stop offset="${t / 8}" stop-color="rgb(${st.lut[3 * q]},${st.lut[3 * q + 1]},${st.lut[3 * q + 2]})"/>`);
  }
  const hgt = Math.min(L.ph, 260);
  parts.push(`<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1">${stops.join("")}</linearGradient></defs>`,
    `<rect x="${L.legendX}" y="${L.y0}" width="12" height="${hgt}" fill="url(#g)" stroke="#999"/>`);
  for (const [f, text] of legendTicks(h)) {
    parts.push(`<text x="${L.legendX + 16}" y="${L.y0 + (1 - f) * hgt + 4}">${text}</text>`);
  }
  parts.push("</svg>");
  save(new Blob([parts.join("\n")], { type: "image/svg+xml" }), fileName(st) + ".svg");
}
