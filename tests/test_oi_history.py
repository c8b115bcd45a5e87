"""Deep open-interest history from Bybit and OKX: the real ccxt clients against local servers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqlab.cli import main
from liqlab.sources.exchange import ExchangeDataError, RetryPolicy
from liqlab.sources.oi_history import fetch_oi_history
from liqlab.sources.store import Store
from tests.exchange_fixtures.fake_venues import FakeBybit, FakeOkx, bybit_oi, okx_oi

FAST = RetryPolicy(retries=2, base_delay=0.001, max_delay=0.01)
LISTING = 1714521600000  # 2024-05-01 00:00 UTC
NOW = LISTING + 3 * 86_400_000 + 123_456  # 2024-05-04 00:02:03.456


def ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def test_bybit_pages_back_to_the_listing_within_200_rows(tmp_path):
    store = Store(tmp_path)
    with FakeBybit(listing_ms=LISTING, now_ms=NOW) as srv:
        report = fetch_oi_history("bybit", "BTCUSDT", "5m", "2024-04-29", "2024-05-03", store=store,
                                  api_url=srv.url, policy=FAST, now=NOW)
        pages = srv.paths("/v5/market/open-interest")
    assert report.rows == 2 * 288 + 1 and report.first == ts(LISTING) and report.last == ts(LISTING + 2 * 86_400_000)
    assert [int(q["limit"]) for q in pages] == [200, 200, 200, 200]
    ends = [int(q["endTime"]) for q in pages]
    starts = [int(q["startTime"]) for q in pages]
    assert ends[0] == LISTING + 2 * 86_400_000 and all(s == e - 200 * 300_000 + 1 for s, e in zip(starts, ends))
    assert all(ends[i + 1] == starts[i] - 1 for i in range(3))  # contiguous windows, walking back
    assert report.gaps == ["bybit has no 5m open interest at or before 2024-04-30 22:00:00+00:00 (before the listing "
                           "or beyond its retention); left as a gap"]
    oi = store.read("bybit", "BTC/USDT:USDT", "open_interest", "5m")
    stamps = pd.DatetimeIndex(oi["timestamp"]).as_unit("ms").asi8
    assert stamps[0] == LISTING and np.all(np.diff(stamps) == 300_000)
    assert oi["open_interest_amount"].tolist() == [float(bybit_oi(int(t))) for t in stamps]  # BTC, linear
    assert oi["open_interest_value"].isna().all()  # priced with the candle when read
    with FakeBybit(listing_ms=LISTING, now_ms=NOW) as srv:
        again = fetch_oi_history("bybit", "BTCUSDT", "5m", "2024-05-01", "2024-05-03", store=store,
                                 api_url=srv.url, policy=FAST, now=NOW)
        assert srv.paths("/v5/market/open-interest") == [] and again.requests == 0
    assert "already in the store; no request needed" in again.message


def test_bybit_inverse_open_interest_is_usd(tmp_path):
    store = Store(tmp_path)
    with FakeBybit(listing_ms=LISTING, now_ms=NOW) as srv:
        fetch_oi_history("bybit", "BTC/USD:BTC", "1h", "2024-05-01", "2024-05-01 03:00", store=store,
                         api_url=srv.url, policy=FAST, now=NOW)
    oi = store.read("bybit", "BTC/USD:BTC", "open_interest", "1h")
    assert oi["open_interest_value"].tolist() == [400_000_000.0 + (LISTING + h * 3_600_000) // 300_000 % 1000
                                                  for h in range(4)]
    assert oi["open_interest_amount"].isna().all()


def test_okx_asks_only_inside_its_retention_and_says_so(tmp_path):
    store = Store(tmp_path)
    with FakeOkx(now_ms=NOW) as srv:
        srv.faults["/api/v5/rubik/stat/contracts/open-interest-history"] = ["429"]
        report = fetch_oi_history("okx", "BTC-USDT-SWAP", "5m", "2024-04-20", None, store=store,
                                  api_url=srv.url, policy=FAST, now=NOW)
        pages = srv.paths("/api/v5/rubik/stat/contracts/open-interest-history")
    newest = NOW // 300_000 * 300_000
    oldest = newest - 1439 * 300_000
    assert report.rows == 1440 and report.first == ts(oldest) and report.last == ts(newest)
    assert report.retries == 1 and len(pages) == 15 + 1  # one 429 retried
    assert all(int(q["limit"]) == 100 for q in pages) and min(int(q["begin"]) for q in pages) >= oldest - 1
    assert report.gaps == [f"okx keeps only the last 1440 5m rows, so 2024-04-20 00:00:00+00:00 up to {ts(oldest)} "
                           "is left as a gap"]
    oi = store.read("okx", "BTC/USDT:USDT", "open_interest", "5m")
    first = okx_oi(oldest)
    assert oi["open_interest_value"].iloc[0] == float(first[2]) and oi["open_interest_amount"].iloc[0] == float(first[1])
    # the newest window ends within the hour: only what arrived counts as fetched
    assert store.coverage("okx", "BTC/USDT:USDT", "open_interest", "5m") == [(oldest, newest)]


def test_unsupported_period_and_cli(tmp_path, capsys):
    with pytest.raises(ExchangeDataError, match=r"okx keeps open-interest history in 5m, 1h, 1d periods, not '15m'"):
        fetch_oi_history("okx", "BTC-USDT-SWAP", "15m", "2024-05-01", store=tmp_path)
    now = int(pd.Timestamp.now(tz="UTC").value // 10**6)
    with FakeBybit(listing_ms=now - 86_400_000, now_ms=now) as srv:
        since = ts(now - 2 * 3_600_000).isoformat()
        code = main(["oi-history", "bybit", "BTCUSDT", "--period", "1h", "--since", since, "--api-url", srv.url,
                     "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("bybit BTC/USDT:USDT open interest (1h): stored 2 rows from 127.0.0.1")


def test_okx_recent_liquidations_convert_contracts(tmp_path, capsys):
    from liqlab.sources.okx_liquidations import fetch_okx_liquidations

    store = Store(tmp_path)
    with FakeOkx(now_ms=NOW) as srv:
        report = fetch_okx_liquidations("BTC-USDT-SWAP", store=store, api_url=srv.url, policy=FAST)
        pages = srv.paths("/api/v5/public/liquidation-orders")
        assert main(["okx-liquidations", "BTC/USD:BTC", "--api-url", srv.url, "--data-dir", str(tmp_path)]) == 0
    assert pages[0] == {"instType": "SWAP", "instFamily": "BTC-USDT", "state": "filled", "limit": "100"}
    assert pages[1]["after"] == "1714521600000" and len(pages) == 2  # the second page is empty
    events = store.read_liquidations("okx", "BTC/USDT:USDT")
    # 3 and 250 contracts of 0.01 BTC at the bankruptcy price; posSide is the side liquidated
    assert events["side"].tolist() == ["short", "long"]
    assert events["notional"].tolist() == [3 * 0.01 * 40200.0, 250 * 0.01 * 40100.5]
    assert report.events == 2 and "converted from contracts" in report.message
    inverse = store.read_liquidations("okx", "BTC/USD:BTC")
    assert inverse["side"].tolist() == ["long"] and inverse["notional"].tolist() == [700.0]  # 7 x 100 USD
    assert "okx BTC/USD:BTC: 1 recent liquidation(s)" in capsys.readouterr().out


def test_rest_fetcher_keeps_bybit_inverse_usd_open_interest(tmp_path):
    from liqlab.sources.exchange import Fetcher, ensure_markets, make_exchange

    with FakeBybit(listing_ms=LISTING, now_ms=NOW) as srv:
        ex = make_exchange("bybit", api_url=srv.url)
        ensure_markets(ex, policy=FAST)
        rows = Fetcher(ex, "BTC/USD:BTC", policy=FAST).open_interest("1h", LISTING, LISTING + 2 * 3_600_000)
    assert rows["open_interest_value"].tolist() == [400_000_000.0 + (LISTING + h * 3_600_000) // 300_000 % 1000
                                                    for h in range(3)]
