// Encoderscope heatmap: a token × token (or any rows × columns) map drawn on a <canvas> from a binary payload.
// Plain JS, no dependencies, nothing fetched from the network. Mounted by components/heatmap/canvas.py
// (Streamlit custom components v2). Payload format: components/heatmap/payload.py.
// `colourBar` and `sizeCanvas` come from components/renderer_shared/, concatenated in front (the pair map shares them).
//
// Modes: "matrix" (one map; optional view buttons that switch heads in the browser), "store" (extra blocks
// for a matrix, sent after it: the low bytes and the other heads; kept in window.__esHeatStore by id) and
// "grid" (a layers × heads mosaic of thumbnails; a click reports "L:H").
//
// Test surface, set after every draw: the root element gets data-es-heatmap="<tag>" (the main map: "LAYER:HEAD",
// HEAD "mean" for the mean), data-es-exact="1" once the exact low bytes are in, and a property
// __esHeatmap = {tag, id (the data's id), t (ms since navigation start), rows, cols, values: Float32Array [R * C]
// (what each colour stands for, NaN = filtered), exact}. window.__esHeatmaps: every root element (they live in
// shadow roots, out of document.querySelector's reach); window.__esHeatmapDrawn: the latest draw {tag, id, t}.

const SCHEMES = {
  blues: ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"],
  purples: ["#fcfbfd", "#efedf5", "#dadaeb", "#bcbddc", "#9e9ac8", "#807dba", "#6a51a3", "#54278f", "#3f007d"],
  rdbu: ["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"],
  viridis: ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"],
};
const GREY = [226, 228, 233];
const FONT = "11px sans-serif";

function hexRgb(h) {
  return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
}

// 256 colours [r, g, b] interpolated along the scheme's stops.
function lut(name) {
  const stops = (SCHEMES[name] || SCHEMES.blues).map(hexRgb);
  const out = new Uint8Array(256 * 3);
  for (let k = 0; k < 256; k++) {
    const x = (k / 255) * (stops.length - 1), i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
    for (let c = 0; c < 3; c++) out[3 * k + c] = Math.round(stops[i][c] * (1 - f) + stops[i + 1][c] * f);
  }
  return out;
}

function unpack(bytes) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const n = dv.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(u8.subarray(8, 8 + n)));
  const base = 8 + n, blocks = {};
  for (const [name, [off, size]] of Object.entries(header.blocks || {})) {
    blocks[name] = u8.subarray(base + off, base + off + size);
  }
  return { header, blocks };
}

// --- the store: blocks that arrive after the map they belong to ---------------------------------------
function store() {
  if (!window.__esHeatStore) window.__esHeatStore = new Map();
  return window.__esHeatStore;
}

function storePut(id, blocks) {
  const s = store();
  s.delete(id);
  s.set(id, blocks);
  while (s.size > 4) s.delete(s.keys().next().value); // a few layers at most: 7 MB each at 512 tokens
  window.dispatchEvent(new CustomEvent("es-heatmap-store", { detail: id }));
}

function block(st, kind, view) {
  const name = `${kind}:${view}`;
  if (st.blocks[name]) return st.blocks[name];
  const extra = store().get(st.header.id);
  return extra ? extra[name] || null : null;
}

// --- DOM -------------------------------------------------------------------------------------------
function build(root) {
  const wrap = document.createElement("div");
  wrap.className = "esh-wrap";
  wrap.innerHTML = `
    <div class="esh-tools"><span class="esh-label"></span><span class="esh-views"></span>
      <span class="esh-spacer"></span>
      <button data-act="png" title="Download what is drawn as PNG">PNG</button>
      <button data-act="svg" title="Download what is drawn as SVG">SVG</button></div>
    <div class="esh-stage"><canvas></canvas><div class="esh-tip"></div></div>`;
  root.appendChild(wrap);
  return wrap;
}

// `host` is the component's shadow root (a ShadowRoot, not an Element); the wrapper div is the root element
// that carries the test attributes.
function init(host) {
  const wrap = build(host);
  const st = { root: wrap, wrap, pending: null };
  (window.__esHeatmaps || (window.__esHeatmaps = new Set())).add(wrap); // for tests: roots in shadow DOMs
  st.canvas = st.wrap.querySelector("canvas");
  st.tip = st.wrap.querySelector(".esh-tip");
  st.tools = st.wrap.querySelector(".esh-tools");
  st.wrap.querySelector("[data-act=png]").onclick = () => exportPng(st);
  st.wrap.querySelector("[data-act=svg]").onclick = () => exportSvg(st);
  st.canvas.addEventListener("mousemove", (e) => hover(st, e));
  st.canvas.addEventListener("mouseleave", () => (st.tip.style.display = "none"));
  st.canvas.addEventListener("click", (e) => click(st, e));
  window.addEventListener("es-heatmap-store", (e) => {
    if (st.header && st.header.mode === "matrix" && e.detail === st.header.id) draw(st);
  });
  // The grid outlines the head the main map shows, wherever that changed (browser or server): its own payload
  // stays the same bytes, which Streamlit does not send again.
  window.addEventListener("es-heatmap-main", () => {
    if (st.header && st.header.mode === "grid") draw(st);
  });
  new ResizeObserver(() => {
    const w = st.root.clientWidth;
    if (w && w !== st.width) draw(st);
  }).observe(wrap);
  return st;
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  if (!data) return;
  const { header, blocks } = unpack(data);
  if (header.mode === "store") {
    storePut(header.id, blocks);
    return;
  }
  const st = parentElement.__esh || (parentElement.__esh = init(parentElement));
  st.setTriggerValue = setTriggerValue;
  const sameData = st.header && st.header.id === header.id;
  if (!sameData || st.pending === null || st.pending === header.view) st.pending = null;
  st.header = header;
  st.blocks = blocks;
  st.view = st.pending !== null ? st.pending : header.view;
  st.lut = lut(header.scheme);
  toolbar(st);
  draw(st);
}

function toolbar(st) {
  const h = st.header;
  st.tools.querySelector(".esh-label").textContent = h.views ? h.views_label || "Head:" : "";
  const box = st.tools.querySelector(".esh-views");
  const key = JSON.stringify(h.views || []);
  if (box.dataset.key !== key) {
    box.dataset.key = key;
    box.textContent = "";
    for (const v of h.views || []) {
      const b = document.createElement("button");
      b.textContent = v;
      b.dataset.view = v;
      b.title = v === "mean" ? "Mean over the layer's heads" : `Head ${v}`;
      b.onclick = () => selectView(st, v);
      box.appendChild(b);
    }
  }
  box.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.view === st.view));
  st.tools.querySelector("[data-act=svg]").classList.toggle("esh-hidden", h.mode === "grid");
}

// A head change in the browser: draw from the blocks already here, write the URL, then tell the server.
function selectView(st, v) {
  if (v === st.view) return;
  if (!block(st, "hi", v)) {
    st.setTriggerValue("view", v); // not here (yet): the server sends that head as the first payload
    return;
  }
  st.view = v;
  st.pending = v;
  toolbar(st);
  draw(st);
  if (st.header.url_param) {
    const url = new URL(window.location.href);
    url.searchParams.set(st.header.url_param, v);
    window.history.replaceState(window.history.state, "", url);
  }
  st.setTriggerValue("view", v);
}

// --- layout ----------------------------------------------------------------------------------------
function trim(s, n) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function layout(st) {
  const h = st.header, ctx = st.canvas.getContext("2d");
  ctx.font = FONT;
  const W = Math.max(200, st.root.clientWidth || 600);
  if (h.mode === "grid") {
    const cols = h.heads + 1, gap = 4;
    const cell = Math.max(14, Math.min(56, Math.floor((W - 60) / cols) - gap));
    const x0 = 48, y0 = 34;
    return { W, H: y0 + h.layers * (cell + gap) + 10, x0, y0, cell, gap, cols };
  }
  const rows = h.rows, cols = h.cols || h.rows, R = rows.length, C = cols.length;
  const width = (labels) => Math.min(150, 8 + Math.max(0, ...labels.map((t) => ctx.measureText(trim(t, 22)).width)));
  const left = width(rows), top = h.col_labels === false ? 8 : width(cols) + 4;
  const legend = 70, titleH = h.title ? 22 : 4;
  const avail = W - left - legend - 8;
  let pw, ph;
  if (h.aspect === "square") {
    pw = ph = Math.max(120, Math.min(avail, h.max_px || 760, Math.max(320, 36 * R)));
  } else {
    pw = Math.max(120, Math.min(avail, (h.col_px || 1e9) * C));
    ph = Math.max(80, Math.min(h.max_px || 700, (h.row_px || 18) * R));
  }
  const x0 = left, y0 = titleH + top;
  return { W, H: y0 + ph + (h.legend && ph < 290 ? 30 : 10), x0, y0, pw, ph, R, C, cw: pw / C, ch: ph / R, rows, cols, legendX: x0 + pw + 16 };
}

function step(cellPx) {
  return Math.max(1, Math.ceil(13 / cellPx)); // 13 px per label: labels never overlap
}

// --- drawing ---------------------------------------------------------------------------------------
function draw(st) {
  if (!st.header) return;
  const dpr = window.devicePixelRatio || 1;
  const L = (st.L = layout(st));
  st.width = st.root.clientWidth;
  const ctx = sizeCanvas(st.canvas, L, dpr);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, L.W, L.H);
  if (st.header.mode === "grid") drawGrid(st, ctx, L);
  else drawMatrix(st, ctx, L);
}

function keepFn(h) {
  if (!h.keep || !h.seq) return null;
  const [src, dst] = h.keep === "A→B" ? [0, 1] : [1, 0];
  return (i, j) => h.seq[i] === src && h.seq[j] === dst;
}

function cellImage(st, hi) {
  const h = st.header, R = st.L.R, C = st.L.C, keep = keepFn(h), pal = st.lut;
  const img = new ImageData(C, R);
  const px = img.data;
  const values = new Float32Array(R * C);
  const span = h.zmax - h.zmin;
  for (let i = 0; i < R; i++) {
    for (let j = 0; j < C; j++) {
      const k = i * C + j, q = hi[k];
      px[4 * k + 3] = 255;
      if (keep && !keep(i, j)) {
        px[4 * k] = GREY[0];
        px[4 * k + 1] = GREY[1];
        px[4 * k + 2] = GREY[2];
        values[k] = NaN;
        continue;
      }
      px[4 * k] = pal[3 * q];
      px[4 * k + 1] = pal[3 * q + 1];
      px[4 * k + 2] = pal[3 * q + 2];
      values[k] = h.zmin + ((q * 256 + 128) / 65535) * span;
    }
  }
  return { img, values };
}

function drawMatrix(st, ctx, L) {
  const h = st.header, hi = block(st, "hi", st.view);
  if (!hi) return;
  const { img, values } = cellImage(st, hi);
  const off = document.createElement("canvas");
  off.width = L.C;
  off.height = L.R;
  off.getContext("2d").putImageData(img, 0, 0);
  st.cells = off;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, L.x0, L.y0, L.pw, L.ph);
  ctx.strokeStyle = "#c7c9d1";
  ctx.lineWidth = 1;
  ctx.strokeRect(L.x0 - 0.5, L.y0 - 0.5, L.pw + 1, L.ph + 1);
  labels(ctx, L, h);
  if (h.divider !== null && h.divider !== undefined) {
    ctx.save();
    ctx.strokeStyle = "#dc2626";
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    const x = L.x0 + h.divider * L.cw, y = L.y0 + h.divider * L.ch;
    ctx.moveTo(x, L.y0);
    ctx.lineTo(x, L.y0 + L.ph);
    ctx.moveTo(L.x0, y);
    ctx.lineTo(L.x0 + L.pw, y);
    ctx.stroke();
    ctx.restore();
  }
  if (h.outline_col !== null && h.outline_col !== undefined) {
    ctx.strokeStyle = "#dc2626";
    ctx.lineWidth = 2;
    ctx.strokeRect(L.x0 + h.outline_col * L.cw, L.y0, L.cw, L.ph);
  }
  legend(ctx, L, h, st.lut);
  if (h.title) {
    ctx.fillStyle = "#262730";
    ctx.font = "bold 13px sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(title(st), 2, 2);
  }
  const tag = (h.tag_prefix || "") + st.view;
  const exact = !!block(st, "lo", st.view);
  const t = performance.now();
  const geometry = { x0: L.x0, y0: L.y0, cw: L.cw, ch: L.ch, rowStep: step(L.ch), colStep: step(L.cw) };
  st.root.__esHeatmap = { tag, id: h.id, t, rows: L.R, cols: L.C, values, exact, geometry };
  st.root.dataset.esHeatmap = tag;
  st.root.dataset.esExact = exact ? "1" : "0";
  st.root.dataset.esDraws = String(Number(st.root.dataset.esDraws || 0) + 1);
  window.__esHeatmapDrawn = { tag, id: h.id, t };
  if (h.views && window.__esMainTag !== tag) {
    window.__esMainTag = tag;
    window.dispatchEvent(new CustomEvent("es-heatmap-main", { detail: tag }));
  }
}

function title(st) {
  const h = st.header;
  return fill(h.title, { view: st.view === "mean" ? "mean over heads" : `head ${st.view}` });
}

// `template` with each {name} of `values` filled in, in one pass: a value is never read as a pattern, so a
// token label "$&" or "{col}" (user text) shows as itself. String.replace with a string would expand $&, $`,
// $' and $$, and a chain of replaces would fill a placeholder that an earlier label brought in.
function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (m, name) => (Object.hasOwn(values, name) ? String(values[name]) : m));
}

function labels(ctx, L, h) {
  ctx.font = FONT;
  ctx.fillStyle = "#31333f";
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  const sy = step(L.ch);
  for (let i = 0; i < L.R; i += sy) ctx.fillText(trim(L.rows[i], 22), L.x0 - 4, L.y0 + (i + 0.5) * L.ch);
  if (h.col_labels === false) return;
  const sx = step(L.cw);
  ctx.textAlign = "left";
  for (let j = 0; j < L.C; j += sx) {
    ctx.save();
    ctx.translate(L.x0 + (j + 0.5) * L.cw, L.y0 - 4);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(trim(L.cols[j], 22), 0, 0);
    ctx.restore();
  }
}

function fmt(v) {
  const a = Math.abs(v);
  return a !== 0 && (a < 0.01 || a >= 1000) ? v.toExponential(2) : v.toFixed(a >= 10 ? 1 : 3);
}

// The colour bar's five ticks, zmax at the top: [[f, text]] with f = 1 at the top (the canvas and the SVG export).
function legendTicks(h) {
  return [0, 1, 2, 3, 4].map((t) => [1 - t / 4, fmt(h.zmax - (t / 4) * (h.zmax - h.zmin))]);
}

// The colour bar right of the map, the legend title under it.
function legend(ctx, L, h, pal) {
  const rgbAt = (f) => {
    const q = Math.round(255 * f);
    return [pal[3 * q], pal[3 * q + 1], pal[3 * q + 2]];
  };
  colourBar(ctx, { x: L.legendX, y: L.y0, h: Math.min(L.ph, 260), rgbAt, ticks: legendTicks(h), label: h.legend,
    font: FONT, labelDx: -2, labelDy: 8 });
}

function drawGrid(st, ctx, L) {
  const h = st.header, g = st.blocks["hi:grid"], s = h.side, pal = st.lut;
  ctx.font = FONT;
  ctx.fillStyle = "#31333f";
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText("head", L.x0 + (L.cols * (L.cell + L.gap)) / 2, 12);
  for (let c = 0; c < L.cols; c++) ctx.fillText(c === h.heads ? "mean" : String(c), L.x0 + c * (L.cell + L.gap) + L.cell / 2, L.y0 - 4);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let l = 0; l < h.layers; l++) ctx.fillText(String(l), L.x0 - 8, L.y0 + l * (L.cell + L.gap) + L.cell / 2);
  ctx.save();
  ctx.translate(12, L.y0 + (h.layers * (L.cell + L.gap)) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText("layer", 0, 0);
  ctx.restore();
  const off = document.createElement("canvas");
  off.width = s;
  off.height = s;
  const octx = off.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  for (let l = 0; l < h.layers; l++) {
    for (let c = 0; c < L.cols; c++) {
      const img = new ImageData(s, s), base = (l * L.cols + c) * s * s;
      for (let k = 0; k < s * s; k++) {
        const q = g[base + k];
        img.data[4 * k] = pal[3 * q];
        img.data[4 * k + 1] = pal[3 * q + 1];
        img.data[4 * k + 2] = pal[3 * q + 2];
        img.data[4 * k + 3] = 255;
      }
      octx.putImageData(img, 0, 0);
      const x = L.x0 + c * (L.cell + L.gap), y = L.y0 + l * (L.cell + L.gap);
      ctx.drawImage(off, x, y, L.cell, L.cell);
      const cur = window.__esMainTag === `${l}:${c === h.heads ? "mean" : c}`;
      ctx.strokeStyle = cur ? "#dc2626" : "#d0d3da";
      ctx.lineWidth = cur ? 2 : 1;
      ctx.strokeRect(x - 0.5, y - 0.5, L.cell + 1, L.cell + 1);
    }
  }
  st.root.dataset.esGrid = `${h.layers}x${L.cols}`;
  st.root.__esGrid = { x0: L.x0, y0: L.y0, cell: L.cell, gap: L.gap }; // CSS px in the canvas, for tests
}

// --- interaction -----------------------------------------------------------------------------------
function cellAt(st, e) {
  const L = st.L, r = st.canvas.getBoundingClientRect();
  const x = e.clientX - r.left, y = e.clientY - r.top;
  if (st.header.mode === "grid") {
    const c = Math.floor((x - L.x0) / (L.cell + L.gap)), l = Math.floor((y - L.y0) / (L.cell + L.gap));
    if (c < 0 || l < 0 || c >= L.cols || l >= st.header.layers) return null;
    return { x, y, l, c };
  }
  const j = Math.floor((x - L.x0) / L.cw), i = Math.floor((y - L.y0) / L.ch);
  if (i < 0 || j < 0 || i >= L.R || j >= L.C) return null;
  return { x, y, i, j };
}

function exactValue(st, i, j) {
  const h = st.header, k = i * st.L.C + j, hi = block(st, "hi", st.view), lo = block(st, "lo", st.view);
  if (!lo) return null;
  return h.zmin + ((hi[k] * 256 + lo[k]) / 65535) * (h.zmax - h.zmin);
}

function hover(st, e) {
  const p = cellAt(st, e);
  if (!p) {
    st.tip.style.display = "none";
    return;
  }
  let text;
  const h = st.header;
  if (h.mode === "grid") {
    text = `layer ${p.l}, ${p.c === h.heads ? "mean over heads" : "head " + p.c}\nclick to focus`;
  } else {
    const keep = keepFn(h);
    const v = exactValue(st, p.i, p.j);
    const shown = keep && !keep(p.i, p.j) ? "filtered out"
      : v === null ? "≈ " + st.root.__esHeatmap.values[p.i * st.L.C + p.j].toFixed(3) : v.toFixed(4);
    text = fill(h.hover || "{row} → {col}: {value}",
      { row: `${p.i}: ${st.L.rows[p.i]}`, col: `${p.j}: ${st.L.cols[p.j]}`, value: shown });
  }
  st.tip.textContent = text; // text, never HTML: tokens are user input
  st.tip.style.display = "block";
  st.tip.style.left = Math.min(p.x + 14, st.L.W - 220) + "px";
  st.tip.style.top = p.y + 14 + "px";
}

function click(st, e) {
  const p = cellAt(st, e), h = st.header;
  if (!p || !st.setTriggerValue) return;
  if (h.mode === "grid") st.setTriggerValue("clicked", `${p.l}:${p.c === h.heads ? "mean" : p.c}`);
  else if (h.click_rows) st.setTriggerValue("row", p.i);
}
