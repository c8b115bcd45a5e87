"""Local store: round trips, incremental coverage, concurrent writers, killed writers, damaged files."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqlab.sources.store import Store, StoreError, default_data_dir, merge_ranges, subtract_ranges

ROOT = Path(__file__).resolve().parents[1]
EX, SYM = "binanceusdm", "BTC/USDT:USDT"


def candles(start: str, n: int, freq: str = "5min", level: float = 100.0) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    close = level + np.arange(n, dtype=float)
    return pd.DataFrame({"timestamp": ts, "open": close, "high": close + 1, "low": close - 1,
                         "close": close, "volume": 1.0})


def test_round_trip_and_incremental_coverage(tmp_path):
    store = Store(tmp_path)
    first = candles("2024-01-01", 10)
    a, b = int(first.timestamp.iloc[0].value // 10**6), int(first.timestamp.iloc[-1].value // 10**6)
    assert store.missing(EX, SYM, "ohlcv", "5m", a, b) == [(a, b)]
    store.write(EX, SYM, "ohlcv", "5m", first, covered=(a, b))
    assert store.missing(EX, SYM, "ohlcv", "5m", a, b + 300_000) == [(b + 1, b + 300_000)]
    # overlapping rows replace stored ones; others are kept
    update = candles("2024-01-01 00:45", 3, level=500.0)
    assert store.write(EX, SYM, "ohlcv", "5m", update) == 12
    back = store.read(EX, SYM, "ohlcv", "5m")
    assert back["timestamp"].is_monotonic_increasing and back["close"].iloc[-3:].tolist() == [500.0, 501.0, 502.0]
    window = store.read(EX, SYM, "ohlcv", "5m", start="2024-01-01 00:10", end="2024-01-01 00:20")
    assert len(window) == 3
    assert store.read(EX, SYM, "ohlcv", "1h").empty  # nothing stored: an empty frame, not an error


def test_range_arithmetic():
    assert merge_ranges([(5, 9), (0, 4), (20, 30), (25, 40)]) == [(0, 9), (20, 40)]
    assert subtract_ranges(0, 50, [(0, 9), (20, 40)]) == [(10, 19), (41, 50)]
    assert subtract_ranges(0, 10, []) == [(0, 10)]
    assert subtract_ranges(0, 10, [(-5, 20)]) == []


def test_data_dir_follows_env_and_argument(tmp_path, monkeypatch):
    monkeypatch.setenv("LIQLAB_DATA_DIR", str(tmp_path / "env"))
    assert default_data_dir() == tmp_path / "env" and Store().root == tmp_path / "env"
    assert Store(tmp_path / "arg").root == tmp_path / "arg"
    monkeypatch.delenv("LIQLAB_DATA_DIR")
    import platformdirs

    # the user's data folder, wherever liqlab is installed or run from
    assert default_data_dir() == Path(platformdirs.user_data_dir("liqlab", appauthor=False)) / "store"


def test_liquidation_events_are_deduplicated(tmp_path):
    store = Store(tmp_path)
    ev = pd.DataFrame({"timestamp": pd.to_datetime([1, 2, 3], unit="s", utc=True), "side": ["long", "short", "long"],
                       "price": [10.0, 11.0, 12.0], "notional": [100.0, 200.0, 300.0]})
    assert store.append_liquidations(EX, SYM, ev) == 3
    assert store.append_liquidations(EX, SYM, ev.iloc[1:]) == 3
    got = store.read_liquidations(EX, SYM)
    assert got["side"].tolist() == ["long", "short", "long"] and got["notional"].sum() == 600.0


def _writer(root: str, worker: int, batches: int) -> None:
    store = Store(root)
    for i in range(batches):
        start = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(minutes=5 * (worker * 1000 + i * 10))
        frame = candles(str(start), 10, level=100.0 + worker)
        a = int(start.value // 10**6)
        store.write(EX, SYM, "ohlcv", "5m", frame, covered=(a, a + 10 * 300_000 - 1))


def test_two_processes_writing_at_once_both_land(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 15)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = Store(tmp_path)
    back = store.read(EX, SYM, "ohlcv", "5m")
    assert len(back) == 2 * 15 * 10  # no batch lost to a lost update
    assert len(store.coverage(EX, SYM, "ohlcv", "5m")) == 2  # each worker: one contiguous range
    assert not list(store.path(EX, SYM, "ohlcv", "5m").parent.glob(".tmp-*"))


KILL_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, pandas as pd
    from liqlab.sources.store import Store
    store = Store(sys.argv[1])
    n = 1_500_000
    ts = pd.date_range("2020-01-01", periods=n, freq="1min", tz="UTC")
    rng = np.random.default_rng(0)
    while True:  # rewrite a big file forever; the test kills us in the middle of one write
        v = rng.random(n) + 1
        frame = pd.DataFrame({"timestamp": ts, "open": v, "high": v + 1, "low": v - 1, "close": v, "volume": v})
        store.write("binanceusdm", "BTC/USDT:USDT", "ohlcv", "1m", frame)
        print("wrote", flush=True)
""")


def test_writer_killed_mid_write_leaves_a_readable_file(tmp_path):
    store = Store(tmp_path)
    store.write(EX, SYM, "ohlcv", "1m", candles("2020-01-01", 5, freq="1min"))
    path = store.path(EX, SYM, "ohlcv", "1m")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(path.parent.glob(".tmp-*")):
            time.sleep(0.005)  # wait until a temporary file is being written
        assert list(path.parent.glob(".tmp-*")), "writer never started a write"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    back = store.read(EX, SYM, "ohlcv", "1m")  # the old or a complete new version, never a torn one
    assert len(back) in (5, 1_500_000)
    # the next writer removes the dead writer's temporary file
    store.write(EX, SYM, "ohlcv", "1m", candles("2030-01-01", 1, freq="1min"))
    assert not list(path.parent.glob(".tmp-*"))


def test_truncated_file_gives_a_repair_hint(tmp_path):
    store = Store(tmp_path)
    store.write(EX, SYM, "ohlcv", "5m", candles("2024-01-01", 100))
    path = store.path(EX, SYM, "ohlcv", "5m")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError) as err:
        store.read(EX, SYM, "ohlcv", "5m")
    msg = str(err.value)
    assert str(path) in msg and "delete" in msg and "liqlab fetch binanceusdm BTC/USDT:USDT" in msg
    with pytest.raises(StoreError):  # a writer refuses to merge into a damaged file too
        store.write(EX, SYM, "ohlcv", "5m", candles("2024-02-01", 1))


def test_wrong_schema_gives_a_repair_hint(tmp_path):
    store = Store(tmp_path)
    path = store.path(EX, SYM, "funding")
    path.parent.mkdir(parents=True)
    pd.DataFrame({"timestamp": [1], "rate": [0.1]}).to_parquet(path)
    with pytest.raises(StoreError, match="lacks column"):
        store.read(EX, SYM, "funding")


# -- damaged files planted in the store ---------------------------------------------------------
def _plant(path: Path, columns: dict, metadata: bytes | None = None) -> bytes:
    """Write a Parquet file with exactly ``columns`` (pyarrow arrays) and liqlab ``metadata``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(columns)
    if metadata is not None:
        table = table.replace_schema_metadata({b"liqlab": metadata})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path.read_bytes()


def _ohlcv_columns(ts, price=None) -> dict:
    import pyarrow as pa

    n = len(ts)
    price = pa.array([100.0] * n) if price is None else price
    return {"timestamp": ts, "open": price, "high": price, "low": price, "close": price,
            "volume": pa.array([1.0] * n)}


def _assert_refused_everywhere(store: Store, path: Path, match: str, *, coverage: bool = True) -> None:
    """read, write (and coverage) raise a StoreError with a repair hint, and the file is kept."""
    before = path.read_bytes() if path.is_file() else None
    calls = [lambda: store.read(EX, SYM, "ohlcv", "5m"),
             lambda: store.write(EX, SYM, "ohlcv", "5m", candles("2024-02-01", 1))]
    if coverage:  # coverage reads the schema only, not the rows
        calls.append(lambda: store.coverage(EX, SYM, "ohlcv", "5m"))
    for call in calls:
        with pytest.raises(StoreError, match=match) as err:
            call()
        assert str(path) in str(err.value) and "delete" in str(err.value)
        assert "liqlab fetch binanceusdm BTC/USDT:USDT" in str(err.value)
    if before is not None:
        assert path.read_bytes() == before  # a refused write leaves the data as it was


def test_a_directory_in_place_of_the_file_is_a_store_error(tmp_path):
    store = Store(tmp_path)
    path = store.path(EX, SYM, "ohlcv", "5m")
    path.mkdir(parents=True)
    _assert_refused_everywhere(store, path, "cannot be opened")


@pytest.mark.parametrize("metadata, match", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"coverage": [[1]]}', "malformed 'coverage'"),
    (b'{"coverage": [["a", "b"]]}', "malformed 'coverage'"),
    (b'{"coverage": [[5, 1]]}', "malformed 'coverage'"),
])
def test_bad_metadata_is_a_store_error(tmp_path, metadata, match):
    import pyarrow as pa

    store = Store(tmp_path)
    path = store.path(EX, SYM, "ohlcv", "5m")
    _plant(path, _ohlcv_columns(pa.array(pd.date_range("2024-01-01", periods=3, freq="5min", tz="UTC"))), metadata)
    _assert_refused_everywhere(store, path, match)


@pytest.mark.parametrize("case", ["timestamp as text", "timestamp as int64", "price as text"])
def test_wrong_column_types_are_a_store_error(tmp_path, case):
    import pyarrow as pa

    store = Store(tmp_path)
    path = store.path(EX, SYM, "ohlcv", "5m")
    ts = pd.date_range("2024-01-01", periods=3, freq="5min", tz="UTC")
    if case == "timestamp as text":
        columns = _ohlcv_columns(pa.array([str(t) for t in ts]))
    elif case == "timestamp as int64":
        columns = _ohlcv_columns(pa.array(ts.as_unit("ms").asi8))
    else:
        columns = _ohlcv_columns(pa.array(ts), price=pa.array(["100", "101", "102"]))
    _plant(path, columns, b'{"coverage": []}')
    _assert_refused_everywhere(store, path, "wrong type")


@pytest.mark.parametrize("order, match", [([2, 0, 1], "out of time order"), ([0, 1, 1], "repeated timestamps")])
def test_unsorted_or_repeated_rows_are_a_store_error(tmp_path, order, match):
    import pyarrow as pa

    store = Store(tmp_path)
    path = store.path(EX, SYM, "ohlcv", "5m")
    ts = pd.date_range("2024-01-01", periods=3, freq="5min", tz="UTC")[order]
    _plant(path, _ohlcv_columns(pa.array(ts)), b'{"coverage": []}')
    _assert_refused_everywhere(store, path, match, coverage=False)


def test_read_window_works_for_any_stored_time_unit(tmp_path):
    import pyarrow as pa

    store = Store(tmp_path)
    path = store.path(EX, SYM, "ohlcv", "5m")
    ts = pd.date_range("2024-01-01", periods=5, freq="5min", tz="UTC").as_unit("us")
    _plant(path, _ohlcv_columns(pa.array(ts)), b'{"coverage": []}')
    window = store.read(EX, SYM, "ohlcv", "5m", start="2024-01-01 00:05", end="2024-01-01 00:10")
    assert window["timestamp"].tolist() == list(ts[1:3])


def test_a_file_without_metadata_is_listed_under_a_symbol_fetch_accepts(tmp_path):
    import pyarrow as pa

    from liqlab.sources.loader import NoStoredDataError, load_market

    store = Store(tmp_path)
    path = store.path(EX, SYM, "ohlcv", "5m")
    assert path.parent.name == "BTC_USDT_USDT"
    _plant(path, _ohlcv_columns(pa.array(pd.date_range("2020-01-01", periods=3, freq="5min", tz="UTC"))))
    assert [e.symbol for e in store.entries()] == ["BTC/USDT:USDT"]
    with pytest.raises(NoStoredDataError) as err:
        load_market(EX, "BTC", "5m", "2024-01-01", "2024-01-02", store=store, offline=True)
    assert "liqlab fetch binanceusdm BTC/USDT:USDT " in str(err.value)


def test_store_imports_and_writes_where_fcntl_is_missing(tmp_path):
    script = textwrap.dedent("""
        import sys, warnings
        sys.modules["fcntl"] = None  # as on Windows: importing it raises ImportError
        warnings.simplefilter("ignore")
        import pandas as pd
        import liqlab
        from liqlab.sources.store import Store
        store = Store(sys.argv[1])
        ts = pd.date_range("2024-01-01", periods=3, freq="5min", tz="UTC")
        frame = pd.DataFrame({"timestamp": ts, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0})
        print(store.write("binanceusdm", "BTC/USDT:USDT", "ohlcv", "5m", frame))
    """)
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "3"
