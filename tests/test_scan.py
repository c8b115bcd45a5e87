"""Market scans: hand-made rows, identical tables on every executor, failures kept per symbol."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.core.engine import LiquidationMap, ModelParams, predict_liquidations
from liqlab.core.settings import SettingsError, expand_grid, params_from_settings, read_grid, read_settings
from liqlab.scan import (DaskExecutor, ProcessExecutor, SampleSource, ScanError, SerialExecutor, StoreSource, calibrate,
                         make_executor, magnet_zones, param_sets, parse_window, scan, universe)
from liqlab.scan.tasks import band_sums, cluster_fields
from tests.scan_helpers import CrashOnce, dask_setting, kernel_loads, liqlab_file, worker_environ

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ["BTCUSDT", "SYN001", "NOPE", "SYN002"]
GRID = {"mix": ["balanced", "degen"], "turnover": [0.0, 0.1]}


def hand_map() -> LiquidationMap:
    prices = np.array([94.0, 96.0, 98.5, 99.5, 100.5, 101.5, 104.0, 106.0])
    long_usd = np.array([10.0, 4.0, 6.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    short_usd = np.array([0.0, 0.0, 0.0, 0.0, 2.0, 3.0, 8.0, 1.0])
    z = np.zeros((1, 8))
    return LiquidationMap(time=pd.Timestamp("2025-01-01", tz="UTC"), price=100.0, prices=prices, bin_size=1.0,
                          long_usd=long_usd, short_usd=short_usd, long_by_tier=z + long_usd,
                          short_by_tier=z + short_usd, leverages=(10.0,))


# -- hand-made inputs -----------------------------------------------------------------------------
def test_band_sums_of_a_hand_made_map():
    assert band_sums(hand_map()) == {
        "long_within_1pct_usd": 1.0, "short_within_1pct_usd": 2.0,
        "long_within_2pct_usd": 7.0, "short_within_2pct_usd": 5.0,
        "long_within_5pct_usd": 11.0, "short_within_5pct_usd": 13.0,
    }


def test_nearest_clusters_of_a_hand_made_map():
    longs = cluster_fields(hand_map(), "long", 0.5, oi=100.0)
    shorts = cluster_fields(hand_map(), "short", 0.5, oi=100.0)
    assert longs["long_cluster_price"] == 98.5 and longs["long_cluster_usd"] == 6.0
    assert longs["long_cluster_pct"] == pytest.approx(-1.5, abs=1e-12)
    assert longs["long_cluster_oi_share"] == 0.06
    assert shorts["short_cluster_price"] == 104.0 and shorts["short_cluster_usd"] == 8.0
    assert shorts["short_cluster_pct"] == pytest.approx(4.0, abs=1e-12)
    assert shorts["short_cluster_oi_share"] == 0.08


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6), min_size=4, max_size=40), st.floats(0.05, 1.0))
def test_band_sums_grow_with_the_band_and_clusters_sit_on_their_side(values, threshold):
    n = len(values)
    prices = np.linspace(90.0, 110.0, n)
    v = np.asarray(values)
    snap = LiquidationMap(time=pd.Timestamp("2025-01-01", tz="UTC"), price=100.0, prices=prices, bin_size=1.0,
                          long_usd=v, short_usd=v[::-1].copy(), long_by_tier=v[None], short_by_tier=v[::-1][None],
                          leverages=(10.0,))
    b = band_sums(snap)
    for side, total in (("long", v[prices <= 100].sum()), ("short", v[::-1][prices >= 100].sum())):
        assert b[f"{side}_within_1pct_usd"] <= b[f"{side}_within_2pct_usd"] <= b[f"{side}_within_5pct_usd"] <= total
    long_pct = cluster_fields(snap, "long", threshold, 1.0)["long_cluster_pct"]
    short_pct = cluster_fields(snap, "short", threshold, 1.0)["short_cluster_pct"]
    assert math.isnan(long_pct) or long_pct <= 0
    assert math.isnan(short_pct) or short_pct >= 0


# -- settings and grids ---------------------------------------------------------------------------
def test_grid_expands_in_order_and_lists_are_kept():
    assert expand_grid(GRID) == [{"mix": "balanced", "turnover": 0.0}, {"mix": "balanced", "turnover": 0.1},
                                 {"mix": "degen", "turnover": 0.0}, {"mix": "degen", "turnover": 0.1}]
    assert expand_grid([{"entry": "typical"}, {}]) == [{"entry": "typical"}, {}]
    assert [pid for pid, _, _ in param_sets(GRID)] == [0, 1, 2, 3]
    assert param_sets(GRID)[3][2] == ModelParams(mix="degen", turnover=0.1)


@pytest.mark.parametrize("bad, words", [
    ({"leverage": 3}, "unknown model setting(s) 'leverage'"),
    ({"turnover": 2.0}, "turnover must lie in [0, 1]"),
    ({"mix": "nonsense"}, "nonsense"),
])
def test_bad_settings_are_one_sentence(bad, words):
    with pytest.raises(SettingsError) as info:
        params_from_settings(bad)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_settings_and_grid_files(tmp_path):
    good = tmp_path / "p.json"
    good.write_text('{"mix": "degen", "half_life_hours": [1, 2, 3, 4, 5]}')
    assert read_settings(good) == {"mix": "degen", "half_life_hours": [1, 2, 3, 4, 5]}
    assert params_from_settings(read_settings(good)).half_life_hours == (1, 2, 3, 4, 5)
    broken = tmp_path / "b.json"
    broken.write_text('{"mix": ')
    with pytest.raises(SettingsError, match="not valid JSON"):
        read_settings(broken)
    grid = tmp_path / "g.json"
    grid.write_text('{"turnover": 0.1}')
    with pytest.raises(SettingsError, match="needs a non-empty list"):
        read_grid(grid)


def test_windows_and_universe():
    assert parse_window("30d") == pd.Timedelta(days=30)
    assert parse_window("1y") == pd.Timedelta(days=365)
    assert parse_window("2w") == pd.Timedelta(days=14)
    with pytest.raises(Exception, match="not a duration"):
        parse_window("soon")
    assert universe("sample", 5) == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "SYN001", "SYN002"]
    with pytest.raises(ScanError, match="no symbols"):
        scan([], "1d", executor="serial")


# -- the scan -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def serial_table():
    return scan(SYMBOLS, "2d", GRID, executor="serial")


def test_a_failing_symbol_keeps_its_rows_and_the_others_go_on(serial_table):
    t = serial_table
    assert list(t["symbol"].unique()) == ["BTCUSDT", "NOPE", "SYN001", "SYN002"]
    assert len(t) == 16 and list(t["params_id"]) == [0, 1, 2, 3] * 4
    bad = t[t["symbol"] == "NOPE"]
    assert (bad["error"] == "MarketDataError: no sample for symbol 'NOPE'; "
                           "available: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT']").all()
    assert bad["last_price"].isna().all()
    good = t[t["symbol"] != "NOPE"]
    assert (good["error"] == "").all() and (good["candles"] == 576).all()
    assert list(t.columns[2:4]) == ["param_mix", "param_turnover"]


def test_a_row_reproduces_on_one_market(serial_table):
    row = serial_table[(serial_table["symbol"] == "SYN002") & (serial_table["params_id"] == 2)].iloc[0]
    settings_ = json.loads(row["settings"])
    assert settings_ == {"mix": "degen", "turnover": 0.0}
    market = SampleSource().load("SYN002", "5m", pd.Timedelta(days=2))
    pred = predict_liquidations(market, params_from_settings(settings_))
    assert row["predicted_long_usd"] == float(pred["long_usd"].sum())
    assert row["predicted_short_usd"] == float(pred["short_usd"].sum())
    assert row["last_price"] == market.column("close")[-1]


def test_a_setting_the_engine_refuses_fails_only_its_rows():
    t = scan(["BTCUSDT"], "1d", [{}, {"bin_size": 1e-6}], executor="serial")
    assert t["error"].iloc[0] == ""
    assert t["error"].iloc[1].startswith("EngineError: bin size 1e-06 gives")


def test_magnet_zones_rank_by_distance(serial_table):
    z = magnet_zones(serial_table)
    assert (z["error"] == "").all() and len(z) == 12
    assert np.all(np.diff(z["nearest_cluster_pct"].to_numpy()) >= 0)


def test_process_pool_equals_serial_bit_for_bit(serial_table):
    with ProcessExecutor(2) as ex:
        table = scan(SYMBOLS, "2d", GRID, executor=ex)
    pd.testing.assert_frame_equal(table, serial_table, check_exact=True)


def test_killed_pool_worker_is_resubmitted(tmp_path):
    source = CrashOnce(str(tmp_path / "crashed"))
    with ProcessExecutor(2) as ex:
        t = scan(["CRASH", "SYN002", "SYN001"], "1d", source=source, executor=ex)
    assert (tmp_path / "crashed").exists()  # the worker really died
    assert (t["error"] == "").all()
    crash = t[t["symbol"] == "CRASH"].drop(columns="symbol").reset_index(drop=True)
    syn = t[t["symbol"] == "SYN001"].drop(columns="symbol").reset_index(drop=True)
    pd.testing.assert_frame_equal(crash, syn, check_exact=True)


def test_calibration_picks_what_fit_model_picks():
    from liqlab.evaluate.validation import fit_model

    grid = {"mix": ["balanced", "degen"], "turnover": [0.0, 0.1]}
    cal = calibrate(["SYN001", "SOLUSDT", "NOPE"], "3d", grid, executor=SerialExecutor())
    assert list(cal.per_symbol["symbol"]) == ["SOLUSDT", "SYN001"]
    assert cal.table[cal.table["symbol"] == "NOPE"]["error"].iloc[0].startswith("MarketDataError")
    for r in cal.per_symbol.itertuples():
        market = SampleSource().load(r.symbol, "5m", pd.Timedelta(days=3))
        best, table = fit_model(market, grid=grid)
        assert (r.mix, r.turnover, r.objective) == (best.mix.name, best.turnover, table["objective"].iloc[0])
    assert cal.overall["symbols"].tolist() == [2, 2, 2, 2]
    assert cal.best == {k: cal.overall[k].iloc[0] for k in grid}
    assert cal.overall["mean_objective"].is_monotonic_decreasing


# -- Dask -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    import dask

    from liqlab.scan.executors import LOCAL_WORKER_CONFIG

    # the settings liqlab's own local clusters use: Dask's defaults would also leave
    # MALLOC_TRIM_THRESHOLD_ in this process's environment, for every later cluster to inherit
    with dask.config.set(LOCAL_WORKER_CONFIG):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                           dashboard_address=None, silence_logs=50)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_dask_workers_import_this_checkout(dask_client):
    files = dask_client.run(liqlab_file)
    assert len(files) == 2
    assert all(Path(f).resolve().parent.parent == ROOT for f in files.values()), files


def test_dask_equals_serial_bit_for_bit(dask_client, serial_table):
    table = scan(SYMBOLS, "2d", GRID, executor=DaskExecutor(client=dask_client))
    pd.testing.assert_frame_equal(table, serial_table, check_exact=True)


def test_killed_dask_worker_does_not_lose_the_scan(dask_client, tmp_path):
    source = CrashOnce(str(tmp_path / "crashed"))
    t = scan(["CRASH", "SYN001"], "1d", source=source, executor=DaskExecutor(client=dask_client))
    assert (tmp_path / "crashed").exists()
    assert (t["error"] == "").all()
    assert t["predicted_long_usd"].iloc[0] == t["predicted_long_usd"].iloc[1]


def test_numba_kernels_are_loaded_once_per_dask_worker(dask_client):
    if os.environ.get("LIQLAB_DISABLE_NUMBA"):
        pytest.skip("numba is disabled (LIQLAB_DISABLE_NUMBA)")
    dask_client.wait_for_workers(2, timeout=60)  # a worker killed by an earlier test comes back
    executor = DaskExecutor(client=dask_client)
    scan(["SYN001", "SYN002", "SOLUSDT", "ETHUSDT"], "1d", executor=executor)
    first = dask_client.run(kernel_loads)
    scan(["SYN002", "SYN003", "BTCUSDT", "SYN001"], "1d", executor=executor)
    second = dask_client.run(kernel_loads)
    for worker, loads in first.items():
        sigs, from_cache, compiled = loads["run_engine"]
        assert from_cache + compiled == sigs  # each signature came once, from disk or a compile
        if sigs:  # a worker that ran the engine loads nothing again on the next scan
            assert second[worker] == loads
    assert any(loads["run_engine"][0] >= 1 for loads in first.values())


def test_a_scan_of_the_local_store_equals_serial_on_a_scheduler_address(tmp_path, dask_client):
    from tests.multi_store import SYM, fill_store

    t0 = pd.Timestamp("2025-03-01", tz="UTC")
    fill_store(tmp_path, t0, 288)  # one day of 5-minute candles, OI, realized long 1000 and short 300
    source = StoreSource("binanceusdm", root=str(tmp_path), until=str(t0 + pd.Timedelta(minutes=5 * 287)))
    assert source.symbols("5m") == [SYM]
    serial = scan([SYM, "ETH/USDT:USDT"], "1d", source=source, executor="serial")
    row = serial.iloc[0]
    assert (row["error"], row["candles"]) == ("", 288)
    assert (row["realized_long_usd"], row["realized_short_usd"]) == (1000.0, 300.0)
    assert row["time"] == t0 + pd.Timedelta(minutes=5 * 287)
    assert serial["error"].iloc[1].startswith(
        "NoStoredDataError: binanceusdm ETH/USDT:USDT: the exchange could not be used (offline")
    dask_client.wait_for_workers(2, timeout=60)  # a worker killed by an earlier test comes back
    with DaskExecutor(dask_client.scheduler.address) as remote:  # as a scan on any deployment connects
        assert remote.workers == 2
        table = scan([SYM, "ETH/USDT:USDT"], "1d", source=source, executor=remote)
    pd.testing.assert_frame_equal(table, serial, check_exact=True)


@pytest.mark.parametrize("name", ["serial", "processes", "dask"])
def test_a_task_that_raises_comes_back_in_its_place(name, dask_client):
    executor = DaskExecutor(client=dask_client) if name == "dask" else make_executor(name, workers=2)
    with executor:
        out = executor.run(math.sqrt, [4.0, -1.0, 9.0])
    assert out[0] == 2.0 and out[2] == 3.0
    assert isinstance(out[1], ValueError) and "math domain error" in str(out[1])


def test_the_local_cluster_keeps_glibc_malloc_defaults_and_serves_its_dashboard():
    import urllib.request

    pytest.importorskip("distributed")
    with DaskExecutor(workers=1) as executor:
        assert executor.workers == 1
        env = executor.client.run(worker_environ, "MALLOC_TRIM_THRESHOLD_")
        profiling = executor.client.run(dask_setting, "distributed.worker.profile.enabled")
        link = executor.dashboard_link
        assert link.startswith("http://127.0.0.1:") and link.endswith("/status")
        with urllib.request.urlopen(link, timeout=30) as page:
            assert page.status == 200 and b"Dask" in page.read()
    assert list(env.values()) == [None] and list(profiling.values()) == [False]


def test_cli_scan_on_dask_prints_the_dashboard_and_writes_the_serial_table(tmp_path, capsys):
    from liqlab.cli import main

    out = tmp_path / "scan.csv"
    args = ["scan", "--symbols", "SYN001,SOLUSDT", "--window", "1d"]
    assert main([*args, "--executor", "dask", "--workers", "1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "on dask, 1 worker(s)" in err and "Dask dashboard: http://127.0.0.1:" in err
    assert "install bokeh" not in err
    assert main([*args, "--executor", "serial", "--out", str(tmp_path / "serial.csv")]) == 0
    assert out.read_bytes() == (tmp_path / "serial.csv").read_bytes()


# -- command line ---------------------------------------------------------------------------------
def test_cli_scan_writes_the_table_and_reports_failures(tmp_path, capsys):
    from liqlab.cli import main

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"mix": "degen"}]))
    out = tmp_path / "scan.csv"
    assert main(["scan", "--symbols", "SOLUSDT,NOPE", "--window", "1d", "--grid", str(grid),
                 "--executor", "serial", "--out", str(out)]) == 0
    t = pd.read_csv(out, keep_default_na=False)
    assert list(t["symbol"]) == ["NOPE", "SOLUSDT"] and list(t["param_mix"]) == ["degen", "degen"]
    assert "NOPE: MarketDataError" in capsys.readouterr().err
    assert main(["scan", "--symbols", "NOPE", "--window", "1d", "--executor", "serial",
                 "--out", str(tmp_path / "x.parquet")]) == 1


@pytest.mark.parametrize("argv, words", [
    (["--out", "scan.xlsx"], "--out must end in .parquet or .csv"),
    (["--window", "soon", "--out", "s.csv"], "window 'soon' is not a duration"),
    (["--grid", "missing.json", "--out", "s.csv"], "cannot read the grid file missing.json"),
    (["--executor", "serial", "--scheduler", "tcp://127.0.0.1:1", "--out", "s.csv"], "needs the dask executor"),
])
def test_cli_scan_bad_input_is_one_sentence(argv, words, capsys, tmp_path, monkeypatch):
    from liqlab.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["scan", "--symbols", "BTCUSDT", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.glob("s.*"))


def test_predict_params_file_equals_the_same_flags(tmp_path, capsys):
    from liqlab.cli import main
    from liqlab.sources.csv_files import save_market_file

    market = SampleSource().load("ETHUSDT", "5m", pd.Timedelta(days=1))
    path = save_market_file(market, tmp_path / "eth.csv")
    (tmp_path / "p.json").write_text('{"mix": "degen", "turnover": 0.03, "entry": "typical"}')
    assert main(["predict", str(path), "--params", str(tmp_path / "p.json"), "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["predict", str(path), "--mix", "degen", "--turnover", "0.03", "--entry", "typical",
                 "--out", str(tmp_path / "b.csv")]) == 0
    a, b = (tmp_path / "a.csv").read_text(), (tmp_path / "b.csv").read_text()
    assert a == b and len(a.splitlines()) == 289
    (tmp_path / "bad.json").write_text('{"mixx": "degen"}')
    assert main(["predict", str(path), "--params", str(tmp_path / "bad.json")]) == 1
    assert "unknown model setting(s) 'mixx'" in capsys.readouterr().err


def test_cli_fit_writes_settings_that_predict_reads(tmp_path, capsys):
    from liqlab.cli import main
    from liqlab.sources.csv_files import save_market_file

    grid = tmp_path / "grid.json"
    grid.write_text('{"mix": ["balanced", "degen"], "turnover": [0.0, 0.1]}')
    best = tmp_path / "best.json"
    assert main(["scan", "--symbols", "SYN001,SOLUSDT", "--window", "3d", "--grid", str(grid), "--fit",
                 "--best-out", str(best), "--executor", "serial", "--out", str(tmp_path / "fit.csv")]) == 0
    cal = calibrate(["SYN001", "SOLUSDT"], "3d", json.loads(grid.read_text()), executor="serial")
    assert read_settings(best) == cal.best
    fit = pd.read_csv(tmp_path / "fit.csv", keep_default_na=False)
    assert len(fit) == 8 and set(fit["symbol"]) == {"SYN001", "SOLUSDT"}
    market = SampleSource().load("SOLUSDT", "5m", pd.Timedelta(days=1))
    path = save_market_file(market, tmp_path / "sol.csv")
    assert main(["predict", str(path), "--params", str(best), "--out", str(tmp_path / "p.csv")]) == 0


def test_grid_columns_keep_one_type_each():
    t = scan(["SOLUSDT"], "1d", [{"half_life_hours": 12.0}, {"mix": "degen", "half_life_hours": [6, 6, 12, 24, 48]}],
             executor="serial")
    assert t["param_mix"].isna().tolist() == [True, False] and t["param_mix"].iloc[1] == "degen"
    assert list(t["param_half_life_hours"]) == ["12.0", "[6, 6, 12, 24, 48]"]
    assert (t["error"] == "").all()


def test_cli_universe_file_with_comments(tmp_path):
    from liqlab.cli import main

    uni = tmp_path / "universe.txt"
    uni.write_text("# majors\nSOLUSDT\nSYN003, SYN001  # two synthetic\n\n")
    out = tmp_path / "u.parquet"
    assert main(["scan", "--universe", str(uni), "--window", "1d", "--executor", "serial", "--out", str(out)]) == 0
    t = pd.read_parquet(out)
    assert list(t["symbol"]) == ["SOLUSDT", "SYN001", "SYN003"] and (t["error"] == "").all()
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert main(["scan", "--universe", str(empty), "--out", str(tmp_path / "e.csv")]) == 1
