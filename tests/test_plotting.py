"""Figure functions: trace data checked on tiny hand-made inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from liqlab import plotting
from liqlab.engine import LiquidationMap
from liqlab.market import make_market

pytest.importorskip("plotly")


def _market(with_liq: bool = True):
    idx = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    data = pd.DataFrame({
        "open": [100.0, 101.0, 99.0, 100.0], "high": [102.0, 103.0, 101.0, 104.0],
        "low": [99.0, 98.0, 97.0, 99.0], "close": [101.0, 99.0, 100.0, 103.0],
        "volume": [1.0] * 4, "open_interest": [1e6, 1.1e6, 1.05e6, 1.2e6],
    }, index=idx)
    liq = pd.DataFrame({"long_usd": [0.0, 500.0, 800.0, 0.0], "short_usd": [0.0, 0.0, 0.0, 700.0]}, index=idx)
    return make_market(data, symbol="TESTUSDT", exchange="test", timeframe="1h",
                       liquidations=liq if with_liq else None)


def _result(market):
    """A hand-made result: 5 bins (95..105 by 2.5), 2 display columns (after candles 1 and 3)."""
    prices = np.array([95.0, 97.5, 100.0, 102.5, 105.0])
    long = np.array([[10, 10], [20, 0], [0, 0], [0, 0], [0, 0]], dtype=np.float32)  # 97.5 swept by candle 2
    short = np.array([[0, 0], [0, 0], [0, 0], [30, 0], [40, 40]], dtype=np.float32)  # 102.5 swept by candle 3
    pred = pd.DataFrame({"long_usd": [0.0, 0.0, 20.0, 0.0], "short_usd": [0.0, 0.0, 0.0, 30.0]}, index=market.index)
    return SimpleNamespace(
        prices=prices, bin_size=2.5, long=long, short=short, combined=long + short,
        columns=market.index[[1, 3]], column_index=np.array([1, 3]), predicted=pred,
    )


def _trace(fig, name):
    return next(t for t in fig.data if t.meta == name)


def test_heatmap_trace_values_are_the_grid_in_columns():
    m = _market()
    fig = plotting.heatmap_figure(_result(m), m, margin=0.0)
    hm = _trace(fig, "heatmap")
    # visible rows: the candles span 97..104 (+0.5 % pad) -> bins 97.5, 100, 102.5
    x, y, z = np.asarray(hm.x), np.asarray(hm.y), np.asarray(hm.z)
    assert list(y[:3]) == [97.5, 100.0, 102.5]
    t1 = m.index[1].value / 1e6
    assert x[0] == t1 and x[3] == m.index[3].value / 1e6
    # column 1: 97.5 -> 20 long, 100 -> empty, 102.5 -> 30 short; column 2: all swept or empty
    np.testing.assert_array_equal(z[:3], np.array([20.0, np.nan, 30.0], dtype=np.float32))
    assert np.isnan(z[3:]).all(), "swept levels must disappear (no colour)"
    assert hm.hovertext[0].endswith("%") and "from price" in hm.hovertemplate
    assert hm.colorscale is not None and "USD" in hm.colorbar.title.text


def test_heatmap_hover_distance_uses_the_column_close():
    m = _market()
    fig = plotting.heatmap_figure(_result(m), m, margin=0.0)
    hm = _trace(fig, "heatmap")
    # 97.5 vs the close of candle 1 (99): -1.5 %
    assert hm.hovertext[0] == "-1.5%"


def test_side_selects_long_or_short_grid():
    m = _market()
    fig = plotting.heatmap_figure(_result(m), m, side="short", margin=0.0)
    z = np.asarray(_trace(fig, "heatmap").z)
    assert np.isnan(z[0]) and z[2] == 30.0
    with pytest.raises(ValueError):
        plotting.heatmap_figure(_result(m), m, side="both")


def test_bars_colours_signs_and_positions():
    m = _market()
    fig = plotting.heatmap_figure(_result(m), m)
    rl, rs = _trace(fig, "realized_long"), _trace(fig, "realized_short")
    pl, ps = _trace(fig, "predicted_long"), _trace(fig, "predicted_short")
    assert rl.marker.color == plotting.LONG_COLOUR and rs.marker.color == plotting.SHORT_COLOUR
    assert pl.marker.color == plotting.LONG_PREDICTED and ps.marker.color == plotting.SHORT_PREDICTED
    np.testing.assert_array_equal(rl.y, [0, 500, 800, 0])  # longs up
    np.testing.assert_array_equal(rs.y, [0, 0, 0, -700])  # shorts down
    np.testing.assert_array_equal(pl.y, [0, 0, 20, 0])
    assert rl.offset < 0 <= pl.offset, "predicted bars sit beside the realized ones"
    assert rl.yaxis == "y2" and _trace(fig, "heatmap").yaxis == "y"
    assert fig.layout.xaxis.anchor == "y2", "bars and heatmap share the time axis"


def test_price_style_and_missing_realized():
    m = _market(with_liq=False)
    fig = plotting.heatmap_figure(_result(m), m, price_style="line")
    assert _trace(fig, "price_line").visible and not _trace(fig, "price_candles").visible
    assert len(_trace(fig, "realized_long").y) == 0
    assert "no realized liquidations" in fig.layout.title.text


def test_bar_period_caps_bar_count():
    m = _market()
    assert plotting.bar_period(m) == "1h"
    assert plotting.bar_period(m, max_bars=2) == "2h"


def _snapshot():
    prices = np.array([90.0, 95.0, 100.0, 105.0, 110.0])
    long_by_tier = np.array([[50.0, 10.0, 0, 0, 0], [50.0, 30.0, 0, 0, 0]])
    short_by_tier = np.array([[0, 0, 0, 5.0, 40.0], [0, 0, 0, 15.0, 0.0]])
    return LiquidationMap(
        time=pd.Timestamp("2024-01-01 03:00", tz="UTC"), price=100.0, prices=prices, bin_size=5.0,
        long_usd=long_by_tier.sum(0), short_usd=short_by_tier.sum(0), long_by_tier=long_by_tier,
        short_by_tier=short_by_tier, leverages=(10.0, 25.0),
    )


def test_liquidation_map_bars_and_cumulative_curves():
    fig = plotting.liquidation_map_figure(_snapshot())
    ml, ms = _trace(fig, "map_long"), _trace(fig, "map_short")
    np.testing.assert_array_equal(ml.x, [100, 40, 0, 0, 0])
    np.testing.assert_array_equal(ms.x, [0, 0, 0, 20, 40])
    assert ml.marker.color == plotting.LONG_COLOUR and ms.marker.color == plotting.SHORT_COLOUR
    cl, cs = np.asarray(_trace(fig, "cum_long").x), np.asarray(_trace(fig, "cum_short").x)
    np.testing.assert_array_equal(cl[:3], [140, 40, 0])  # grows away from the price, downward
    assert np.isnan(cl[3:]).all()
    np.testing.assert_array_equal(cs[2:], [0, 20, 60])  # grows upward
    assert _trace(fig, "cum_long").xaxis == "x2"


def test_liquidation_map_marks_price_and_annotates_clusters():
    fig = plotting.liquidation_map_figure(_snapshot())
    assert any(s.y0 == 100.0 and s.y1 == 100.0 for s in fig.layout.shapes)
    texts = [a.text for a in fig.layout.annotations]
    # long side: largest 100 at 90; threshold 0.5 -> nearest bin >= 50 below the price is 90 (95 holds 40)
    assert any(t.startswith("long cluster 90.00 (-10.00%)") for t in texts), texts
    # short side: largest 40 at 110; 105 holds 20 (= 0.5 x 40) -> nearest is 105
    assert any(t.startswith("short cluster 105.00 (+5.00%)") for t in texts), texts


def test_liquidation_map_hover_has_leverage_share():
    fig = plotting.liquidation_map_figure(_snapshot())
    ml = _trace(fig, "map_long")
    assert ml.hovertext[1] == "leverage: 10x 25% · 25x 75%"
    assert ml.hovertext[3] == "no open positions"
    assert "from price" in ml.hovertemplate


def test_apply_parts_updates_in_place_and_skips_unchanged():
    import plotly.graph_objects as go

    m = _market()
    r = _result(m)
    fig = plotting.heatmap_figure(r, m, margin=0.0)
    first = plotting.heatmap_parts(r, m, margin=0.0)
    r2 = _result(m)
    r2.combined = r2.combined * 2
    second = plotting.heatmap_parts(r2, m, margin=0.0)
    n_traces = len(fig.data)
    plotting.apply_parts(fig, second, first)
    assert len(fig.data) == n_traces and isinstance(fig, go.Figure)
    assert np.asarray(_trace(fig, "heatmap").z)[0] == 40.0
