"""``liqlab fetch / universe / record`` end to end against the local Binance-shaped server."""

from __future__ import annotations

import pandas as pd
import pytest

from liqlab.cli import main
from tests.exchange_fixtures.fake_binance import FakeBinance


@pytest.fixture()
def server():
    with FakeBinance() as srv:
        yield srv


def test_fetch_fills_the_store_and_says_what_and_where(server, tmp_path, capsys):
    until = (pd.Timestamp.now(tz="UTC").floor("5min") - pd.Timedelta(hours=1)).isoformat()
    since = (pd.Timestamp(until) - pd.Timedelta(hours=3)).isoformat()
    argv = ["fetch", "binanceusdm", "BTCUSDT", "--timeframe", "5m", "--since", since, "--until", until,
            "--data-dir", str(tmp_path), "--api-url", server.url]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fetched 37 candle" in out and "127.0.0.1" in out and str(tmp_path) in out
    assert (tmp_path / "binanceusdm" / "BTC_USDT_USDT" / "ohlcv_5m.parquet").exists()
    assert main(argv) == 0
    assert "no request needed" in capsys.readouterr().out


def test_fetch_failure_is_one_sentence_without_traceback(tmp_path, capsys):
    code = main(["fetch", "binanceusdm", "BTCUSDT", "--data-dir", str(tmp_path), "--api-url", "http://127.0.0.1:9", "--retries", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "binanceusdm" in err and "BTCUSDT" in err and "load_sample()" in err


def test_unknown_symbol_and_exchange(server, tmp_path, capsys):
    assert main(["fetch", "binanceusdm", "BTCUSD", "--data-dir", str(tmp_path), "--api-url", server.url]) == 1
    assert "close matches: BTC/USDT:USDT" in capsys.readouterr().err
    assert main(["universe", "binanceusd", "--data-dir", str(tmp_path)]) == 1
    assert "did you mean binanceusdm" in capsys.readouterr().err


def test_universe(server, tmp_path, capsys):
    assert main(["universe", "binanceusdm", "--data-dir", str(tmp_path), "--api-url", server.url]) == 0
    out = capsys.readouterr().out
    assert "BTC/USDT:USDT\tBTCUSDT\tlinear" in out and "3 active perpetuals" in out and "LUNA" not in out


def test_record_with_duration_stops(server, tmp_path, capsys):
    code = main(["record", "binanceusdm", "BTCUSDT", "--duration", "0.3", "--data-dir", str(tmp_path),
                 "--api-url", server.url, "--ws-url", "ws://127.0.0.1:9"])
    assert code == 0 and "recorded 0 liquidation events" in capsys.readouterr().out
