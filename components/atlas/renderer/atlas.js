// Corpus atlas renderer: WebGL points from typed arrays, pan/zoom, box/lasso selection, click-to-inspect.
// Plain JS, no dependencies, nothing fetched from the network. Mounted by components/atlas_canvas.py
// (Streamlit custom components v2): `data` comes from Python; selection shapes and clicked ids go back
// with setStateValue. Heavy buffers are uploaded once per data.version and kept across reruns.

const VERT = `
attribute vec2 a_xy;      // quantised position in [0, 1] (uint16, normalised)
attribute float a_c;      // colour index into u_pal
uniform vec4 u_view;      // clip = (xy - u_view.xy) * u_view.zw
uniform float u_size;
uniform float u_pass;     // 0: noise only (slot 62, drawn first, underneath), 1: the rest, 2: everything
uniform vec3 u_pal[64];
varying vec3 v_rgb;
void main() {
  vec2 p = (a_xy - u_view.xy) * u_view.zw;
  bool noise = a_c > 61.5 && a_c < 62.5;
  // a point of the other pass is moved outside the clip volume: culled before any fragment work
  if (u_pass < 1.5 && (noise != (u_pass < 0.5))) p = vec2(4.0, 4.0);
  gl_Position = vec4(p, 0.0, 1.0);
  gl_PointSize = noise ? max(1.0, u_size * 0.75) : u_size;
  v_rgb = u_pal[int(a_c + 0.5)];  // vertex shaders may index uniform arrays dynamically (GLSL ES 1.0, App. A)
}`;

const FRAG = `
precision mediump float;
varying vec3 v_rgb;
uniform float u_alpha;
uniform float u_round;
void main() {
  vec2 d = gl_PointCoord - vec2(0.5);
  // round points only when big enough: a 1-2 px point would lose whole pixels to the circle test
  if (u_round > 0.5 && dot(d, d) > 0.25) discard;
  gl_FragColor = vec4(v_rgb, u_alpha);
}`;

function compile(gl, type, src) {
  const s = gl.createShader(type);
  gl.shaderSource(s, src);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
  return s;
}

function program(gl) {
  const p = gl.createProgram();
  gl.attachShader(p, compile(gl, gl.VERTEX_SHADER, VERT));
  gl.attachShader(p, compile(gl, gl.FRAGMENT_SHADER, FRAG));
  gl.linkProgram(p);
  if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p));
  return p;
}

// base64 -> ArrayBuffer through the browser's own decoder (much faster than atob + a JS loop at 10 MB).
async function bytes(b64) {
  const res = await fetch("data:application/octet-stream;base64," + b64);
  return res.arrayBuffer();
}

function build(root) {
  const wrap = document.createElement("div");
  wrap.className = "atlas-wrap";
  wrap.innerHTML = `
    <div class="atlas-tools">
      <button data-mode="pan" class="on" title="Drag to pan, wheel to zoom, click a point to read it">Pan</button>
      <button data-mode="box" title="Drag a rectangle to select">Box</button>
      <button data-mode="lasso" title="Draw around points to select">Lasso</button>
      <button data-act="reset" title="Back to the opening view (the 1st to 99th percentile of the points)">Reset view</button>
      <button data-act="hits" title="Fit the search hits" disabled>Zoom to hits</button>
      <button data-act="clear" title="Clear the selection">Clear selection</button>
      <span class="atlas-status"></span>
    </div>
    <div class="atlas-stage">
      <canvas class="atlas-gl"></canvas>
      <canvas class="atlas-overlay"></canvas>
      <div class="atlas-tip" hidden></div>
    </div>`;
  root.appendChild(wrap);
  return wrap;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  if (!data) return;
  let st = parentElement.__atlas;
  if (!st) {
    st = parentElement.__atlas = { wrap: build(parentElement), mode: "pan", version: null };
    init(st, setStateValue);
  }
  st.setStateValue = setStateValue;
  st.data = data;
  st.stage.style.height = (data.height || 600) + "px";
  if (st.version !== data.version) {
    st.version = data.version;
    st.loading = load(st, data);
  }
  st.loading.then(() => {
    setHighlight(st, data.highlight || []);
    st.selection = data.selection || null;
    draw(st);
  });
}

function init(st, setStateValue) {
  const wrap = st.wrap;
  st.stage = wrap.querySelector(".atlas-stage");
  st.canvas = wrap.querySelector(".atlas-gl");
  st.overlay = wrap.querySelector(".atlas-overlay");
  st.status = wrap.querySelector(".atlas-status");
  st.tip = wrap.querySelector(".atlas-tip");
  st.hitsButton = wrap.querySelector("button[data-act=hits]");
  const gl = st.canvas.getContext("webgl", { alpha: false, antialias: false, preserveDrawingBuffer: true });
  if (!gl) {
    st.status.textContent = "WebGL is not available in this browser: the map cannot be drawn.";
    st.canvas.setAttribute("data-error", "no-webgl");
    return;
  }
  st.gl = gl;
  st.prog = program(gl);
  st.loc = {
    xy: gl.getAttribLocation(st.prog, "a_xy"),
    c: gl.getAttribLocation(st.prog, "a_c"),
    view: gl.getUniformLocation(st.prog, "u_view"),
    size: gl.getUniformLocation(st.prog, "u_size"),
    pass: gl.getUniformLocation(st.prog, "u_pass"),
    pal: gl.getUniformLocation(st.prog, "u_pal"),
    alpha: gl.getUniformLocation(st.prog, "u_alpha"),
    round: gl.getUniformLocation(st.prog, "u_round"),
  };
  st.buf = { xy: gl.createBuffer(), c: gl.createBuffer(), hxy: gl.createBuffer(), hc: gl.createBuffer() };
  st.view = null; // null: the opening view, computed at the next draw (it depends on the canvas size)
  wrap.querySelectorAll("button[data-mode]").forEach((b) => {
    b.onclick = () => {
      st.mode = b.dataset.mode;
      wrap.querySelectorAll("button[data-mode]").forEach((o) => o.classList.toggle("on", o === b));
    };
  });
  wrap.querySelector("button[data-act=reset]").onclick = () => {
    st.view = null;
    draw(st);
  };
  st.hitsButton.onclick = () => {
    if (st.nh) {
      st.view = fitView(st, hitBox(st), 0.15);
      draw(st);
    }
  };
  wrap.querySelector("button[data-act=clear]").onclick = () => {
    st.selection = null;
    st.setStateValue("selection", null);
    draw(st);
  };
  pointer(st);
  new ResizeObserver(() => draw(st)).observe(st.stage);
}

async function load(st, data) {
  if (!st.gl) return;
  const t0 = performance.now();
  const [xy, c] = await Promise.all([bytes(data.xy), bytes(data.colour)]);
  st.xy = new Uint16Array(xy); // [N * 2] interleaved x, y
  st.c = new Uint8Array(c); // [N]
  st.n = data.n;
  st.texts = data.texts || null; // hover texts [N], only when the payload allows (about 100k points)
  const gl = st.gl;
  gl.bindBuffer(gl.ARRAY_BUFFER, st.buf.xy);
  gl.bufferData(gl.ARRAY_BUFFER, st.xy, gl.STATIC_DRAW);
  gl.bindBuffer(gl.ARRAY_BUFFER, st.buf.c);
  gl.bufferData(gl.ARRAY_BUFFER, st.c, gl.STATIC_DRAW);
  st.decodeMs = performance.now() - t0;
  st.firstDraw = true;
  st.view = null; // new points: back to their opening view
  st.highlightKey = null; // the same hit ids on new points are other positions: rebuild the highlight buffer
}

function setHighlight(st, ids) {
  if (!st.gl || !st.xy) return;
  ids = ids.filter((id) => id >= 0 && id < st.n);
  const key = ids.join(",");
  if (key === st.highlightKey) return;
  st.highlightKey = key;
  const hxy = new Uint16Array(ids.length * 2);
  ids.forEach((id, i) => {
    hxy[2 * i] = st.xy[2 * id];
    hxy[2 * i + 1] = st.xy[2 * id + 1];
  });
  st.hxy = hxy;
  st.nh = ids.length;
  const gl = st.gl;
  gl.bindBuffer(gl.ARRAY_BUFFER, st.buf.hxy);
  gl.bufferData(gl.ARRAY_BUFFER, hxy, gl.DYNAMIC_DRAW);
  gl.bindBuffer(gl.ARRAY_BUFFER, st.buf.hc);
  gl.bufferData(gl.ARRAY_BUFFER, new Uint8Array(ids.length).fill(63), gl.DYNAMIC_DRAW);
  st.canvas.setAttribute("data-highlighted", String(ids.length));
  st.hitsButton.disabled = ids.length === 0;
}

// --- view: {cx, cy} centre in quantised unit coordinates, k = CSS pixels per data unit (same on both axes) --

function span(st) {
  const [x0, x1, y0, y1] = st.data.bounds;
  return [Math.max(x1 - x0, 1e-12), Math.max(y1 - y0, 1e-12)];
}

function cssSize(st) {
  const r = st.canvas.getBoundingClientRect();
  return [Math.max(1, r.width), Math.max(1, r.height)];
}

// The view that shows data box [x0, x1, y0, y1] whole, with `margin` (a fraction of its size) on each side.
function fitView(st, box, margin) {
  const [w, h] = cssSize(st);
  let [x0, x1, y0, y1] = box;
  const [dx, dy] = span(st);
  // never zoom in beyond 1/2000 of the map: a single hit, or identical points, would give a zero-size box
  const minW = dx / 2000, minH = dy / 2000;
  if (x1 - x0 < minW) [x0, x1] = [(x0 + x1) / 2 - minW / 2, (x0 + x1) / 2 + minW / 2];
  if (y1 - y0 < minH) [y0, y1] = [(y0 + y1) / 2 - minH / 2, (y0 + y1) / 2 + minH / 2];
  const k = Math.min(w / ((x1 - x0) * (1 + 2 * margin)), h / ((y1 - y0) * (1 + 2 * margin)));
  const [cx, cy] = dataToUnit(st, (x0 + x1) / 2, (y0 + y1) / 2);
  return { cx, cy, k };
}

function homeView(st) {
  const b = st.data.fit || st.data.bounds; // fit: the 1st-99th percentile box, from Python
  return fitView(st, b, st.data.fit ? 0.06 : 0.04);
}

// Data box of the search hits (from their quantised positions).
function hitBox(st) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < st.nh; i++) {
    const [x, y] = unitToData(st, st.hxy[2 * i] / 65535, st.hxy[2 * i + 1] / 65535);
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  return [x0, x1, y0, y1];
}

// View transform: quantised unit square -> clip space.
function viewUniform(st) {
  if (!st.view) st.view = homeView(st);
  const [w, h] = cssSize(st);
  const [dx, dy] = span(st);
  return [st.view.cx, st.view.cy, (2 * st.view.k * dx) / w, (2 * st.view.k * dy) / h];
}

// CSS pixel (relative to the canvas) <-> quantised unit coordinates and data coordinates.
function toUnit(st, px, py) {
  const [cx, cy, sx, sy] = viewUniform(st);
  const [w, h] = cssSize(st);
  const clipX = (px / w) * 2 - 1, clipY = 1 - (py / h) * 2;
  return [cx + clipX / sx, cy + clipY / sy];
}
function toScreen(st, ux, uy) {
  const [cx, cy, sx, sy] = viewUniform(st);
  const [w, h] = cssSize(st);
  return [(((ux - cx) * sx + 1) / 2) * w, ((1 - (uy - cy) * sy) / 2) * h];
}
function unitToData(st, u, v) {
  const [x0, x1, y0, y1] = st.data.bounds;
  return [x0 + u * (x1 - x0), y0 + v * (y1 - y0)];
}
function dataToUnit(st, x, y) {
  const [x0, , y0] = st.data.bounds;
  const [dx, dy] = span(st);
  return [(x - x0) / dx, (y - y0) / dy];
}

// Data coordinates in view: [x0, x1, y0, y1].
function viewBox(st) {
  const [w, h] = cssSize(st);
  const a = unitToData(st, ...toUnit(st, 0, h)), b = unitToData(st, ...toUnit(st, w, 0));
  return [a[0], b[0], a[1], b[1]];
}

function resize(st) {
  const dpr = window.devicePixelRatio || 1;
  const r = st.canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
  for (const c of [st.canvas, st.overlay]) {
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
  }
  return dpr;
}

function bindPoints(st, xyBuf, cBuf) {
  const gl = st.gl;
  gl.bindBuffer(gl.ARRAY_BUFFER, xyBuf);
  gl.enableVertexAttribArray(st.loc.xy);
  gl.vertexAttribPointer(st.loc.xy, 2, gl.UNSIGNED_SHORT, true, 0, 0);
  gl.bindBuffer(gl.ARRAY_BUFFER, cBuf);
  gl.enableVertexAttribArray(st.loc.c);
  gl.vertexAttribPointer(st.loc.c, 1, gl.UNSIGNED_BYTE, false, 0, 0);
}

// Point size (CSS px) and opacity from the density on screen: about how many points fall in the view (the
// whole map's points scaled by the share of the opening view now shown) per CSS pixel. Sparse: big, opaque
// dots; dense: small, translucent ones, so that overlaps read as density.
function pointStyle(st) {
  const [w, h] = cssSize(st);
  const home = st.home || homeView(st);
  const share = Math.min(1, (home.k / st.view.k) ** 2);
  const perPixel = (st.n * 0.98 * share) / (w * h); // the opening view holds about 98% of the points
  const size = Math.min(9, Math.max(1.5, 0.9 / Math.sqrt(Math.max(perPixel, 1e-9))));
  const alpha = Math.min(0.9, Math.max(0.18, 1.4 / (1 + perPixel * size * size * 2)));
  return { size, alpha };
}

function draw(st) {
  if (!st.gl || !st.xy || !st.data) return;
  const dpr = resize(st);
  const gl = st.gl, d = st.data;
  st.home = homeView(st);
  if (!st.view) st.view = st.home;
  gl.viewport(0, 0, st.canvas.width, st.canvas.height);
  gl.clearColor(1, 1, 1, 1);
  gl.clear(gl.COLOR_BUFFER_BIT);
  gl.useProgram(st.prog);
  gl.enable(gl.BLEND);
  gl.blendFuncSeparate(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA, gl.ZERO, gl.ONE); // keep the canvas opaque
  const pal = new Float32Array(64 * 3);
  d.palette.forEach((rgb, i) => pal.set(rgb.map((v) => v / 255), 3 * i));
  pal.set([0.84, 0.84, 0.84], 62 * 3); // noise: light grey, drawn underneath
  pal.set([0.86, 0.08, 0.08], 63 * 3); // 63: search hits
  gl.uniform3fv(st.loc.pal, pal);
  gl.uniform4fv(st.loc.view, viewUniform(st));
  const style = pointStyle(st);
  const size = Math.max(1, Math.round(style.size * dpr));
  gl.uniform1f(st.loc.size, size);
  gl.uniform1f(st.loc.round, size >= 4 ? 1 : 0);
  // with hits on the map, the rest steps back so the hits stand out
  const alpha = st.nh ? style.alpha * 0.6 : style.alpha;
  bindPoints(st, st.buf.xy, st.buf.c);
  gl.uniform1f(st.loc.pass, 0); // noise first, underneath the clusters
  gl.uniform1f(st.loc.alpha, Math.min(alpha, 0.5));
  gl.drawArrays(gl.POINTS, 0, st.n);
  gl.uniform1f(st.loc.pass, 1);
  gl.uniform1f(st.loc.alpha, alpha);
  gl.drawArrays(gl.POINTS, 0, st.n);
  if (st.nh) { // search hits last, large and opaque; their rings are drawn on the overlay
    gl.uniform1f(st.loc.pass, 2);
    gl.uniform1f(st.loc.size, Math.round(Math.max(9, style.size * 2.5) * dpr));
    gl.uniform1f(st.loc.alpha, 1);
    gl.uniform1f(st.loc.round, 1);
    bindPoints(st, st.buf.hxy, st.buf.hc);
    gl.drawArrays(gl.POINTS, 0, st.nh);
  }
  if (st.firstDraw) {
    gl.finish(); // the mark below means "on screen", not "queued"
    st.firstDraw = false;
    window.__atlasDrawn = performance.now();
    st.canvas.setAttribute("data-drawn", String(st.n));
    st.status.textContent = `${st.n.toLocaleString()} points`;
  }
  overlay(st, dpr);
}

// Greedy label placement: biggest clusters first; a label is drawn only where its box overlaps no label
// already placed and lies inside the canvas. Recomputed at every draw, so zooming in makes room for more.
function placeLabels(st, ctx) {
  const [w, h] = cssSize(st);
  const placed = [];
  const pad = 2;
  for (const lab of st.data.labels || []) { // sorted by cluster size, biggest first (Python)
    const [u, v] = dataToUnit(st, lab.x, lab.y);
    const [sx, sy] = toScreen(st, u, v);
    const big = placed.length < 8;
    ctx.font = big ? "bold 13px sans-serif" : "12px sans-serif";
    const tw = ctx.measureText(lab.name).width;
    const th = big ? 15 : 14;
    const box = [sx - tw / 2 - pad, sy - th / 2 - pad, sx + tw / 2 + pad, sy + th / 2 + pad];
    if (box[0] < 0 || box[1] < 0 || box[2] > w || box[3] > h) continue;
    if (placed.some((o) => box[0] < o[2] && o[0] < box[2] && box[1] < o[3] && o[1] < box[3])) continue;
    placed.push([...box, lab.name, ctx.font]);
  }
  return placed;
}

function overlay(st, dpr) {
  const t0 = performance.now();
  const ctx = st.overlay.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, st.overlay.width, st.overlay.height);
  const labels = placeLabels(st, ctx);
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.lineJoin = "round";
  for (const [x0, y0, x1, y1, name, font] of labels) {
    ctx.font = font;
    ctx.lineWidth = 3.5;
    ctx.strokeStyle = "rgba(255,255,255,0.92)";
    ctx.strokeText(name, (x0 + x1) / 2, (y0 + y1) / 2);
    ctx.fillStyle = "#1a1a1a";
    ctx.fillText(name, (x0 + x1) / 2, (y0 + y1) / 2);
  }
  // search hits: a ring around each, above the labels (drawn last)
  const hits = [];
  for (let i = 0; i < (st.nh || 0); i++) {
    const [sx, sy] = toScreen(st, st.hxy[2 * i] / 65535, st.hxy[2 * i + 1] / 65535);
    hits.push([Math.round(sx * 10) / 10, Math.round(sy * 10) / 10]);
    ctx.beginPath();
    ctx.arc(sx, sy, Math.max(8, pointStyle(st).size * 1.8), 0, 2 * Math.PI);
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#b00000";
    ctx.stroke();
  }
  const sel = st.drawing || st.selection;
  if (sel) {
    const pts = sel.kind === "box"
      ? [[sel.x0, sel.y0], [sel.x1, sel.y0], [sel.x1, sel.y1], [sel.x0, sel.y1]]
      : sel.points;
    ctx.beginPath();
    pts.forEach(([x, y], i) => {
      const [u, v] = dataToUnit(st, x, y);
      const [sx, sy] = toScreen(st, u, v);
      if (i === 0) ctx.moveTo(sx, sy);
      else ctx.lineTo(sx, sy);
    });
    if (!st.drawing || sel.kind === "box") ctx.closePath();
    ctx.strokeStyle = "#0b63ce";
    ctx.lineWidth = 1.5;
    ctx.setLineDash([5, 3]);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "rgba(11,99,206,0.08)";
    ctx.fill();
  }
  // test hooks, after each draw: label boxes (CSS px), the data box in view, the hits drawn
  const root = st.wrap;
  const r1 = (v) => Math.round(v * 10) / 10;
  root.setAttribute("data-es-labels", JSON.stringify(labels.map(([x0, y0, x1, y1, name]) => [r1(x0), r1(y0), r1(x1), r1(y1), name])));
  root.setAttribute("data-es-view", JSON.stringify(viewBox(st)));
  root.setAttribute("data-es-hits", String(st.nh || 0));
  root.setAttribute("data-es-hit-points", JSON.stringify(hits));
  root.setAttribute("data-es-label-ms", (performance.now() - t0).toFixed(2));
  // what the colours mean: the SAE feature whose activation colours the map, "" for clusters or labels
  root.setAttribute("data-es-feature", st.data.feature == null ? "" : String(st.data.feature));
  root.setAttribute("data-es-draws", String((Number(root.getAttribute("data-es-draws")) || 0) + 1));
}

// Nearest point to a screen position, within `radius` CSS pixels; -1 if none. Linear scan: ~5 ms at 1M.
function pick(st, px, py, radius) {
  const [u, v] = toUnit(st, px, py);
  const [, , sx, sy] = viewUniform(st);
  const [w, h] = cssSize(st);
  const kx = (sx * w) / 2 / 65535, ky = (sy * h) / 2 / 65535; // CSS px per quantised unit
  const qx = u * 65535, qy = v * 65535;
  let best = -1, bestD = radius * radius;
  const xy = st.xy;
  for (let i = 0; i < st.n; i++) {
    const dx = (xy[2 * i] - qx) * kx, dy = (xy[2 * i + 1] - qy) * ky;
    const dd = dx * dx + dy * dy;
    if (dd <= bestD) {
      bestD = dd;
      best = i;
    }
  }
  return best;
}

// Hover text (only when the payload carries texts): the nearest point within 8 px, once per frame.
function hover(st, p) {
  if (!st.texts || st.hoverQueued) return;
  st.hoverQueued = true;
  requestAnimationFrame(() => {
    st.hoverQueued = false;
    const id = p ? pick(st, p[0], p[1], 8) : -1;
    if (id < 0) {
      st.tip.hidden = true;
      return;
    }
    st.tip.textContent = st.texts[id]; // textContent: user text is never parsed as HTML
    st.tip.hidden = false;
    const [w] = cssSize(st);
    st.tip.style.left = Math.min(p[0] + 12, w - 260) + "px";
    st.tip.style.top = p[1] + 12 + "px";
    st.tip.setAttribute("data-id", String(id));
  });
}

function pointer(st) {
  const stage = st.stage;
  let down = null;
  const local = (e) => {
    const r = st.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  const dataAt = (p) => unitToData(st, ...toUnit(st, p[0], p[1]));
  stage.addEventListener("wheel", (e) => {
    e.preventDefault();
    if (!st.xy) return;
    const p = local(e);
    const before = toUnit(st, p[0], p[1]);
    const k = st.view.k * Math.exp(-e.deltaY * 0.0015);
    st.view.k = Math.min(st.home.k * 1e4, Math.max(st.home.k * 0.05, k));
    const after = toUnit(st, p[0], p[1]);
    st.view.cx += before[0] - after[0]; // keep the point under the cursor fixed
    st.view.cy += before[1] - after[1];
    draw(st);
  }, { passive: false });
  stage.addEventListener("mouseleave", () => hover(st, null));
  stage.addEventListener("mousedown", (e) => {
    if (!st.xy) return;
    const p = local(e);
    down = { p, last: p, moved: false };
    if (st.mode === "lasso") st.drawing = { kind: "lasso", points: [dataAt(p)] };
    if (st.mode === "box") {
      const [x, y] = dataAt(p);
      st.drawing = { kind: "box", x0: x, y0: y, x1: x, y1: y };
    }
  });
  window.addEventListener("mousemove", (e) => {
    if (!down) {
      const p = local(e);
      const [w, h] = cssSize(st);
      if (st.xy && p[0] >= 0 && p[1] >= 0 && p[0] <= w && p[1] <= h) hover(st, p);
      return;
    }
    const p = local(e);
    if (Math.abs(p[0] - down.p[0]) + Math.abs(p[1] - down.p[1]) > 3) down.moved = true;
    if (st.mode === "pan") {
      const a = toUnit(st, down.last[0], down.last[1]), b = toUnit(st, p[0], p[1]);
      st.view.cx -= b[0] - a[0];
      st.view.cy -= b[1] - a[1];
    } else if (st.mode === "box") {
      [st.drawing.x1, st.drawing.y1] = dataAt(p);
    } else if (st.mode === "lasso") {
      const q = st.drawing.points;
      if (Math.hypot(p[0] - down.last[0], p[1] - down.last[1]) < 4) return; // keep the polygon small
      q.push(dataAt(p));
    }
    down.last = p;
    draw(st);
  });
  window.addEventListener("mouseup", () => {
    if (!down) return;
    const was = down;
    down = null;
    if (st.mode === "pan" && !was.moved) {
      const id = pick(st, was.p[0], was.p[1], 8);
      if (id >= 0) {
        st.canvas.setAttribute("data-clicked", String(id));
        st.setStateValue("clicked", id);
      }
      return;
    }
    if (st.mode !== "pan" && st.drawing) {
      let shape = st.drawing;
      st.drawing = null;
      if (shape.kind === "box") {
        shape = {
          kind: "box",
          x0: Math.min(shape.x0, shape.x1), x1: Math.max(shape.x0, shape.x1),
          y0: Math.min(shape.y0, shape.y1), y1: Math.max(shape.y0, shape.y1),
        };
      }
      const ok = shape.kind === "box" ? was.moved : shape.points.length >= 3;
      if (ok) {
        st.selection = shape;
        st.setStateValue("selection", shape);
      }
      draw(st);
    }
  });
}
