"""Generic market file importers: exact values from hand-written fixtures, clear errors, real files."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from liqlab.core.market import MarketDataError, make_market
from liqlab.sources.csv_files import (
    load_candles_file,
    load_liquidations_file,
    load_market_file,
    parse_timestamps,
    save_market_file,
)


@pytest.fixture(scope="module")
def files(fixtures):
    return fixtures / "market_files"


def utc(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(list(stamps), utc=True)).as_unit("us").rename("timestamp")


# --------------------------------------------------------------------------------------------
# timestamps
def test_iso_timestamps_with_z_offset_and_naive_are_utc(files):
    m = load_market_file(files / "market_iso.csv")
    assert list(m.index) == list(
        utc("2024-10-01 00:00", "2024-10-01 01:00", "2024-10-01 02:00", "2024-10-01 03:00")
    )
    assert str(m.index.tz) == "UTC"
    assert m.timeframe == "1h"


def test_epoch_ms_file_equals_iso_file(files):
    iso = load_market_file(files / "market_iso.csv", symbol="X")
    ms = load_market_file(files / "market_epoch_ms.csv", symbol="X")
    pd.testing.assert_frame_equal(iso.data, ms.data)


@pytest.mark.parametrize(
    "raw",
    [
        ["1727740800", "1727744400"],  # seconds
        ["1727740800000", "1727744400000"],  # milliseconds
        ["1727740800000000", "1727744400000000"],  # microseconds
        ["1727740800000000000", "1727744400000000000"],  # nanoseconds
        ["1727740800.0", "1727744400.0"],  # float seconds
    ],
)
def test_epoch_unit_is_detected_by_magnitude(raw):
    got = parse_timestamps(pd.Series(raw))
    assert list(got) == list(utc("2024-10-01 00:00", "2024-10-01 01:00"))


def test_epoch_units_may_differ_row_by_row():
    # a concatenation of Binance spot files from 2024 (ms) and 2025 (µs)
    got = parse_timestamps(pd.Series(["1735689300000", "1735689600000000"]))
    assert list(got) == list(utc("2024-12-31 23:55", "2025-01-01 00:00"))


def _rescale_times(text: str, divide: int = 1, multiply: int = 1) -> str:
    lines = text.splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        stamp, rest = line.split(",", 1)
        out.append(f"{int(stamp) * multiply // divide},{rest}")
    return "\n".join(out) + "\n"


def test_epoch_s_and_us_market_files(files, tmp_path):
    text = (files / "market_epoch_ms.csv").read_text()
    seconds = tmp_path / "s.csv"
    seconds.write_text(_rescale_times(text, divide=1000))
    micro = tmp_path / "us.csv"
    micro.write_text(_rescale_times(text, multiply=1000))
    assert micro.read_text().splitlines()[1].startswith("1727740800000000,")
    ref = load_market_file(files / "market_epoch_ms.csv", symbol="X").data
    pd.testing.assert_frame_equal(load_market_file(micro, symbol="X").data, ref)
    pd.testing.assert_frame_equal(load_market_file(seconds, symbol="X").data, ref)


# --------------------------------------------------------------------------------------------
# market files: values, defaults, optional columns
def test_values_are_exact_and_optional_columns_forward_filled(files):
    m = load_market_file(files / "market_iso.csv")
    assert m.symbol == "market_iso"
    assert m.exchange == "file" and m.contract == "linear"
    assert m.source == "file:market_iso.csv"
    assert m.data["close"].tolist() == [63450.25, 63410.0, 63050.0, 63080.0]
    assert m.data["open_interest"].tolist() == [5.0e9, 5.01e9, 4.99e9, 4.995e9]
    # blank funding (line 3) and ratio (line 4) carry the previous value forward
    assert m.data["funding_rate"].tolist() == [0.0001, 0.0001, 0.00012, 0.00011]
    assert m.data["long_short_ratio"].tolist() == [1.5, 1.6, 1.6, 1.4]
    assert m.data["taker_buy_volume"].tolist() == [600.25, 450.0, 700.0, 500.0]
    assert m.liquidations is None


def test_symbol_exchange_contract_and_timeframe_pass_through(files):
    m = load_market_file(
        files / "market_iso.csv", symbol="BTCUSD_PERP", exchange="binancecoinm",
        contract="inverse", timeframe="1h",
    )
    assert (m.symbol, m.exchange, m.contract, m.timeframe) == ("BTCUSD_PERP", "binancecoinm", "inverse", "1h")


def test_oi_in_base_units_is_multiplied_by_close(files):
    m = load_market_file(files / "market_oi_base.csv", oi_unit="base")
    assert m.data["open_interest"].tolist() == [2000.0 * 105.0, 2500.0 * 110.0, 3000.0 * 100.0]


def test_oi_in_base_units_left_as_quote_is_refused(files):
    with pytest.raises(MarketDataError, match="oi_unit='base'"):
        load_market_file(files / "market_oi_base.csv")


def test_bad_oi_unit_is_refused(files):
    with pytest.raises(MarketDataError, match="oi_unit"):
        load_market_file(files / "market_iso.csv", oi_unit="coins")


def test_exact_repeated_rows_dropped_and_rows_sorted(files):
    m = load_market_file(files / "duplicate_rows.csv")
    assert list(m.index) == list(utc("2024-10-01 00:00", "2024-10-01 01:00", "2024-10-01 02:00"))
    assert m.data["close"].tolist() == [63450.0, 63410.0, 63050.0]


def test_conflicting_rows_for_one_timestamp_name_both_lines(files):
    with pytest.raises(MarketDataError, match=r"conflicting_rows\.csv, line 4: .* line 3"):
        load_market_file(files / "conflicting_rows.csv")


# --------------------------------------------------------------------------------------------
# gaps
def test_gap_raises_by_default_and_names_it(files):
    with pytest.raises(MarketDataError, match=r"market_gap\.csv: .*1 gap\(s\).*01:00:00\+00:00 -> 2024-10-01 03:00"):
        load_market_file(files / "market_gap.csv")


def test_gap_fill_inserts_a_flat_candle(files):
    m = load_market_file(files / "market_gap.csv", gaps="fill")
    assert len(m) == 5
    filled = m.data.loc[pd.Timestamp("2024-10-01 02:00", tz="UTC")]
    assert filled[["open", "high", "low", "close"]].tolist() == [63410.0] * 4
    assert filled["volume"] == 0.0 and filled["open_interest"] == 5.01e9
    assert m.gaps == ((pd.Timestamp("2024-10-01 01:00", tz="UTC"), pd.Timestamp("2024-10-01 03:00", tz="UTC")),)


def test_gap_keep_accepts_it(files):
    m = load_market_file(files / "market_gap.csv", gaps="keep")
    assert len(m) == 4 and len(m.gaps) == 1


# --------------------------------------------------------------------------------------------
# malformed files
@pytest.mark.parametrize(
    "name, pattern",
    [
        ("market_nan.csv", r"market_nan\.csv, line 4, column 'close': empty or NaN"),
        ("bad_number.csv", r"bad_number\.csv, line 5, column 'close': 'sixty-three thousand' is not a number"),
        ("bad_timestamp.csv", r"bad_timestamp\.csv, line 4, column 'timestamp': '2024-10-01T25:00:00Z' is not a timestamp"),
        ("missing_column.csv", r"missing_column\.csv: missing column\(s\) \['volume'\]"),
        ("semicolon.csv", r"semicolon\.csv, line 1: .*separated by ';'.*delimiter"),
        ("ragged.csv", r"ragged\.csv: not a well-formed CSV .*line 3"),
        ("header_only.csv", r"header_only\.csv: no data rows"),
        ("empty.csv", r"empty\.csv: the file is empty"),
        ("garbage.csv", r"garbage\.csv: this is a zip archive"),
        ("garbage2.csv", r"garbage2\.csv: binary content"),
    ],
)
def test_malformed_files_raise_market_data_error_with_file_and_place(files, name, pattern):
    with pytest.raises(MarketDataError, match=pattern):
        load_market_file(files / name)


def test_non_utf8_text_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("timestamp,open\n2024-10-01T00:00:00Z,63\xa0300\n".encode("latin-1"))
    with pytest.raises(MarketDataError, match=r"latin1\.csv, line 2: .*UTF-8"):
        load_market_file(path)


def test_unknown_suffix_and_missing_file(tmp_path, files):
    with pytest.raises(MarketDataError, match=r"\.xlsx: unknown file type"):
        load_market_file(tmp_path / "prices.xlsx")
    with pytest.raises(MarketDataError, match="no such file"):
        load_market_file(tmp_path / "nothing.csv")


def test_corrupt_parquet_and_gzip(tmp_path, files):
    bad_parquet = tmp_path / "bad.parquet"
    bad_parquet.write_bytes(b"this is not parquet at all")
    with pytest.raises(MarketDataError, match=r"bad\.parquet: not a readable Parquet file"):
        load_market_file(bad_parquet)
    bad_gz = tmp_path / "bad.csv.gz"
    bad_gz.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(MarketDataError, match=r"bad\.csv\.gz: not a valid gzip file"):
        load_market_file(bad_gz)


# --------------------------------------------------------------------------------------------
# compressed and Parquet input, round trips
def test_csv_gz_reads_like_csv(files, tmp_path):
    gz = tmp_path / "market_iso.csv.gz"
    gz.write_bytes(gzip.compress((files / "market_iso.csv").read_bytes()))
    m = load_market_file(gz)
    assert m.symbol == "market_iso"
    pd.testing.assert_frame_equal(m.data, load_market_file(files / "market_iso.csv").data)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_round_trip_is_exact(files, tmp_path, suffix):
    # awkward floats: a round trip must not lose a single bit
    m = load_market_file(files / "market_gap.csv", gaps="fill", liquidations=files / "liq_bars.csv")
    data = m.data.copy()
    data["close"] = data["close"] + 1 / 3
    data["high"] = data[["high", "close"]].max(axis=1)
    data["funding_rate"] = [0.1 + 0.2, np.nan, 1e-17, -3.3e-5, 7.0]
    m = make_market(data, symbol="RT", exchange="file", liquidations=m.liquidations)
    path = save_market_file(m, tmp_path / f"rt{suffix}")
    back = load_market_file(path, symbol="RT")
    pd.testing.assert_frame_equal(back.data, m.data, check_exact=True, check_freq=False)
    pd.testing.assert_frame_equal(back.liquidations, m.liquidations, check_exact=True, check_freq=False)


def test_saved_csv_is_the_generic_format(files, tmp_path):
    m = load_market_file(files / "market_iso.csv")
    path = save_market_file(m, tmp_path / "out.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "timestamp,open,high,low,close,volume,open_interest,funding_rate,long_short_ratio,taker_buy_volume"
    assert lines[1].startswith("2024-10-01T00:00:00Z,63300.5,")


# --------------------------------------------------------------------------------------------
# liquidations
def test_liquidation_bars_file(files):
    bars, events = load_liquidations_file(files / "liq_bars.csv")
    assert events is None
    assert bars["long_usd"].tolist() == [1000.0, 500.0, 0.0, 77.0]
    assert bars.index[1] == pd.Timestamp("2024-10-01 00:30", tz="UTC")


def test_liquidation_events_file_maps_sides_and_notional(files):
    bars, events = load_liquidations_file(files / "liq_events.csv")
    assert bars is None
    assert events["side"].tolist() == ["long", "short", "long", "short"]  # SELL -> long, buy -> short
    assert events["notional"].tolist() == [63300.0 * 0.5, 63400.0 * 0.25, 63350.0 * 2.0, 63100.0]
    assert events["quantity"].tolist() == [0.5, 0.25, 2.0, 1.0]


def test_market_with_liquidation_bars_file_aligns_and_drops_bars_past_the_end(files):
    m = load_market_file(files / "market_iso.csv", liquidations=files / "liq_bars.csv")
    # 00:00 and 00:30 both fall in the 00:00 candle; 09:00 is after the last candle's close
    assert m.liquidations["long_usd"].tolist() == [1500.0, 0.0, 0.0, 0.0]
    assert m.liquidations["short_usd"].tolist() == [250.0, 0.0, 4000.0, 0.0]


def test_market_with_liquidation_events_file(files):
    m = load_market_file(files / "market_iso.csv", liquidations=files / "liq_events.csv")
    assert m.liquidations["long_usd"].tolist() == [31650.0, 126700.0, 0.0, 0.0]
    assert m.liquidations["short_usd"].tolist() == [15850.0, 0.0, 0.0, 63100.0]
    assert len(m.liquidation_events) == 4


def test_market_with_liquidation_dataframe(files):
    frame = pd.DataFrame(
        {"long_usd": [5.0], "short_usd": [6.0]}, index=pd.DatetimeIndex(["2024-10-01 01:59:59"], tz="UTC")
    )
    m = load_market_file(files / "market_iso.csv", liquidations=frame)
    assert m.liquidations.iloc[1].tolist() == [5.0, 6.0]
    assert m.liquidations.to_numpy().sum() == 11.0


def test_liquidations_with_unknown_layout_or_side_are_refused(tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("timestamp,amount\n2024-10-01T00:00:00Z,5\n")
    with pytest.raises(MarketDataError, match=r"odd\.csv: not a liquidations file"):
        load_liquidations_file(odd)
    side = tmp_path / "side.csv"
    side.write_text("timestamp,side,price,quantity\n2024-10-01T00:00:00Z,long,1,1\n2024-10-01T00:01:00Z,up,1,1\n")
    with pytest.raises(MarketDataError, match=r"side\.csv, line 3, column 'side': 'up'"):
        load_liquidations_file(side)


# --------------------------------------------------------------------------------------------
# real files (skipped where ../shared/data/real is absent)
def test_real_hourly_market_gaps_raise_by_default(real_data):
    with pytest.raises(MarketDataError) as info:
        load_market_file(real_data / "btcusdt_1h_market.csv")
    message = str(info.value)
    assert "btcusdt_1h_market.csv" in message and "2 gap(s)" in message
    assert "2025-12-27 17:00:00+00:00 -> 2025-12-27 19:00:00+00:00" in message


def test_real_hourly_market_fill_and_keep(real_data):
    filled = load_market_file(real_data / "btcusdt_1h_market.csv", symbol="BTCUSDT", gaps="fill")
    kept = load_market_file(real_data / "btcusdt_1h_market.csv", symbol="BTCUSDT", gaps="keep")
    assert len(kept) == 1000 and len(filled) == 1002
    assert len(filled.gaps) == len(kept.gaps) == 2
    assert filled.index[0] == pd.Timestamp("2025-12-04 06:00", tz="UTC")
    assert filled.index[-1] == pd.Timestamp("2026-01-14 23:00", tz="UTC")
    assert kept.data["open"].iloc[0] == 92932.4 and kept.data["open_interest"].iloc[0] == 8248989576.0
    assert filled.data["funding_rate"].notna().all()


def test_real_hourly_liquidations_align(real_data):
    m = load_market_file(
        real_data / "btcusdt_1h_market.csv", gaps="keep",
        liquidations=real_data / "btcusdt_1h_liquidations.csv",
    )
    raw = pd.read_csv(real_data / "btcusdt_1h_liquidations.csv")
    assert m.liquidations.index.equals(m.index)
    assert m.liquidations["long_usd"].iloc[0] == 42620.5427
    assert m.liquidations["short_usd"].sum() == pytest.approx(raw["short_usd"].sum(), rel=1e-12)


def test_real_5m_klines_have_no_oi_and_load_as_candles(real_data):
    with pytest.raises(MarketDataError, match="load_candles_file"):
        load_market_file(real_data / "btcusdt_perp_5m_2025H2.csv")
    candles = load_candles_file(real_data / "btcusdt_perp_5m_2025H2.csv")
    assert len(candles) == 51840
    assert list(candles.columns) == ["open", "high", "low", "close", "volume"]
    assert candles.index[0] == pd.Timestamp("2025-07-04 11:35", tz="UTC")
    crash = candles.loc["2025-10-10 21:15":"2025-10-10 21:20", "low"]
    assert crash.min() == 101516.5


def test_real_files_round_trip_through_parquet(real_data, tmp_path):
    m = load_market_file(
        real_data / "btcusdt_1h_market.csv", gaps="keep",
        liquidations=real_data / "btcusdt_1h_liquidations.csv",
    )
    back = load_market_file(save_market_file(m, tmp_path / "m.parquet"), gaps="keep")
    pd.testing.assert_frame_equal(back.data, m.data, check_exact=True, check_freq=False)
    pd.testing.assert_frame_equal(back.liquidations, m.liquidations, check_exact=True, check_freq=False)


def test_real_file_copied_with_semicolons_is_refused(real_data, tmp_path):
    text = (real_data / "btcusdt_1h_market.csv").read_text().replace(",", ";")
    path = tmp_path / "semi.csv"
    path.write_text(text)
    with pytest.raises(MarketDataError, match="delimiter"):
        load_market_file(path)


# --------------------------------------------------------------------------------------------
# hostile input: every malformed file is a named error in one bounded sentence
HEADER = "timestamp,open,high,low,close,volume,open_interest"
ROWS = [
    "2024-10-01T00:00:00Z,100,110,90,105,10,5000000",
    "2024-10-01T01:00:00Z,105,115,95,110,12,5100000",
    "2024-10-01T02:00:00Z,110,120,100,115,11,5200000",
]


def write(path, lines, *, gz: bool = False):
    text = "\n".join(lines) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def refused(call, *, name: str, match: str) -> str:
    """The MarketDataError message of ``call()``: names ``name``, matches ``match``, one short sentence."""
    with pytest.raises(MarketDataError, match=match) as err:
        call()
    message = str(err.value)
    assert message.startswith(name) and "\n" not in message and len(message) < 400, message
    return message


@pytest.mark.parametrize("cell", ["99999999999999999999999", "-1", "1" * 400, "1" + "0" * 30 + ".5"])
def test_epoch_numbers_out_of_range_are_refused(tmp_path, cell):
    path = write(tmp_path / "m.csv", [HEADER, "1727740800000,100,110,90,105,10,5000000",
                                      f"{cell},105,115,95,110,12,5100000"])
    refused(lambda: load_market_file(path), name="m.csv, line 3", match="not a time between 1970 and 2261")


@pytest.mark.parametrize("values", [
    pd.Series([10_000_000_000_000], dtype="int64"),      # ms in 2286: wrapped to 1700s before
    pd.Series([1.0e19]),                                   # float path: NaT before
    pd.Series(["99999999999999999"]),                      # 1e17 ns = 1973 is fine; 1e17-1 µs is 5138
])
def test_epoch_times_after_2261_never_wrap(values):
    with pytest.raises(MarketDataError, match="between 1970 and 2261"):
        parse_timestamps(values)


def test_iso_times_after_2261_are_refused(tmp_path):
    path = write(tmp_path / "m.csv", [HEADER, ROWS[0], "2300-01-01T00:00:00Z,105,115,95,110,12,5100000"])
    refused(lambda: load_market_file(path), name="m.csv, line 3", match="between 1970 and 2261")


def test_a_damaged_gzip_is_a_named_error(tmp_path):
    good = gzip.compress(("\n".join([HEADER, *ROWS]) + "\n").encode())
    path = tmp_path / "m.csv.gz"
    path.write_bytes(good[:20] + bytes(b ^ 0xFF for b in good[20:40]) + good[40:])
    refused(lambda: load_market_file(path), name="m.csv.gz", match="not a valid gzip file")


def test_headers_that_collide_after_normalising_are_refused(tmp_path):
    path = write(tmp_path / "m.csv", [HEADER + ", Open ", *(r + ",1" for r in ROWS)])
    refused(lambda: load_market_file(path), name="m.csv, line 1", match="both read as 'open'")


def test_a_very_long_line_is_refused_at_once(tmp_path):
    import time

    path = write(tmp_path / "m.csv", ["," * 1_000_000, *ROWS])
    t0 = time.perf_counter()
    refused(lambda: load_market_file(path), name="m.csv, line 1", match="longer than 10,000 characters")
    assert time.perf_counter() - t0 < 5.0


@pytest.mark.parametrize("line", [2, 3])
def test_an_extra_field_is_refused_on_any_line(tmp_path, line):
    rows = list(ROWS)
    rows[line - 2] = rows[line - 2] + ",0"
    path = write(tmp_path / "m.csv", [HEADER, *rows])
    refused(lambda: load_market_file(path), name="m.csv", match=f"line {line}")


def test_duplicated_realized_bars_count_once(tmp_path, files):
    bars = write(tmp_path / "bars.csv", ["timestamp,long_usd,short_usd",
                                          "2024-10-01T00:00:00Z,1000,0", "2024-10-01T00:00:00Z,1000,0"])
    got, _ = load_liquidations_file(bars)
    assert got["long_usd"].tolist() == [1000.0]
    market = load_market_file(files / "market_iso.csv", liquidations=bars)
    assert market.liquidations["long_usd"].tolist() == [1000.0, 0.0, 0.0, 0.0]


def test_conflicting_realized_bars_are_refused(tmp_path):
    bars = write(tmp_path / "bars.csv", ["timestamp,long_usd,short_usd",
                                          "2024-10-01T00:00:00Z,1000,0", "2024-10-01T00:00:00Z,7,0"])
    refused(lambda: load_liquidations_file(bars), name="bars.csv, line 3", match="different values")


@pytest.mark.parametrize("price, notional, match", [
    ("-5", "100", "not a positive price"), ("0", "100", "not a positive price"),
    ("inf", "100", "infinite"), ("nan", "100", "empty or NaN"), ("63000", "-100", "negative"),
])
def test_bad_liquidation_events_are_refused_naming_their_file(tmp_path, files, price, notional, match):
    events = write(tmp_path / "liq.csv", ["timestamp,side,price,notional",
                                           "2024-10-01T00:10:00Z,long,63000,50",
                                           f"2024-10-01T00:20:00Z,short,{price},{notional}"])
    refused(lambda: load_market_file(files / "market_iso.csv", liquidations=events),
            name="liq.csv, line 3", match=match)


def test_make_market_refuses_bad_event_values():
    data = pd.DataFrame({"open": [100.0, 100.0], "high": 100.0, "low": 100.0, "close": 100.0, "volume": 1.0,
                         "open_interest": 1e6}, index=utc("2024-10-01 00:00", "2024-10-01 01:00"))
    for price, notional in ((-1.0, 5.0), (np.nan, 5.0), (np.inf, 5.0), (100.0, -5.0), (100.0, np.inf)):
        events = pd.DataFrame({"timestamp": utc("2024-10-01 00:10"), "side": ["long"], "price": [price],
                               "notional": [notional]})
        with pytest.raises(MarketDataError, match="liquidation event (price|notional)"):
            make_market(data, symbol="X", exchange="x", liquidation_events=events)


@pytest.mark.parametrize("row, column, match", [
    ("2024-10-01T01:00:00Z,inf,115,95,110,12", "open", "infinite"),
    ("2024-10-01T01:00:00Z,0,115,0,110,12", "open", "not a positive price"),
    ("2024-10-01T01:00:00Z,-105,115,95,110,12", "open", "not a positive price"),
    ("2024-10-01T01:00:00Z,105,95,115,110,12", "high", "below the low"),
    ("2024-10-01T01:00:00Z,105,115,95,110,-12", "volume", "negative"),
    ("2024-10-01T01:00:00Z,105,115,95,130,12", "close", "outside"),
])
def test_candle_files_refuse_values_the_contract_forbids(tmp_path, row, column, match):
    path = write(tmp_path / "c.csv", ["timestamp,open,high,low,close,volume", ROWS[0].rsplit(",", 1)[0], row])
    message = refused(lambda: load_candles_file(path), name="c.csv, line 3", match=match)
    assert f"column {column!r}" in message


def test_inf_in_an_optional_column_is_refused_not_carried_forward(tmp_path):
    path = write(tmp_path / "m.csv", [HEADER + ",funding_rate", ROWS[0] + ",0.0001", ROWS[1] + ",inf",
                                      ROWS[2] + ","])
    refused(lambda: load_market_file(path), name="m.csv, line 3", match="infinite")
    data = pd.DataFrame({"open": [100.0, 100.0], "high": 100.0, "low": 100.0, "close": 100.0, "volume": 1.0,
                         "open_interest": 1e6, "funding_rate": [0.01, np.inf]},
                        index=utc("2024-10-01 00:00", "2024-10-01 01:00"))
    with pytest.raises(MarketDataError, match="'funding_rate' has 1 infinite"):
        make_market(data, symbol="X", exchange="x")


def test_errors_quote_at_most_a_clip_of_a_huge_cell(tmp_path):
    path = write(tmp_path / "m.csv", [HEADER, ROWS[0], "2024-10-01T01:00:00Z,105," + "x" * 9000 + ",95,110,12,5"])
    message = refused(lambda: load_market_file(path), name="m.csv, line 3", match="is not a number")
    assert "(9000 characters)" in message


def test_a_folder_given_as_a_file_is_a_named_error(tmp_path):
    (tmp_path / "m.csv").mkdir()
    refused(lambda: load_market_file(tmp_path / "m.csv"), name="m.csv", match="is a folder")


def test_save_market_file_writes_atomically_and_round_trips(tmp_path, files):
    market = load_market_file(files / "market_iso.csv", symbol="X")
    for name in ("out.csv", "out.csv.gz", "out.parquet"):
        save_market_file(market, tmp_path / name)
        pd.testing.assert_frame_equal(load_market_file(tmp_path / name, symbol="X").data, market.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.csv.gz", "out.parquet"]


def test_an_epoch_cell_with_thousands_of_digits_is_a_named_error():
    with pytest.raises(MarketDataError, match="not a time between 1970 and 2261") as err:
        parse_timestamps(pd.Series(["9" * 9000]))
    assert "(9000 characters)" in str(err.value)
