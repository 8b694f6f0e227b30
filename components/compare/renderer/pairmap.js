// Encoderscope pair map: the same points under two models, drawn side by side on one <canvas> (panel A: model a's
// layout; panel B: model b's layout aligned onto a's), coloured by a per-point value in [0, 1] (neighbour overlap).
// Linked: hovering a point rings it in both panels; a click reports its index (state "clicked") and the server
// sends `selected` with its neighbours under each model, ringed in their own panel.
// Plain JS, no dependencies, nothing from the network. Mounted by components/compare/canvas.py (components v2);
// payload built by components/compare/payloads.py.
// `colourBar` and `sizeCanvas` come from components/renderer_shared/, concatenated in front (the heatmap shares them).
//
// Test surface, set after every draw: the root element gets data-es-pairmap="<tag>", data-es-colour-by="<what>",
// data-es-hover="<index>" (or ""), data-es-selected="<index>" (or ""), data-es-draws; and a property
// __esPairmap = {tag, version (the data's content hash), n, values: Float32Array [N], hover, selected, rings: [{panel: "a" | "b", index, colour}] (every
// ring drawn over the points), at(i) -> {a: [x, y], b: [x, y]} (CSS px in the canvas)}. window.__esPairmaps: every root element (they live in shadow roots).

const STOPS = [[215, 48, 39], [252, 141, 89], [254, 224, 144], [145, 191, 219], [69, 117, 180]]; // 0 red … 1 blue
const FONT = "12px sans-serif";

function colour(v) {
  const x = Math.min(Math.max(v, 0), 1) * (STOPS.length - 1), i = Math.min(Math.floor(x), STOPS.length - 2), f = x - i;
  return STOPS[i].map((c, k) => Math.round(c * (1 - f) + STOPS[i + 1][k] * f));
}

function decode(b64, Type) {
  const bin = atob(b64), u8 = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
  return new Type(u8.buffer);
}

function build(root) {
  const wrap = document.createElement("div");
  wrap.className = "espm-wrap";
  wrap.innerHTML = `
    <div class="espm-tools"><span class="espm-note"></span><span class="espm-spacer"></span>
      <button data-act="png" title="Download both maps as PNG">PNG</button></div>
    <div class="espm-stage"><canvas class="espm-base"></canvas><canvas class="espm-over"></canvas>
      <div class="espm-tip"></div></div>`;
  root.appendChild(wrap);
  return wrap;
}

function init(host) {
  const wrap = build(host);
  const st = { root: wrap, hover: null, key: null };
  (window.__esPairmaps || (window.__esPairmaps = new Set())).add(wrap);
  st.base = wrap.querySelector(".espm-base");
  st.over = wrap.querySelector(".espm-over");
  st.stage = wrap.querySelector(".espm-stage");
  st.tip = wrap.querySelector(".espm-tip");
  st.note = wrap.querySelector(".espm-note");
  wrap.querySelector("[data-act=png]").onclick = () => exportPng(st);
  st.over.addEventListener("mousemove", (e) => {
    if (st.raf) return;
    st.raf = requestAnimationFrame(() => {
      st.raf = null;
      setHover(st, pick(st, e), e);
    });
  });
  st.over.addEventListener("mouseleave", () => setHover(st, null));
  st.over.addEventListener("click", (e) => {
    const i = pick(st, e);
    if (i !== null && st.setStateValue) st.setStateValue("clicked", i);
  });
  new ResizeObserver(() => {
    if (st.d && st.root.clientWidth && st.root.clientWidth !== st.width) draw(st);
  }).observe(wrap);
  return st;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  if (!data) return;
  const st = parentElement.__espm || (parentElement.__espm = init(parentElement));
  st.setStateValue = setStateValue;
  if (st.key !== data.version) {
    st.key = data.version;
    st.xa = decode(data.xa, Float32Array);
    st.xb = decode(data.xb, Float32Array);
    st.values = decode(data.values, Float32Array);
    st.hover = null;
  }
  st.d = data;
  st.note.textContent = data.note || "";
  draw(st);
}

// --- layout: two square panels sharing one data box (b is aligned onto a, so one scale shows the fit) ---
function layout(st) {
  const W = Math.max(320, st.root.clientWidth || 800), gap = 24, legend = 84, top = 22;
  const side = Math.max(140, Math.min(Math.floor((W - gap - legend) / 2), st.d.height || 460));
  const [x0, x1, y0, y1] = st.d.bounds, pad = 8;
  const sx = (side - 2 * pad) / (x1 - x0 || 1), sy = (side - 2 * pad) / (y1 - y0 || 1), s = Math.min(sx, sy);
  const ox = pad + (side - 2 * pad - s * (x1 - x0)) / 2, oy = pad + (side - 2 * pad - s * (y1 - y0)) / 2;
  const panels = [0, side + gap].map((left) => ({ left, top }));
  const to = (xy, i, p) => [p.left + ox + (xy[2 * i] - x0) * s, p.top + oy + (y1 - xy[2 * i + 1]) * s];
  return { W, H: top + side + 6, side, panels, to, legendX: 2 * side + gap + 12 };
}

function radius(n) {
  return n <= 300 ? 4.5 : n <= 3000 ? 3 : n <= 30000 ? 1.8 : 1;
}

function draw(st) {
  const d = st.d, dpr = window.devicePixelRatio || 1, L = (st.L = layout(st));
  st.width = st.root.clientWidth;
  st.stage.style.height = L.H + "px";
  const ctx = sizeCanvas(st.base, L, dpr);
  sizeCanvas(st.over, L, dpr);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, L.W, L.H);
  const r = radius(d.n);
  // Lowest overlap last, so the points that moved are on top.
  const order = Array.from({ length: d.n }, (_, i) => i).sort((i, j) => st.values[j] - st.values[i]);
  [st.xa, st.xb].forEach((xy, k) => {
    const p = L.panels[k];
    ctx.strokeStyle = "#d0d3da";
    ctx.strokeRect(p.left + 0.5, p.top + 0.5, L.side - 1, L.side - 1);
    ctx.fillStyle = "#262730";
    ctx.font = "bold " + FONT;
    ctx.textBaseline = "bottom";
    ctx.fillText(d.titles[k], p.left + 2, p.top - 4);
    for (const i of order) {
      const [x, y] = L.to(xy, i, p), c = colour(st.values[i]);
      ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
      if (r < 2) ctx.fillRect(x - r, y - r, 2 * r, 2 * r);
      else {
        ctx.beginPath();
        ctx.arc(x, y, r, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  });
  legend(ctx, L, d);
  overlay(st);
  const root = st.root;
  root.dataset.esPairmap = d.tag || "pairmap";
  root.dataset.esColourBy = d.colour_by || "overlap";
  root.dataset.esDraws = String(Number(root.dataset.esDraws || 0) + 1);
  root.__esPairmap = {
    tag: d.tag, version: d.version, n: d.n, values: st.values, hover: st.hover, selected: d.selected ?? null, rings: st.rings || [],
    at: (i) => ({ a: L.to(st.xa, i, L.panels[0]), b: L.to(st.xb, i, L.panels[1]) }),
  };
}

// The colour bar right of the panels: 1 (top), 0.5, 0, the legend title under it.
function legend(ctx, L, d) {
  const ticks = [0, 1, 2].map((t) => [1 - t / 2, (1 - t / 2).toFixed(1)]);
  colourBar(ctx, { x: L.legendX, y: L.panels[0].top, h: Math.min(L.side, 200), rgbAt: colour, ticks, label: d.legend,
    font: FONT, labelDx: -4, labelDy: 6 });
}

// Rings: the hovered point (black) and the clicked one (red) in both panels; the clicked point's neighbours under
// each model in that model's panel (dark rings).
function overlay(st) {
  const L = st.L, d = st.d, ctx = st.over.getContext("2d");
  ctx.clearRect(0, 0, L.W, L.H);
  const rings = [];
  const ring = (xy, i, p, colourText, rad, width) => {
    const [x, y] = L.to(xy, i, p);
    rings.push({ panel: p === L.panels[0] ? "a" : "b", index: i, colour: colourText });
    ctx.strokeStyle = colourText;
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.arc(x, y, rad, 0, 2 * Math.PI);
    ctx.stroke();
  };
  const sel = d.selected;
  if (sel !== null && sel !== undefined && sel < d.n) {
    (d.neighbours_a || []).forEach((j) => ring(st.xa, j, L.panels[0], "#1b1b1b", 6, 1.2));
    (d.neighbours_b || []).forEach((j) => ring(st.xb, j, L.panels[1], "#1b1b1b", 6, 1.2));
    ring(st.xa, sel, L.panels[0], "#dc2626", 9, 2.5);
    ring(st.xb, sel, L.panels[1], "#dc2626", 9, 2.5);
  }
  if (st.hover !== null) {
    ring(st.xa, st.hover, L.panels[0], "#000", 8, 2);
    ring(st.xb, st.hover, L.panels[1], "#000", 8, 2);
  }
  st.root.dataset.esHover = st.hover === null ? "" : String(st.hover);
  st.root.dataset.esSelected = sel === null || sel === undefined ? "" : String(sel);
  if (st.root.__esPairmap) Object.assign(st.root.__esPairmap, { hover: st.hover, rings });
  st.rings = rings;
}

// The nearest point to the mouse in whichever panel it is over, within 8 px; null if none.
function pick(st, e) {
  const L = st.L, rect = st.over.getBoundingClientRect(), mx = e.clientX - rect.left, my = e.clientY - rect.top;
  const k = L.panels.findIndex((p) => mx >= p.left && mx <= p.left + L.side && my >= p.top && my <= p.top + L.side);
  if (k < 0) return null;
  const xy = k === 0 ? st.xa : st.xb, p = L.panels[k];
  let best = null, bestD = 64;
  for (let i = 0; i < st.d.n; i++) {
    const [x, y] = L.to(xy, i, p), dd = (x - mx) ** 2 + (y - my) ** 2;
    if (dd < bestD) (bestD = dd), (best = i);
  }
  return best;
}

function setHover(st, i, e) {
  if (i !== st.hover) {
    st.hover = i;
    overlay(st);
  }
  if (i === null || !e) {
    st.tip.style.display = "none";
    return;
  }
  const d = st.d, text = d.texts ? d.texts[i] : `#${i}`;
  st.tip.textContent = `${text}\n${d.legend || "value"}: ${st.values[i].toFixed(2)}`; // text, never HTML
  const rect = st.over.getBoundingClientRect();
  st.tip.style.display = "block";
  st.tip.style.left = Math.min(e.clientX - rect.left + 14, st.L.W - 240) + "px";
  st.tip.style.top = e.clientY - rect.top + 14 + "px";
}

function exportPng(st) {
  const out = document.createElement("canvas");
  out.width = st.base.width;
  out.height = st.base.height;
  const ctx = out.getContext("2d");
  ctx.drawImage(st.base, 0, 0);
  ctx.drawImage(st.over, 0, 0);
  const a = document.createElement("a");
  a.href = out.toDataURL("image/png");
  a.download = (st.d.filename || "pairmap") + ".png";
  a.click();
}
