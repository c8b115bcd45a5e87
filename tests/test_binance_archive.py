"""Binance public-archive readers: quirks fixed at the edge, exact values, no lookahead."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from liqlab.core.market import MarketDataError
from liqlab.sources.binance_archive import (
    load_binance_archive,
    read_funding_rate,
    read_klines,
    read_liquidation_snapshot,
    read_metrics,
)


@pytest.fixture(scope="module")
def arc(fixtures):
    return fixtures / "binance_archive"


def t(stamp: str) -> pd.Timestamp:
    return pd.Timestamp(stamp, tz="UTC")


def five_minutes(start: str, n: int) -> list[pd.Timestamp]:
    return list(pd.date_range(start, periods=n, freq="5min", tz="UTC"))


# --------------------------------------------------------------------------------------------
# klines
def test_headerless_klines(arc):
    k = read_klines(arc / "BTCUSDT-1m-2020-01-01.csv")
    assert list(k.index) == [t("2020-01-01 00:00"), t("2020-01-01 00:01"), t("2020-01-01 00:02")]
    assert list(k.columns) == ["open", "high", "low", "close", "volume", "taker_buy_volume"]
    assert k.iloc[0].tolist() == [7189.43, 7190.52, 7177.0, 7182.44, 246.092, 46.63]


def test_microsecond_klines(arc):
    k = read_klines(arc / "BTCUSDT-5m-2025-01-01.spot-us.csv")
    assert list(k.index) == five_minutes("2025-01-01", 3)
    assert k["close"].tolist() == [93565.0, 93523.99, 93587.26]
    assert k["volume"].tolist() == [8.21758, 7.03222, 5.35]


def test_zipped_klines_with_header(arc):
    k = read_klines(arc / "BTCUSDT-5m-2024-10-01.zip")
    assert list(k.index) == five_minutes("2024-10-01", 6)
    assert k["close"].tolist() == [63320.0, 63380.0, 63210.0, 63250.0, 63290.0, 63300.0]
    assert k["taker_buy_volume"].tolist() == [60.0, 70.0, 50.0, 45.0, 40.0, 35.0]
    assert k.index.tz is not None and str(k.index.tz) == "UTC"


def test_coin_m_klines_use_base_coin_volume(tmp_path):
    # COIN-M: column 6 counts contracts, column 8 is the volume in BTC
    path = tmp_path / "BTCUSD_PERP-1m.csv"
    path.write_text("1591258320000,9640.7,9642.4,9640.6,9642.0,206,1591258379999,2.13660389,48,119,1.23424865,0\n")
    k = read_klines(path, contract="inverse")
    assert k["volume"].iloc[0] == 2.13660389
    assert k["taker_buy_volume"].iloc[0] == 1.23424865
    assert read_klines(path)["volume"].iloc[0] == 206.0


def test_zip_with_two_csvs_or_damaged_zip_is_refused(tmp_path, arc):
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as z:
        z.writestr("a.csv", "1,2,3\n")
        z.writestr("b.csv", "1,2,3\n")
    with pytest.raises(MarketDataError, match=r"two\.zip: expected one CSV inside the zip, found 2"):
        read_klines(two)
    broken = tmp_path / "broken.zip"
    broken.write_bytes((arc / "BTCUSDT-5m-2024-10-01.zip").read_bytes()[:60])
    with pytest.raises(MarketDataError, match=r"broken\.zip: damaged zip"):
        read_klines(broken)


def test_kline_with_bad_number_names_line(tmp_path):
    path = tmp_path / "BTCUSDT-1m-bad.csv"
    path.write_text(
        "1577836800000,7189.43,7190.52,7177,7182.44,246.092,1577836859999,1767430.16121,336,46.630,334813.19820,0\n"
        "1577836860000,7182.43,oops,7178.75,7179.01,70.909,1577836919999,509145.78482,140,32.597,234063.27884,0\n"
    )
    with pytest.raises(MarketDataError, match=r"BTCUSDT-1m-bad\.csv, line 2, column 'high': 'oops'"):
        read_klines(path)


def test_not_a_klines_file(arc):
    with pytest.raises(MarketDataError, match=r"missing column.*Binance klines"):
        read_klines(arc / "BTCUSDT-fundingRate-2024-10.csv")


# --------------------------------------------------------------------------------------------
# metrics
def test_metrics_sorted_last_repeat_kept_blank_is_nan(arc):
    m = read_metrics(arc / "BTCUSDT-metrics-2024-10-01.csv")
    assert list(m.index) == five_minutes("2024-10-01", 7)
    # 00:10 appears twice: the later row (5.02e9) wins over the earlier 9.99e9
    assert m["open_interest"].tolist() == [5.00e9, 5.01e9, 5.02e9, 5.03e9, 5.04e9, 5.05e9, 5.06e9]
    ratio = m["long_short_ratio"]
    assert np.isnan(ratio.iloc[3])
    assert ratio.drop(ratio.index[3]).tolist() == [1.50, 1.51, 1.52, 1.54, 1.55, 1.56]
    assert m["top_trader_account_ratio"].iloc[2] == 1.62
    assert m["top_trader_position_ratio"].iloc[2] == 1.72
    assert m["taker_buy_sell_ratio"].iloc[2] == 0.92


def test_metrics_coin_m_open_interest_is_contracts_times_size(arc):
    m = read_metrics(arc / "BTCUSDT-metrics-2024-10-01.csv", contract="inverse", contract_size=100.0)
    assert m["open_interest"].iloc[0] == 78988.942 * 100.0


# --------------------------------------------------------------------------------------------
# liquidation snapshots
def test_usdt_m_snapshot_doubles_dropped_sides_and_notional(arc):
    e = read_liquidation_snapshot(arc / "BTCUSDT-liquidationSnapshot-2024-10-01.csv")
    assert list(e.columns) == ["timestamp", "side", "price", "notional", "quantity"]
    assert len(e) == 4  # eight lines, each written twice
    assert e["side"].tolist() == ["long", "short", "long", "short"]  # SELL -> long liquidated
    # average_price is used; the third row has average_price 0, so the order price stands in
    assert e["price"].tolist() == [63200.0, 63350.0, 63000.0, 63900.0]
    # accumulated fill (0.2), not the last fill (0.1)
    assert e["quantity"].tolist() == [0.5, 0.2, 1.0, 0.3]
    assert e["notional"].tolist() == [63200.0 * 0.5, 63350.0 * 0.2, 63000.0, 63900.0 * 0.3]
    assert e["timestamp"].iloc[2] == t("2024-10-01 00:15:00.500")


def test_coin_m_snapshot_is_contracts_of_100_usd(arc):
    e = read_liquidation_snapshot(arc / "BTCUSD_PERP-liquidationSnapshot-2024-10-02.csv", contract="inverse")
    assert len(e) == 2
    assert e.iloc[0][["side", "notional", "quantity", "price"]].tolist() == ["long", 700.0, 7.0, 61950.5]
    assert e.iloc[1][["side", "notional"]].tolist() == ["short", 300.0]


def test_coin_m_contract_size_is_a_parameter(arc):
    e = read_liquidation_snapshot(
        arc / "BTCUSD_PERP-liquidationSnapshot-2024-10-02.csv", contract="inverse", contract_size=10.0
    )
    assert e["notional"].tolist() == [70.0, 30.0]


def test_snapshot_with_unknown_side(tmp_path):
    path = tmp_path / "snap.csv"
    path.write_text("1727740869082,HOLD,LIMIT,IOC,7,63661.4,63425.1,FILLED,7,7\n")
    with pytest.raises(MarketDataError, match=r"snap\.csv, line 1, column 'side': 'HOLD'"):
        read_liquidation_snapshot(path)


# --------------------------------------------------------------------------------------------
# funding
def test_funding_rate_sorted_with_ms_offsets(arc):
    f = read_funding_rate(arc / "BTCUSDT-fundingRate-2024-10.csv")
    assert f.name == "funding_rate"
    assert list(f.index) == [t("2024-09-30 16:00:00.002"), t("2024-10-01 00:00:00.004"), t("2024-10-01 08:00")]
    assert f.tolist() == [0.00008, 0.0001, 0.00005]


# --------------------------------------------------------------------------------------------
# docstrings show real raw lines: each must parse through its reader
@pytest.mark.parametrize(
    "reader, kwargs",
    [
        (read_klines, {}),
        (read_metrics, {}),
        (read_liquidation_snapshot, {"contract": "inverse"}),
        (read_funding_rate, {}),
    ],
)
def test_docstring_raw_line_parses(tmp_path, reader, kwargs):
    line = re.search(r"::\n\n\s+(\S[^\n]*)\n", reader.__doc__).group(1).strip()
    path = tmp_path / "line.csv"
    path.write_text(line + "\n")
    out = reader(path, **kwargs)
    assert len(out) == 1
    stamp = out["timestamp"].iloc[0] if "timestamp" in getattr(out, "columns", ()) else out.index[0]
    assert stamp.year in (2020, 2024) and str(stamp.tz) == "UTC"


# --------------------------------------------------------------------------------------------
# combining files into a Market
@pytest.fixture(scope="module")
def archive_files(arc):
    return {
        "klines": [arc / "BTCUSDT-5m-2024-10-01.zip"],
        "metrics": [arc / "BTCUSDT-metrics-2024-10-01.csv"],
        "liquidations": [arc / "BTCUSDT-liquidationSnapshot-2024-10-01.csv"],
        "funding": [arc / "BTCUSDT-fundingRate-2024-10.csv"],
    }


def test_archive_market_values(archive_files):
    m = load_binance_archive(**archive_files, symbol="BTCUSDT", timeframe="5m")
    assert (m.symbol, m.exchange, m.contract, m.timeframe, m.source) == (
        "BTCUSDT", "binanceusdm", "linear", "5m", "binance-archive")
    assert list(m.index) == five_minutes("2024-10-01", 6)
    # each candle takes the open interest stamped at its close (00:00 candle -> 00:05 value)
    assert m.data["open_interest"].tolist() == [5.01e9, 5.02e9, 5.03e9, 5.04e9, 5.05e9, 5.06e9]
    # 00:15's ratio is blank, so the 00:10 candle keeps the 00:10 value
    assert m.data["long_short_ratio"].tolist() == [1.51, 1.52, 1.52, 1.54, 1.55, 1.56]
    assert m.data["funding_rate"].tolist() == [0.0001] * 6
    assert m.data["taker_buy_volume"].tolist() == [60.0, 70.0, 50.0, 45.0, 40.0, 35.0]


def test_archive_market_liquidations(archive_files):
    m = load_binance_archive(**archive_files, symbol="BTCUSDT")
    assert m.liquidations["long_usd"].tolist() == [31600.0, 0.0, 0.0, 63000.0, 0.0, 0.0]
    assert m.liquidations["short_usd"].tolist() == [0.0, 0.0, 63350.0 * 0.2, 0.0, 0.0, 0.0]
    # the 02:00 event lies after the last candle's close: it belongs to no candle
    assert len(m.liquidation_events) == 3


def test_known_at_open_is_one_step_more_conservative(archive_files):
    m = load_binance_archive(**archive_files, symbol="BTCUSDT", known_at="open")
    assert m.data["open_interest"].tolist() == [5.00e9, 5.01e9, 5.02e9, 5.03e9, 5.04e9, 5.05e9]
    # funding settled at 00:00:00.004 is not yet known at the 00:00:00.000 open
    assert m.data["funding_rate"].tolist() == [0.00008] + [0.0001] * 5


def test_no_lookahead_later_metrics_do_not_change_earlier_candles(archive_files, tmp_path):
    base = load_binance_archive(**archive_files, symbol="BTCUSDT")
    later = tmp_path / "BTCUSDT-metrics-later.csv"
    text = (archive_files["metrics"][0]).read_text().splitlines()
    later.write_text("\n".join([text[0], "2024-10-01 00:35:00,BTCUSDT,1,9000000000.0,1,1,9.0,1"]) + "\n")
    more = dict(archive_files, metrics=[*archive_files["metrics"], later])
    m = load_binance_archive(**more, symbol="BTCUSDT")
    pd.testing.assert_frame_equal(m.data, base.data)


def test_repeated_files_do_not_double_anything(archive_files):
    twice = {k: v * 2 for k, v in archive_files.items()}
    m = load_binance_archive(**twice, symbol="BTCUSDT")
    base = load_binance_archive(**archive_files, symbol="BTCUSDT")
    pd.testing.assert_frame_equal(m.data, base.data)
    pd.testing.assert_frame_equal(m.liquidations, base.liquidations)


def _kline_lines(start_ms: int, n: int, skip: int | None = None) -> str:
    lines = []
    for i in range(n):
        if i == skip:
            continue
        ms = start_ms + i * 300_000
        lines.append(f"{ms},100.0,101.0,99.0,100.5,10.0,{ms + 299_999},1000.0,5,4.0,400.0,0")
    return "\n".join(lines) + "\n"


def _metrics_lines(start: str, n: int, skip: range = range(0)) -> str:
    rows = ["create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
            "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio"]
    for i, stamp in enumerate(pd.date_range(start, periods=n, freq="5min")):
        if i not in skip:
            rows.append(f"{stamp:%Y-%m-%d %H:%M:%S},BTCUSDT,1000,{1e7 + i},1,1,1,1")
    return "\n".join(rows) + "\n"


def test_archive_gaps_raise_fill_keep(tmp_path):
    k = tmp_path / "k.csv"
    k.write_text(_kline_lines(1727740800000, 6, skip=2))
    mt = tmp_path / "m.csv"
    mt.write_text(_metrics_lines("2024-10-01", 8))
    with pytest.raises(MarketDataError, match=r"1 gap\(s\) in the 5m candles: 2024-10-01 00:05:00\+00:00 -> "):
        load_binance_archive([k], [mt], symbol="BTCUSDT", timeframe="5m")
    filled = load_binance_archive([k], [mt], symbol="BTCUSDT", timeframe="5m", gaps="fill")
    assert len(filled) == 6 and filled.data["volume"].iloc[2] == 0.0
    assert len(load_binance_archive([k], [mt], symbol="BTCUSDT", timeframe="5m", gaps="keep")) == 5


def test_archive_trims_edges_without_oi_and_refuses_holes(tmp_path):
    k = tmp_path / "k.csv"
    k.write_text(_kline_lines(1727740800000, 36))  # 00:00 .. 02:55
    late = tmp_path / "late.csv"
    late.write_text(_metrics_lines("2024-10-01 00:30", 10))  # 00:30 .. 01:15
    m = load_binance_archive([k], [late], symbol="BTCUSDT")
    # first candle with a value at its close is 00:25 (close 00:30); the last is 02:10,
    # whose close (02:15) is still within 1h of the last value (01:15)
    assert m.start == t("2024-10-01 00:25") and m.end == t("2024-10-01 02:10")
    holed = tmp_path / "holed.csv"
    holed.write_text(_metrics_lines("2024-10-01", 37, skip=range(3, 30)))
    with pytest.raises(MarketDataError, match=r"no open interest within 0 days 01:00:00 of .* candle"):
        load_binance_archive([k], [holed], symbol="BTCUSDT")


def test_archive_without_ratios_drops_the_empty_column(arc, tmp_path):
    mt = tmp_path / "m.csv"
    mt.write_text(_metrics_lines("2024-10-01", 7).replace(",1,1,1,1\n", ",,,,\n"))
    m = load_binance_archive([arc / "BTCUSDT-5m-2024-10-01.zip"], [mt], symbol="BTCUSDT")
    assert "long_short_ratio" not in m.data.columns
    assert m.data["open_interest"].tolist() == [1e7 + i for i in range(1, 7)]


def test_archive_needs_klines_and_metrics(archive_files, arc):
    with pytest.raises(MarketDataError, match="no metrics files"):
        load_binance_archive(archive_files["klines"], symbol="BTCUSDT")
    with pytest.raises(MarketDataError, match="no klines files"):
        load_binance_archive([], archive_files["metrics"], symbol="BTCUSDT")
    with pytest.raises(MarketDataError, match="no open interest"):
        load_binance_archive(
            [arc / "BTCUSDT-1m-2020-01-01.csv"],
            archive_files["metrics"], symbol="BTCUSDT",
        )


def test_coin_m_archive_market(arc, tmp_path):
    k = tmp_path / "BTCUSD_PERP-5m.csv"
    k.write_text(_kline_lines(1727827200000, 3))
    mt = tmp_path / "BTCUSD_PERP-metrics.csv"
    mt.write_text(_metrics_lines("2024-10-02", 4))
    m = load_binance_archive(
        [k], [mt], [arc / "BTCUSD_PERP-liquidationSnapshot-2024-10-02.csv"],
        symbol="BTCUSD_PERP", contract="inverse",
    )
    assert m.exchange == "binancecoinm" and m.contract == "inverse"
    assert m.data["open_interest"].tolist() == [1000 * 100.0] * 3  # contracts x 100 USD
    assert m.data["volume"].tolist() == [1000.0] * 3  # base-coin column of COIN-M klines
    assert m.liquidations.iloc[0].tolist() == [700.0, 300.0]


# --------------------------------------------------------------------------------------------
# real file
def test_real_coin_m_snapshot_head(real_data):
    path = real_data / "BTCUSD_PERP-liquidationSnapshot-2024-10-01.head.csv"
    lines = path.read_text().splitlines()[1:]
    assert len(lines) == 14 and len(set(lines)) == 7
    e = read_liquidation_snapshot(path, contract="inverse")
    assert len(e) == 7
    assert e["side"].tolist() == ["short", "long", "short", "long", "long", "long", "short"]
    # 76 contracts filled in all (the last fill was 66)
    assert e["notional"].tolist() == [700.0, 100.0, 7600.0, 100.0, 1200.0, 600.0, 300.0]
    assert e["price"].iloc[0] == 63425.1
    assert e["timestamp"].iloc[0] == t("2024-10-01 00:01:09.082")
    assert e["timestamp"].is_monotonic_increasing


# --------------------------------------------------------------------------------------------
# hostile input: named errors naming the right file and line, never a silent acceptance
KLINE = "1577836800000,7189.43,7190.52,7177,7182.44,246.092,1577836859999,1767430.16121,336,46.630,334813.19820,0"


def refused(call, *, name: str, match: str) -> str:
    with pytest.raises(MarketDataError, match=match) as err:
        call()
    message = str(err.value)
    assert message.startswith(name) and "\n" not in message and len(message) < 400, message
    return message


def test_a_quoted_header_row_is_read(tmp_path, arc):
    lines = (arc / "BTCUSDT-fundingRate-2024-10.csv").read_text().splitlines()
    header = ",".join(f'"{c}"' for c in lines[0].split(","))
    (tmp_path / "f.csv").write_text("\n".join([header, *lines[1:]]) + "\n")
    pd.testing.assert_series_equal(read_funding_rate(tmp_path / "f.csv"),
                                   read_funding_rate(arc / "BTCUSDT-fundingRate-2024-10.csv"))


@pytest.mark.parametrize("fields, match", [
    ({1: "inf"}, "infinite"), ({1: "0"}, "not a positive price"), ({3: "-7177"}, "not a positive price"),
    ({2: "7100"}, "below the low"), ({5: "-246.092"}, "negative"),
])
def test_klines_refuse_values_the_contract_forbids(tmp_path, fields, match):
    cells = KLINE.split(",")
    for i, value in fields.items():
        cells[i] = value
    (tmp_path / "k.csv").write_text(KLINE.replace("1577836800000", "1577836740000") + "\n" + ",".join(cells) + "\n")
    refused(lambda: read_klines(tmp_path / "k.csv"), name="k.csv, line 2", match=match)


@pytest.mark.parametrize("value, match", [("-5000000000", "negative"), ("inf", "infinite")])
def test_metrics_refuse_negative_or_infinite_open_interest(tmp_path, arc, value, match):
    lines = (arc / "BTCUSDT-metrics-2024-10-01.csv").read_text().splitlines()
    cells = lines[2].split(",")
    cells[3] = value
    (tmp_path / "m.csv").write_text("\n".join([lines[0], lines[1], ",".join(cells), *lines[3:]]) + "\n")
    refused(lambda: read_metrics(tmp_path / "m.csv"), name="m.csv, line 3", match=match)


def test_funding_refuses_infinite_rates(tmp_path):
    (tmp_path / "f.csv").write_text("calc_time,funding_interval_hours,last_funding_rate\n1727769600000,8,inf\n")
    refused(lambda: read_funding_rate(tmp_path / "f.csv"), name="f.csv, line 2", match="infinite")


@pytest.mark.parametrize("quantity, price, match", [
    ("-0.5", "63000.0", "negative"), ("0.5", "-63000.0", "no usable price"), ("0.5", "inf", "infinite"),
])
def test_liquidation_snapshots_refuse_bad_values(tmp_path, arc, quantity, price, match):
    header = (arc / "BTCUSDT-liquidationSnapshot-2024-10-01.csv").read_text().splitlines()[0]
    row = f"1727740830000,SELL,LIMIT,IOC,{quantity},{price},0,FILLED,{quantity},{quantity}"
    (tmp_path / "l.csv").write_text(f"{header}\n{row}\n")
    refused(lambda: read_liquidation_snapshot(tmp_path / "l.csv"), name="l.csv, line 2", match=match)


def test_a_damaged_zip_is_a_named_error(tmp_path, arc):
    raw = (arc / "BTCUSDT-5m-2024-10-01.zip").read_bytes()
    (tmp_path / "k.zip").write_bytes(raw[:40] + bytes(b ^ 0x5A for b in raw[40:80]) + raw[80:])
    refused(lambda: read_klines(tmp_path / "k.zip"), name="k.zip", match="damaged zip archive")


def test_archive_times_after_2261_are_refused_not_merged(tmp_path, archive_files):
    far = KLINE.replace("1577836800000", "99999999999999")  # ms in 5138
    (tmp_path / "k.csv").write_text(far + "\n")
    files = {**archive_files, "klines": [*archive_files["klines"], tmp_path / "k.csv"]}
    refused(lambda: load_binance_archive(**files, symbol="BTCUSDT"), name="k.csv, line 1",
            match="between 1970 and 2261")


def test_an_error_in_the_liquidations_file_names_that_file(tmp_path, fixtures):
    from liqlab.sources.csv_files import load_market_file

    root = fixtures / "market_files"
    (tmp_path / "liq.csv").write_text("timestamp,side,price,notional\n2024-10-01T00:10:00Z,long,63000,-5\n")
    refused(lambda: load_market_file(root / "market_iso.csv", liquidations=tmp_path / "liq.csv"),
            name="liq.csv", match="negative")
    events = pd.DataFrame({"timestamp": pd.to_datetime(["2024-10-01T00:10:00Z"]), "side": ["long"],
                           "price": [63000.0], "notional": [5.0]})
    market = load_market_file(root / "market_iso.csv", liquidations=events)
    assert market.liquidations["long_usd"].tolist() == [5.0, 0.0, 0.0, 0.0]
