"""A plotly figure as a widget, built on anywidget's public API.

:class:`PlotlyView` holds a figure (``traces`` and ``plot_layout``, plotly's JSON form) in synced
traits. Its front end (``static/plotly_view.js``) draws it with ``Plotly.react`` from liqlab's own
plotly.js bundle (:mod:`liqlab.apps.plotly_bundle`), follows its element's width, and never sends
the browser's computed figure back.

Arrays travel as binary buffers (ipywidgets' documented custom serialisation, :func:`to_json`):

* a 1-D numeric array is one buffer (``float32``, ``float64`` and the small integer types as they
  are, 64-bit integers as ``float64``) and arrives as a typed array, which plotly.js takes as it is;
* a 2-D numeric array (a heatmap's ``z``, per-point ``customdata`` pairs) is one buffer too and
  arrives as a list of typed-array rows (views into that buffer), a form of 2-D data plotly.js
  takes as it is;
* NaN stays NaN (an empty cell, a gap) either way; a NaN or infinite number outside arrays
  becomes ``null``.

Updates (:meth:`PlotlyView.apply`) send only the trace properties and layout paths that changed, as
one custom message (``Widget.send``) with binary buffers. The traits are updated in place as well
(without a message of their own), so a page opened later (Voila) or a new view receives the
current figure, not the first one.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from liqlab.apps.plotly_bundle import TRACE_TYPES, bundle_digest, bundle_text, plotly_url

_ESM = Path(__file__).with_name("static") / "plotly_view.js"

#: dtypes sent as they are; other numeric dtypes are sent as float64 (JavaScript has no 64-bit integer arrays
#: plotly.js reads).
_TYPED = {np.dtype(t): np.dtype(t).newbyteorder("<") for t in
          ("float32", "float64", "int8", "int16", "int32", "uint8", "uint16", "uint32")}
_PLAIN = (str, int, bool, type(None))


def encode_array(value: np.ndarray):
    """One numpy array in the widget's wire form (see the module notes)."""
    if value.dtype.kind in "fiu" and value.ndim in (1, 2):
        dtype = _TYPED.get(value.dtype, np.dtype("<f8"))
        data = np.ascontiguousarray(value, dtype=dtype)
        return {"dtype": dtype.name, "shape": list(data.shape), "buffer": memoryview(data.reshape(-1))}
    return to_json(value.tolist())


def to_json(value, widget=None):
    """Figure data (dicts, lists, numpy arrays and scalars) in the widget's wire form.

    The ``to_json`` of the figure traits: numpy arrays become ``{"dtype", "shape", "buffer"}``
    objects whose ``buffer`` ipywidgets sends as a binary buffer; the rest stays JSON.
    """
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, (list, tuple)):
        if all(type(v) in _PLAIN for v in value):  # hover texts, labels: nothing to convert
            return value if isinstance(value, list) else list(value)
        return [to_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, _PLAIN):
        return value
    if hasattr(value, "isoformat"):  # dates and timestamps: plotly.js reads ISO text
        return value.isoformat()
    raise TypeError(f"cannot send a {type(value).__name__} to a plotly figure")


def split_buffers(content):
    """``content`` without its binary parts, with ``[path]`` placeholders, and the list of parts.

    For custom messages (``Widget.send(content, buffers)``): each ``buffer`` becomes the index of
    its part in the message's buffers, which the front end looks up.
    """
    buffers: list = []

    def walk(node):
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if isinstance(v, memoryview):
                    out[k] = len(buffers)
                    buffers.append(v)
                else:
                    out[k] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(content), buffers


def set_path(target: dict, path: str, value) -> None:
    """Set a dotted layout path (``"yaxis.range"``) in a nested dict, making dicts on the way."""
    *head, last = path.split(".")
    for key in head:
        nxt = target.get(key)
        if not isinstance(nxt, dict):
            nxt = target[key] = {}
        target = nxt
    target[last] = value


def from_plotly_json(value):
    """plotly's JSON form with its typed-array objects (``{"dtype", "bdata", "shape"}``, base64, as
    ``Figure.to_plotly_json`` writes numpy arrays) turned back into numpy arrays."""
    if isinstance(value, Mapping):
        if isinstance(value.get("bdata"), str) and isinstance(value.get("dtype"), str) and len(value) <= 3:
            flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]).newbyteorder("<"))
            shape = value.get("shape")
            if isinstance(shape, str):
                shape = [int(n) for n in shape.split(",")]
            return flat.reshape(shape) if shape else flat
        return {k: from_plotly_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_plotly_json(v) for v in value]
    return value


def figure_json(figure) -> dict:
    """``{"data": [...], "layout": {...}}`` of a ``go.Figure`` (``to_plotly_json``) or of such a dict,
    arrays as numpy arrays."""
    if hasattr(figure, "to_plotly_json"):
        figure = figure.to_plotly_json()
    if not isinstance(figure, Mapping):
        raise TypeError(f"expected a plotly Figure or a dict with data and layout, got {type(figure).__name__}")
    figure = from_plotly_json(dict(figure))
    data = [dict(t) for t in figure.get("data", ())]
    for t in data:
        kind = t.setdefault("type", "scatter")
        if kind not in TRACE_TYPES:
            raise ValueError(f"liqlab's plotly.js has no {kind!r} traces (it holds {', '.join(TRACE_TYPES)})")
    return {"data": data, "layout": dict(figure.get("layout", {}))}


_ser = {"to_json": to_json}


class PlotlyView(anywidget.AnyWidget):
    """A plotly figure drawn by liqlab's plotly.js bundle.

    Parameters
    ----------
    figure
        A ``plotly.graph_objects.Figure`` (read with ``to_plotly_json``) or a dict with ``data``
        and ``layout``; only the trace types of :data:`liqlab.apps.plotly_bundle.TRACE_TYPES`.
    config
        plotly.js configuration (``displaylogo``, ``scrollZoom`` ...).

    Traces are found by name in :meth:`apply` and :meth:`trace`: a trace's ``meta`` (else its ``name``).
    """

    _esm = _ESM.read_text(encoding="utf-8")

    traces = traitlets.List().tag(sync=True, **_ser)
    plot_layout = traitlets.Dict().tag(sync=True, **_ser)
    config = traitlets.Dict().tag(sync=True)
    #: the bundle's URL below the server's base URL when served, else ""
    plotly_url = traitlets.Unicode("").tag(sync=True)
    #: the bundle's text when not served (imported from a Blob URL, once per page), else ""
    plotly_source = traitlets.Unicode("").tag(sync=True)
    #: names the bundle in the page's module cache
    plotly_digest = traitlets.Unicode("").tag(sync=True)

    def __init__(self, figure=None, *, config: Mapping | None = None, **kwargs) -> None:
        fig = figure_json(figure if figure is not None else {})
        url = plotly_url()
        super().__init__(
            traces=fig["data"], plot_layout=fig["layout"],
            config={"displaylogo": False, **(config or {})},
            plotly_url=url, plotly_source="" if url else bundle_text(), plotly_digest=bundle_digest(),
            **kwargs,
        )
        self.messages_sent = 0

    def set_state(self, sync_data) -> None:
        """Ignore state sent from the page: the figure is the kernel's to set.

        The front end never sends state back, so anything arriving here is a hostile or broken
        page (a shared dashboard's visitor can send any widget message); it is dropped before
        ipywidgets decodes, applies or echoes it.
        """
        return None

    # ------------------------------------------------------------------------------------ reading
    @property
    def trace_names(self) -> list:
        """Each trace's ``meta`` (else ``name``, else None), in order."""
        return [t.get("meta", t.get("name")) for t in self.traces]

    def trace(self, name: str) -> dict:
        """The trace named ``name`` (its ``meta``, else its ``name``), as stored: arrays are numpy arrays."""
        for t, n in zip(self.traces, self.trace_names):
            if n == name:
                return t
        raise KeyError(name)

    def layout_value(self, path: str, default=None):
        """The layout value at a dotted path (``"xaxis.range"``), or ``default``."""
        node = self.plot_layout
        for key in path.split("."):
            if not isinstance(node, Mapping) or key not in node:
                return default
            node = node[key]
        return node

    # ------------------------------------------------------------------------------------ writing
    def update(self, traces: Mapping[int, Mapping] | None = None, layout: Mapping[str, object] | None = None) -> bool:
        """Change trace properties (``{index: {prop: value}}``) and layout paths (``{"a.b": value}``).

        The stored figure changes in place and one message carries the changes to the views.
        Returns whether there was anything to send.
        """
        traces = {int(i): dict(p) for i, p in (traces or {}).items() if p}
        layout = dict(layout or {})
        if not traces and not layout:
            return False
        for i in traces:
            if not 0 <= i < len(self.traces):
                raise IndexError(f"the figure has {len(self.traces)} traces, not {i + 1}")
        for i, props in traces.items():
            self.traces[i].update(props)
        for path, value in layout.items():
            set_path(self.plot_layout, path, value)
        content, buffers = split_buffers({
            "type": "update",
            "traces": [[i, to_json(p)] for i, p in sorted(traces.items())],
            "layout": to_json(layout),
        })
        self.send(content, buffers)
        self.messages_sent += 1
        return True

    def apply(self, parts: Mapping, previous: Mapping | None = None) -> bool:
        """Write figure parts (``{"traces": {name: props}, "layout": {path: value}}``) into the figure,
        sending only what differs from ``previous`` (the parts applied last time).

        Returns whether anything was sent.
        """
        from liqlab.viz.update import diff_parts

        changes, relayout = diff_parts(self.trace_names, parts, previous)
        return self.update(changes, relayout)

    def set_figure(self, figure) -> None:
        """Replace the whole figure (one state message with all of it)."""
        fig = figure_json(figure)
        with self.hold_sync():
            self.traces = fig["data"]
            self.plot_layout = fig["layout"]
