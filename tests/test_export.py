"""``liqlab export``: a stored market in the generic format, aligned without lookahead."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from liqlab.cli import main
from liqlab.sources.csv_files import load_market_file
from liqlab.sources.export import ExportError, export_market, stored_market
from liqlab.sources.store import Store
from tests.exchange_fixtures.fake_archive import (
    FakeArchive,
    klines_csv,
    metrics_csv,
    ms,
    oi_value_at,
)

EX, SYM = "binanceusdm", "BTC/USDT:USDT"


def t(stamp: str) -> pd.Timestamp:
    return pd.Timestamp(stamp, tz="UTC")


@pytest.fixture()
def store(tmp_path):
    """20 one-minute candles from 00:00, 5-minute OI / ratios taken at 00:00 .. 00:20, funding, events."""
    s = Store(tmp_path)
    ts = pd.date_range("2024-05-01", periods=20, freq="1min", tz="UTC")
    close = 60000.0 + np.arange(20) * 10.0
    s.write(EX, SYM, "ohlcv", "1m", pd.DataFrame({"timestamp": ts, "open": close - 5, "high": close + 20,
                                                   "low": close - 20, "close": close, "volume": 1.0 + np.arange(20)}))
    snaps = pd.date_range("2024-05-01", periods=5, freq="5min", tz="UTC")
    s.write(EX, SYM, "open_interest", "5m", pd.DataFrame({
        "timestamp": snaps, "open_interest_value": [1e9, 2e9, 3e9, 4e9, 5e9], "open_interest_amount": np.nan}))
    s.write(EX, SYM, "long_short", "5m", pd.DataFrame({"timestamp": snaps, "long_short_ratio": [1.1, 1.2, 1.3, 1.4, 1.5]}))
    s.write(EX, SYM, "ratios", "5m", pd.DataFrame({
        "timestamp": snaps, "top_trader_account_ratio": [2.1, 2.2, 2.3, 2.4, 2.5],
        "top_trader_position_ratio": [3.1, 3.2, 3.3, 3.4, 3.5], "taker_buy_sell_ratio": [0.9, 1.0, 1.1, 1.2, 1.3]}))
    s.write(EX, SYM, "funding", None, pd.DataFrame({"timestamp": [t("2024-04-30 16:00"), t("2024-05-01 00:00:00.004")],
                                                    "funding_rate": [0.0001, 0.0003]}))
    s.append_liquidations(EX, SYM, pd.DataFrame({
        "timestamp": [t("2024-05-01 00:03:10"), t("2024-05-01 00:03:50"), t("2024-05-01 00:07:00")],
        "side": ["long", "short", "long"], "price": [60000.0, 60010.0, 60050.0],
        "notional": [1000.0, 500.0, 250.0]}), covered=(ms(date(2024, 5, 1)), ms(date(2024, 5, 1)) + 20 * 60_000 - 1))
    return s


def test_one_minute_candles_take_the_last_five_minute_snapshot_known_at_their_close(store):
    market, extras = stored_market(store, EX, "BTCUSDT", "1m", "2024-05-01", "2024-05-01 00:19")
    assert len(market) == 20 and market.symbol == SYM
    oi = market.data["open_interest"].tolist()
    # candles 00:00-00:03 close by 00:04: only the 00:00 snapshot is known; candle 00:04 closes at
    # 00:05, when the 00:05 snapshot is taken; and so on
    assert oi == [1e9] * 4 + [2e9] * 5 + [3e9] * 5 + [4e9] * 5 + [5e9]
    opens = market.index.as_unit("ms").asi8
    snaps = pd.date_range("2024-05-01", periods=5, freq="5min", tz="UTC").as_unit("ms").asi8
    used = snaps[np.searchsorted([1e9, 2e9, 3e9, 4e9, 5e9], oi)]
    assert np.all(used <= opens + 60_000)  # never a snapshot taken after the candle's close
    assert market.data["long_short_ratio"].tolist()[3:5] == [1.1, 1.2]
    assert extras["taker_buy_sell_ratio"].tolist()[8:10] == [1.0, 1.1]
    assert market.data["funding_rate"].tolist() == [0.0003] * 20
    assert market.liquidations["long_usd"].tolist()[3] == 1000.0 and market.liquidations["short_usd"].tolist()[3] == 500.0
    assert market.liquidations["long_usd"].tolist()[7] == 250.0 and market.liquidations.to_numpy().sum() == 1750.0


def test_export_round_trips_through_the_generic_reader_and_predict_reads_it(store, tmp_path, capsys):
    out = tmp_path / "out" / "btc.csv"
    code = main(["export", EX, "BTCUSDT", "--timeframe", "1m", "--since", "2024-05-01", "--until", "2024-05-01 00:05",
                 "--out", str(out), "--data-dir", str(store.root)])
    text = capsys.readouterr().out
    assert code == 0 and "wrote 6 1m candles of binanceusdm BTC/USDT:USDT" in text and "lower bound" in text
    head = out.read_text().splitlines()
    assert head[0] == ("timestamp,open,high,low,close,volume,open_interest,funding_rate,long_short_ratio,"
                       "top_trader_account_ratio,top_trader_position_ratio,taker_buy_sell_ratio,long_usd,short_usd")
    assert head[1] == "2024-05-01T00:00:00Z,59995.0,60020.0,59980.0,60000.0,1.0,1000000000.0,0.0003,1.1,2.1,3.1,0.9,0.0,0.0"
    market = load_market_file(out, gaps="keep")
    assert market.data["open_interest"].tolist() == [1e9] * 4 + [2e9] * 2
    assert market.liquidations["long_usd"].tolist() == [0.0, 0.0, 0.0, 1000.0, 0.0, 0.0]
    assert market.liquidations["short_usd"].tolist() == [0.0, 0.0, 0.0, 500.0, 0.0, 0.0]
    pq = tmp_path / "btc.parquet"
    assert main(["export", EX, "BTC/USDT:USDT", "-t", "1m", "--since", "2024-05-01", "--until", "2024-05-01 00:05",
                 "--out", str(pq), "--data-dir", str(store.root)]) == 0
    assert load_market_file(pq, gaps="keep").data.equals(market.data)
    pred = tmp_path / "pred.csv"
    assert main(["predict", str(out), "--out", str(pred)]) == 0
    assert pd.read_csv(pred).columns.tolist() == ["timestamp", "long_usd", "short_usd"]


def test_export_says_what_is_missing(tmp_path, capsys):
    code = main(["export", EX, "BTCUSDT", "--since", "2024-05-01", "--until", "2024-05-02", "--out",
                 str(tmp_path / "x.csv"), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "holds no binanceusdm BTCUSDT" in err and "liqlab archive binanceusdm BTCUSDT" in err
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(ExportError, match="write .csv, .csv.gz or .parquet"):
        Store(tmp_path).write(EX, SYM, "ohlcv", "5m", pd.DataFrame({
            "timestamp": [t("2024-05-01")], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0]}))
        Store(tmp_path).write(EX, SYM, "open_interest", "5m", pd.DataFrame({
            "timestamp": [t("2024-05-01")], "open_interest_value": [1e9]}))
        export_market(EX, "BTCUSDT", "5m", "2024-05-01", "2024-05-01", tmp_path / "x.xlsx", store=tmp_path)


def test_archive_day_without_metrics_is_left_out_not_carried_forward(tmp_path, capsys):
    with FakeArchive(tmp_path / "archive") as arc:
        for d in (1, 2, 3):
            day = date(2024, 5, d)
            arc.add(f"data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-{day}.zip", klines_csv(ms(day), 24, 3_600_000))
            if d != 2:
                arc.add(f"data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-{day}.zip", metrics_csv(day))
        base = ["--data-dir", str(tmp_path / "store")]
        assert main(["archive", EX, "BTCUSDT", "--kinds", "klines,metrics", "--interval", "1h", "--since", "2024-05-01",
                     "--until", "2024-05-03", "--archive-url", arc.url, *base]) == 0
    assert "left as gaps: BTCUSDT-metrics-2024-05-02.zip" in capsys.readouterr().out
    out = tmp_path / "x.csv"
    assert main(["export", EX, "BTCUSDT", "-t", "1h", "--since", "2024-05-01", "--until", "2024-05-03 23:00",
                 "--out", str(out), *base]) == 0
    msg = capsys.readouterr().out
    # 05-02 00:00 still sees 00:55 of 05-01 within an hour; 23 candles of 05-02 have no open interest
    assert "23 candle(s) without open interest within 60 min left out" in msg
    market = load_market_file(out, gaps="keep")
    assert len(market) == 72 - 23 and len(market.gaps) == 1
    # each hourly candle carries the OI taken at its close (the archive row stamped then)
    first = market.index[0].value // 1_000_000
    assert market.data["open_interest"].iloc[0] == oi_value_at(first + 3_600_000)


def test_coarser_candles_are_built_from_complete_groups_of_stored_ones(store, capsys):
    # drop the 00:07 one-minute candle: the 00:05-00:10 group is incomplete and left out
    frame = store.read(EX, SYM, "ohlcv", "1m")
    short = frame.loc[frame["timestamp"] != t("2024-05-01 00:07")]
    store.path(EX, SYM, "ohlcv", "1m").unlink()
    store.write(EX, SYM, "ohlcv", "1m", short)
    notes: list[str] = []
    market, _ = stored_market(store, EX, "BTCUSDT", "5m", "2024-05-01", "2024-05-01 00:15", notes=notes)
    assert list(market.index) == [t("2024-05-01 00:00"), t("2024-05-01 00:10"), t("2024-05-01 00:15")]
    first = market.data.iloc[0]
    assert first[["open", "high", "low", "close", "volume"]].tolist() == [59995.0, 60060.0, 59980.0, 60040.0, 15.0]
    assert market.data["open_interest"].tolist() == [2e9, 4e9, 5e9]
    assert notes[0] == "5m candles built from stored 1m candles (complete groups only)"
