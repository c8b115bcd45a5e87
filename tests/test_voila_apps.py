"""Real-browser tests of every published app, served by ``liqlab app`` (Voila) to headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from liqlab.serve.published import PUBLISHED, app_url
from liqlab.serve.voila_config import plotly_bundle, plotly_url
from tests.voila_server import CHROMIUM, chromium_browser, serve_apps


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian chromium not installed at {CHROMIUM}"),
]

# fingerprint of the heatmap as the browser holds it: the coarse hover trace and the image source
FINGERPRINT = """() => {
  const el = document.querySelector('.js-plotly-plot');
  if (!el || !el.data || !el.layout) return null;
  const hm = el.data.find(t => t.type === 'heatmap');
  if (!hm || !hm.z) return null;
  let s = 0, n = 0;  // z is a list of rows (typed arrays)
  for (const row of hm.z) for (const v of row) if (v !== null && v === v) { s += v; n++; }
  const src = ((el.layout.images || [])[0] || {}).source || '';
  return [hm.z.length, n, s, hm.y && hm.y.length ? hm.y[0] : 0, src.length, src.slice(-48)].join('|');
}"""
# drawn: the heatmap image in the layout and on screen, the coarse hover heatmap with data, the colour legend
RENDERED = """() => {
  const el = document.querySelector('.js-plotly-plot');
  if (!el || !el.data || !el.layout) return false;
  const src = ((el.layout.images || [])[0] || {}).source || '';
  const img = el.querySelector('g.imagelayer image');
  return src.startsWith('data:image/png;base64,') && !!img && img.getAttribute('href') === src
         && el.data.some(t => t.type === 'heatmap' && t.z && t.z.length)
         && !!document.querySelector('.liqlab-legend .liqlab-legend-title');
}"""
# page position of the hover heatmap's largest cell, from the figure's public layout (its axis ranges)
# and the subplot's drag rectangle on screen
LARGEST_CELL = """() => {
  const el = document.querySelector('.js-plotly-plot');
  const hm = el.data.find(t => t.type === 'heatmap');
  let best = [-1, 0, 0];
  hm.z.forEach((row, r) => row.forEach((v, c) => { if (v === v && v !== null && v > best[0]) best = [v, r, c]; }));
  const xid = hm.xaxis || 'x', yid = hm.yaxis || 'y';
  const num = v => typeof v === 'number' ? v : Date.parse(String(v).replace(' ', 'T') + 'Z');
  const [x0, x1] = el.layout['xaxis' + xid.slice(1)].range.map(num);
  const [y0, y1] = el.layout['yaxis' + yid.slice(1)].range.map(num);
  const box = el.querySelector(`.draglayer .${xid}${yid} .nsewdrag`).getBoundingClientRect();
  const x = num(hm.x[best[2]]), y = hm.y[best[1]];
  return [box.left + (x - x0) / (x1 - x0) * box.width, box.top + (1 - (y - y0) / (y1 - y0)) * box.height];
}"""
ANY_PLOT = "() => { const el = document.querySelector('.js-plotly-plot'); return !!(el && el.data && el.data.length); }"


@pytest.fixture(scope="module")
def bundle():
    """The apps' own plotly.js bundle, as the package ships it."""
    path = plotly_bundle()
    assert path.is_file(), f"{path} is missing: run `make bundle`"
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory, bundle):
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with serve_apps(log, tmp_path_factory.mktemp("exports"), "--plotly-bundle", str(bundle)) as base:
        yield base


@pytest.fixture(scope="module")
def chromium():
    with chromium_browser() as browser:
        yield browser


def open_app(chromium, server, name, sockets=None, requests=None):
    context = chromium.new_context(viewport={"width": 1500, "height": 1250})
    page = context.new_page()
    if sockets is not None:
        page.on("websocket", lambda ws: sockets.append(ws.url))
    if requests is not None:
        page.on("request", lambda r: requests.append(r.url))
    page.goto(app_url(server, name), timeout=150_000)  # the first visit may wait for a kernel pool to fill
    page.wait_for_function(ANY_PLOT, timeout=120_000)
    page.wait_for_timeout(300)
    return context, page


def change_and_wait(page, action, timeout=30_000) -> str:
    before = page.evaluate(FINGERPRINT)
    action()
    page.wait_for_function(f"prev => ({FINGERPRINT})() !== prev", arg=before, timeout=timeout)
    return page.evaluate(FINGERPRINT)


def status_text(page) -> str:
    return page.inner_text(".liqlab-status")


@pytest.mark.parametrize("name", PUBLISHED)
def test_app_renders_and_reacts(server, chromium, artifacts, bundle, name):
    requests: list[str] = []
    url = plotly_url(bundle.read_bytes())
    context, page = open_app(chromium, server, name, requests=requests)
    stem = Path(name).stem
    try:
        # plotly.js is started from the page's head, from the template's static folder: one fetch
        page.wait_for_function(ANY_PLOT, timeout=30_000)
        assert page.evaluate("""r => [...document.head.querySelectorAll('script[type=module][async]')]
                                    .some(s => s.src === r)""", f"{server}/{url}")
        assert sum(u == f"{server}/{url}" for u in requests) == 1, [u for u in requests if "plotly" in u]
        # the figure fills its element (plotly falls back to 700 px for one drawn before it had a width)
        page.wait_for_function("""() => { const el = document.querySelector('.js-plotly-plot');
            const svg = el.querySelector('.main-svg');
            return !!svg && Math.abs(+svg.getAttribute('width') - el.clientWidth) <= 1 && el.clientWidth > 800; }""",
                               timeout=10_000)
        assert not any("jupyterlab_pygments" in u or "jupyterlab-plotly" in u for u in requests)
        # nothing from a third party (Voila's lab template links Font Awesome from a CDN; ours does not)
        assert requests and all(u.startswith((server, "data:", "blob:")) for u in requests), \
            [u for u in requests if not u.startswith((server, "data:", "blob:"))]
        # and the widgets' icons still have their font, served by the app
        page.wait_for_function("""() => { const fam = getComputedStyle(document.querySelector('.fa')).fontFamily
                                              .split(',')[0].replace(/["']/g, '').trim();
            return [...document.fonts].some(f => f.family.replace(/["']/g, '') === fam && f.status === 'loaded'); }""",
                               timeout=10_000)
        html = page.content()
        for code in ("from liqlab", "import ", "Dashboard(", "assert "):
            assert code not in html, f"source code {code!r} visible in the page"
        assert "Traceback" not in page.inner_text("body")
        if not page.query_selector(".liqlab-dashboard"):
            pytest.skip(f"{name} is not a liqlab Dashboard app; its own browser test drives it")
        page.wait_for_function(RENDERED, timeout=30_000)
        page.wait_for_function("() => document.querySelector('.liqlab-status').innerText.includes('Source:')")
        page.screenshot(path=str(artifacts / f"{stem}_1_initial.png"), full_page=True)
        assert "Source: bundled sample" in status_text(page)

        tiers = page.query_selector(".liqlab-tiers")
        if tiers is not None:  # the tier sliders are drawn when their panel first opens
            assert not page.query_selector_all(".liqlab-tiers .widget-slider")
            page.click(".liqlab-tiers >> text=Leverage tiers (per side)")
            page.wait_for_function("() => document.querySelectorAll('.liqlab-tiers .widget-slider').length >= 10")
            page.click(".liqlab-tiers >> text=Leverage tiers (per side)")
        change_and_wait(page, lambda: page.select_option(".liqlab-preset select", label="degen"))
        change_and_wait(page, lambda: page.click(".liqlab-window button:has-text('3d')"))

        def symbol():
            page.fill(".liqlab-symbol input", "ETHUSDT")
            page.press(".liqlab-symbol input", "Enter")

        change_and_wait(page, symbol)
        page.wait_for_function("() => document.querySelector('.liqlab-status').innerText.includes('ETHUSDT')")
        # hovering the heatmap's largest cell reads its notional, price and distance from price
        page.mouse.move(*page.evaluate(LARGEST_CELL))
        hover = page.wait_for_selector(".hoverlayer .hovertext", timeout=10_000).text_content()
        assert "per price bin" in hover and "% from price" in hover and "UTC" in hover, hover
        page.screenshot(path=str(artifacts / f"{stem}_2_eth_degen_3d.png"), full_page=True)
        page.mouse.move(5, 5)

        before = page.evaluate(FINGERPRINT)
        page.fill(".liqlab-bin input", "-5")
        page.press(".liqlab-bin input", "Enter")
        page.wait_for_function("() => document.querySelector('.liqlab-status').innerText.includes('Error')")
        assert "bin size must be positive" in status_text(page)
        assert page.evaluate(FINGERPRINT) == before  # the last good figure stays
        page.screenshot(path=str(artifacts / f"{stem}_3_error.png"), full_page=True)

        html = page.content()
        for code in ("from liqlab", "import ", "Dashboard(", "assert "):
            assert code not in html, f"source code {code!r} visible in the page"
        assert "Traceback" not in page.inner_text("body")
    finally:
        context.close()
