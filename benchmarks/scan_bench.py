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
    from liqlab.sim.universe import cache_dir

    path = cache_dir() / f"{symbol}_{TIMEFRAME}_{len(market)}.parquet"
    out["cached_file_mb"] = round(path.stat().st_size / 2**20, 2) if path.exists() else None
    return out


def run() -> list[dict]:
    """Serial, processes and Dask on one universe, in two blocks run in opposite orders (the machines
    are shared: reversing the order spreads slow spells over all three); medians over all repeats."""
    from functools import partial

    from liqlab.scan import DaskExecutor, ProcessExecutor, SampleSource, SerialExecutor, parse_window, scan
    from liqlab.scan.sources import candles_in, load_length
    from liqlab.sim.universe import synthetic_symbols

    symbols = synthetic_symbols(SYMBOLS)
    window = parse_window(WINDOW)
    candles = candles_in(window, TIMEFRAME)
    base = {"case": "scan", "symbols": len(symbols), "candles": candles, "timeframe": TIMEFRAME, "window": WINDOW}

    # one-off: generate (or find) the synthetic markets in the on-disk cache
    t0 = time.perf_counter()
    with ProcessExecutor(WORKERS) as ex:
        loaded = ex.run(partial(load_length, SampleSource(), TIMEFRAME, window), symbols)
    bad = [r for r in loaded if isinstance(r, BaseException)]
    if bad:
        raise RuntimeError(f"preparing the universe failed: {bad[0]}")
    prepare_s = time.perf_counter() - t0

    makers = {"serial": SerialExecutor, "processes": lambda: ProcessExecutor(WORKERS),
              "dask": lambda: DaskExecutor(workers=WORKERS)}
    times: dict[str, list[float]] = {k: [] for k in makers}
    peaks = {k: 0.0 for k in makers}
    nworkers = {}
    worker_peak = 0.0
    tables = {}
    loads: list[float] = []  # 1-minute load average after each block: these machines are shared
    for order in (("serial", "processes", "dask"), ("dask", "processes", "serial")):
        for name in order:
            with PeakRss() as rss:
                executor = makers[name]()
                try:
                    tables[name] = scan(symbols, WINDOW, executor=executor, timeframe=TIMEFRAME)  # warm-up
                    for _ in range(REPEATS):
                        t = time.perf_counter()
                        scan(symbols, WINDOW, executor=executor, timeframe=TIMEFRAME)
                        times[name].append((time.perf_counter() - t) * 1000)
                    nworkers[name] = executor.workers
                    if name == "dask":
                        import resource

                        got = executor.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
                        worker_peak = max([worker_peak, *(v / 1024.0 for v in got.values())])
                finally:
                    executor.close()
            peaks[name] = max(peaks[name], rss.peak)
            loads.append(os.getloadavg()[0])

    med = {k: statistics.median(v) for k, v in times.items()}
    rows = []
    for name in makers:
        row = {**base, "executor": name, "workers": nworkers[name], "median_ms": round(med[name], 1),
               "min_ms": round(min(times[name]), 1), "runs": len(times[name]), "peak_rss_mb": round(peaks[name], 1),
               "cpus": os.cpu_count(), "loadavg_1m_range": [round(min(loads), 1), round(max(loads), 1)]}
        if name != "serial":
            row["efficiency"] = round(med["serial"] / (nworkers[name] * med[name]), 3)
            row["efficiency_of_min"] = round(min(times["serial"]) / (nworkers[name] * min(times[name])), 3)
            row["identical_to_serial"] = bool(tables["serial"].equals(tables[name]))
        if name == "dask":
            row["vs_processes"] = round(med["dask"] / med["processes"], 3)
            row["worker_peak_rss_mb"] = round(worker_peak, 1)
        rows.append(row)
    costs = stage_costs(symbols[0])
    rows.append({**base, "case": "scan_task_costs", "executor": "serial", "workers": 1,
                 "median_ms": costs["task_ms"], **costs, "prepare_markets_s": round(prepare_s, 1),
                 "errors": int((tables["serial"]["error"] != "").sum()), "peak_rss_mb": None})
    return rows


def task_3y_1m() -> dict:
    """One scan task on 3 years of 1-minute candles (a random-walk market, 1,576,800 candles):
    the per-task cost the 300-symbol estimate in ``docs/scaling.md`` scales from.

    Stages: ``load_ms`` (read a Parquet file of the market and validate it), ``engine_ms``
    (predictions), ``snapshot_ms`` (the map at the last candle), ``score_ms`` (scorecard against
    stand-in realized bars); peak RSS of this process.
    """
    import resource
    import sys
    import tempfile
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import random_market  # noqa: E402

    from liqlab.core.engine import ModelParams, compute_heatmap
    from liqlab.core.market import make_market
    from liqlab.evaluate.validation import scorecard

    n = 3 * 365 * 1440
    market = random_market(n, "1m", seed=3)
    rng = np.random.default_rng(4)
    bars = pd.DataFrame({"long_usd": rng.exponential(1e4, n), "short_usd": rng.exponential(1e4, n)},
                        index=market.index)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.parquet"
        market.data.assign(liq_long_usd=bars["long_usd"], liq_short_usd=bars["short_usd"]).to_parquet(path)
        size_mb = path.stat().st_size / 2**20

        def load():
            f = pd.read_parquet(path)
            b = f[["liq_long_usd", "liq_short_usd"]].set_axis(["long_usd", "short_usd"], axis=1)
            return make_market(f.drop(columns=["liq_long_usd", "liq_short_usd"]), symbol="BTCUSDT",
                               exchange="binance", timeframe="1m", liquidations=b)

        def timed1(fn, repeats=3):
            fn()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = fn()
                times.append((time.perf_counter() - t0) * 1000)
            return round(statistics.median(times), 1), out

        load_ms, m = timed1(load)
    params = ModelParams(mix="uniform", max_columns=0)
    engine_ms, res = timed1(lambda: compute_heatmap(m, params))
    snapshot_ms, _ = timed1(lambda: res.snapshot(-1))
    score_ms, _ = timed1(lambda: scorecard(m, {"liqlab": res.predicted}, baselines=()))
    return {"case": "scan_task_3y_1m", "symbols": 1, "candles": n, "executor": "serial", "workers": 1,
            "median_ms": round(load_ms + engine_ms + snapshot_ms + score_ms, 1), "load_ms": load_ms,
            "engine_ms": engine_ms, "snapshot_ms": snapshot_ms, "score_ms": score_ms,
            "bins": int(res.prices.size), "file_mb": round(size_mb, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}
