"""``liqlab archive``: a local stand-in archive with the real layout, checksums, gaps and faults."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqlab.cli import main
from liqlab.sources.archive_download import (
    ArchiveError,
    archive_symbol,
    download_archive,
    plan_files,
)
from liqlab.sources.exchange import RetryPolicy
from liqlab.sources.store import Store
from tests.exchange_fixtures.fake_archive import (
    FUNDING_HEADER,
    SNAPSHOT_HEADER,
    FakeArchive,
    klines_csv,
    metrics_csv,
    ms,
    oi_value_at,
    price_at,
)

FAST = RetryPolicy(retries=2, base_delay=0.001, max_delay=0.01)
UM = "data/futures/um"
SYM = "BTC/USDT:USDT"
TODAY = date(2026, 12, 1)


def kl(d: str) -> str:
    return f"{UM}/daily/klines/BTCUSDT/5m/BTCUSDT-5m-{d}.zip"


def mt(d: str) -> str:
    return f"{UM}/daily/metrics/BTCUSDT/BTCUSDT-metrics-{d}.zip"


def fr(m: str) -> str:
    return f"{UM}/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-{m}.zip"


def ls(d: str) -> str:
    return f"{UM}/daily/liquidationSnapshot/BTCUSDT/BTCUSDT-liquidationSnapshot-{d}.zip"


@pytest.fixture()
def archive(tmp_path):
    with FakeArchive(tmp_path / "archive", slow_seconds=1.5) as arc:
        yield arc


def snapshot_text() -> str:
    # every event twice, as in the archive; SELL = a long liquidated
    rows = ["1711843200500,SELL,LIMIT,IOC,0.5,63000.0,63200.0,FILLED,0.5,0.5",
            "1711846800000,BUY,LIMIT,IOC,2,64000.0,64100.0,FILLED,2,2"]
    return SNAPSHOT_HEADER + "\n" + "\n".join(r for r in rows for _ in range(2)) + "\n"


def fill_three_days(arc: FakeArchive) -> None:
    """2024-03-30 .. 2024-04-01: klines (one file headerless), metrics with 03-31 missing,
    funding for March only, liquidation snapshots up to 03-31 (the USD-M end)."""
    arc.add(kl("2024-03-30"), klines_csv(ms(date(2024, 3, 30)), 288, header=False))
    arc.add(kl("2024-03-31"), klines_csv(ms(date(2024, 3, 31)), 288))
    arc.add(kl("2024-04-01"), klines_csv(ms(date(2024, 4, 1)), 288))
    arc.add(mt("2024-03-30"), metrics_csv(date(2024, 3, 30), header=False))
    arc.add(mt("2024-04-01"), metrics_csv(date(2024, 4, 1)))
    arc.add(fr("2024-03"), FUNDING_HEADER + "\n1711785600001,8,0.0001\n1711814400000,8,-0.0002\n")
    arc.add(ls("2024-03-30"), SNAPSHOT_HEADER + "\n")
    arc.add(ls("2024-03-31"), snapshot_text())


def snapshot_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


# --------------------------------------------------------------------------------------------
def test_symbols_are_written_either_way():
    assert archive_symbol("binanceusdm", "BTCUSDT") == ("BTCUSDT", "BTC/USDT:USDT")
    assert archive_symbol("binanceusdm", "eth/usdt:usdt") == ("ETHUSDT", "ETH/USDT:USDT")
    assert archive_symbol("binancecoinm", "BTCUSD_PERP") == ("BTCUSD_PERP", "BTC/USD:BTC")
    assert archive_symbol("binancecoinm", "BTC/USD:BTC") == ("BTCUSD_PERP", "BTC/USD:BTC")
    with pytest.raises(ArchiveError, match="not a USD-M perpetual; write it as BTCUSDT"):
        archive_symbol("binanceusdm", "BTCUSDT_240329")
    with pytest.raises(ArchiveError, match="holds binanceusdm and binancecoinm, not 'bybit'"):
        archive_symbol("bybit", "BTCUSDT")


def test_plan_uses_monthly_files_for_whole_months_only():
    files, notes = plan_files("binanceusdm", "BTCUSDT", ["klines", "metrics", "fundingRate"], "5m",
                              date(2024, 1, 30), date(2024, 3, 1))
    names = [f.name for f in files]
    assert names[:4] == ["BTCUSDT-5m-2024-01-30.zip", "BTCUSDT-5m-2024-01-31.zip", "BTCUSDT-5m-2024-02.zip",
                         "BTCUSDT-5m-2024-03-01.zip"]
    assert len([n for n in names if "metrics" in n]) == 2 + 29 + 1  # daily only
    assert [n for n in names if "funding" in n] == ["BTCUSDT-fundingRate-2024-01.zip", "BTCUSDT-fundingRate-2024-02.zip",
                                                    "BTCUSDT-fundingRate-2024-03.zip"]
    assert files[2].relpath == "data/futures/um/monthly/klines/BTCUSDT/5m/BTCUSDT-5m-2024-02.zip"
    assert files[2].span_ms == (1706745600000, 1709251199999)
    assert notes == []
    files, notes = plan_files("binanceusdm", "BTCUSDT", ["liquidationSnapshot"], "5m", date(2024, 3, 30), date(2024, 4, 2))
    assert [f.name for f in files] == ["BTCUSDT-liquidationSnapshot-2024-03-30.zip",
                                       "BTCUSDT-liquidationSnapshot-2024-03-31.zip"]
    assert notes == ["liquidationSnapshot: USD-M files end on 2024-03-31; 2 later day(s) of 2024-04 not requested"]


def test_import_values_gaps_and_a_second_run_without_downloads(archive, tmp_path):
    fill_three_days(archive)
    store = Store(tmp_path / "store")
    kinds = ["klines", "metrics", "fundingRate", "liquidationSnapshot"]
    report = download_archive("binanceusdm", "BTCUSDT", since="2024-03-30", until="2024-04-01", kinds=kinds,
                              archive_url=archive.url, store=store, policy=FAST, today=TODAY)
    assert report.missing == ["BTCUSDT-fundingRate-2024-04.zip", "BTCUSDT-metrics-2024-03-31.zip"]
    assert report.downloads == 8 and report.already_stored == 0 and report.planned == 10
    assert report.rows == {"ohlcv": 864, "open_interest": 576, "long_short": 576, "ratios": 576,
                           "funding": 2, "liquidations": 2}
    assert "left as gaps: BTCUSDT-fundingRate-2024-04.zip, BTCUSDT-metrics-2024-03-31.zip" in report.message

    candles = store.read("binanceusdm", SYM, "ohlcv", "5m")
    t0 = ms(date(2024, 3, 30))
    assert candles["timestamp"].iloc[0] == pd.Timestamp(t0, unit="ms", tz="UTC")  # the headerless file
    assert candles["open"].iloc[0] == price_at(t0) and candles["close"].iloc[-1] == price_at(ms(date(2024, 4, 2)))
    oi = store.read("binanceusdm", SYM, "open_interest", "5m")
    stamps = pd.DatetimeIndex(oi["timestamp"]).as_unit("ms").asi8
    assert not ((stamps >= ms(date(2024, 3, 31))) & (stamps < ms(date(2024, 4, 1)))).any()  # the gap stays a gap
    assert oi["open_interest_value"].tolist() == [oi_value_at(int(t)) for t in stamps]
    funding = store.read("binanceusdm", SYM, "funding")
    assert funding["funding_rate"].tolist() == [0.0001, -0.0002]
    events = store.read_liquidations("binanceusdm", SYM)
    assert events["side"].tolist() == ["long", "short"]  # doubled rows once; SELL = a long liquidated
    assert events["notional"].tolist() == [0.5 * 63200.0, 2 * 64100.0]
    assert not list((tmp_path / "store" / "_archive").rglob("*.zip"))  # staging emptied after the import

    archive.reset()
    again = download_archive("binanceusdm", "BTCUSDT", since="2024-03-30", until="2024-04-01", kinds=kinds,
                             archive_url=archive.url, store=store, policy=FAST, today=TODAY)
    assert again.downloads == 0 and again.already_stored == 8 and archive.zip_requests() == []
    # only the two missing files are asked again (they may have been published since)
    assert sorted(archive.requests) == sorted("/" + p + ".CHECKSUM" for p in (fr("2024-04"), mt("2024-03-31")))


def test_wrong_checksum_fails_in_one_sentence_and_leaves_the_store_as_it_was(archive, tmp_path, capsys):
    fill_three_days(archive)
    store_dir = tmp_path / "store"
    base = ["archive", "binanceusdm", "BTCUSDT", "--archive-url", archive.url, "--data-dir", str(store_dir),
            "--retries", "0", "--workers", "1"]
    assert main(base + ["--since", "2024-03-30", "--until", "2024-03-30"]) == 0
    before = snapshot_of(store_dir)
    assert len(before) == 5
    good = (archive.root / mt("2024-04-01")).read_bytes()
    archive.add(mt("2024-04-01"), "", raw=good, checksum="0" * 64)
    capsys.readouterr()
    code = main(base + ["--since", "2024-03-30", "--until", "2024-04-01"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("liqlab archive: BTCUSDT-metrics-2024-04-01.zip: checksum does not match its .CHECKSUM file")
    assert err.endswith("nothing was imported, the store is unchanged")
    assert snapshot_of(store_dir) == before
    # the two klines files verified before the failure wait in staging: the next run downloads only the fixed file
    archive.add(mt("2024-04-01"), "", raw=good)
    archive.reset()
    assert main(base + ["--since", "2024-03-30", "--until", "2024-04-01"]) == 0
    assert archive.zip_requests() == ["/" + mt("2024-04-01")]
    assert "1 downloaded (0.0 MB) and 2 reused from an earlier run" in capsys.readouterr().out
    assert len(Store(store_dir).read("binanceusdm", SYM, "ohlcv", "5m")) == 3 * 288


def test_truncated_transfer_is_retried_then_reported(archive, tmp_path):
    archive.add(kl("2024-03-30"), klines_csv(ms(date(2024, 3, 30)), 288))
    store = Store(tmp_path / "store")
    archive.faults["/" + kl("2024-03-30")] = ["truncate"]
    report = download_archive("binanceusdm", "BTCUSDT", since="2024-03-30", until="2024-03-30", kinds=["klines"],
                              archive_url=archive.url, store=store, policy=FAST, today=TODAY)
    assert report.retries == 1 and report.rows == {"ohlcv": 288}
    archive.add(kl("2024-03-31"), klines_csv(ms(date(2024, 3, 31)), 288))
    archive.faults["/" + kl("2024-03-31")] = ["truncate"] * 3
    with pytest.raises(ArchiveError, match=r"^BTCUSDT-5m-2024-03-31\.zip: download failed after 3 attempt\(s\) "
                                           r"\(.*truncated\); nothing was imported"):
        download_archive("binanceusdm", "BTCUSDT", since="2024-03-31", until="2024-03-31", kinds=["klines"],
                         archive_url=archive.url, store=store, policy=FAST, today=TODAY)


def test_a_truncated_zip_with_a_matching_checksum_is_refused_before_any_write(archive, tmp_path):
    archive.add(kl("2024-03-30"), klines_csv(ms(date(2024, 3, 30)), 288))
    whole = (archive.root / kl("2024-03-30")).read_bytes()
    archive.add(kl("2024-03-31"), "", raw=whole[: len(whole) // 3])  # its checksum is of the cut bytes
    store = Store(tmp_path / "store")
    with pytest.raises(ArchiveError, match=r"^BTCUSDT-5m-2024-03-31\.zip: damaged zip archive .*the store is unchanged$"):
        download_archive("binanceusdm", "BTCUSDT", since="2024-03-30", until="2024-03-31", kinds=["klines"],
                         archive_url=archive.url, store=store, policy=FAST, today=TODAY)
    assert snapshot_of(tmp_path / "store") == {}


def test_a_slow_answer_and_a_server_error_are_retried(archive, tmp_path):
    archive.add(kl("2024-03-30"), klines_csv(ms(date(2024, 3, 30)), 288))
    archive.faults["/" + kl("2024-03-30")] = ["slow"]
    archive.faults["/" + kl("2024-03-30") + ".CHECKSUM"] = ["500"]
    report = download_archive("binanceusdm", "BTCUSDT", since="2024-03-30", until="2024-03-30", kinds=["klines"],
                              archive_url=archive.url, store=Store(tmp_path), policy=FAST, timeout=0.5, today=TODAY)
    assert report.retries == 2 and report.downloads == 1 and report.rows == {"ohlcv": 288}


def test_metrics_label_switch_on_2026_06_25(archive, tmp_path):
    # up to 2026-06-24 a row is stamped with its period's end, from 2026-06-25 with its start
    archive.add(mt("2026-06-24"), metrics_csv(date(2026, 6, 24), labels="end"))
    archive.add(mt("2026-06-25"), metrics_csv(date(2026, 6, 25), labels="start"))
    store = Store(tmp_path)
    download_archive("binanceusdm", "BTCUSDT", since="2026-06-24", until="2026-06-25", kinds=["metrics"],
                     archive_url=archive.url, store=store, policy=FAST, today=TODAY)
    oi = store.read("binanceusdm", SYM, "open_interest", "5m")
    stamps = pd.DatetimeIndex(oi["timestamp"]).as_unit("ms").asi8
    # every value is stamped with the time it was taken, on one 5-minute grid; the value taken at
    # 2026-06-25 00:00 is in neither file (the old 06-25 file would have held it), so one slot is empty
    grid = np.arange(ms(date(2026, 6, 24)), ms(date(2026, 6, 26)) + 1, 300_000)
    assert stamps.tolist() == [t for t in grid.tolist() if t != ms(date(2026, 6, 25))]
    assert oi["open_interest_value"].tolist() == [oi_value_at(int(t)) for t in stamps]


def test_a_month_missing_as_a_whole_falls_back_to_its_days(archive, tmp_path):
    for d in range(1, 30):
        if d != 17:  # and one day missing too
            day = date(2024, 2, d)
            archive.add(kl(day.isoformat()), klines_csv(ms(day), 288))
    store = Store(tmp_path)
    report = download_archive("binanceusdm", "BTCUSDT", since="2024-02-01", until="2024-02-29", kinds=["klines"],
                              archive_url=archive.url, store=store, policy=FAST, today=TODAY)
    assert report.missing == ["BTCUSDT-5m-2024-02-17.zip"]
    assert report.notes == ["BTCUSDT-5m-2024-02.zip is not in the archive; its days were fetched as daily files"]
    assert report.rows == {"ohlcv": 28 * 288}
    stamps = pd.DatetimeIndex(store.read("binanceusdm", SYM, "ohlcv", "5m")["timestamp"])
    assert not (stamps.day == 17).any()


def test_checksum_file_format_and_bad_dates(archive, tmp_path):
    path = archive.add(kl("2024-03-30"), klines_csv(ms(date(2024, 3, 30)), 2))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert Path(str(path) + ".CHECKSUM").read_text() == f"{digest}  BTCUSDT-5m-2024-03-30.zip\n"
    Path(str(path) + ".CHECKSUM").write_text("<html>not found</html>")
    with pytest.raises(ArchiveError, match=r"^BTCUSDT-5m-2024-03-30\.zip\.CHECKSUM: not a SHA-256 checksum file"):
        download_archive("binanceusdm", "BTCUSDT", since="2024-03-30", until="2024-03-30", kinds=["klines"],
                         archive_url=archive.url, store=Store(tmp_path), policy=FAST, today=TODAY)
    with pytest.raises(ArchiveError, match="--until 2024-03-01 is before --since 2024-03-30"):
        download_archive("binanceusdm", "BTCUSDT", since="2024-03-30", until="2024-03-01", archive_url=archive.url,
                         store=Store(tmp_path), today=TODAY)
    with pytest.raises(ArchiveError, match="'yesterday' is not a date; write it as YYYY-MM-DD"):
        download_archive("binanceusdm", "BTCUSDT", since="yesterday", until="2024-03-01", archive_url=archive.url,
                         store=Store(tmp_path), today=TODAY)


def test_archive_url_from_the_environment(archive, tmp_path, monkeypatch):
    archive.add(kl("2024-03-30"), klines_csv(ms(date(2024, 3, 30)), 288))
    monkeypatch.setenv("LIQLAB_ARCHIVE_URL", archive.url)
    report = download_archive("binanceusdm", "BTCUSDT", since="2024-03-30", until="2024-03-30", kinds=["klines"],
                              store=Store(tmp_path), policy=FAST, today=TODAY)
    assert report.archive_url == archive.url and report.downloads == 1


def test_coin_m_contracts_become_usd_and_real_snapshot_rows_import(archive, tmp_path, real_data):
    cm = "data/futures/cm/daily"
    text = (real_data / "BTCUSD_PERP-liquidationSnapshot-2024-10-01.head.csv").read_text()
    archive.add(f"{cm}/liquidationSnapshot/BTCUSD_PERP/BTCUSD_PERP-liquidationSnapshot-2024-10-01.zip", text)
    archive.add(f"{cm}/metrics/BTCUSD_PERP/BTCUSD_PERP-metrics-2024-10-01.zip",
                "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
                "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n"
                "2024-10-01 00:05:00,BTCUSD_PERP,3500000,5500.5,1.1,1.2,1.3,0.9\n")
    store = Store(tmp_path)
    report = download_archive("binancecoinm", "BTC/USD:BTC", since="2024-10-01", until="2024-10-01",
                              kinds=["metrics", "liquidationSnapshot"], archive_url=archive.url, store=store,
                              policy=FAST, today=TODAY)
    assert report.missing == [] and report.rows["open_interest"] == 1
    oi = store.read("binancecoinm", "BTC/USD:BTC", "open_interest", "5m")
    assert oi["open_interest_value"].tolist() == [3_500_000 * 100.0]  # contracts of 100 USD
    # the real file's doubled rows are one event each; SELL = a long liquidated; quantity x 100 USD
    lines = [ln.split(",") for ln in text.splitlines()[1:]]
    unique = list(dict.fromkeys(tuple(x) for x in lines))
    events = store.read_liquidations("binancecoinm", "BTC/USD:BTC")
    assert events["side"].tolist() == ["long" if x[1] == "SELL" else "short" for x in unique]
    assert events["notional"].tolist() == [float(x[9]) * 100.0 for x in unique]


def test_recheck_imports_a_republished_day_again(archive, tmp_path):
    day = ms(date(2024, 3, 30))
    archive.add(kl("2024-03-30"), klines_csv(day, 288))
    store = Store(tmp_path)
    args = dict(since="2024-03-30", until="2024-03-30", kinds=["klines"], archive_url=archive.url, store=store,
                policy=FAST, today=TODAY)
    download_archive("binanceusdm", "BTCUSDT", **args)
    # the archive re-publishes the day with the first candle's close corrected
    lines = klines_csv(day, 288).splitlines()
    cells = lines[1].split(",")
    corrected = (float(cells[2]) + float(cells[3])) / 2  # within the candle's own range
    cells[4] = repr(corrected)
    archive.add(kl("2024-03-30"), "\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    plain = download_archive("binanceusdm", "BTCUSDT", **args)
    assert plain.downloads == 0 and plain.requests == 0
    assert store.read("binanceusdm", SYM, "ohlcv", "5m")["close"].iloc[0] == price_at(day + 300_000)
    rechecked = download_archive("binanceusdm", "BTCUSDT", recheck=True, **args)
    assert rechecked.republished == ["BTCUSDT-5m-2024-03-30.zip"] and rechecked.downloads == 1
    assert "re-published since imported, imported again: BTCUSDT-5m-2024-03-30.zip" in rechecked.message
    closes = store.read("binanceusdm", SYM, "ohlcv", "5m")["close"]
    assert closes.iloc[0] == corrected != price_at(day + 300_000) and len(closes) == 288
    again = download_archive("binanceusdm", "BTCUSDT", recheck=True, **args)
    assert again.republished == [] and again.downloads == 0 and again.requests == 1  # one checksum asked


def test_progress_bar_counts_files_including_the_daily_fallback(archive, tmp_path, capsys):
    for d in (1, 2):
        day = date(2024, 2, d)
        archive.add(kl(day.isoformat()), klines_csv(ms(day), 288))
    download_archive("binanceusdm", "BTCUSDT", since="2024-02-01", until="2024-02-29", kinds=["klines"],
                     archive_url=archive.url, store=Store(tmp_path), policy=FAST, today=TODAY, progress=True)
    err = capsys.readouterr().err
    # one monthly file, then its 29 days once the month proves missing
    assert "BTCUSDT archive:   0%|          | 0/1 " in err and "/30 [" in err
