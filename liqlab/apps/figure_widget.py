"""Plotly ``FigureWidget`` classes for the dashboards, with plotly.js fetched over HTTP when served.

Stock ``FigureWidget`` carries its front-end code (plotly.js and the widget, about 5 MB) inside the
widget state, so every page view pulls it through the kernel: the kernel serialises it, the
server relays it, and the browser cannot cache it. When the apps are served by ``liqlab app``
(:mod:`liqlab.serve.voila_server`), the server publishes that file at a versioned URL and sets
:data:`BUNDLE_ENV` for its kernels; widgets made here then ship a few lines of JavaScript that
import the file from the server instead (compressed and cacheable), and their views skip
reporting the browser's computed figure state back after each update (nothing here reads it).
The served file holds only the trace types the apps draw (:mod:`liqlab.serve.served_bundle`); the views
fetch and register the others when a figure needs them.
In JupyterLab, where no such route exists, they use plotly's own front end.

Either way the classes made here send 2-D float arrays (a heatmap's ``z`` and ``customdata``) as
lists of binary rows. Stock ``FigureWidget`` sends them as nested JSON lists, which cannot hold
the NaN that marks an empty cell (jupyter_client then re-encodes the whole message, with a
warning, turning NaN into the string ``"nan"``) and which plotly.js must walk number by number.
"""

from __future__ import annotations

import functools
import json
import os

#: Trace types the apps draw (besides ``scatter``), and the function a served bundle adds to ``Plotly``
#: to register the others. (The app server no longer serves plotly's widget bundle: without
#: :data:`BUNDLE_ENV`, widgets use plotly's own front end.)
EAGER_TRACES: tuple[str, ...] = ("bar", "heatmap", "candlestick")
REGISTER_DEFERRED = "liqlabRegisterDeferred"


def bundle_file():
    """plotly's own widget bundle (plotly.js and the ``FigureWidget`` front end)."""
    from pathlib import Path

    import plotly

    return Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"

#: Environment variable holding the bundle's path below the server's base URL (set by ``liqlab app``).
BUNDLE_ENV = "LIQLAB_PLOTLY_BUNDLE"

#: The JavaScript a widget ships instead of the bundle: import it from the page's own server.
#: After every update plotly's view reports the browser's full computed figure state back to the
#: kernel (a deep merge and diff of every trace: ~15 ms per update, ~130 ms at first render, and a
#: large message). The apps never read it, so served views report only that the edit is done.
_STUB = """// plotly.js and its widget code, served over HTTP by the app server
const config = document.getElementById("jupyter-config-data");
const base = ((config && JSON.parse(config.textContent).baseUrl) || "/").replace(/\\/?$/, "/");
const bundle = await import(new URL(base + %(route)s, document.baseURI).href);
const view = bundle.FigureView && bundle.FigureView.prototype;
if (view && view._sendTraceDeltas && view._sendLayoutDelta && !view.__liqlabLight) {
  view.__liqlabLight = true;
  view._sendTraceDeltas = function (id) {
    this.model.set("_js2py_traceDeltas", {trace_deltas: [], trace_edit_id: id});
    this.touch();
  };
  view._sendLayoutDelta = function () {};
}
// The served bundle registers only the trace types the apps draw; Plotly.%(register)s()
// registers the others: at once where the bundle holds their code, else after fetching it (a
// promise). Asked for before drawing a figure holding another type; when traces of another type
// are added (this listener goes first: it is registered before plotly's view registers its own),
// the figure is redrawn once they are there.
const eager = new Set(%(eager)s);
const needsOthers = (traces) => (traces || []).some((t) => !eager.has(t.type || "scatter"));
let registered = null;
let ready = false;
const registerAll = () => {
  if (!registered) {
    const P = window.Plotly;
    registered = Promise.resolve(P && P.%(register)s ? P.%(register)s() : undefined).then(
      () => { ready = true; },
      (e) => { registered = null; console.error("plotly.js: the other trace types could not be loaded", e); });
  }
  return registered;
};
// (a factory, like plotly's: anywidget calls it once per widget)
export default async () => {
  const widget = typeof bundle.default === "function" ? await bundle.default() : bundle.default;
  return {
    ...widget,
    async render(context) {
      if (needsOthers(context.model.get("_widget_data"))) await registerAll();
      const onAdd = () => {
        const add = context.model.get("_py2js_addTraces");
        if (ready || !add || !needsOthers(add.trace_data)) return;
        registerAll().then(() => { if (ready && context.el._fullLayout) window.Plotly.redraw(context.el); });
      };
      context.model.on("change:_py2js_addTraces", onAdd);
      const cleanup = await widget.render(context);
      const el = context.el;
      // plotly's view draws as soon as it is rendered and sizes the figure from its element then; an
      // element not yet in the page has no width, and plotly falls back to 700 px for good. Follow the
      // element's width instead (when the figure's layout sets none), as plotly's Lab view does.
      const observer = new ResizeObserver(() => {
        const layout = context.model.get("_widget_layout") || {};
        if (el.isConnected && el.clientWidth > 0 && el._fullLayout && layout.width == null
            && Math.abs(el._fullLayout.width - el.clientWidth) > 1) window.Plotly.Plots.resize(el);
      });
      observer.observe(el);
      return () => {
        observer.disconnect();
        context.model.off("change:_py2js_addTraces", onAdd);
        if (typeof cleanup === "function") cleanup();
      };
    },
  };
};
"""


def stub_esm(route: str) -> str:
    """The widget front end that imports the bundle from ``route`` (relative to the base URL)."""
    return _STUB % {"route": json.dumps(route.lstrip("/")), "register": REGISTER_DEFERRED,
                    "eager": json.dumps(["scatter", *EAGER_TRACES])}


def figure_widget_class():
    """A ``FigureWidget`` subclass sending 2-D arrays as binary rows (see the module notes); it
    imports plotly.js from the app server when :data:`BUNDLE_ENV` is set.

    The class attribute ``reports_state`` says whether its views send the browser's computed
    figure state back after each update (plotly's front end does; the served stub does not).
    """
    return _widget_class(os.environ.get(BUNDLE_ENV) or None)


def to_js(value, manager=None):
    """plotly's widget serialiser, with 2-D float arrays that JSON cannot carry made to fit.

    Grids (rows of at least ``_MIN_ROW`` values) go as lists of ``float32`` rows: each row travels
    as a binary buffer and arrives as a typed array, a form of 2-D data plotly.js takes as it is,
    and NaN stays NaN (a gap). Narrow ones (per-point tuples such as ``customdata`` pairs) go as
    nested lists with NaN as ``null``, rather than as hundreds of tiny buffers.
    """
    import numpy as np
    from plotly.serializers import _py_to_js

    if isinstance(value, dict):
        return {k: to_js(v, manager) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(type(v) in _PLAIN for v in value):  # hover texts, labels: nothing to convert
            return JsonOnly(value)
        return [to_js(v, manager) for v in value]
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind == "f":
        if value.shape[1] >= _MIN_ROW:
            rows = np.ascontiguousarray(value, dtype=np.float32)
            shape = (rows.shape[1],)
            return [{"buffer": memoryview(row), "dtype": "float32", "shape": shape} for row in rows]
        return JsonOnly(np.where(np.isnan(value), None, value).tolist())
    return _py_to_js(value, manager)


_MIN_ROW = 8
_PLAIN = frozenset({str, int, float, bool, type(None)})
_BINARY = (memoryview, bytearray, bytes)


class JsonOnly(list):
    """A list :func:`to_js` made of plain JSON values only (no binary buffers anywhere inside).

    ipywidgets looks for buffers in every list of a message, element by element: for hover
    texts and per-point pairs that is ~20,000 checks per dashboard update (about 4 ms), all of them
    futile. :func:`split_buffers` skips lists of this type.
    """

    __slots__ = ()


def split_buffers(state: dict) -> tuple[dict, list, list]:
    """ipywidgets' ``_remove_buffers`` for figure-widget state: the state without its binary
    parts, their paths and the parts; :class:`JsonOnly` lists are taken as they are.
    """
    paths: list = []
    buffers: list = []

    def walk(node, path):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        out = None  # a copy, made at the first change: the input stays untouched
        for key, v in items:
            if isinstance(v, _BINARY):
                new = None
                buffers.append(v)
                paths.append([*path, key])
            elif isinstance(v, (dict, list, tuple)) and not isinstance(v, JsonOnly):
                new = walk(v, [*path, key])
                if new is v:
                    continue
            else:
                continue
            if out is None:
                out = dict(node) if isinstance(node, dict) else list(node)
            if new is None and isinstance(out, dict):
                del out[key]  # as ipywidgets: a buffer's key leaves a dict, its slot in a list is None
            else:
                out[key] = new
        return node if out is None else out

    return walk(state, []), paths, buffers


def _send_state(self, key=None) -> None:
    """``Widget.send_state`` with :func:`split_buffers` (same message, fewer checks)."""
    state = self.get_state(key=key)
    if len(state) > 0:
        if self._property_lock:  # as ipywidgets: keep the lock's values current
            for name, value in state.items():
                if name in self._property_lock:
                    self._property_lock[name] = value
        state, buffer_paths, buffers = split_buffers(state)
        self._send({"method": "update", "state": state, "buffer_paths": buffer_paths}, buffers=buffers)


@functools.lru_cache(maxsize=4)
def _widget_class(route: str | None):
    import plotly.graph_objects as go
    from plotly.serializers import _js_to_py
    from traitlets import Dict, List

    ser = {"to_json": to_js, "from_json": _js_to_py}
    # the traits that carry figure data to the browser, as plotly declares them but for to_json
    attrs = {
        "__module__": __name__,
        "send_state": _send_state,
        "_widget_data": List().tag(sync=True, **ser),
        "_widget_layout": Dict().tag(sync=True, **ser),
        **{name: Dict(allow_none=True).tag(sync=True, **ser)
           for name in ("_py2js_addTraces", "_py2js_restyle", "_py2js_update", "_py2js_animate")},
    }
    if route is None:
        return type("LiqlabFigureWidget", (go.FigureWidget,), {**attrs, "reports_state": True})
    # anywidget reads ``_esm`` when the class is made: one class per route
    return type("ServedFigureWidget", (go.FigureWidget,), {**attrs, "_esm": stub_esm(route), "reports_state": False})


def figure_widget(fig):
    """A widget of :func:`figure_widget_class` showing ``fig`` (a plotly Figure)."""
    return figure_widget_class()(fig)
