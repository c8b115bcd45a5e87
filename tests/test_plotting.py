"""Figure functions: trace data checked on tiny hand-made inputs."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from liqlab.viz import plotting
from liqlab.core.engine import LiquidationMap
from liqlab.core.market import make_market
from tests.test_png import decode_png

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


def _image_pixels(fig_or_parts):
    """The heatmap image of a figure (or parts) decoded to an (h, w, 4) array, and its layout entry."""
    images = fig_or_parts["layout"]["images"] if isinstance(fig_or_parts, dict) else fig_or_parts.layout.images
    img = images[0]
    source = img["source"] if isinstance(img, dict) else img.source
    assert source.startswith("data:image/png;base64,")
    return decode_png(base64.b64decode(source.split(",", 1)[1])), img


def test_heatmap_image_pixels_are_the_grid_colours():
    m = _market()
    fig = plotting.heatmap_figure(_result(m), m, margin=0.0)
    px, img = _image_pixels(fig)
    # visible rows: the candles span 97..104 (+0.5 % pad) -> bins 97.5, 100, 102.5; rows repeated 134 times (400 px at least),
    # 1200 px across: column 1 (candles 0-1) on the left half, column 2 (candles 2-3) on the right
    assert px.shape == (3 * 134, plotting.IMAGE_WIDTH, 4)
    zmax = _trace(fig, "heatmap").zmax
    lut = plotting.colour_lut("Viridis", plotting.IMAGE_LEVELS)
    top = plotting.IMAGE_LEVELS - 1
    row = {102.5: 60, 100.0: 200, 97.5: 340}  # PNG rows: highest price at the top
    # column 1: 97.5 -> 20 long, 100 -> empty, 102.5 -> 30 short (at or above zmax: the top colour)
    assert tuple(px[row[97.5], 10]) == tuple(lut[round(20 * top / zmax)])
    assert tuple(px[row[102.5], 10]) == tuple(lut[top])
    assert px[row[100.0], 10, 3] == 0, "empty levels are transparent"
    # column 2: everything swept or empty -> transparent
    assert (px[:, plotting.IMAGE_WIDTH // 2 + 1:, 3] == 0).all(), "swept levels must disappear (no colour)"
    assert px[row[97.5], plotting.IMAGE_WIDTH // 2 - 1, 3] == 255


def test_heatmap_image_is_placed_on_the_data_axes():
    m = _market()
    fig = plotting.heatmap_figure(_result(m), m, margin=0.0)
    _, img = _image_pixels(fig)
    assert (img.xref, img.yref, img.sizing, img.layer) == ("x", "y", "stretch", "below")
    assert (img.xanchor, img.yanchor) == ("left", "top")
    start_ms = m.index[0].value / 1e6
    assert img.x == start_ms and img.sizex == 4 * 3_600_000  # first candle's open to the last one's close
    assert img.y == 102.5 + 1.25 and img.sizey == 3 * 2.5  # bin edges around 97.5 .. 102.5
    # the time axis spans the image exactly
    assert list(fig.layout.xaxis.range) == ["2024-01-01 00:00:00", "2024-01-01 04:00:00"]


def test_coarse_heatmap_carries_hover_and_colour_bar():
    m = _market()
    fig = plotting.heatmap_figure(_result(m), m, margin=0.0)
    hm = _trace(fig, "heatmap")
    x, y, z = np.asarray(hm.x), np.asarray(hm.y), np.asarray(hm.z)
    # a grid this small is not aggregated: the same cells, (price rows, time columns)
    assert list(y) == [97.5, 100.0, 102.5] and z.shape == (3, 2)
    assert x[0] == m.index[1].value / 1e6 and x[1] == m.index[3].value / 1e6  # middle of each column's span
    np.testing.assert_array_equal(z[:, 0], np.array([20.0, np.nan, 30.0], dtype=np.float32))
    assert np.isnan(z[:, 1]).all(), "swept: no hover"
    # 97.5 vs the close of candle 1 (99): -1.5 %
    assert np.asarray(hm.customdata)[0, 0] == pytest.approx(100 * (97.5 / 99 - 1), rel=1e-5)
    assert "from price" in hm.hovertemplate and "%{customdata" in hm.hovertemplate
    assert hm.opacity == 0 and hm.showscale is not False
    assert hm.zmin == 0 and hm.zmax == pytest.approx(np.percentile([20.0, 30.0], 99))
    assert hm.colorscale is not None and "USD" in hm.colorbar.title.text
    assert hm.hovertext is None, "no per-cell hover text arrays"


def test_coarse_grid_aggregates_blocks_by_their_largest_bin():
    rows, cols = 250, 400
    z = np.zeros((rows, cols), np.float32)
    z[7, 5] = 9.0  # block (rows 6-8, columns 4-7) holds a 9
    z[249, 399] = 4.0  # the last, short row block is kept
    prices = 1000.0 + np.arange(rows)
    start = np.arange(cols) * 60_000.0
    coarse = plotting.coarse_grid(z, prices, start, start + 60_000.0, np.full(cols, 1100.0),
                                  max_columns=100, max_rows=120)
    # rows: blocks of ceil(250/120) = 3 bins; time: 100 spans of 400/100 = 4 minutes
    zz = coarse["z"]
    assert zz.shape == coarse["distance"].shape == (84, 100)
    assert zz[2, 1] == 9.0 and zz[-1, -1] == 4.0 and np.isnan(zz[0, 0])
    assert coarse["y"][2] == pytest.approx(1007.0) and coarse["x"][1] == pytest.approx(1.5 * 240_000)
    assert coarse["row_span"] == 3.0 and coarse["col_span_ms"] == 240_000.0
    assert coarse["distance"][2, 0] == pytest.approx(100 * (1007 / 1100 - 1), rel=1e-5)
    # centres evenly spaced (plotly.js then draws the grid as one pixel per cell): the shorter last
    # row block (bin 249 alone) keeps the regular step
    assert coarse["y"][-1] == 1250.0 and coarse["x"][-1] == pytest.approx(99.5 * 240_000)
    assert np.ptp(np.diff(coarse["y"])) == 0.0 and np.ptp(np.diff(coarse["x"])) == pytest.approx(0.0)


def test_coarse_grid_cuts_time_evenly_over_uneven_columns():
    # display columns of 2 or 3 minutes: 3 spans of 5 minutes, two columns each
    edges = np.array([0, 2, 5, 7, 10, 12, 15], dtype=float) * 60_000
    z = np.array([[1, 2, 3, 4, 5, 6]], np.float32)
    coarse = plotting.coarse_grid(z, np.array([100.0]), edges[:-1], edges[1:], np.arange(1.0, 7.0),
                                  max_columns=3)
    np.testing.assert_allclose(coarse["x"], np.array([2.5, 7.5, 12.5]) * 60_000)
    np.testing.assert_array_equal(coarse["z"], [[2, 4, 6]])
    # distance from the close at each span's last column (2, 4, 6)
    np.testing.assert_allclose(coarse["distance"], [[100 * (100 / 2 - 1), 100 * (100 / 4 - 1), 100 * (100 / 6 - 1)]])


def test_coarse_grid_leaves_a_gap_in_the_data_empty():
    # four 1-minute columns, a gap, two more: spans of 12/3 = 4 minutes, the middle one empty
    start = np.array([0, 1, 2, 3, 10, 11], dtype=float) * 60_000
    z = np.array([[1, 2, 3, 4, 5, 6]], np.float32)
    coarse = plotting.coarse_grid(z, np.array([100.0]), start, start + 60_000, np.full(6, 50.0), max_columns=3)
    np.testing.assert_allclose(coarse["x"], np.array([2.0, 6.0, 10.0]) * 60_000)
    assert coarse["z"][0, 0] == 4.0 and np.isnan(coarse["z"][0, 1]) and coarse["z"][0, 2] == 6.0
    assert coarse["distance"][0, 0] == 100.0 and np.isnan(coarse["distance"][0, 1])


def test_image_columns_follow_uneven_columns():
    cols = plotting.image_columns(np.array([0, 2, 9]), 10)  # columns cover 1, 2 and 7 candles
    assert list(cols) == [0, 1, 1, 2, 2, 2, 2, 2, 2, 2]


def test_colour_lut_is_the_plotly_scale():
    lut = plotting.colour_lut("Viridis")
    assert lut.shape == (256, 4) and lut.dtype == np.uint8 and (lut[:, 3] == 255).all()
    assert tuple(lut[0, :3]) == (68, 1, 84) and tuple(lut[-1, :3]) == (253, 231, 37)


def test_side_selects_long_or_short_grid():
    m = _market()
    fig = plotting.heatmap_figure(_result(m), m, side="short", margin=0.0)
    z = np.asarray(_trace(fig, "heatmap").z)
    assert np.isnan(z[0, 0]) and z[2, 0] == 30.0
    px, _ = _image_pixels(fig)
    assert px[340, 10, 3] == 0 and px[60, 10, 3] == 255  # 97.5 (longs only) gone, 102.5 (shorts) shown
    with pytest.raises(ValueError):
        plotting.heatmap_figure(_result(m), m, side="both")


def test_bars_colours_signs_and_positions():
    m = _market()
    fig = plotting.heatmap_figure(_result(m), m)
    rl, rs = _trace(fig, "realized_long"), _trace(fig, "realized_short")
    pl, ps = _trace(fig, "predicted_long"), _trace(fig, "predicted_short")
    assert rl.fillcolor == plotting.LONG_COLOUR and rs.fillcolor == plotting.SHORT_COLOUR
    assert pl.fillcolor == plotting.LONG_PREDICTED and ps.fillcolor == plotting.SHORT_PREDICTED
    np.testing.assert_array_equal(plotting.bar_values(rl), [0, 500, 800, 0])  # longs up
    np.testing.assert_array_equal(plotting.bar_values(rs), [0, 0, 0, -700])  # shorts down
    np.testing.assert_array_equal(plotting.bar_values(pl), [0, 0, 20, 0])
    # each bar: top-left, top-centre, bottom-right, filled to zero with horizontal-first steps
    t0 = m.index[1].value / 1e6
    np.testing.assert_allclose(rl.x[3:6], [t0 + 180_000, t0 + 990_000, t0 + 1_800_000])
    np.testing.assert_array_equal(rl.y[3:6], [500, 500, 0])
    assert rl.fill == "tozeroy" and rl.line.shape == "hv" and rl.line.width == 0
    assert list(rl.text[3:6]) == [f"{m.index[1]:%Y-%m-%d %H:%M}"] * 3 and list(rl.customdata[3:6]) == [500] * 3
    # inside their period, side by side: realized in the first half, predicted in the second
    assert 0 <= rl.x[0] - m.index[0].value / 1e6 < rl.x[2] - m.index[0].value / 1e6 <= pl.x[0] - m.index[0].value / 1e6
    assert pl.x[2] - m.index[0].value / 1e6 <= 3_600_000
    assert rl.yaxis == "y2" and _trace(fig, "heatmap").yaxis == "y"
    assert fig.layout.xaxis.anchor == "y2", "bars and heatmap share the time axis"


def test_price_style_and_missing_realized():
    m = _market(with_liq=False)
    fig = plotting.heatmap_figure(_result(m), m, price_style="line")
    assert _trace(fig, "price_line").visible and not _trace(fig, "price_candles").visible
    line = _trace(fig, "price_line")
    assert line.x[0] == m.index[0].value / 1e6 + 3_600_000, "the close sits at the candle's close time"
    assert len(_trace(fig, "price_candles").x) == 0, "hidden price traces carry no data"
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
    # every level, as one filled step outline per side
    np.testing.assert_array_equal(ml.x, [100, 40, 0, 0, 0])
    np.testing.assert_array_equal(ml.y, [90, 95, 100, 105, 110])
    np.testing.assert_array_equal(ms.x, [0, 0, 0, 20, 40])
    assert ml.fill == "tozerox" and ml.line.shape == "vhv" and ml.line.width == 0
    assert ml.fillcolor == plotting.LONG_COLOUR and ms.fillcolor == plotting.SHORT_COLOUR
    cl, cs = np.asarray(_trace(fig, "cum_long").x), np.asarray(_trace(fig, "cum_short").x)
    np.testing.assert_array_equal(cl[:3], [140, 40, 0])  # grows away from the price, downward
    assert np.isnan(cl[3:]).all()
    np.testing.assert_array_equal(cs[2:], [0, 20, 60])  # grows upward
    assert _trace(fig, "cum_long").xaxis == "x2"


def test_liquidation_map_marks_price_and_annotates_clusters():
    fig = plotting.liquidation_map_figure(_snapshot())
    assert any(s.y0 == 100.0 and s.y1 == 100.0 for s in fig.layout.shapes)
    labels = _trace(fig, "map_labels")
    texts = list(labels.text)
    assert texts[0].startswith("price 100.00") and labels.y[0] == 100.0
    assert not fig.layout.annotations
    # long side: largest 100 at 90; threshold 0.5 -> nearest bin >= 50 below the price is 90 (95 holds 40)
    assert any(t.startswith("long cluster 90.00 (-10.00%)") for t in texts), texts
    # short side: largest 40 at 110; 105 holds 20 (= 0.5 x 40) -> nearest is 105
    assert any(t.startswith("short cluster 105.00 (+5.00%)") for t in texts), texts
    # each label starts at the panel's left edge, at its level
    assert list(labels.x) == [0.0, 0.0, 0.0] and list(labels.y[1:]) == [90.0, 105.0]
    # price and short labels above their level, the long one below it
    assert list(labels.textposition) == ["top right", "bottom right", "top right"]


def test_liquidation_map_labels_stay_inside_the_panel_at_its_edges():
    # range 89.5..105.5: the short cluster at 105 is within 5 % of the top (105 > 105.5 - 0.8), the
    # long one at 90 within 5 % of the bottom (90 < 89.5 + 0.8): each label goes on the inner side
    fig = plotting.liquidation_map_figure(_snapshot(), price_range=(89.5, 105.5))
    labels = _trace(fig, "map_labels")
    assert list(labels.y) == [100.0, 90.0, 105.0]
    assert list(labels.textposition) == ["top right", "top right", "bottom right"]


def test_liquidation_map_hover_has_leverage_share():
    fig = plotting.liquidation_map_figure(_snapshot())
    ml = _trace(fig, "map_long")
    assert ml.hovertext[1] == "leverage: 10x 25% · 25x 75%"
    assert len(ml.hovertext) == len(ml.x) == 5
    # customdata: distance from the price in %, cumulative notional if price moves there
    assert [list(r) for r in ml.customdata[:3]] == [[-10.0, 140.0], [-5.0, 40.0], [0.0, 0.0]]
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
    assert np.asarray(_trace(fig, "heatmap").z)[0, 0] == 40.0
    assert _trace(fig, "heatmap").zmax == second["zmax"] == 2 * first["zmax"]
    assert len(fig.layout.images) == 1 and fig.layout.images[0].source == second["layout"]["images"][0]["source"]


def test_period_aggregation_matches_pandas_resample_on_random_gappy_data():
    """Candles and bars per period equal pandas' epoch-origin resample (gaps, uneven spans).

    pandas ignores ``origin`` for day periods on a tz-aware index, so the reference resamples the
    same UTC times without the zone.
    """
    rng = np.random.default_rng(11)
    for period in ("15min", "1h", "4h", "1D", "7D"):
        idx = pd.date_range("2024-02-27 03:05", periods=900, freq="5min", tz="UTC")
        idx = idx[np.sort(rng.choice(idx.size, 500, replace=False))]  # gaps
        close = 100 + np.cumsum(rng.normal(0, 0.5, idx.size))
        opn = close + rng.normal(0, 0.2, idx.size)
        data = pd.DataFrame({"open": opn, "high": np.maximum(opn, close) + rng.uniform(0, 1, idx.size),
                             "low": np.minimum(opn, close) - rng.uniform(0, 1, idx.size), "close": close,
                             "volume": 1.0, "open_interest": 1e6}, index=idx)
        market = make_market(data, symbol="TESTUSDT", exchange="test", timeframe="5m", gaps="keep")
        naive = data.tz_localize(None)
        want = naive[["open", "high", "low", "close"]].resample(period, origin="epoch", label="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last"}).dropna().tz_localize("UTC")
        pd.testing.assert_frame_equal(plotting.period_candles(market, period), want, check_freq=False)
        liq = pd.DataFrame({"long_usd": rng.exponential(100, idx.size), "short_usd": rng.exponential(50, idx.size)},
                           index=idx)
        liq.iloc[3, 0] = np.nan
        want_bars = liq.tz_localize(None).resample(period, origin="epoch", label="left").sum().tz_localize("UTC")
        pd.testing.assert_frame_equal(plotting.period_bars(liq, period), want_bars, check_freq=False)


def test_every_axis_draws_its_tick_labels_without_overflow_checks():
    m = _market()
    result = _result(m)
    snap = _snapshot()
    figures = [plotting.heatmap_figure(result, m), plotting.liquidation_map_figure(snap),
               plotting.explorer_figure(result, m, snap)]
    for fig in figures:
        axes = [k for k in fig.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]
        assert len(axes) >= 3
        assert all(fig.layout[k].ticklabeloverflow == "allow" for k in axes), axes
