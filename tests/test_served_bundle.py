"""The plotly bundle the app server sends: trace types beyond the apps' registered later (none lost), and
the figure view's first copy of a figure made without lodash."""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading

import pytest

from liqlab.figure_widget import stub_esm
from liqlab.served_bundle import (_COPY, EAGER_TRACES, REGISTER_DEFERRED, REWRITES, bundle_file, bundle_route,
                                  defer_registration, fast_first_copy, served_bundle)
from tests.voila_server import chromium_browser

_CORE = 'K=ye({"lib/core.js"(e,r){r.exports={}}}),'
_MODULES = ('A=ye({"lib/bar.js"(e,r){}}),B=ye({"lib/box.js"(e,r){}}),C=ye({"lib/heatmap.js"(e,r){}}),'
            'D=ye({"lib/candlestick.js"(e,r){}}),$e=ye({"lib/calendars.js"(e,r){}}),')
_INDEX = 'I=ye({"lib/index.js"(e,r){var t=K();t.register([A(),B(),C(),D(),$e()]),r.exports=t}});'


def test_defer_registration_on_a_hand_made_bundle():
    out = defer_registration(_CORE + _MODULES + _INDEX)
    expected = (
        "(function(d){t.register([A(),C(),D()]);"
        f"t.{REGISTER_DEFERRED}=function(){{if(d){{var l=d;d=null;t.register(l.map(function(f){{return f()}}))}}}}}})"
        "([B,$e])"
    )
    assert out == _CORE + _MODULES + _INDEX.replace("t.register([A(),B(),C(),D(),$e()])", expected)
    # a chosen eager set, kept in plotly's order
    assert "t.register([D(),A()])" not in defer_registration(_CORE + _MODULES + _INDEX, ("candlestick", "bar"))
    assert "t.register([A(),D()])" in defer_registration(_CORE + _MODULES + _INDEX, ("candlestick", "bar"))


@pytest.mark.parametrize("source", [
    "",
    _CORE + _MODULES + _INDEX.replace("var t=K();", "var t=K(),u=0;"),  # another form of lib/index.js
    _CORE + _MODULES.replace('"lib/heatmap.js"', '"lib/image.js"') + _INDEX,  # an eager type missing
    _CORE + _MODULES.replace("B=ye(", "Q=ye(") + _INDEX,  # a registered module not defined
])
def test_defer_registration_refuses_what_it_does_not_recognise(source):
    assert defer_registration(source) is None


def _register_call(source: str) -> tuple[list[str], list[str]]:
    """(modules registered at once, modules deferred) in the served bundle's index."""
    m = re.search(r"\(function\(d\)\{t\.register\(\[([^\]]*)\]\);.*?\}\)\(\[([^\]]*)\]\)", source)
    assert m, "the rewritten registration is in the bundle"
    defined = dict(re.findall(r'([\w$]+)=[\w$]+\(\{"lib/([\w-]+)\.js"', source))
    return ([defined[c[:-2]] for c in m.group(1).split(",")], [defined[f] for f in m.group(2).split(",")])


def test_the_served_bundle_registers_every_plotly_type_once():
    original = bundle_file().read_text(encoding="utf-8")
    calls = re.search(r'"lib/index\.js"\(e,r\)\{var t=[\w$]+\(\);t\.register\(\[([^\]]*)\]\)', original).group(1)
    defined = dict(re.findall(r'([\w$]+)=[\w$]+\(\{"lib/([\w-]+)\.js"', original))
    every = [defined[c[:-2]] for c in calls.split(",")]
    served = defer_registration(original)
    now, later = _register_call(served)
    assert sorted(now) == sorted(EAGER_TRACES)
    assert sorted(now + later) == sorted(every) and len(every) > 40
    assert later == [m for m in every if m not in EAGER_TRACES]  # plotly's order
    # nothing else changed
    start = served.index("(function(d){t.register(")
    assert served[:start] == original[:start]
    assert served.endswith(original[original.index(",r.exports=t}", start):])
    # the bundle served is this, with the other rewrite; the route names its bytes
    assert served_bundle() == fast_first_copy(served).encode("utf-8")
    assert re.fullmatch(r"liqlab/static/plotly-widget-[\d.]+-[0-9a-f]{12}\.js", bundle_route())


class _Files(http.server.BaseHTTPRequestHandler):
    """A page, the stub and the served bundle, on 127.0.0.1."""

    def do_GET(self):
        files = self.server.files
        if self.path not in files:
            self.send_error(404)
            return
        body, kind = files[self.path]
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


_PAGE = b"""<!doctype html><html><head>
<script id="jupyter-config-data" type="application/json">{"baseUrl": "/"}</script></head>
<body><div id="a" style="width:600px"></div><div id="b" style="width:600px"></div></body></html>"""

# a model as anywidget hands one to a front end: get, set, on, save_changes
_RENDER = """async ([id, data, stubUrl]) => {
  const stub = await import(stubUrl || '/stub.js');
  const widget = await stub.default();
  const state = {_widget_data: data, _widget_layout: {height: 300}, _config: {},
                 _last_layout_edit_id: 0, _last_trace_edit_id: 0};
  const handlers = {};
  const model = {get: (k) => state[k], set: (k, v) => { state[k] = v; },
                 on: (e, f) => { (handlers[e] = handlers[e] || []).push(f); }, save_changes: () => {}};
  widget.initialize && widget.initialize({model});
  const types = () => Object.keys(window.Plotly.PlotSchema.get().traces).sort();
  const before = types();
  widget.render({model, el: document.getElementById(id)});
  return {before, after: types()};
}"""


@pytest.fixture(scope="module")
def site():
    """(browser, URL of the page)."""
    with chromium_browser() as browser:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
        server.files = {
            "/": (_PAGE, "text/html"),
            "/bundle.js": (served_bundle(), "text/javascript"),
            "/stub.js": (stub_esm("bundle.js").encode(), "text/javascript"),
            # plotly's file as it is: what a plotly release the rewrites do not match gets
            "/plain.js": (bundle_file().read_bytes(), "text/javascript"),
            "/stub-plain.js": (stub_esm("plain.js").encode(), "text/javascript"),
        }
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield browser, f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()


@pytest.fixture()
def page(site):
    browser, url = site
    page = browser.new_page()
    page.goto(url)
    yield page
    page.close()


def test_in_the_browser_types_beyond_the_apps_wait_and_then_all_arrive(page):
    eager = sorted(["scatter", *EAGER_TRACES])
    # a figure of the apps' types: drawn without registering the others first
    seen = page.evaluate(_RENDER, ["a", [{"type": "heatmap", "z": [[1, 2], [3, 4]]},
                                         {"type": "candlestick", "x": [1, 2], "open": [1, 2], "high": [2, 3],
                                          "low": [0, 1], "close": [2, 1]}]])
    assert seen["before"] == eager and seen["after"] == eager
    page.wait_for_function("() => (document.getElementById('a')._fullData || []).length === 2")
    assert page.evaluate("() => document.getElementById('a')._fullData.map(t => t.type)") == ["heatmap", "candlestick"]
    # then, once the page is idle, every other type
    page.wait_for_function("() => Object.keys(Plotly.PlotSchema.get().traces).length > 40")
    assert "scatter3d" in page.evaluate("() => Object.keys(Plotly.PlotSchema.get().traces)")


def test_in_the_browser_a_figure_of_another_type_registers_all_first(page):
    seen = page.evaluate(_RENDER, ["b", [{"type": "pie", "values": [1, 2]}, {"type": "bar", "y": [1]}]])
    assert seen["before"] == sorted(["scatter", *EAGER_TRACES])
    assert "pie" in seen["after"] and len(seen["after"]) > 40
    page.wait_for_function("() => (document.getElementById('b')._fullData || []).length === 2")
    assert page.evaluate("() => document.getElementById('b')._fullData.map(t => t.type)") == ["pie", "bar"]
    # and calling it again changes nothing
    n = page.evaluate(f"() => {{ Plotly.{REGISTER_DEFERRED}(); return Object.keys(Plotly.PlotSchema.get().traces).length; }}")
    assert n == len(seen["after"])


_VIEW = ('perform_render(){this.viewID=RQ();var mt=qs.cloneDeep(this.model.get("_widget_data")),'
         'Lt=qs.cloneDeep(this.model.get("_widget_layout"));Lt.height||(Lt.height=360)}')


def test_fast_first_copy_on_a_hand_made_view():
    out = fast_first_copy(_VIEW)
    copy = f"({_COPY})"
    assert out == ('perform_render(){this.viewID=RQ();'
                   f'var mt={copy}(this.model.get("_widget_data")),Lt={copy}(this.model.get("_widget_layout"));'
                   'Lt.height||(Lt.height=360)}')
    assert fast_first_copy(_VIEW.replace("Lt=qs.", "Lt=_.")) is None  # another library for the layout
    assert fast_first_copy("") is None


def test_the_served_bundle_has_every_rewrite():
    served = served_bundle().decode("utf-8")
    assert 'cloneDeep(this.model.get("_widget_data"))' in bundle_file().read_text(encoding="utf-8")
    assert 'cloneDeep(this.model.get("_widget_data"))' not in served
    assert served.count(_COPY) == 2
    assert all(rewrite(served) is None for rewrite in REWRITES)  # each applied, once


def test_in_the_browser_the_first_copy_is_a_deep_copy(page):
    same, independent = page.evaluate(f"""() => {{
      const copy = {_COPY};
      const rows = [new Float32Array([1, NaN, 3]), new Float64Array([4, 5])];
      const v = {{a: [1, "x", null, {{b: rows, d: new DataView(new Uint8Array([7, 8]).buffer)}}], e: true, f: 2.5}};
      const c = copy(v);
      const same = JSON.stringify(c, (k, x) => ArrayBuffer.isView(x) && !(x instanceof DataView) ? Array.from(x) : x)
                   === JSON.stringify(v, (k, x) => ArrayBuffer.isView(x) && !(x instanceof DataView) ? Array.from(x) : x)
                   && c.a[3].b[0] instanceof Float32Array && Number.isNaN(c.a[3].b[0][1])
                   && c.a[3].d.getUint8(1) === 8;
      c.a[3].b[0][0] = 99; c.a[3].d.setUint8(0, 0); c.a[0] = 42;
      const independent = rows[0][0] === 1 && v.a[3].d.getUint8(0) === 7 && v.a[0] === 1;
      return [same, independent];
    }}""")
    assert same and independent


def test_in_the_browser_the_stub_works_with_plotlys_file_as_it_is(page):
    seen = page.evaluate(_RENDER, ["a", [{"type": "heatmap", "z": [[1, 2], [3, 4]]}, {"type": "pie", "values": [1]}],
                                   "/stub-plain.js"])
    assert len(seen["before"]) > 40 and seen["after"] == seen["before"]  # everything registered from the start
    page.wait_for_function("() => (document.getElementById('a')._fullData || []).length === 2")
    assert page.evaluate("() => document.getElementById('a')._fullData.map(t => t.type)") == ["heatmap", "pie"]
    assert page.evaluate(f"() => typeof Plotly.{REGISTER_DEFERRED}") == "undefined"
