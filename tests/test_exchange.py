"""The real ccxt client against a local Binance-shaped server: pagination, retries, failures, refresh."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from liqlab.sources.exchange import (
    ExchangeUnavailableError,
    Fetcher,
    RequestLog,
    RetryPolicy,
    UnknownSymbolError,
    ensure_markets,
    liquidation_row,
    list_perpetuals,
    resolve_symbol,
    stat_period,
)
from liqlab.sources.loader import NoStoredDataError, StoreFallbackWarning, load_market, load_market_report, read_market
from liqlab.sources.store import Store, to_ms
from tests.exchange_fixtures.fake_binance import FakeBinance, binance_client, oi_amount, price

FAST = RetryPolicy(retries=3, base_delay=0.001, max_delay=0.01)
SYM = "BTC/USDT:USDT"


@pytest.fixture()
def server():
    with FakeBinance(slow_seconds=1.5) as srv:
        yield srv


def now5() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("5min")


def small_fetcher(srv, **config):
    ex = binance_client(srv.url, **config)
    ensure_markets(ex, policy=FAST)
    return Fetcher(ex, SYM, policy=FAST, log=RequestLog())


def window(hours: float = 2):
    end = now5() - pd.Timedelta(hours=1)
    return to_ms(end - pd.Timedelta(hours=hours)), to_ms(end)


def test_thirty_days_paginate_within_limits_and_a_refresh_costs_one_request_per_kind(server, tmp_path):
    until = now5() - pd.Timedelta(minutes=30)
    since = until - pd.Timedelta(days=30)
    market, report = load_market_report(binance_client(server.url), "BTCUSDT", "5m", since, until,
                                        store=tmp_path, retry=FAST)
    assert market.source == "live" and report.source == "live" and len(market) == 30 * 288 + 1
    assert market.symbol == SYM and market.contract == "linear"
    # pages stay inside Binance's limits: klines 1000 per request (ccxt's cap), OI history 500
    oi_pages = [q for p, q in server.requests if p == "/futures/data/openInterestHist"]
    assert len(oi_pages) == 18 and all(int(q["limit"]) <= 500 for q in oi_pages)
    assert server.count("/fapi/v1/klines") == 9
    # OI is in quote currency and sits on the candle grid
    t = to_ms(market.index[100])
    assert market.data["open_interest"].iloc[100] == pytest.approx(oi_amount("BTCUSDT", t) * price("BTCUSDT", t), rel=1e-6)
    assert market.data["funding_rate"].notna().all() and market.data["long_short_ratio"].notna().all()
    assert "fetched 8641 candle" in report.message

    server.reset()  # one more candle: exactly one request per data kind, none for the market list
    market2, report2 = load_market_report(binance_client(server.url), SYM, "5m", since,
                                          until + pd.Timedelta(minutes=5), store=tmp_path, retry=FAST)
    paths = sorted(p for p, _ in server.requests)
    assert paths == ["/fapi/v1/fundingRate", "/fapi/v1/klines", "/futures/data/globalLongShortAccountRatio",
                     "/futures/data/openInterestHist"]
    assert len(market2) == len(market) + 1 and report2.total_requests == 4

    server.reset()  # nothing missing: no request at all, served from the store
    market3, report3 = load_market_report(binance_client(server.url), SYM, "5m", since, until,
                                          store=tmp_path, retry=FAST)
    assert server.requests == [] and market3.source == "store" and "no request needed" in report3.message


@pytest.mark.parametrize("faults", [["429", "418"], ["500", "503"], ["malformed"], ["drop"], ["timeout"]],
                         ids=["rate-limit", "5xx", "malformed-json", "dropped-mid-page", "timeout"])
def test_transient_failures_are_retried(server, faults):
    fetcher = small_fetcher(server, timeout=500)
    server.faults["/fapi/v1/klines"] = list(faults)
    a, b = window()
    rows = fetcher.ohlcv("5m", a, b)
    assert len(rows) == 25 and rows["timestamp"].is_monotonic_increasing
    assert fetcher.log.retries == len(faults) and fetcher.log.counts["ohlcv"] == len(faults) + 1


def test_retry_backoff_grows_exponentially(server):
    delays = []
    policy = RetryPolicy(retries=3, base_delay=0.5, max_delay=1.5, sleep=delays.append)
    ex = binance_client(server.url)
    ensure_markets(ex, policy=FAST)
    server.faults["/fapi/v1/fundingRate"] = ["500", "500", "500"]
    Fetcher(ex, SYM, policy=policy).funding(*window(24))
    assert delays == [0.5, 1.0, 1.5]
    server.faults["/fapi/v1/fundingRate"] = ["429"]  # a Retry-After header wins over the schedule
    delays.clear()
    Fetcher(ex, SYM, policy=policy).funding(*window(24))
    assert delays == [0.0]


def test_persistent_failure_is_one_sentence_naming_exchange_and_symbol(server):
    fetcher = small_fetcher(server)
    server.faults["/futures/data/openInterestHist"] = ["malformed"] * 10
    with pytest.raises(ExchangeUnavailableError) as err:
        fetcher.open_interest("5m", *window())
    msg = str(err.value)
    assert "binanceusdm BTC/USDT:USDT" in msg and "4 attempts" in msg and "\n" not in msg


def test_unknown_symbol_lists_close_matches(server):
    ex = binance_client(server.url)
    ensure_markets(ex, policy=FAST)
    with pytest.raises(UnknownSymbolError, match=r"close matches: BTC/USDT:USDT"):
        resolve_symbol(ex, "BTC/USDT:USDC")
    with pytest.raises(UnknownSymbolError, match="ETH/USDT:USDT"):
        resolve_symbol(ex, "ETHUSD")
    assert resolve_symbol(ex, "btcusdt") == SYM and resolve_symbol(ex, "SOL") == "SOL/USDT:USDT"
    # a symbol the exchange itself rejects (-1121 Invalid symbol) is not retried
    ex.markets["LUNA/USDT:USDT"]["id"] = "NOPEUSDT"
    fetcher = Fetcher(ex, "LUNA/USDT:USDT", policy=FAST)
    with pytest.raises(UnknownSymbolError, match="liqlab universe binanceusdm"):
        fetcher.ohlcv("5m", *window())
    assert fetcher.log.retries == 0


def test_unknown_symbol_through_load_market(server, tmp_path):
    with pytest.raises(UnknownSymbolError, match="has no market 'DOGEUSDT'"):
        load_market(binance_client(server.url), "DOGEUSDT", "5m", store=tmp_path, retry=FAST)


def test_universe_lists_active_perpetuals(server):
    uni = list_perpetuals(binance_client(server.url), policy=FAST)
    assert uni["symbol"].tolist() == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    assert set(uni["contract"]) == {"linear"}


def test_offline_serves_the_store_and_says_so(server, tmp_path):
    until = now5() - pd.Timedelta(hours=1)
    since = until - pd.Timedelta(hours=6)
    load_market(binance_client(server.url), SYM, "5m", since, until, store=tmp_path, retry=FAST)
    dead = binance_client("http://127.0.0.1:9")  # nothing listens there: connection refused
    with pytest.warns(StoreFallbackWarning, match="served 73 candles from the store"):
        market = load_market(dead, SYM, "5m", since, until + pd.Timedelta(minutes=30), store=tmp_path, retry=FAST)
    assert market.source == "store" and len(market) == 73
    offline = load_market("binanceusdm", "BTCUSDT", "5m", since, until, store=tmp_path, offline=True)
    assert offline.source == "store" and offline.symbol == SYM


def test_offline_with_nothing_stored_names_the_sample(tmp_path):
    dead = binance_client("http://127.0.0.1:9")
    with pytest.raises(NoStoredDataError) as err:
        load_market(dead, SYM, "5m", store=tmp_path, retry=FAST)
    msg = str(err.value)
    assert "liqlab.sim.datasets.load_sample()" in msg and "binanceusdm" in msg and "liqlab fetch" in msg


def test_one_minute_candles_use_five_minute_open_interest(server, tmp_path):
    assert stat_period("binanceusdm", "1m") == "5m" and stat_period("binanceusdm", "4h") == "4h"
    assert stat_period("okx", "15m") == "5m" and stat_period("bybit", "2h") == "1h"
    until = now5() - pd.Timedelta(hours=1)
    market = load_market(binance_client(server.url), SYM, "1m", until - pd.Timedelta(hours=1), until,
                         store=tmp_path, retry=FAST)
    oi = market.data["open_interest"]
    assert len(market) == 61 and (oi.iloc[:5] == oi.iloc[0]).all() and oi.iloc[5] != oi.iloc[0]
    assert not any("klines" in p and "5m" in str(q) for p, q in server.requests if p.endswith("klines"))


def test_open_interest_in_base_units_is_priced_in_quote(tmp_path):
    store = Store(tmp_path)
    ts = pd.date_range("2024-01-01", periods=4, freq="5min", tz="UTC")
    store.write("bybit", SYM, "ohlcv", "5m", pd.DataFrame({"timestamp": ts, "open": [100.0, 110, 120, 130],
                "high": 140.0, "low": 90.0, "close": [110.0, 120, 130, 135], "volume": 1.0}))
    store.write("bybit", SYM, "open_interest", "5m", pd.DataFrame(
        {"timestamp": ts, "open_interest_value": np.nan, "open_interest_amount": 1000.0}))
    market = read_market(store, "bybit", SYM, "5m", ts[0], ts[-1])
    assert market.data["open_interest"].tolist() == [100_000.0, 110_000.0, 120_000.0, 130_000.0]


def test_liquidation_rows_are_normalised():
    linear = {"contractSize": 1.0, "inverse": False}
    assert liquidation_row({"timestamp": 1, "side": "sell", "price": 100.0, "contracts": 2.0}, linear) == (1, "long", 100.0, 200.0)
    inverse = {"contractSize": 100.0, "inverse": True}
    assert liquidation_row({"timestamp": 1, "side": "buy", "price": 50_000.0, "contracts": 3.0}, inverse) == (1, "short", 50_000.0, 300.0)
    assert liquidation_row({"timestamp": 1, "price": 1.0, "contracts": 1.0}, linear)[1] is None


def test_rest_liquidations_paginate_into_events():
    class GateLike:  # the three attributes Fetcher uses, answering like ccxt's fetch_liquidations
        id = "gate"
        has = {"fetchLiquidations": True}
        markets = {SYM: {"contractSize": 0.0001, "inverse": False}}

        def __init__(self):
            self.calls = []

        def fetch_liquidations(self, symbol, since, limit, params):
            self.calls.append((since, params["until"], limit))
            times = [t for t in range(-(-since // 400) * 400, params["until"] + 1, 400)][:limit]
            return [{"timestamp": t, "side": "sell" if t % 800 else "buy", "price": 50_000.0, "contracts": 10.0}
                    for t in times]

    ex = GateLike()
    events = Fetcher(ex, SYM, policy=FAST).liquidations(0, 1_000_000 - 1)
    assert len(events) == 2500 and len(ex.calls) >= 3 and all(c[2] == 1000 for c in ex.calls)
    assert set(events["side"]) == {"long", "short"} and events["notional"].iloc[0] == pytest.approx(50.0)
    assert str(events["timestamp"].dtype).startswith("datetime64")
