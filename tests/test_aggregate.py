"""Aggregation across venues: OI summed in quote, reference or volume-weighted candles, breakdown kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqlab.core.market import MarketDataError, make_market
from liqlab.sources.aggregate import aggregate_markets


def venue(name, start, n, price, vol, oi, liq=None):
    idx = pd.date_range(start, periods=n, freq="1h", tz="UTC", name="timestamp")
    p = np.asarray(price, dtype=float)
    data = pd.DataFrame({"open": p, "high": p + 10, "low": p - 10, "close": p, "volume": vol,
                         "open_interest": oi, "funding_rate": 0.0001 if name == "a" else 0.0003}, index=idx)
    bars = None if liq is None else pd.DataFrame({"long_usd": liq, "short_usd": 0.0}, index=idx)
    return make_market(data, symbol="BTC/USDT:USDT", exchange=name, timeframe="1h", liquidations=bars)


def test_sum_reference_and_breakdown():
    a = venue("a", "2024-01-01 00:00", 4, [100, 101, 102, 103], 1.0, 3e6, liq=[1.0, 2, 3, 4])
    b = venue("b", "2024-01-01 01:00", 4, [200, 201, 202, 203], 3.0, 1e6)
    agg = aggregate_markets({"a": a, "b": b})
    assert len(agg) == 3 and agg.start == pd.Timestamp("2024-01-01 01:00", tz="UTC")  # common candles only
    assert agg.data["open_interest"].tolist() == [4e6] * 3
    assert agg.data["close"].tolist() == [101.0, 102.0, 103.0]  # reference = most open interest
    assert agg.data["funding_rate"].iloc[0] == pytest.approx(0.00015)  # OI-weighted
    assert agg.liquidations["long_usd"].tolist() == [2.0, 3.0, 4.0]
    assert set(agg.breakdown) == {"a", "b"} and agg.breakdown["b"]["open_interest"].tolist() == [1e6] * 3
    assert agg.exchange == "agg(a+b)" and agg.symbol == "BTC"


def test_volume_weighted_candles():
    a = venue("a", "2024-01-01", 2, [100, 100], 1.0, 3e6)
    b = venue("b", "2024-01-01", 2, [200, 200], 3.0, 1e6)
    agg = aggregate_markets([a, b], candles="volume_weighted")
    assert agg.data["close"].tolist() == [175.0, 175.0] and agg.data["volume"].tolist() == [4.0, 4.0]
    assert (agg.data["high"] >= agg.data["close"]).all()
    assert aggregate_markets([a, b], reference="b").data["close"].iloc[0] == 200.0


def test_errors():
    a = venue("a", "2024-01-01", 2, [100, 100], 1.0, 3e6)
    late = venue("b", "2025-01-01", 2, [100, 100], 1.0, 3e6)
    with pytest.raises(MarketDataError, match="share no candle"):
        aggregate_markets([a, late])
    with pytest.raises(MarketDataError, match="reference venue"):
        aggregate_markets([a], reference="zzz")
    with pytest.raises(MarketDataError, match="at least one"):
        aggregate_markets({})
