"""Fuzz the importers: N mutated files through every loader, with a time limit per call.

Run ``python benchmarks/fuzz_importers.py [--inputs 10000] [--seed 0] [--time-limit 2] [--workers 2]``.
Prints one JSON line: ``inputs``, ``calls``, ``crashes`` (an exception other than a named
``MarketDataError``, or a named one whose message is not one bounded line), ``hangs`` (a call that
used more CPU time than the limit, or blocked for ten times as long: the machine's load does not
count), ``silent_acceptances`` (a loader returned data that breaks the contract: see
``tests/fuzz_harness.py`` for the exact list), ``named_errors``, ``ok`` and ``median_ms`` per call,
plus up to ``--examples`` examples of each failure. Target: 0 crashes, 0 hangs, 0 silent acceptances.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fuzz_harness import Workdir, random_case, run_case  # noqa: E402

FAILURES = ("crash", "hang", "silent")


def _worker(args: tuple[int, int, float, str, int]) -> list[tuple[str, str, str, str, float]]:
    """Run inputs ``start .. stop`` (case ``i`` uses random seed ``seed + i``); one row per call.

    Rows: ``("#i kind name", call, status, detail, seconds)``; ``#i`` reproduces the case with
    ``random_case(np.random.default_rng(seed + i))``.
    """
    start, stop, time_limit, root, seed = args
    warnings.simplefilter("ignore")  # parser warnings about damaged input are expected here
    work = Workdir(Path(root) / f"w{start}")
    rows = []
    for i in range(start, stop):
        case = random_case(np.random.default_rng(seed + i))
        for out in run_case(case, work, time_limit):
            rows.append((f"#{i} {case.kind} {case.name}", out.call, out.status, out.detail, out.seconds))
    return rows


def run(inputs: int = 10_000, seed: int = 0, time_limit: float = 2.0, workers: int = 2, examples: int = 5) -> dict:
    """Fuzz ``inputs`` mutated files and summarise every loader call."""
    chunk = 100
    with tempfile.TemporaryDirectory(prefix="liqlab-fuzz-") as root:
        jobs = [(a, min(a + chunk, inputs), time_limit, root, seed) for a in range(0, inputs, chunk)]
        t0 = time.perf_counter()
        if workers > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                parts = pool.map(_worker, jobs, chunksize=1)
        else:
            parts = [_worker(job) for job in jobs]
        wall = time.perf_counter() - t0
    rows = [r for part in parts for r in part]
    count = {s: sum(1 for r in rows if r[2] == s) for s in ("ok", "named", *FAILURES)}
    shown = {s: [f"{r[0]} {r[1]}: {r[3]}" for r in rows if r[2] == s][:examples] for s in FAILURES}
    return {
        "inputs": inputs, "calls": len(rows), "crashes": count["crash"], "hangs": count["hang"],
        "silent_acceptances": count["silent"], "named_errors": count["named"], "ok": count["ok"],
        "median_ms": round(statistics.median(r[4] for r in rows) * 1000, 2) if rows else None,
        "max_ms": round(max(r[4] for r in rows) * 1000, 1) if rows else None,
        "time_limit_s": time_limit, "seed": seed, "wall_s": round(wall, 1),
        "examples": {s: v for s, v in shown.items() if v},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="mutated files to try (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="first random seed (default 0)")
    parser.add_argument("--time-limit", type=float, default=2.0, help="CPU seconds per loader call (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--examples", type=int, default=5, help="failures shown per kind (default 5)")
    args = parser.parse_args(argv)
    result = run(args.inputs, args.seed, args.time_limit, args.workers, args.examples)
    print(json.dumps(result))
    return 0 if not (result["crashes"] or result["hangs"] or result["silent_acceptances"]) else 1


if __name__ == "__main__":
    sys.exit(main())
