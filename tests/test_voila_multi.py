"""Real browser: the explorer app served with a hand-made three-venue store, switched to "all exchanges"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from liqlab.serve.published import app_url
from tests.multi_store import fill_store
from tests.voila_server import CHROMIUM, chromium_browser, serve_apps

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian chromium not installed at {CHROMIUM}"),
]
SHOTS = Path("/tmp/multi-shots")

# the venue bars as the browser holds them: [meta, name, visible, first three bar tops, first three own amounts]
VENUE_BARS = """() => {
  const el = document.querySelector('.js-plotly-plot');
  if (!el || !el.data) return null;
  return el.data.filter(t => String(t.meta).startsWith('venue_')).map(t => [
    t.meta, t.name, t.visible, Array.from(t.y || []).filter((_, i) => i % 3 === 0).slice(0, 5),
    Array.from(t.customdata || []).filter((_, i) => i % 3 === 0).slice(0, 5)]);
}"""
STACKED = """() => { const el = document.querySelector('.js-plotly-plot');
  return !!el && !!el.data && el.data.some(t => t.meta === 'venue_long_0' && t.visible === true
                                            && t.y && t.y.length > 0); }"""


def test_all_exchanges_in_the_browser(tmp_path, monkeypatch):
    store = tmp_path / "store"
    t0 = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=2)
    fill_store(store, t0, 2 * 288, scale=1e4)  # amounts the model's bars do not dwarf
    monkeypatch.setenv("LIQLAB_DATA_DIR", str(store))
    SHOTS.mkdir(exist_ok=True)
    with serve_apps(tmp_path / "voila.log", tmp_path / "exports") as base, chromium_browser() as browser:
        context = browser.new_context(viewport={"width": 1500, "height": 1700})
        page = context.new_page()
        try:
            page.goto(app_url(base, "02_explorer.ipynb"), timeout=150_000)
            page.wait_for_function("() => document.querySelector('.liqlab-status')?.innerText.includes('Source:')",
                                   timeout=120_000)
            assert not page.query_selector(".liqlab-breakdown table")
            page.select_option(".liqlab-exchange select", label="all exchanges")
            page.wait_for_function(STACKED, timeout=60_000)
            page.wait_for_function("() => !!document.querySelector('.liqlab-breakdown tr[data-venue=okx]')",
                                   timeout=20_000)
            k = 1e4
            bars = {b[0]: [b[1], b[2], [v / k for v in b[3]], [v / k for v in b[4]]] for b in page.evaluate(VENUE_BARS)}
            # 576 five-minute candles drawn as fifteen-minute bars, each venue stacked on the next
            assert bars["venue_long_0"] == ["binanceusdm (lower bound)", True, [1070, 0, 0, 0, 0],
                                            [1000, 0, 0, 0, 0]]
            assert bars["venue_long_1"] == ["bybit", True, [70, 0, 0, 0, 0], [50, 0, 0, 0, 0]]
            assert bars["venue_long_2"] == ["okx", True, [20, 0, 0, 0, 0], [20, 0, 0, 0, 0]]
            assert bars["venue_short_0"] == ["binanceusdm (lower bound)", True, [-300, 0, 0, 0, -70],
                                             [300, 0, 0, 0, 0]]
            assert bars["venue_short_1"] == ["bybit", True, [0, 0, 0, 0, -70], [0, 0, 0, 0, 70]]
            realized = page.evaluate("""() => document.querySelector('.js-plotly-plot').data
                                               .find(t => t.meta === 'realized_long').visible""")
            assert realized is False
            status = page.inner_text(".liqlab-status")
            assert "binanceusdm+bybit+okx:BTCUSDT 5m" in status and "summed over binanceusdm" in status
            assert "realized liquidations of binanceusdm are lower bounds" in status
            # the default 30-day window reaches before the store: said, with the command that fills it
            assert (f"the store has no BTCUSDT open interest before {t0:%Y-%m-%d} 00:00 for binanceusdm; "
                    "fill it with: liqlab archive binanceusdm BTCUSDT --since") in status
            row = page.inner_text(".liqlab-breakdown tr[data-venue=bybit]")
            assert row.split("\t")[2:4] == ["$500,000", "$700,000"] and row.endswith("no")
            legend = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot .legendtext')]
                                          .map(e => e.textContent)""")
            assert {"binanceusdm (lower bound)", "bybit", "okx"} <= set(legend), legend
            assert str(store) not in page.content() and str(tmp_path) not in page.inner_text("body")
            page.screenshot(path=str(SHOTS / "all_exchanges.png"), full_page=True)
            box = page.query_selector(".js-plotly-plot").bounding_box()  # the first hours of the bar panel
            page.screenshot(path=str(SHOTS / "all_exchanges_bars.png"),
                            clip=dict(x=box["x"], y=box["y"] + 0.62 * box["height"], width=260, height=0.3 * box["height"]))
        finally:
            context.close()
