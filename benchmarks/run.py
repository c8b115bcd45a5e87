"""liqlab benchmarks: one JSON object per line, with the inputs that produced each figure.

    python benchmarks/run.py                 # every case, each in its own process (clean peak RSS)
    python benchmarks/run.py --case engine_43200x1000
    python benchmarks/run.py --list

Each row has at least ``case``, ``median_ms`` and ``peak_rss_mb`` (the case's process), plus
``candles``/``bins`` where they apply. Timings are warm (numba's JIT cache on disk, one run
discarded) medians over ``repeats`` runs: these machines are shared and noisy, so compare medians
and ratios, not single runs. Cases from ``benchmarks/bench_*.py`` modules (``run() -> list[dict]``)
are included.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "real"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm: JIT load from the on-disk cache, first-touch allocations
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), times


def random_market(n: int, timeframe: str = "1m", seed: int = 0):
    """A random-walk market with rising and falling OI (inputs for speed, not realism)."""
    import numpy as np
    import pandas as pd

    from liqlab.core.market import make_market, timeframe_to_timedelta

    rng = np.random.default_rng(seed)
    step = timeframe_to_timedelta(timeframe)
    vol = 0.0008 * (step / pd.Timedelta("1min")) ** 0.5
    c = 60_000 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    o = np.concatenate([[c[0]], c[:-1]])
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, vol / 2, n)))
    l = np.minimum(o, c) * (1 - np.abs(rng.normal(0, vol / 2, n)))
    oi = 5e9 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    idx = pd.date_range("2025-01-01", periods=n, freq=step, tz="UTC")
    df = pd.DataFrame({"open": o, "high": h, "low": l, "close": c, "volume": rng.uniform(50, 500, n),
                       "open_interest": oi}, index=idx)
    return make_market(df, symbol="BTCUSDT", exchange="binance", timeframe=timeframe)


# -- cases --------------------------------------------------------------------------------------
def case_engine_43200x1000() -> dict:
    from liqlab.core.engine import ModelParams, compute_heatmap

    m = random_market(43_200, "1m")
    params = ModelParams(mix="uniform", n_bins=1000)  # 5 tiers, both sides
    med, times = timed(lambda: compute_heatmap(m, params), repeats=15)
    res = compute_heatmap(m, params)
    return {"case": "engine_43200x1000", "candles": len(m), "bins": int(res.prices.size), "tiers": 5,
            "columns": int(res.columns.size), "median_ms": round(med, 2), "min_ms": round(min(times), 2),
            "target_ms": 50, "peak_rss_mb": round(peak_rss_mb(), 1)}


def case_engine_1y_1m() -> dict:
    from liqlab.core.engine import ModelParams, compute_heatmap

    m = random_market(525_600, "1m")
    params = ModelParams(mix="uniform")
    med, times = timed(lambda: compute_heatmap(m, params), repeats=5)
    res = compute_heatmap(m, params)
    return {"case": "engine_525600_1m", "candles": len(m), "bins": int(res.prices.size), "tiers": 5,
            "columns": int(res.columns.size), "median_ms": round(med, 2), "min_ms": round(min(times), 2),
            "target_ms": 1000, "peak_rss_mb": round(peak_rss_mb(), 1), "target_rss_mb": 1024}


def case_engine_real_hourly() -> dict:
    if not (REAL / "btcusdt_1h_market.csv").exists():
        return {"case": "engine_real_1h", "skipped": f"real data not found at {REAL}"}
    from liqlab.core.reference import reference_predictions
    from liqlab.core.engine import ModelParams, compute_heatmap, prepare
    from liqlab.sources.csv_files import load_market_file

    m = load_market_file(REAL / "btcusdt_1h_market.csv", gaps="keep", symbol="BTCUSDT", exchange="binance")
    params = ModelParams()
    med, _ = timed(lambda: compute_heatmap(m, params), repeats=25)
    pred_med, _ = timed(lambda: compute_heatmap(m, params.replace(max_columns=0)), repeats=25)
    prep = prepare(m, params)
    ref_med, _ = timed(lambda: reference_predictions(prep), repeats=3)
    n = len(m)
    return {"case": "engine_real_1h", "candles": n, "bins": int(prep.grid.n_bins), "tiers": int(prep.leverages.size),
            "median_ms": round(med, 3), "per_candle_us": round(1000 * med / n, 3),
            "predict_only_median_ms": round(pred_med, 3),
            # the yardstick: an object-per-position Python model at about 0.25 ms per candle
            "speedup_vs_250us_per_candle": round(250.0 / (1000 * med / n), 1),
            "reference_median_ms": round(ref_med, 1), "reference_per_candle_us": round(1000 * ref_med / n, 1),
            # our own reference keeps every churned cohort alive, so it is slower than 0.25 ms
            "speedup_vs_object_reference": round(ref_med / med, 1), "peak_rss_mb": round(peak_rss_mb(), 1)}


def _scan_module():
    spec = importlib.util.spec_from_file_location("scan_bench", HERE / "scan_bench.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def case_scan() -> list[dict]:
    """Market scan: serial vs process pool vs Dask LocalCluster (see ``benchmarks/scan_bench.py``)."""
    return run_module(HERE / "scan_bench.py")


CASES = {
    "engine_43200x1000": case_engine_43200x1000,
    "engine_525600_1m": case_engine_1y_1m,
    "engine_real_1h": case_engine_real_hourly,
    "scan": case_scan,
    "scan_task_3y_1m": lambda: _scan_module().task_3y_1m(),
}


def module_cases() -> dict[str, Path]:
    """Extra benchmark modules: ``benchmarks/bench_*.py`` with ``run() -> list[dict]``."""
    return {p.stem: p for p in sorted(HERE.glob("bench_*.py"))}


def run_module(path: Path) -> list[dict]:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return list(module.run())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help="run one case in this process")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--skip-modules", action="store_true", help="only the engine cases")
    args = ap.parse_args(argv)
    names = list(CASES) + ([] if args.skip_modules else list(module_cases()))
    if args.list:
        print("\n".join(names))
        return 0
    if args.case:
        if args.case in CASES:
            result = CASES[args.case]()
            for row in (result if isinstance(result, list) else [result]):
                print(json.dumps(row), flush=True)
        elif args.case in module_cases():
            for row in run_module(module_cases()[args.case]):
                print(json.dumps(row), flush=True)
        else:
            print(f"unknown case {args.case!r}; see --list", file=sys.stderr)
            return 2
        return 0
    status = 0
    for name in names:
        # a fresh process per case: peak RSS belongs to that case alone
        proc = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        out = proc.stdout.strip()
        if proc.returncode != 0 or not out:
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(json.dumps({"case": name, "error": err}), flush=True)
            status = 1
        else:
            print(out, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
