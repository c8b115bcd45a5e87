"""The figure widget's front end (``liqlab/apps/static/plotly_view.js``) in headless Chromium, outside Jupyter.

A static test page (``tests/harness/plotly_view.html``) imports the ES module with a stand-in for
anywidget's model; the states and messages it receives are the ones :class:`PlotlyView` makes.
"""

from __future__ import annotations

import base64
import http.server
import threading
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from liqlab.apps.plotly_bundle import PLOTLY_URL_ENV, bundle_path
from liqlab.apps.plotly_view import PlotlyView, split_buffers
from tests.voila_server import CHROMIUM, chromium_browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian chromium not installed at {CHROMIUM}"),
]

HERE = Path(__file__).resolve().parent
STATIC = bundle_path().parent


class Recording(PlotlyView):
    """A PlotlyView keeping the custom messages it sends."""

    def send(self, content, buffers=None):
        self.sent = [*getattr(self, "sent", []), (content, list(buffers or []))]
        super().send(content, buffers)


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list

    def translate_path(self, path):
        path = path.split("?")[0]
        if path in ("/", "/index.html"):
            return str(HERE / "harness" / "plotly_view.html")
        for prefix in ("/base/static/", "/static/"):
            if path.startswith(prefix):
                return str(STATIC / path[len(prefix):])
        return str(HERE / "harness" / "missing")

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    requests: list[str] = []
    handler = type("Handler", (_Handler,), {"requests": requests,
                                            "extensions_map": {".js": "text/javascript", ".html": "text/html"}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def chromium():
    with chromium_browser() as browser:
        yield browser


@pytest.fixture
def page(chromium, site):
    url, requests = site
    requests.clear()
    context = chromium.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.goto(url + "/")
    page.wait_for_function("() => window.harnessReady === true")
    yield page
    context.close()


def _wire(content, buffers):
    return content, [base64.b64encode(bytes(b)).decode() for b in buffers]


def new_model(page, view) -> int:
    """A model in the page holding the state ``view`` sends now (what a page opened now would get)."""
    state, buffers = _wire(*split_buffers(view.get_state()))
    return page.evaluate("([s, b]) => window.harness.newModel(s, b)", [state, buffers])


def render(page, model: int, width: int) -> int:
    v = page.evaluate("([m, w]) => window.harness.render(m, w)", [model, width])
    page.wait_for_function("v => { const p = window.harness.plot(v); return !!(p && p.querySelector('.main-svg')); }",
                           arg=v, timeout=20_000)
    return v


def svg_width(page, v: int) -> int:
    return page.evaluate("v => +window.harness.plot(v).querySelector('.main-svg').getAttribute('width')", v)


def figure():
    z = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, np.nan]], dtype=np.float32)
    return go.Figure([
        go.Heatmap(z=z, x=np.array([0.0, 1.0, 2.0]), y=np.array([10.0, 20.0]), meta="grid"),
        go.Scatter(x=np.array([0.0, 1.0, 2.0]), y=np.array([1.5, np.nan, 2.5]), meta="line"),
    ], layout=dict(height=320, margin=dict(l=40, r=10, t=10, b=30)))


def test_inline_figure_draws_binary_arrays_and_follows_its_width(page, site, monkeypatch):
    monkeypatch.delenv(PLOTLY_URL_ENV, raising=False)
    view = PlotlyView(figure())
    m = new_model(page, view)
    v = render(page, m, 700)
    got = page.evaluate("""v => { const d = window.harness.plot(v).data;
        return {rows: d[0].z.map(r => r.constructor.name), z: d[0].z.map(r => Array.from(r, x => Number.isNaN(x) ? 'NaN' : x)),
                y: Array.from(d[1].y, x => Number.isNaN(x) ? 'NaN' : x), ytype: d[1].y.constructor.name}; }""", v)
    assert got == {"rows": ["Float32Array", "Float32Array"], "z": [[1, "NaN", 3], [4, 5, "NaN"]],
                   "y": [1.5, "NaN", 2.5], "ytype": "Float64Array"}
    assert svg_width(page, v) == 700
    page.evaluate("() => { document.querySelector('.view').style.width = '520px'; }")
    page.wait_for_function("v => +window.harness.plot(v).querySelector('.main-svg').getAttribute('width') === 520",
                           arg=v, timeout=10_000)
    # a second figure on the page imports the bundle (sent inline) once: one module per digest
    m2 = new_model(page, PlotlyView(figure()))
    render(page, m2, 400)
    assert page.evaluate("() => Object.keys(globalThis.liqlabPlotly)") == [view.plotly_digest]
    assert page.evaluate("() => window.harness.models.map(m => m.sentBack.length)") == [0, 0]
    assert page.evaluate("() => window.harness.errors") == []
    _, requests = site
    assert not any("plotly-liqlab" in r for r in requests), requests


def test_an_update_redraws_what_changed_and_a_later_view_gets_the_current_figure(page, monkeypatch):
    monkeypatch.delenv(PLOTLY_URL_ENV, raising=False)
    view = Recording(figure())
    m = new_model(page, view)
    v = render(page, m, 600)
    page.evaluate("v => { window.keptZ = window.harness.plot(v).data[0].z; }", v)
    first = {"traces": {"grid": {"z": figure().data[0].z}, "line": {"y": np.array([1.5, np.nan, 2.5])}},
             "layout": {"yaxis.range": [0, 30]}}
    second = {"traces": {"grid": {"z": figure().data[0].z}, "line": {"y": np.array([7.0, 8.0, 9.0])}},
              "layout": {"yaxis.range": [0, 30], "xaxis.range": [-1, 3]}}
    assert view.apply(second, first)
    (content, buffers), = view.sent
    assert content == {"type": "update", "traces": [[1, {"y": {"dtype": "float64", "shape": [3], "buffer": 0}}]],
                       "layout": {"xaxis.range": [-1, 3]}}
    assert [bytes(b) for b in buffers] == [np.array([7.0, 8.0, 9.0], "<f8").tobytes()]
    page.evaluate("([m, c, b]) => window.harness.message(m, c, b)", [m, *_wire(content, buffers)])
    page.wait_for_function("v => Array.from(window.harness.plot(v).data[1].y).join() === '7,8,9'", arg=v,
                           timeout=10_000)
    assert page.evaluate("""v => { const p = window.harness.plot(v);
        return [p.data[0].z === window.keptZ, p.layout.xaxis.range]; }""", v) == [True, [-1, 3]]
    # another view of the same model draws the current figure, not the one the model started with
    v2 = render(page, m, 500)
    assert page.evaluate("v => Array.from(window.harness.plot(v).data[1].y)", v2) == [7, 8, 9]
    # and so does a page opened now (the state the kernel sends holds the current figure)
    v3 = render(page, new_model(page, view), 500)
    assert page.evaluate("v => [Array.from(window.harness.plot(v).data[1].y), window.harness.plot(v).layout.xaxis.range]",
                         v3) == [[7, 8, 9], [-1, 3]]
    assert page.evaluate("() => window.harness.models.map(m => m.sentBack.length)") == [0, 0]


def test_served_figures_import_the_bundle_from_the_base_url_once(page, site, monkeypatch):
    monkeypatch.setenv(PLOTLY_URL_ENV, "static/plotly-liqlab.js?v=1")
    views = [PlotlyView(figure()), PlotlyView(figure())]
    assert [(w.plotly_url, w.plotly_source) for w in views] == [("static/plotly-liqlab.js?v=1", "")] * 2
    for w in views:
        render(page, new_model(page, w), 500)
    _, requests = site
    assert [r for r in requests if "plotly-liqlab" in r] == ["/base/static/plotly-liqlab.js?v=1"]
    assert page.evaluate("() => globalThis.liqlabPlotly === undefined")
