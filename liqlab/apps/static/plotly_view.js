// Front end of liqlab.apps.plotly_view.PlotlyView (an anywidget ES module).
//
// Draws the model's figure with Plotly.react from liqlab's plotly.js bundle, applies the kernel's
// update messages (only the changed trace properties and layout paths, arrays as binary buffers),
// follows its element's width, and never sends the browser's computed figure back.

const TYPED = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, int16: Int16Array, int32: Int32Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array,
};

/** A typed array over a received buffer (a DataView or an ArrayBuffer), copied when misaligned. */
function typedArray(buffer, dtype) {
  const Typed = TYPED[dtype];
  if (!Typed) throw new Error(`plotly_view: unknown dtype ${dtype}`);
  let ab = buffer, offset = 0, length = buffer.byteLength;
  if (ArrayBuffer.isView(buffer)) {
    ab = buffer.buffer;
    offset = buffer.byteOffset;
  }
  if (offset % Typed.BYTES_PER_ELEMENT !== 0) {
    ab = ab.slice(offset, offset + length);
    offset = 0;
  }
  return new Typed(ab, offset, length / Typed.BYTES_PER_ELEMENT);
}

function isArraySpec(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && typeof v.dtype === "string"
    && Array.isArray(v.shape) && "buffer" in v && Object.keys(v).length === 3;
}

/** Wire form to plotly form: array specs become typed arrays (2-D: a list of typed-array rows). */
export function decode(value, buffers) {
  if (Array.isArray(value)) return value.map((v) => decode(v, buffers));
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return value;
  }
  if (isArraySpec(value)) {
    const raw = typeof value.buffer === "number" ? buffers[value.buffer] : value.buffer;
    const flat = typedArray(raw, value.dtype);
    if (value.shape.length === 1) return flat;
    const [rows, cols] = value.shape;
    const out = new Array(rows);
    for (let r = 0; r < rows; r++) out[r] = flat.subarray(r * cols, (r + 1) * cols);
    return out;
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = decode(v, buffers);
  return out;
}

/** A copy of `layout` with the dotted `path` set to `value` (objects on the way copied, not mutated). */
export function withPath(layout, path, value) {
  const keys = path.split(".");
  const root = { ...layout };
  let node = root;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    node[key] = next !== null && typeof next === "object" && !Array.isArray(next) ? { ...next } : {};
    node = node[key];
  }
  node[keys[keys.length - 1]] = value;
  return root;
}

/** A copy of the plain objects and lists of a layout (plotly.js writes computed values into its input). */
function copyLayout(value) {
  if (Array.isArray(value)) return value.map(copyLayout);
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = copyLayout(v);
  return out;
}

// ------------------------------------------------------------------------------------ plotly.js
function baseUrl() {
  const el = document.getElementById("jupyter-config-data");
  let base = "/";
  if (el) {
    try {
      base = JSON.parse(el.textContent).baseUrl || "/";
    } catch (e) {
      base = "/";
    }
  }
  return base.endsWith("/") ? base : base + "/";
}

/** liqlab's plotly.js: from the app server when served, else from the model's copy (once per page). */
function loadPlotly(model) {
  const url = model.get("plotly_url");
  if (url) {
    // the page's head may already import the same URL: the browser hands over the same module
    return import(new URL(baseUrl() + url.replace(/^\/+/, ""), document.baseURI).href).then((m) => m.default);
  }
  const cache = (globalThis.liqlabPlotly ??= {});
  const key = model.get("plotly_digest") || "plotly";
  if (!cache[key]) {
    const source = model.get("plotly_source");
    const blobUrl = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    cache[key] = import(blobUrl).then((m) => m.default).finally(() => URL.revokeObjectURL(blobUrl));
  }
  return cache[key];
}

// ------------------------------------------------------------------------------------ per model
// The current figure of each model (kept here so that a view created later draws the current
// figure, and so that each update message is decoded once however many views there are).
const figures = new WeakMap();

function figureOf(model) {
  let fig = figures.get(model);
  if (!fig) {
    fig = {
      data: decode(model.get("traces") || [], []),
      layout: decode(model.get("plot_layout") || {}, []),
      views: new Set(),
      plotly: loadPlotly(model),
    };
    const redrawAll = () => fig.views.forEach((view) => view.draw());
    const onCustom = (msg, buffers) => {
      if (!msg || msg.type !== "update") return;
      const data = fig.data.slice();
      for (const [i, props] of msg.traces || []) data[i] = { ...data[i], ...decode(props, buffers || []) };
      let layout = fig.layout;
      for (const [path, value] of Object.entries(msg.layout || {})) layout = withPath(layout, path, decode(value, buffers || []));
      fig.data = data;
      fig.layout = layout;
      redrawAll();
    };
    const onTraces = () => { fig.data = decode(model.get("traces") || [], []); redrawAll(); };
    const onLayout = () => { fig.layout = decode(model.get("plot_layout") || {}, []); redrawAll(); };
    model.on("msg:custom", onCustom);
    model.on("change:traces", onTraces);
    model.on("change:plot_layout", onLayout);
    model.on("change:config", redrawAll);
    figures.set(model, fig);
  }
  return fig;
}

// ------------------------------------------------------------------------------------ widget
export default {
  initialize({ model }) {
    figureOf(model); // starts importing plotly.js before the first view
  },

  async render({ model, el }) {
    const fig = figureOf(model);
    const div = document.createElement("div");
    div.className = "liqlab-plotly";
    div.style.width = "100%";
    el.appendChild(div);
    let Plotly = null;
    let drawing = false;
    let pending = false;
    let drawnWidth = 0;
    let removed = false;

    const view = {
      // one draw at a time; changes arriving meanwhile are drawn once it is done (the latest figure)
      async draw() {
        if (!Plotly || removed) return;
        if (el.clientWidth === 0 && !div.querySelector(".main-svg")) return; // drawn when it gets a width
        if (drawing) {
          pending = true;
          return;
        }
        drawing = true;
        try {
          do {
            pending = false;
            drawnWidth = el.clientWidth;
            const data = fig.data.map((t) => ({ ...t }));
            await Plotly.react(div, data, copyLayout(fig.layout), { ...(model.get("config") || {}) });
          } while (pending && !removed);
        } catch (e) {
          console.error("plotly_view: drawing failed", e);
        } finally {
          drawing = false;
        }
      },
    };

    // follow the element's width (plotly.js sizes a figure from its element when drawn)
    const observer = new ResizeObserver(() => {
      if (removed || !Plotly) return;
      const width = el.clientWidth;
      if (width === 0 || width === drawnWidth) return;
      if (!div.querySelector(".main-svg")) {
        view.draw();
      } else if (fig.layout.width == null) {
        drawnWidth = width;
        Plotly.Plots.resize(div);
      }
    });
    observer.observe(el);

    Plotly = await fig.plotly;
    fig.views.add(view);
    await view.draw();

    return () => {
      removed = true;
      observer.disconnect();
      fig.views.delete(view);
      if (Plotly) Plotly.purge(div);
    };
  },
};
