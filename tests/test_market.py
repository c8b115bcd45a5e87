"""The Market contract: one validation step, named errors that say what and where."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqlab.core.market import MarketDataError, align_liquidations, make_market, timeframe_to_timedelta


def frame(n=6, start="2025-01-01", freq="1h"):
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 10.0,
                         "open_interest": 1e6}, index=idx)


def build(df, **kw):
    return make_market(df, symbol="BTCUSDT", exchange="test", **kw)


def test_valid_market_and_views():
    m = build(frame())
    assert len(m) == 6 and m.timeframe == "1h" and m.label == "test:BTCUSDT 1h"
    assert m.column("close").dtype == np.float64
    sub = m.slice("2025-01-01 02:00", "2025-01-01 03:00")
    assert len(sub) == 2 and len(m.tail(2)) == 2


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.iloc[[1, 0, 2, 3, 4, 5]], "not sorted.*2025-01-01 00:00"),
        (lambda d: d.iloc[[0, 1, 1, 2, 3, 4]], "duplicated timestamps at 2025-01-01 01:00"),
        (lambda d: d.assign(close=[100.5, np.nan, 100.5, 100.5, 100.5, 100.5]), "'close' has 1 NaN.*01:00"),
        (lambda d: d.assign(low=[99, 99, -1, 99, 99, 99]), "non-positive prices at 2025-01-01 02:00"),
        (lambda d: d.assign(high=[101, 101, 101, 98, 101, 101]), "high is below low at 2025-01-01 03:00"),
        (lambda d: d.assign(open=[100, 100, 100, 100, 105, 100]), "outside \\[low, high\\] at 2025-01-01 04:00"),
        (lambda d: d.assign(volume=[10, 10, 10, 10, 10, -1]), "negative volume"),
        (lambda d: d.drop(columns="open_interest"), "missing column.*open_interest"),
        (lambda d: d.assign(open_interest=50.0), "looks like base units"),
        (lambda d: d.assign(close="abc"), "'close' is not numeric"),
        (lambda d: d.iloc[:0], "no rows"),
    ],
)
def test_bad_input_raises_named_error(mutate, match):
    with pytest.raises(MarketDataError, match=match):
        build(mutate(frame()), timeframe="1h")


def test_gaps_raise_fill_keep():
    df = frame(6).drop(frame(6).index[[2, 3]])
    with pytest.raises(MarketDataError, match=r"1 gap\(s\).*01:00:00\+00:00 -> 2025-01-01 04:00.*gaps='fill'"):
        build(df, timeframe="1h")
    kept = build(df, timeframe="1h", gaps="keep")
    assert len(kept) == 4 and len(kept.gaps) == 1
    filled = build(df, timeframe="1h", gaps="fill")
    assert len(filled) == 6
    row = filled.data.iloc[2]
    assert (row.open, row.high, row.low, row.close, row.volume, row.open_interest) == (100.5, 100.5, 100.5, 100.5, 0.0, 1e6)


def test_off_grid_timestamp():
    df = frame(4)
    df.index = df.index[:3].append(pd.DatetimeIndex([df.index[3] + pd.Timedelta("30min")]))
    with pytest.raises(MarketDataError, match="off the 1h grid"):
        build(df, timeframe="1h")


def test_timeframes():
    assert timeframe_to_timedelta("5m") == pd.Timedelta(minutes=5)
    assert timeframe_to_timedelta("4h") == pd.Timedelta(hours=4)
    with pytest.raises(MarketDataError, match="not understood"):
        timeframe_to_timedelta("5x")
    assert build(frame(freq="5min")).timeframe == "5m"


def test_liquidation_bars_and_events_align():
    df = frame(4)
    liq = pd.DataFrame({"long_usd": [5.0, 7.0], "short_usd": [1.0, 0.0]},
                       index=pd.to_datetime(["2025-01-01 01:00", "2025-01-01 01:30"], utc=True))
    bars = align_liquidations(liq, build(df).index)
    assert bars["long_usd"].tolist() == [0.0, 12.0, 0.0, 0.0]
    events = pd.DataFrame({"timestamp": pd.to_datetime(["2025-01-01 00:10", "2025-01-01 03:59"], utc=True),
                           "side": ["long", "short"], "price": [99.0, 101.0], "notional": [100.0, 50.0]})
    m = build(df, liquidation_events=events)
    assert m.liquidations["long_usd"].tolist() == [100.0, 0, 0, 0]
    assert m.liquidations["short_usd"].tolist() == [0, 0, 0, 50.0]
    with pytest.raises(MarketDataError, match="side must be 'long' or 'short'"):
        build(df, liquidation_events=events.assign(side=["up", "long"]))
    with pytest.raises(MarketDataError, match="'long_usd' has 1 missing"):
        build(df, liquidations=liq.assign(long_usd=[np.nan, 1.0]))


def test_liquidations_outside_every_candle_are_dropped():
    df = frame(4).drop(frame(4).index[2])  # candles 00, 01, 03 (gap at 02)
    liq = pd.DataFrame({"long_usd": [1.0, 2.0, 4.0, 8.0], "short_usd": 0.0},
                       index=pd.to_datetime(["2024-12-31 23:59", "2025-01-01 02:30", "2025-01-01 03:59",
                                             "2025-01-02 00:00"], utc=True))
    m = build(df, timeframe="1h", gaps="keep", liquidations=liq)
    # before the first candle, inside the gap and a day after the last candle: all dropped
    assert m.liquidations["long_usd"].tolist() == [0.0, 0.0, 4.0]


def test_optional_columns_are_nan_free_or_dropped():
    df = frame(4).assign(long_short_ratio=[np.nan, 1.5, np.nan, 2.0], funding_rate=np.nan)
    m = build(df)
    assert m.column("long_short_ratio").tolist() == [1.5, 1.5, 1.5, 2.0]
    assert "funding_rate" not in m.data
