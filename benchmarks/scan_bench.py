"""The market-scan benchmark: one universe, serial vs a process pool vs a Dask LocalCluster.

    PYTHONPATH=. python benchmarks/run.py --case scan                  # 50 symbols x 1 year of 5m candles
    LIQLAB_SCAN_SYMBOLS=10 LIQLAB_SCAN_WINDOW=30d python benchmarks/run.py --case scan   # a quick look

Rows: one per executor (``case, symbols, candles, executor, workers, median_ms, peak_rss_mb``; the
parallel rows add ``efficiency`` = serial / (workers x parallel) and the Dask row ``vs_processes``),
then ``scan_task_costs``: the per-task stages on one symbol (load, engine, snapshot, score) and the
one-off generation of the synthetic markets (cached on disk, not part of the timed scans).
Peak RSS is the largest sum of this process and all its descendant processes seen while a case ran.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import pandas as pd

SYMBOLS = int(os.environ.get("LIQLAB_SCAN_SYMBOLS", "50"))
WINDOW = os.environ.get("LIQLAB_SCAN_WINDOW", "365d")
WORKERS = int(os.environ.get("LIQLAB_SCAN_WORKERS", "2"))
REPEATS = int(os.environ.get("LIQLAB_SCAN_REPEATS", "3"))
TIMEFRAME = "5m"


class PeakRss:
    """Samples the RSS of this process plus its descendants every 50 ms; keeps the peak (MB)."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> float:
        import psutil

        total = 0
        for p in [self._me, *self._me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> "PeakRss":
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _load_one(symbol: str) -> int:
    from liqlab.scan import SampleSource, parse_window

    return len(SampleSource().load(symbol, TIMEFRAME, parse_window(WINDOW)))


def stage_costs(symbol: str) -> dict:
    """Median ms of each stage of one task on one symbol (warm)."""
    from liqlab.core.engine import ModelParams, compute_heatmap
    from liqlab.evaluate.validation import scorecard
    from liqlab.scan import SampleSource, parse_window
    from liqlab.scan.tasks import run_scan_task, ScanTask

    window = parse_window(WINDOW)
    src = SampleSource()
    market = src.load(symbol, TIMEFRAME, window)
    params = ModelParams(max_columns=0)
    res = compute_heatmap(market, params)
    task = ScanTask(symbol, TIMEFRAME, window, src, ((0, "{}", ModelParams()),))
    stages = {
        "load_ms": lambda: src.load(symbol, TIMEFRAME, window),
        "engine_ms": lambda: compute_heatmap(market, params),
        "snapshot_ms": lambda: res.snapshot(-1),
        "score_ms": lambda: scorecard(market, {"liqlab": res.predicted}, baselines=()),
        "task_ms": lambda: run_scan_task(task),
    }
    out = {}
    for name, fn in stages.items():
        fn()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = round(statistics.median(times), 1)
    path = None
    from liqlab.sim.universe import cache_dir

    for p in cache_dir().glob(f"{symbol}_{TIMEFRAME}_*.parquet"):
        path = p
    out["cached_file_mb"] = round(path.stat().st_size / 2**20, 2) if path else None
    return out


def run() -> list[dict]:
    from liqlab.scan import DaskExecutor, ProcessExecutor, SerialExecutor, parse_window, scan
    from liqlab.scan.sources import candles_in
    from liqlab.sim.universe import synthetic_symbols

    symbols = synthetic_symbols(SYMBOLS)
    candles = candles_in(parse_window(WINDOW), TIMEFRAME)
    base = {"case": "scan", "symbols": len(symbols), "candles": candles, "timeframe": TIMEFRAME, "window": WINDOW}

    # one-off: generate (or find) the synthetic markets in the on-disk cache
    t0 = time.perf_counter()
    with ProcessExecutor(WORKERS) as ex:
        ex.run(_load_one, symbols)
    prepare_s = time.perf_counter() - t0

    rows: list[dict] = []
    tables = {}

    def measure(name: str, make) -> dict:
        with PeakRss() as rss:
            executor = make()
            try:
                tables[name] = scan(symbols, WINDOW, executor=executor, timeframe=TIMEFRAME)  # warm-up
                times = []
                for _ in range(REPEATS):
                    t = time.perf_counter()
                    scan(symbols, WINDOW, executor=executor, timeframe=TIMEFRAME)
                    times.append((time.perf_counter() - t) * 1000)
            finally:
                executor.close()
        return {**base, "executor": name, "workers": executor.workers, "median_ms": round(statistics.median(times), 1),
                "min_ms": round(min(times), 1), "peak_rss_mb": round(rss.peak, 1), "repeats": REPEATS}

    serial = measure("serial", SerialExecutor)
    rows.append(serial)
    procs = measure("processes", lambda: ProcessExecutor(WORKERS))
    procs["efficiency"] = round(serial["median_ms"] / (procs["workers"] * procs["median_ms"]), 3)
    rows.append(procs)
    dask = measure("dask", lambda: DaskExecutor(workers=WORKERS))
    dask["efficiency"] = round(serial["median_ms"] / (dask["workers"] * dask["median_ms"]), 3)
    dask["vs_processes"] = round(dask["median_ms"] / procs["median_ms"], 3)
    rows.append(dask)
    same = all(tables["serial"].equals(tables[k]) for k in ("processes", "dask"))
    for r in rows:
        r["identical_to_serial"] = bool(same) if r["executor"] != "serial" else True
    costs = stage_costs(symbols[0])
    rows.append({**base, "case": "scan_task_costs", "executor": "serial", "workers": 1,
                 "median_ms": costs["task_ms"], **costs, "prepare_markets_s": round(prepare_s, 1),
                 "errors": int((tables["serial"]["error"] != "").sum()), "peak_rss_mb": None})
    return rows
