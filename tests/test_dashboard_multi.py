"""The explorer's "all exchanges" source: summed market, bars stacked by venue, table, status notes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from liqlab.apps.dashboard import Dashboard
from liqlab.apps.multi_view import (
    breakdown_rows,
    fill_command,
    venue_bar_values,
    visitor_text,
)
from liqlab.sources.store import Store
from tests.multi_store import SYM, fill_store

T0 = pd.Timestamp("2024-05-01", tz="UTC")
N = 2 * 288  # two days of 5-minute candles


@pytest.fixture()
def store_dir(tmp_path, monkeypatch):
    root = tmp_path / "store"
    fill_store(root, T0, N)
    monkeypatch.setenv("LIQLAB_DATA_DIR", str(root))
    return root


def visitor_texts(d: Dashboard) -> list[str]:
    return [d.status.value, d.w_breakdown.value, d.message, *(str(t.get("name", "")) for t in d.figure.traces)]


def test_all_exchanges_sums_venues_and_stacks_their_bars(store_dir):
    d = Dashboard(debounce=0)
    assert "all exchanges" in d.w_exchange.options
    assert d.set(exchange="all exchanges", symbol=SYM, window="custom", start=dt.date(2024, 5, 1),
                 end=dt.date(2024, 5, 2)), d.message
    m = d.market
    assert len(m) == N and m.exchange == "binanceusdm+bybit+okx"
    # a candle takes each venue's snapshot taken at its close
    oi = m.column("open_interest")
    assert oi[:3].tolist() == [1e9 + 1e5 + 7e8, 1e9 + 2e5 + 7e8, 1e9 + 3e5 + 7e8]
    assert oi[-1] == 1e9 + N * 1e5 + 7e8
    assert m.liquidations["long_usd"].iloc[:3].tolist() == [1050.0, 20.0, 0.0]
    assert m.liquidations["short_usd"].iloc[[2, 12]].tolist() == [300.0, 70.0]
    assert m.liquidations["long_usd"].sum() == 1070.0 and m.liquidations["short_usd"].sum() == 370.0

    traces = d._parts["traces"]
    assert d._parts["period"] == "15min"  # 576 candles drawn as 192 fifteen-minute bars
    fig = {n: d.figure.trace(n) for n in ("venue_long_0", "venue_long_1", "venue_long_2", "venue_short_0",
                                         "venue_short_1")}
    assert [fig[n]["name"] for n in ("venue_long_0", "venue_long_1", "venue_long_2")] == [
        "binanceusdm (lower bound)", "bybit", "okx"]
    assert fig["venue_short_0"]["name"] == "binanceusdm (lower bound)" and fig["venue_short_0"]["showlegend"] is False
    assert venue_bar_values(fig["venue_long_0"])[:3].tolist() == [1000.0, 0.0, 0.0]
    assert venue_bar_values(fig["venue_long_1"])[:3].tolist() == [50.0, 0.0, 0.0]
    assert venue_bar_values(fig["venue_long_2"])[:3].tolist() == [20.0, 0.0, 0.0]
    assert venue_bar_values(traces["venue_short_0"])[:3].tolist() == [-300.0, 0.0, 0.0]
    assert venue_bar_values(fig["venue_short_1"])[:5].tolist() == [0.0] * 4 + [-70.0]
    assert len(venue_bar_values(fig["venue_long_0"])) == N // 3
    # stacked: each venue's band is filled from zero to the sum of itself and the venues drawn after it
    tops = np.asarray(fig["venue_long_0"]["y"])[0::3]
    assert tops[:3].tolist() == [1070.0, 0.0, 0.0] and np.asarray(fig["venue_long_1"]["y"])[0] == 70.0
    assert np.asarray(fig["venue_long_2"]["y"])[0] == 20.0
    assert np.asarray(fig["venue_short_0"]["y"])[0::3][:2].tolist() == [-300.0, 0.0]
    assert np.asarray(fig["venue_short_1"]["y"])[0::3][4] == -70.0
    assert d.figure.trace("realized_long")["visible"] is False  # the summed bars would cover the stack

    rows = {r["venue"]: r for r in breakdown_rows(d.loaded, m)}
    assert list(rows) == ["binanceusdm", "bybit", "okx"]
    last_oi = {"binanceusdm": 1e9 + N * 1e5, "bybit": 5e8, "okx": 2e8}
    for v, r in rows.items():
        assert r["oi_share"] == last_oi[v] / sum(last_oi.values())
    assert [(r["long_usd"], r["short_usd"], r["lower_bound"]) for r in rows.values()] == [
        (1000.0, 300.0, True), (50.0, 70.0, False), (20.0, 0.0, False)]
    assert rows["bybit"]["span"] == "2024-05-01 00:00 → 2024-05-01 23:55"
    assert rows["okx"]["source"] == "okx store"
    table = d.w_breakdown.value
    assert "<tr data-venue='bybit'><td>bybit</td><td>28.4%</td><td>$50</td><td>$70</td>" in table
    assert "<td>binanceusdm store</td><td>yes</td>" in table

    assert d.message == (
        "summed over binanceusdm (OI 05-01 00:00–05-02 23:55, liquidations 05-01 00:00–05-02 23:55), "
        "bybit (OI 05-01 00:00–05-02 23:55, liquidations 05-01 00:00–05-01 23:55), "
        "okx (OI 05-01 00:00–05-02 23:55, liquidations 05-01 00:00–05-02 23:55); candles from binanceusdm; "
        "realized liquidations of binanceusdm are lower bounds (at most one per symbol per second is published), "
        "so the sums are too")
    assert not d.error
    for text in visitor_texts(d):
        assert str(store_dir) not in text and "/tmp" not in text


def test_a_venue_with_less_history_limits_the_sum_and_is_named(tmp_path, monkeypatch):
    root = tmp_path / "store"
    fill_store(root, T0, N, bybit_oi_from=72)  # Bybit's open interest from 06:00 (the close of candle 71)
    monkeypatch.setenv("LIQLAB_DATA_DIR", str(root))
    d = Dashboard(debounce=0)
    assert d.set(exchange="all exchanges", symbol=SYM, window="custom", start=dt.date(2024, 5, 1),
                 end=dt.date(2024, 5, 2)), d.message
    # no jump where Bybit would join the sum: the market starts where all three venues have open interest
    assert d.market.start == T0 + pd.Timedelta(minutes=5 * 71) and len(d.market) == N - 71
    assert d.market.column("open_interest")[0] == 1e9 + 72e5 + 5e8 + 2e8
    assert d.message.endswith(
        "the store has no BTCUSDT open interest before 2024-05-01 05:55 for bybit; "
        "fill it with: liqlab oi-history bybit BTCUSDT --since 2024-05-01 --until 2024-05-01T05:55")
    assert "bybit (OI 05-01 05:55–05-02 23:55, liquidations 05-01 05:55–05-01 23:55)" in d.message
    assert str(root) not in d.status.value


def test_a_single_venue_draws_no_venue_bars_and_no_table(store_dir):
    d = Dashboard(debounce=0)
    assert d.set(exchange="all exchanges", symbol=SYM, window="custom", start=dt.date(2024, 5, 1),
                 end=dt.date(2024, 5, 1)), d.message
    assert d.w_breakdown.value
    assert d.set(exchange="binanceusdm"), d.message
    assert d.market.exchange == "binanceusdm" and len(d.market) == 288
    assert d.w_breakdown.value == ""
    for i in range(3):
        assert d.figure.trace(f"venue_long_{i}")["visible"] is False
        assert d.figure.trace(f"venue_short_{i}")["visible"] is False
    assert d.figure.trace("realized_long")["visible"] is True
    assert d.market.liquidations["long_usd"].iloc[0] == 1000.0
    assert "summed over" not in d.status.value


def test_a_window_the_store_cannot_fill_names_the_command(store_dir):
    d = Dashboard(debounce=0)
    assert d.set(exchange="binanceusdm", symbol=SYM, window="custom", start=dt.date(2024, 4, 20),
                 end=dt.date(2024, 5, 2)), d.message
    assert d.market.start == T0
    assert d.message == (
        "the store has no BTCUSDT history before 2024-05-01 00:00 for binanceusdm, so this window shows less "
        "than asked; fill it with: liqlab archive binanceusdm BTCUSDT --since 2024-04-20 --until 2024-04-30")
    assert str(store_dir) not in d.status.value


def test_a_preset_the_store_cannot_fill_names_the_command(tmp_path, monkeypatch):
    root = tmp_path / "recent"
    t0 = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    n = (pd.Timestamp.now(tz="UTC").floor("5min") - t0) // pd.Timedelta(minutes=5)  # up to the last closed candle
    fill_store(root, t0, n)
    monkeypatch.setenv("LIQLAB_DATA_DIR", str(root))
    d = Dashboard(debounce=0)
    assert d.set(exchange="all exchanges", symbol=SYM, window="12h"), d.message
    assert d.market.start > t0 and "fill it with" not in d.message
    before = pd.Timestamp.now(tz="UTC")
    assert d.set(window="7d"), d.message  # loads again: the 12-hour load does not reach back 7 days
    after = pd.Timestamp.now(tz="UTC")
    assert d.market.start == t0
    days = {f"{t - pd.Timedelta(days=7):%Y-%m-%d}" for t in (before, after)}
    wanted = [f"the store has no BTCUSDT open interest before {t0:%Y-%m-%d} 00:00 for binanceusdm; fill it with: "
              f"liqlab archive binanceusdm BTCUSDT --since {day} --until {t0 - pd.Timedelta(days=1):%Y-%m-%d}"
              for day in days]
    assert any(w in d.message for w in wanted), d.message
    assert "liqlab oi-history okx BTCUSDT --since" in d.message
    assert str(root) not in d.status.value


def test_fill_commands_per_venue():
    a, b = pd.Timestamp("2024-03-01", tz="UTC"), pd.Timestamp("2025-03-01", tz="UTC")
    assert fill_command("binanceusdm", "BTC/USDT:USDT", a, b) == \
        "liqlab archive binanceusdm BTCUSDT --since 2024-03-01 --until 2025-02-28"
    assert fill_command("bybit", "BTCUSDT", a, b) == "liqlab oi-history bybit BTCUSDT --since 2024-03-01 --until 2025-03-01"
    assert fill_command("okx", "BTCUSDT", a, b + pd.Timedelta(hours=6)) == \
        "liqlab oi-history okx BTCUSDT --since 2024-03-01 --until 2025-03-01T06:00"
    assert fill_command("bybit", "BTCUSDT", a + pd.Timedelta(hours=7), b) == \
        "liqlab oi-history bybit BTCUSDT --since 2024-03-01 --until 2025-03-01"
    assert fill_command("bybit", "BTCUSDT", a, b, "1h", candles=True) == \
        "liqlab fetch bybit BTCUSDT --timeframe 1h --since 2024-03-01 --until 2025-03-01"
    assert fill_command("gate", "BTCUSDT", a, b, "1h") == \
        "liqlab fetch gate BTCUSDT --timeframe 1h --since 2024-03-01 --until 2025-03-01"


def test_nothing_stored_falls_back_without_naming_server_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("LIQLAB_DATA_DIR", str(tmp_path / "empty"))
    d = Dashboard(debounce=0)
    d.set(exchange="all exchanges", symbol="ETHUSDT", window="custom", start=dt.date(2024, 5, 1),
          end=dt.date(2024, 5, 2))
    assert d._current_load.source == "sample"
    assert d._current_load.note.startswith(
        "all exchanges ETHUSDT: the store has no open interest or liquidations of ETHUSDT on binanceusdm, bybit, okx; "
        "fill it with: liqlab archive binanceusdm ETHUSDT --since 2024-05-01 --until 2024-05-02")
    assert str(tmp_path) not in d._current_load.note and str(tmp_path) not in d.status.value
    assert visitor_text(f"nothing stored in {tmp_path}/store for BTC/USDT:USDT") == \
        "nothing stored in the data folder for BTC/USDT:USDT"
    assert visitor_text(f"exported to {tmp_path}/exports/btc_5m.csv") == "exported to btc_5m.csv"


def test_the_map_app_offers_all_exchanges_too(store_dir):
    d = Dashboard(debounce=0, view="map")
    assert d.set(exchange="all exchanges", symbol=SYM, window="custom", start=dt.date(2024, 5, 1),
                 end=dt.date(2024, 5, 1)), d.message
    assert d.w_breakdown in d.layout.children
    assert "<tr data-venue='okx'>" in d.w_breakdown.value
    assert venue_bar_values(d.figure.trace("venue_long_0"))[0] == 1000.0
    assert d.set(online=True), d.message  # the sum is read from the store alone, and says so
    assert d.message.endswith("all exchanges reads the store only ('online' asks one exchange at a time)")


def test_no_status_message_names_a_server_path(tmp_path):
    from liqlab.apps.dashboard import default_loader

    secret = tmp_path / "private" / "store"

    def loader(exchange, symbol, timeframe, since, until, online):
        if exchange == "sample":
            return default_loader(exchange, symbol, timeframe, since, until, online)
        raise OSError(f"cannot open {secret}/BTC_USDT_USDT/ohlcv_5m.parquet")

    d = Dashboard(debounce=0, loader=loader)
    d.set(exchange="bybit")
    assert d.message.startswith("bybit BTCUSDT: cannot open ohlcv_5m.parquet")
    assert str(tmp_path) not in d.status.value and "/private/" not in d.status.value


def test_a_bybit_window_the_store_cannot_fill_names_both_commands(store_dir):
    s = Store(store_dir)
    rows = s.read("binanceusdm", SYM, "ohlcv", "5m")
    s.write("bybit", SYM, "ohlcv", "5m", rows.iloc[144:])  # Bybit candles from 12:00 on
    d = Dashboard(debounce=0)
    assert d.set(exchange="bybit", symbol=SYM, window="custom", start=dt.date(2024, 5, 1),
                 end=dt.date(2024, 5, 1), online=False), d.message
    assert d.market.start == T0 + pd.Timedelta(hours=12)
    assert d.message.endswith(
        "the store has no BTCUSDT history before 2024-05-01 12:00 for bybit, so this window shows less than asked; "
        "fill it with: liqlab oi-history bybit BTCUSDT --since 2024-05-01 --until 2024-05-01T12:00 and "
        "liqlab fetch bybit BTCUSDT --timeframe 5m --since 2024-05-01 --until 2024-05-01T12:00")
