"""The plotly bundle the app server sends: the apps' trace types at once, the others fetched when a figure
needs them (none lost), the single-file fallback, the disk cache, and the figure view's first copy of a
figure made without lodash."""

from __future__ import annotations

import http.server
import re
import threading

import pytest

import liqlab.serve.served_bundle as served_bundle_module
from liqlab.serve import bundle_split
from liqlab.serve.bundle_split import split_bundle
from liqlab.serve.served_bundle import (_COPY, EAGER_TRACES, REGISTER_DEFERRED, bundle_file, bundle_route, deferred_bundle,
                                  deferred_route, defer_registration, fast_first_copy, make_served_files,
                                  served_bundle, served_files)
from liqlab.apps.figure_widget import stub_esm
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
    """(modules registered at once, modules deferred) in the single-file fallback's index."""
    m = re.search(r"\(function\(d\)\{t\.register\(\[([^\]]*)\]\);.*?\}\)\(\[([^\]]*)\]\)", source)
    assert m, "the rewritten registration is in the bundle"
    defined = dict(re.findall(r'([\w$]+)=[\w$]+\(\{"lib/([\w-]+)\.js"', source))
    return ([defined[c[:-2]] for c in m.group(1).split(",")], [defined[f] for f in m.group(2).split(",")])


def test_the_single_file_fallback_registers_every_plotly_type_once():
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


def test_the_served_files_are_plotlys_file_copied_fast_and_split():
    files = served_files()
    split = split_bundle(fast_first_copy(bundle_file().read_text(encoding="utf-8")), EAGER_TRACES, REGISTER_DEFERRED)
    assert files == (split.main.encode("utf-8"), split.deferred.encode("utf-8"))
    assert served_bundle() == files.main and deferred_bundle() == files.deferred
    # the routes name the bytes; the deferred part sits where the served bundle looks for it
    assert re.fullmatch(r"liqlab/static/plotly-widget-[\d.]+-[0-9a-f]{12}\.js", bundle_route())
    assert deferred_route() == bundle_route().removesuffix(".js") + "-deferred.js"


def test_without_a_split_the_single_file_is_served(monkeypatch):
    monkeypatch.setattr(bundle_split, "split_bundle", lambda *args: None)
    source = bundle_file().read_text(encoding="utf-8")
    files = make_served_files(source)
    assert files.deferred is None
    assert files.main == defer_registration(fast_first_copy(source)).encode("utf-8")
    # and a bundle none of the rewrites recognise is served as it is
    assert make_served_files("export default {};") == (b"export default {};", None)


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder; served_files computed anew (and again after the test)."""
    monkeypatch.setenv("LIQLAB_CACHE_DIR", str(tmp_path / "cache"))
    made = []

    def make(source):
        made.append(len(source))
        return served_bundle_module.ServedFiles(b"main " + str(len(made)).encode(), b"deferred")

    monkeypatch.setattr(served_bundle_module, "make_served_files", make)
    served_files.cache_clear()
    yield tmp_path / "cache", made
    served_files.cache_clear()
    bundle_route.cache_clear()


def test_the_served_files_are_made_once_and_kept_on_disk(fresh_cache):
    folder, made = fresh_cache
    assert not served_bundle_module.served_files_cached()
    assert served_files() == (b"main 1", b"deferred") and len(made) == 1
    assert served_bundle_module.served_files_cached()
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 2 and kept[0].endswith("-deferred.js") and not any(p.endswith(".tmp") for p in kept)
    served_files.cache_clear()  # a new process: read from disk
    assert served_files() == (b"main 1", b"deferred") and len(made) == 1
    # a main file missing (a write cut short) is made again
    next(p for p in folder.iterdir() if not p.name.endswith("-deferred.js")).unlink()
    served_files.cache_clear()
    assert served_files() == (b"main 2", b"deferred") and len(made) == 2


def test_a_cache_that_cannot_be_written_is_skipped(fresh_cache, monkeypatch, caplog):
    folder, made = fresh_cache
    folder.parent.mkdir(exist_ok=True)
    folder.write_text("a file where the folder should be")
    assert served_files() == (b"main 1", b"deferred")
    assert "could not keep the served plotly bundle" in caplog.text
    assert folder.read_text() == "a file where the folder should be"


class _Files(http.server.BaseHTTPRequestHandler):
    """A page, the stubs and the bundles, on 127.0.0.1; requests are recorded."""

    def do_GET(self):
        files = self.server.files
        self.server.requests.append(self.path)
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


_PAGE = b"""<!doctype html><html><head><link rel="icon" href="data:,">
<script id="jupyter-config-data" type="application/json">{"baseUrl": "/"}</script></head>
<body><div id="a" style="width:600px"></div><div id="b" style="width:600px"></div></body></html>"""

# a model as anywidget hands one to a front end (get, set, on, off, save_changes), kept in
# window.models so a test can send it a message
_RENDER = """async ([id, data, stubUrl]) => {
  const stub = await import(stubUrl || '/stub.js');
  const widget = await stub.default();
  const state = {_widget_data: data, _widget_layout: {height: 300}, _config: {},
                 _last_layout_edit_id: 0, _last_trace_edit_id: 0};
  const handlers = {};
  const model = {get: (k) => state[k], set: (k, v) => { state[k] = v; },
                 on: (e, f) => { (handlers[e] = handlers[e] || []).push(f); },
                 off: (e, f) => { handlers[e] = (handlers[e] || []).filter((g) => g !== f); },
                 save_changes: () => {}};
  (window.models = window.models || {})[id] = {state, handlers};
  widget.initialize && widget.initialize({model});
  const types = () => Object.keys(window.Plotly.PlotSchema.get().traces).sort();
  const before = types();
  await widget.render({model, el: document.getElementById(id)});
  return {before, after: types()};
}"""

# the model receives traces to add, as plotly's FigureWidget sends them
_ADD = """([id, traces]) => {
  const {state, handlers} = window.models[id];
  state._py2js_addTraces = {trace_data: traces, trace_edit_id: 1, layout_edit_id: 1};
  (handlers["change:_py2js_addTraces"] || []).forEach((f) => f());
}"""

_EAGER = sorted(["scatter", *EAGER_TRACES])
_APPS_FIGURE = [{"type": "heatmap", "z": [[1, 2], [3, 4]]},
                {"type": "candlestick", "x": [1, 2], "open": [1, 2], "high": [2, 3], "low": [0, 1], "close": [2, 1]}]


@pytest.fixture(scope="module")
def site():
    """(browser, URL of the page, server): the split bundle, the single-file fallback, plotly's own file."""
    files = served_files()
    fallback = defer_registration(fast_first_copy(bundle_file().read_text(encoding="utf-8"))).encode("utf-8")
    with chromium_browser() as browser:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
        server.requests = []
        server.files = {
            "/": (_PAGE, "text/html"),
            "/bundle.js": (files.main, "text/javascript"),
            "/bundle-deferred.js": (files.deferred, "text/javascript"),
            "/stub.js": (stub_esm("bundle.js").encode(), "text/javascript"),
            # the split bundle, its deferred part missing
            "/lost.js": (files.main, "text/javascript"),
            "/stub-lost.js": (stub_esm("lost.js").encode(), "text/javascript"),
            # one file: what is served where the split cannot be made
            "/single.js": (fallback, "text/javascript"),
            "/stub-single.js": (stub_esm("single.js").encode(), "text/javascript"),
            # plotly's file as it is: what a plotly release no rewrite matches gets
            "/plain.js": (bundle_file().read_bytes(), "text/javascript"),
            "/stub-plain.js": (stub_esm("plain.js").encode(), "text/javascript"),
        }
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield browser, f"http://127.0.0.1:{server.server_address[1]}/", server
        finally:
            server.shutdown()


@pytest.fixture()
def page(site):
    browser, url, server = site
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors
    page.goto(url)
    server.requests.clear()
    yield page
    page.close()


def _drawn(page, id: str) -> list[str]:
    """Types of the traces plotly drew in element ``id`` (visible ones: an unknown type is hidden)."""
    page.wait_for_function(f"() => (document.getElementById('{id}')._fullData || []).length > 0")
    return page.evaluate(f"() => document.getElementById('{id}')._fullData.filter(t => t.visible !== false)"
                         ".map(t => t.type)")


def test_in_the_browser_the_apps_figures_need_only_the_main_part(page, site):
    server = site[2]
    seen = page.evaluate(_RENDER, ["a", _APPS_FIGURE])
    assert seen["before"] == _EAGER and seen["after"] == _EAGER
    assert _drawn(page, "a") == ["heatmap", "candlestick"]
    assert server.requests == ["/stub.js", "/bundle.js"]  # the other types' code never fetched
    assert not page.errors


def test_in_the_browser_a_figure_of_another_type_fetches_the_rest_first(page, site):
    server = site[2]
    seen = page.evaluate(_RENDER, ["b", [{"type": "pie", "values": [1, 2]}, {"type": "bar", "y": [1]}]])
    assert seen["before"] == _EAGER
    assert "pie" in seen["after"] and "scatter3d" in seen["after"] and len(seen["after"]) > 40
    assert _drawn(page, "b") == ["pie", "bar"]
    assert page.evaluate("() => document.querySelectorAll('#b .slice').length") == 2
    # asked again: the same promise, nothing fetched again
    n = page.evaluate(f"async () => {{ await Plotly.{REGISTER_DEFERRED}(); await Plotly.{REGISTER_DEFERRED}();"
                      " return Object.keys(Plotly.PlotSchema.get().traces).length; }")
    assert n == len(seen["after"])
    assert server.requests.count("/bundle-deferred.js") == 1
    assert not page.errors


def test_in_the_browser_traces_of_another_type_added_later_are_drawn(page, site):
    page.evaluate(_RENDER, ["a", _APPS_FIGURE])
    assert _drawn(page, "a") == ["heatmap", "candlestick"]
    page.evaluate(_ADD, ["a", [{"type": "pie", "values": [3, 1, 2], "domain": {"x": [0, 0.3]}}]])
    # added while unknown (hidden), then the figure is redrawn with the type registered
    page.wait_for_function("() => document.querySelectorAll('#a .slice').length === 3")
    assert _drawn(page, "a") == ["heatmap", "candlestick", "pie"]
    assert site[2].requests.count("/bundle-deferred.js") == 1
    assert not page.errors


def test_in_the_browser_a_missing_deferred_part_is_reported_and_the_rest_drawn(page):
    page.evaluate(_RENDER, ["a", [{"type": "pie", "values": [1, 2]}, {"type": "bar", "y": [1]}], "/stub-lost.js"])
    assert _drawn(page, "a") == ["bar"]
    assert any("other trace types could not be loaded" in e for e in page.errors)


def test_in_the_browser_the_single_file_fallback_registers_at_once(page, site):
    seen = page.evaluate(_RENDER, ["a", _APPS_FIGURE, "/stub-single.js"])
    assert seen["before"] == _EAGER and seen["after"] == _EAGER
    seen = page.evaluate(_RENDER, ["b", [{"type": "pie", "values": [1, 2]}, {"type": "bar", "y": [1]}],
                                   "/stub-single.js"])
    assert len(seen["after"]) > 40 and _drawn(page, "b") == ["pie", "bar"]
    assert not any("deferred" in r for r in site[2].requests)


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


def test_the_served_bundle_has_the_fast_first_copy():
    served = served_bundle().decode("utf-8")
    assert 'cloneDeep(this.model.get("_widget_data"))' in bundle_file().read_text(encoding="utf-8")
    assert 'cloneDeep(this.model.get("_widget_data"))' not in served
    assert served.count(_COPY) == 2
    assert fast_first_copy(served) is None  # applied, once


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
    assert _drawn(page, "a") == ["heatmap", "pie"]
    assert page.evaluate(f"() => typeof Plotly.{REGISTER_DEFERRED}") == "undefined"
