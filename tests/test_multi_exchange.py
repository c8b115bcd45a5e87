"""``load_multi_exchange``: per-venue and summed OI and liquidations, with coverage and lower bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqlab.core.market import MarketDataError
from liqlab.sources.multi_exchange import load_multi_exchange
from liqlab.sources.store import Store

SYM = "BTC/USDT:USDT"
T0 = pd.Timestamp("2024-05-01", tz="UTC")
MS0 = int(T0.value // 10**6)


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def span(a_min: float, b_min: float) -> tuple[int, int]:
    return MS0 + int(a_min * 60_000), MS0 + int(b_min * 60_000) - 1


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path)
    opens = 100.0 + np.arange(6)
    s.write("binanceusdm", SYM, "ohlcv", "5m", pd.DataFrame({
        "timestamp": [at(5 * i) for i in range(6)], "open": opens, "high": opens + 1, "low": opens - 1,
        "close": opens, "volume": 1.0}))
    snaps = [at(5 * i) for i in range(7)]
    s.write("binanceusdm", SYM, "open_interest", "5m", pd.DataFrame({
        "timestamp": snaps, "open_interest_value": [1e9 + i * 1e6 for i in range(7)]}))
    s.append_liquidations("binanceusdm", SYM, pd.DataFrame({
        "timestamp": [at(1), at(12)], "side": ["long", "short"], "price": [100.0, 102.0],
        "notional": [1000.0, 300.0]}), covered=span(0, 30))
    # Bybit: OI in BTC (linear), no candles stored; liquidations recorded for the first 15 minutes only
    s.write("bybit", SYM, "open_interest", "5m", pd.DataFrame({
        "timestamp": snaps, "open_interest_value": np.nan, "open_interest_amount": [10.0 + i for i in range(7)]}))
    s.append_liquidations("bybit", SYM, pd.DataFrame({
        "timestamp": [at(3)], "side": ["long"], "price": [100.0], "notional": [50.0]}), covered=span(0, 15))
    # OKX: Coinalyze figures only
    s.write("coinalyze-okx", SYM, "open_interest", "5m", pd.DataFrame({
        "timestamp": [at(5 * (i + 1)) for i in range(6)], "open_interest_value": [5e8 + i for i in range(6)],
        "open_interest_amount": np.nan}))
    s.write("coinalyze-okx", SYM, "liquidation_bars", "5m", pd.DataFrame({
        "timestamp": [at(5 * i) for i in range(6)], "long_usd": [7.0 + i for i in range(6)], "short_usd": 8.0}),
        covered=span(0, 30))
    return s


def test_per_venue_sums_coverage_and_lower_bounds(store):
    m = load_multi_exchange("BTCUSDT", "5m", T0, at(25), store)
    assert list(m.index) == [at(5 * i) for i in range(6)]
    oi = m.open_interest
    assert oi["binanceusdm"].tolist() == [1e9 + (i + 1) * 1e6 for i in range(6)]  # taken at each close
    # Bybit's BTC figure priced at the open of the candle starting at the snapshot (Binance's candles)
    assert oi["bybit"].tolist()[:5] == [(11.0 + i) * (101.0 + i) for i in range(5)]
    assert oi["okx"].tolist() == [5e8 + i for i in range(6)]
    assert oi["total"].iloc[0] == 1.001e9 + 11 * 101 + 5e8 and oi["venues_in_total"].tolist()[:5] == [3] * 5
    long_ = m.long_usd
    assert long_["binanceusdm"].tolist() == [1000.0, 0, 0, 0, 0, 0]
    assert long_["bybit"].tolist()[:3] == [50.0, 0.0, 0.0] and np.isnan(long_["bybit"].to_numpy()[3:]).all()
    assert long_["total"].tolist() == [1057.0, 8.0, 9.0, 10.0, 11.0, 12.0]
    assert long_["venues_in_total"].tolist() == [3, 3, 3, 2, 2, 2]
    assert m.short_usd["total"].tolist()[2] == 300.0 + 8.0
    cov = m.coverage.set_index(["venue", "figure"])
    assert cov.loc[("binanceusdm", "liquidations"), "lower_bound"]
    assert "at most one liquidation per symbol per second" in cov.loc[("binanceusdm", "liquidations"), "note"]
    assert not cov.loc[("bybit", "liquidations"), "lower_bound"]
    assert cov.loc[("bybit", "liquidations"), "last"] == at(10)
    assert cov.loc[("bybit", "open_interest"), "note"] == "base-unit open interest priced with another venue's candles"
    assert cov.loc[("okx", "open_interest"), "source"] == "coinalyze"
    assert m.lower_bound_venues == ["binanceusdm"]


def test_nothing_stored_is_said(tmp_path):
    with pytest.raises(MarketDataError, match=r"has no open interest or liquidations for ETHUSDT on binanceusdm, bybit, okx"):
        load_multi_exchange("ETHUSDT", "5m", T0, at(25), Store(tmp_path))


def test_live_recordings_without_a_stored_span_count_from_first_to_last_event(tmp_path):
    s = Store(tmp_path)
    s.write("bybit", SYM, "open_interest", "5m", pd.DataFrame({
        "timestamp": [at(5 * i) for i in range(7)], "open_interest_value": 1e9}))
    s.append_liquidations("bybit", SYM, pd.DataFrame({  # as the recorder writes: no covered span
        "timestamp": [at(6), at(13)], "side": ["short", "long"], "price": [100.0, 99.0], "notional": [20.0, 30.0]}))
    m = load_multi_exchange("BTC/USDT:USDT", "5m", T0, at(25), s, venues=["bybit"])
    got = m.long_usd["bybit"].to_numpy()
    assert np.isnan(got[0]) and got[1:3].tolist() == [0.0, 30.0] and np.isnan(got[3:]).all()
    assert m.short_usd["bybit"].tolist()[1] == 20.0
    note = m.coverage.set_index("figure").loc["liquidations", "note"]
    assert note == "recorded span not stored; taken as the first to the last event"
