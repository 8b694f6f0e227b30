// Corpus atlas renderer: WebGL points from typed arrays, pan/zoom, box/lasso selection, click-to-inspect.
// Plain JS, no dependencies, nothing fetched from the network. Mounted by components/atlas_canvas.py
// (Streamlit custom components v2): `data` comes from Python; selection shapes and clicked ids go back
// with setStateValue. Heavy buffers are uploaded once per data.version and kept across reruns.

const VERT = `
attribute vec2 a_xy;      // quantised position in [0, 1] (uint16, normalised)
attribute float a_c;      // colour index into u_pal
uniform vec4 u_view;      // clip = (xy - u_view.xy) * u_view.zw
uniform float u_size;
uniform vec3 u_pal[64];
varying vec3 v_rgb;
void main() {
  vec2 p = (a_xy - u_view.xy) * u_view.zw;
  gl_Position = vec4(p, 0.0, 1.0);
  gl_PointSize = u_size;
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
      <button data-act="reset" title="Show every point">Reset view</button>
      <button data-act="clear" title="Clear the selection">Clear selection</button>
      <span class="atlas-status"></span>
    </div>
    <div class="atlas-stage">
      <canvas class="atlas-gl"></canvas>
      <canvas class="atlas-overlay"></canvas>
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
    pal: gl.getUniformLocation(st.prog, "u_pal"),
    alpha: gl.getUniformLocation(st.prog, "u_alpha"),
    round: gl.getUniformLocation(st.prog, "u_round"),
  };
  st.buf = { xy: gl.createBuffer(), c: gl.createBuffer(), hxy: gl.createBuffer(), hc: gl.createBuffer() };
  st.view = { cx: 0.5, cy: 0.5, zoom: 1 };
  wrap.querySelectorAll("button[data-mode]").forEach((b) => {
    b.onclick = () => {
      st.mode = b.dataset.mode;
      wrap.querySelectorAll("button[data-mode]").forEach((o) => o.classList.toggle("on", o === b));
    };
  });
  wrap.querySelector("button[data-act=reset]").onclick = () => {
    st.view = { cx: 0.5, cy: 0.5, zoom: 1 };
    draw(st);
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
  const gl = st.gl;
  gl.bindBuffer(gl.ARRAY_BUFFER, st.buf.xy);
  gl.bufferData(gl.ARRAY_BUFFER, st.xy, gl.STATIC_DRAW);
  gl.bindBuffer(gl.ARRAY_BUFFER, st.buf.c);
  gl.bufferData(gl.ARRAY_BUFFER, st.c, gl.STATIC_DRAW);
  st.decodeMs = performance.now() - t0;
  st.firstDraw = true;
}

function setHighlight(st, ids) {
  if (!st.gl || !st.xy) return;
  const key = ids.join(",");
  if (key === st.highlightKey) return;
  st.highlightKey = key;
  const hxy = new Uint16Array(ids.length * 2);
  ids.forEach((id, i) => {
    hxy[2 * i] = st.xy[2 * id];
    hxy[2 * i + 1] = st.xy[2 * id + 1];
  });
  st.nh = ids.length;
  const gl = st.gl;
  gl.bindBuffer(gl.ARRAY_BUFFER, st.buf.hxy);
  gl.bufferData(gl.ARRAY_BUFFER, hxy, gl.DYNAMIC_DRAW);
  gl.bindBuffer(gl.ARRAY_BUFFER, st.buf.hc);
  gl.bufferData(gl.ARRAY_BUFFER, new Uint8Array(ids.length).fill(63), gl.DYNAMIC_DRAW);
  st.canvas.setAttribute("data-highlighted", String(ids.length));
}

// View transform: quantised unit square -> clip space, keeping the aspect ratio of the data bounds.
function viewUniform(st) {
  const w = st.canvas.width, h = st.canvas.height;
  const [x0, x1, y0, y1] = st.data.bounds;
  const dx = Math.max(x1 - x0, 1e-12), dy = Math.max(y1 - y0, 1e-12);
  // pixels per unit of the quantised square, so that the whole map fits with a margin
  const fit = 0.92 * Math.min(w / dx, h / dy);
  const sx = (2 * fit * dx * st.view.zoom) / w;
  const sy = (2 * fit * dy * st.view.zoom) / h;
  return [st.view.cx, st.view.cy, sx, sy];
}

// CSS pixel (relative to the canvas) <-> quantised unit coordinates and data coordinates.
function toUnit(st, px, py) {
  const [cx, cy, sx, sy] = viewUniform(st);
  const r = st.canvas.getBoundingClientRect();
  const clipX = (px / r.width) * 2 - 1, clipY = 1 - (py / r.height) * 2;
  return [cx + clipX / sx, cy + clipY / sy];
}
function toScreen(st, ux, uy) {
  const [cx, cy, sx, sy] = viewUniform(st);
  const r = st.canvas.getBoundingClientRect();
  return [(((ux - cx) * sx + 1) / 2) * r.width, ((1 - (uy - cy) * sy) / 2) * r.height];
}
function unitToData(st, u, v) {
  const [x0, x1, y0, y1] = st.data.bounds;
  return [x0 + u * (x1 - x0), y0 + v * (y1 - y0)];
}
function dataToUnit(st, x, y) {
  const [x0, x1, y0, y1] = st.data.bounds;
  return [(x - x0) / Math.max(x1 - x0, 1e-12), (y - y0) / Math.max(y1 - y0, 1e-12)];
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

function draw(st) {
  if (!st.gl || !st.xy || !st.data) return;
  const dpr = resize(st);
  const gl = st.gl, d = st.data;
  gl.viewport(0, 0, st.canvas.width, st.canvas.height);
  gl.clearColor(1, 1, 1, 1);
  gl.clear(gl.COLOR_BUFFER_BIT);
  gl.useProgram(st.prog);
  gl.enable(gl.BLEND);
  gl.blendFuncSeparate(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA, gl.ZERO, gl.ONE); // keep the canvas opaque
  const pal = new Float32Array(64 * 3);
  d.palette.forEach((rgb, i) => pal.set(rgb.map((v) => v / 255), 3 * i));
  pal.set([0.9, 0.1, 0.1], 63 * 3); // 63: search hits
  gl.uniform3fv(st.loc.pal, pal);
  gl.uniform4fv(st.loc.view, viewUniform(st));
  // Dense maps: smaller, more transparent points so clusters read as density, not as a solid blob.
  const dense = st.n > 200000;
  const size = Math.round(Math.max(1, (dense ? 2 : st.n > 20000 ? 3 : 5) * dpr * Math.min(4, Math.sqrt(st.view.zoom))));
  gl.uniform1f(st.loc.size, size);
  gl.uniform1f(st.loc.round, size >= 4 ? 1 : 0);
  gl.uniform1f(st.loc.alpha, st.nh ? 0.45 : dense ? 0.35 : 0.8);
  bindPoints(st, st.buf.xy, st.buf.c);
  gl.drawArrays(gl.POINTS, 0, st.n);
  if (st.nh) {
    gl.uniform1f(st.loc.size, Math.max(7 * dpr, size * 2));
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

function overlay(st, dpr) {
  const ctx = st.overlay.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, st.overlay.width, st.overlay.height);
  ctx.font = "12px sans-serif";
  ctx.textAlign = "center";
  ctx.lineWidth = 3;
  for (const lab of st.data.labels || []) {
    const [u, v] = dataToUnit(st, lab.x, lab.y);
    const [sx, sy] = toScreen(st, u, v);
    ctx.strokeStyle = "rgba(255,255,255,0.9)";
    ctx.strokeText(lab.name, sx, sy);
    ctx.fillStyle = "#222";
    ctx.fillText(lab.name, sx, sy);
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
}

// Nearest point to a screen position, within `radius` CSS pixels; -1 if none. Linear scan: ~5 ms at 1M.
// Distances are in screen pixels: x and y quantised units have different scales on screen.
function pick(st, px, py, radius) {
  const [u, v] = toUnit(st, px, py);
  const [, , sx, sy] = viewUniform(st);
  const r = st.canvas.getBoundingClientRect();
  const kx = (sx * r.width) / 2 / 65535, ky = (sy * r.height) / 2 / 65535; // CSS px per quantised unit
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
    const p = local(e);
    const before = toUnit(st, p[0], p[1]);
    st.view.zoom = Math.min(1e4, Math.max(0.2, st.view.zoom * Math.exp(-e.deltaY * 0.0015)));
    const after = toUnit(st, p[0], p[1]);
    st.view.cx += before[0] - after[0]; // keep the point under the cursor fixed
    st.view.cy += before[1] - after[1];
    draw(st);
  }, { passive: false });
  stage.addEventListener("mousedown", (e) => {
    if (!st.xy) return;
    const p = local(e);
    down = { p, last: p, moved: false, view: { ...st.view } };
    if (st.mode === "lasso") st.drawing = { kind: "lasso", points: [dataAt(p)] };
    if (st.mode === "box") {
      const [x, y] = dataAt(p);
      st.drawing = { kind: "box", x0: x, y0: y, x1: x, y1: y };
    }
  });
  window.addEventListener("mousemove", (e) => {
    if (!down) return;
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
  window.addEventListener("mouseup", (e) => {
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
