"""Store benchmarks: loading a year of 1-minute candles plus OI, and the cost of a refresh.

Run ``python benchmarks/bench_store.py`` (one JSON object per line) or call :func:`run`.
Targets: ``store_load_1y_1m`` median at most 500 ms; ``refresh_30d_5m_one_candle`` one request
per data kind (4) and none for the market list.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from liqlab.sources.loader import load_market_report, read_market  # noqa: E402
from liqlab.sources.store import Store  # noqa: E402

EX, SYM = "binanceusdm", "BTC/USDT:USDT"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _fill_year(store: Store) -> int:
    n = 365 * 1440
    ts = pd.date_range("2023-01-01", periods=n, freq="1min", tz="UTC")
    rng = np.random.default_rng(1)
    close = 30000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 5e-4, n)) * close
    store.write(EX, SYM, "ohlcv", "1m", pd.DataFrame({
        "timestamp": ts, "open": open_, "high": np.maximum(open_, close) + spread,
        "low": np.minimum(open_, close) - spread, "close": close, "volume": rng.gamma(2, 5, n)}),
        covered=(int(ts[0].value // 10**6), int(ts[-1].value // 10**6)))
    oi_ts = ts[::5]
    store.write(EX, SYM, "open_interest", "5m", pd.DataFrame({
        "timestamp": oi_ts, "open_interest_value": 2e9 * (1 + 0.1 * np.sin(np.arange(len(oi_ts)) / 500)),
        "open_interest_amount": np.nan}))
    return n


def bench_load_year(repeats: int = 5) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        n = _fill_year(store)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            market = read_market(store, EX, SYM, "1m", "2023-01-01", "2023-12-31 23:59")
            times.append((time.perf_counter() - t0) * 1000)
        assert len(market) == n
        return {"case": "store_load_1y_1m", "candles": n, "median_ms": round(statistics.median(times), 1),
                "min_ms": round(min(times), 1), "target_ms": 500, "peak_rss_mb": round(_peak_rss_mb(), 1)}


def bench_refresh() -> dict:
    from tests.exchange_fixtures.fake_binance import FakeBinance, binance_client

    from liqlab.sources.exchange import RetryPolicy

    with tempfile.TemporaryDirectory() as tmp, FakeBinance() as srv:
        until = pd.Timestamp.now(tz="UTC").floor("5min") - pd.Timedelta(minutes=30)
        since = until - pd.Timedelta(days=30)
        policy = RetryPolicy(retries=2, base_delay=0.01)
        t0 = time.perf_counter()
        _, first = load_market_report(binance_client(srv.url), SYM, "5m", since, until, store=tmp, retry=policy)
        first_ms = (time.perf_counter() - t0) * 1000
        srv.reset()
        t0 = time.perf_counter()
        market, report = load_market_report(binance_client(srv.url), SYM, "5m", since,
                                            until + pd.Timedelta(minutes=5), store=tmp, retry=policy)
        refresh_ms = (time.perf_counter() - t0) * 1000
        per_path: dict[str, int] = {}
        for path, _ in srv.requests:
            per_path[path] = per_path.get(path, 0) + 1
        return {"case": "refresh_30d_5m_one_candle", "candles": len(market), "requests": len(srv.requests),
                "requests_per_endpoint": per_path, "initial_requests": first.total_requests,
                "initial_ms": round(first_ms, 1), "median_ms": round(refresh_ms, 1),
                "peak_rss_mb": round(_peak_rss_mb(), 1)}


def run() -> list[dict]:
    """Run every store benchmark and return one row per case."""
    return [bench_load_year(), bench_refresh()]


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row))
