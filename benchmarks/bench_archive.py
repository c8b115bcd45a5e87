"""Archive benchmarks: a year of BTCUSDT 5-minute klines + metrics + funding from a local stand-in archive.

Run ``python benchmarks/bench_archive.py`` (one JSON object per line) or call :func:`run`.
Targets (medians): first run (download, verify, import) at most 60 s; a second run at most 2 s
with zero downloads; reading the year back from the store at most 0.5 s.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from liqlab.sources.archive_download import download_archive
from liqlab.sources.export import stored_market
from liqlab.sources.loader import read_market
from liqlab.sources.store import Store
from tests.exchange_fixtures.fake_archive import FakeArchive, build_year

YEAR = 2024
KINDS = ("klines", "metrics", "fundingRate")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def run(first_repeats: int = 3, repeats: int = 5) -> list[dict]:
    """Every archive case, one row each."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FakeArchive(Path(tmp) / "archive") as arc:
        counts = build_year(arc, YEAR)
        args = dict(since=f"{YEAR}-01-01", until=f"{YEAR}-12-31", kinds=KINDS, interval="5m",
                    archive_url=arc.url, progress=False)
        first, reports = [], []
        for i in range(first_repeats):
            store = Store(Path(tmp) / f"store{i}")
            arc.reset()
            t0 = time.perf_counter()
            reports.append(download_archive("binanceusdm", "BTCUSDT", store=store, **args))
            first.append(_ms(t0))
        rep = reports[-1]
        rows.append({"case": "archive_1y_5m_first_run", "kinds": list(KINDS), "files": rep.planned,
                     "downloads": rep.downloads, "requests": rep.requests, "mb": round(rep.bytes / 1e6, 2),
                     "rows": sum(rep.rows.values()), "rows_per_kind": rep.rows, "workers": 8,
                     "median_ms": round(statistics.median(first), 1), "runs_ms": [round(x) for x in first],
                     "target_ms": 60_000, "peak_rss_mb": round(_peak_rss_mb(), 1)})
        again, downloads, requests = [], [], []
        for _ in range(repeats):
            arc.reset()
            t0 = time.perf_counter()
            rep = download_archive("binanceusdm", "BTCUSDT", store=store, **args)
            again.append(_ms(t0))
            downloads.append(rep.downloads)
            requests.append(len(arc.requests))
        rows.append({"case": "archive_1y_5m_second_run", "files": rep.planned, "already_stored": rep.already_stored,
                     "downloads": max(downloads), "requests": max(requests),
                     "median_ms": round(statistics.median(again), 1), "target_ms": 2000,
                     "peak_rss_mb": round(_peak_rss_mb(), 1)})
        for case, fn in (
            ("archive_1y_5m_read_market", lambda: read_market(store, "binanceusdm", "BTC/USDT:USDT", "5m",
                                                              f"{YEAR}-01-01", f"{YEAR}-12-31 23:55", gaps="keep")),
            ("archive_1y_5m_read_export_alignment", lambda: stored_market(store, "binanceusdm", "BTCUSDT", "5m",
                                                                          f"{YEAR}-01-01", f"{YEAR}-12-31 23:55")[0]),
        ):
            fn()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                market = fn()
                times.append(_ms(t0))
            rows.append({"case": case, "candles": len(market), "columns": list(market.data.columns),
                         "expected_candles": counts["klines"], "median_ms": round(statistics.median(times), 1),
                         "min_ms": round(min(times), 1), "target_ms": 500, "peak_rss_mb": round(_peak_rss_mb(), 1)})
    return rows


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row), flush=True)
