"""The market-scan app as a published app: rendered by Voila, a row chosen in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from liqlab.serve.published import PUBLISHED, app_url
from tests.voila_server import CHROMIUM, chromium_browser, serve_apps

APP = "06_market_scan.ipynb"
SHOTS = Path("/tmp/scan-shots")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian chromium not installed at {CHROMIUM}"),
]

# the heatmap of the chosen symbol, as the browser holds it: its title and the last candle's close
HEATMAP = """() => {
  const el = document.querySelector('.liqlab-scan-heatmap .js-plotly-plot');
  if (!el || !el.data || !el.layout || !el.layout.title) return null;
  const hm = el.data.find(t => t.type === 'heatmap');
  const candles = el.data.find(t => t.meta === 'price_candles');
  if (!hm || !hm.z || !hm.z.length || !candles || !candles.close) return null;
  const close = Array.from(candles.close);
  return {title: el.layout.title.text, close: close[close.length - 1], n: close.length};
}"""
MAP_TITLE = """() => {
  const el = document.querySelector('.liqlab-scan-map .js-plotly-plot');
  return el && el.layout && el.layout.title ? el.layout.title.text : null;
}"""
MAGNETS = """() => {
  const el = document.querySelector('.liqlab-scan-magnets .js-plotly-plot');
  if (!el || !el.data) return null;
  const t = el.data.find(t => t.meta === 'long_zone');
  return t ? Array.from(t.y) : null;
}"""
ROWS = "() => [...document.querySelectorAll('.liqlab-scan-table select option')].map(o => o.textContent)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert APP in PUBLISHED
    root = tmp_path_factory.mktemp("voila-scan")
    # serve this checkout's notebooks (an editable install may map liqlab.notebooks to another checkout)
    with serve_apps(root / "voila.log", root / "exports", "--notebooks", str(ROOT / "notebooks")) as base:
        yield base


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    app = page.locator(".liqlab-scan-app")
    app.scroll_into_view_if_needed()
    app.screenshot(path=str(SHOTS / name))


def test_choosing_a_row_shows_that_symbols_heatmap(server, artifacts):
    from liqlab.scan import SampleSource

    with chromium_browser() as browser:
        context = browser.new_context(viewport={"width": 1600, "height": 1300})
        page = context.new_page()
        try:
            page.goto(app_url(server, APP), wait_until="commit", timeout=120_000)
            page.wait_for_function(HEATMAP, timeout=150_000)
            page.wait_for_function(MAGNETS, timeout=30_000)
            rows = page.evaluate(ROWS)
            symbols = [r.split()[0] for r in rows]
            assert len(rows) == 12 and all(s.startswith("SYN") for s in symbols)
            # the table and the magnet chart are ranked alike: nearest large cluster first
            assert page.evaluate(MAGNETS) == symbols
            nearest = [float(r.split()[2].rstrip("%")) for r in rows]
            assert nearest == sorted(nearest)
            first = page.evaluate(HEATMAP)
            assert first["title"].startswith(f"{symbols[0]}:")
            page.wait_for_timeout(300)
            shot(page, "06_market_scan_1_initial.png")

            target = symbols[3]
            page.select_option(".liqlab-scan-table select", index=3)
            page.wait_for_function(f"() => {{ const h = ({HEATMAP})(); return h && h.title.startsWith('{target}:'); }}",
                                   timeout=60_000)
            page.wait_for_function(f"() => ({MAP_TITLE})() && ({MAP_TITLE})().startsWith('{target}:')", timeout=30_000)
            live = page.evaluate(HEATMAP)
            market = SampleSource().load(target, "5m", pd.Timedelta(days=7))
            assert len(market) == 2016 and 100 <= live["n"] <= 2016  # candles may be merged for display
            assert live["close"] == pytest.approx(float(market.column("close")[-1]), rel=1e-6)  # figures carry float32
            assert f"Showing {target}." in page.inner_text(".liqlab-status")
            page.wait_for_timeout(300)
            shot(page, "06_market_scan_2_row_chosen.png")
            html = page.content()
            for code in ("from liqlab", "import ", "ScanApp(", "assert "):
                assert code not in html, f"source code {code!r} visible in the page"
            assert "Traceback" not in page.inner_text("body")
        finally:
            context.close()
