"""Coinalyze client against a local server with the documented response shapes."""

from __future__ import annotations

import pandas as pd
import pytest

from liqlab.cli import main
from liqlab.sources.coinalyze import (
    CoinalyzeClient,
    CoinalyzeError,
    fetch_coinalyze_history,
)
from liqlab.sources.store import Store
from tests.exchange_fixtures.fake_venues import (
    FakeCoinalyze,
    coinalyze_liq,
    coinalyze_oi,
)

KEY = "test-key"
NOW_S = 1714521600 + 10 * 86400 + 1800  # 2024-05-11 00:30 UTC


def client(url: str, key: str | None = KEY) -> CoinalyzeClient:
    return CoinalyzeClient(key, base_url=url, min_interval=0.0, retries=2, sleep=lambda s: None)


def test_daily_history_per_venue_exact_values(tmp_path):
    store = Store(tmp_path)
    with FakeCoinalyze(key=KEY, now_s=NOW_S) as srv:
        report = fetch_coinalyze_history(client(srv.url), "btc", ["binanceusdm", "bybit", "okx"], "daily",
                                         "2024-05-01", "2024-05-09", store=store, now=NOW_S * 1000)
        seen = srv.headers_seen
    assert report.gaps == [] and report.calls == 2 + 9  # exchanges, future-markets, 3 kinds x 3 venues
    assert all(h.get("api_key") == KEY for h in seen)
    assert report.rows["bybit liquidation_bars"] == 9 and report.rows["okx open_interest"] == 9
    bars = store.read("coinalyze-bybit", "BTC/USDT:USDT", "liquidation_bars", "1d")
    days = [1714521600 + d * 86400 for d in range(9)]
    assert bars["timestamp"].tolist() == [pd.Timestamp(t, unit="s", tz="UTC") for t in days]
    assert bars["long_usd"].tolist() == [coinalyze_liq("BTCUSDT.6", t)[0] for t in days]
    assert bars["short_usd"].tolist() == [coinalyze_liq("BTCUSDT.6", t)[1] for t in days]
    oi = store.read("coinalyze-okx", "BTC/USDT:USDT", "open_interest", "1d")
    # the closing value of each day, stamped with the day's end (the time it was taken)
    assert oi["timestamp"].iloc[0] == pd.Timestamp(days[0] + 86400, unit="s", tz="UTC")
    assert oi["open_interest_value"].tolist() == [coinalyze_oi("BTCUSDT_PERP.3", t) for t in days]
    funding = store.read("coinalyze-binanceusdm", "BTC/USDT:USDT", "funding")
    assert funding["funding_rate"].tolist() == [0.0001] * 9  # percent -> decimal


def test_intraday_retention_gap_is_said_plainly(tmp_path):
    store = Store(tmp_path)
    with FakeCoinalyze(key=KEY, now_s=NOW_S, intraday_points=48) as srv:
        srv.faults["/v1/liquidation-history"] = ["429"]
        report = fetch_coinalyze_history(client(srv.url), "BTC", ["okx"], "1hour", "2024-05-01", None,
                                         store=store, kinds=("liquidation",), now=NOW_S * 1000)
    oldest = (NOW_S // 3600 - 47) * 3600
    assert report.gaps == [f"okx liquidation: Coinalyze keeps only the last 1,500-2,000 1hour points, so "
                           f"2024-05-01 00:00:00+00:00 up to {pd.Timestamp(oldest, unit='s', tz='UTC')} is a gap "
                           "(use --interval daily for older history)"]
    bars = store.read("coinalyze-okx", "BTC/USDT:USDT", "liquidation_bars", "1h")
    assert len(bars) == 48 and bars["timestamp"].iloc[0] == pd.Timestamp(oldest, unit="s", tz="UTC")
    # only what came back counts as fetched; the running hour stays open
    assert store.coverage("coinalyze-okx", "BTC/USDT:USDT", "liquidation_bars", "1h") == [
        (oldest * 1000, (NOW_S // 3600 * 3600) * 1000 - 1)]


def test_key_problems_and_unknown_markets(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("COINALYZE_API_KEY", raising=False)
    with pytest.raises(CoinalyzeError, match="set COINALYZE_API_KEY to a Coinalyze API key"):
        CoinalyzeClient(base_url="http://127.0.0.1:9").get("exchanges")
    with FakeCoinalyze(key=KEY, now_s=NOW_S) as srv:
        with pytest.raises(CoinalyzeError, match=r"coinalyze refused the API key \(HTTP 401\)"):
            client(srv.url, key="wrong").get("exchanges")
        with pytest.raises(CoinalyzeError, match="coinalyze has no DOGE/USDT perpetual on Bybit"):
            client(srv.url).perpetual("bybit", "DOGE")
        monkeypatch.setenv("COINALYZE_API_KEY", KEY)
        code = main(["coinalyze", "BTC", "--exchanges", "bybit", "--interval", "daily", "--since", "2024-05-01",
                     "--until", "2024-05-02", "--api-url", srv.url, "--data-dir", str(tmp_path)])
    assert code == 0
    assert capsys.readouterr().out.startswith("coinalyze BTC daily: stored bybit liquidation_bars 2, bybit open_interest")
