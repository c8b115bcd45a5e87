"""Cascade simulator benchmarks (issue 5 targets).

    python benchmarks/bench_cascade.py        # one JSON object per line

Cases
-----
``cascade``
    Draw 1,000,000 positions (``make_population``) and run 1,000 rounds (``max_rounds=1000``,
    ``stop_when_quiet=False``: a cascade in the first rounds, then the recovery). ``median_ms``
    covers both steps; ``population_ms`` and ``cascade_ms`` split them. Target: 1 s.
``phase_diagram``
    A 40 x 40 sweep of leverage x depth (50,000 positions per population). Target: 10 s.

Timings are warm (numba's JIT cache loaded, one run discarded) medians.
"""

from __future__ import annotations

import json
import resource
import statistics
import time

import numpy as np

from liqlab.sim.cascade import CascadeParams, make_population, phase_diagram, simulate_cascade


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _median_ms(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), times


def case_cascade(positions: int = 1_000_000, rounds: int = 1_000, repeats: int = 7) -> dict:
    params = CascadeParams(depth=5e7, recovery=0.01, max_rounds=rounds, stop_when_quiet=False)

    def both():
        pop = make_population(positions, seed=1, total_notional=1e9)
        return simulate_cascade(pop, params, shock=-0.02)

    med, times = _median_ms(both, repeats)
    pop = make_population(positions, seed=1, total_notional=1e9)
    pop_med, _ = _median_ms(lambda: make_population(positions, seed=1, total_notional=1e9), repeats)
    cas_med, _ = _median_ms(lambda: simulate_cascade(pop, params, shock=-0.02), repeats)
    res = simulate_cascade(pop, params, shock=-0.02)
    return {"case": "cascade", "positions": positions, "rounds": int(len(res.rounds) - 1),
            "median_ms": round(med, 2), "min_ms": round(min(times), 2),
            "population_ms": round(pop_med, 2), "cascade_ms": round(cas_med, 2),
            "kept_positions": len(pop), "cascade_rounds": res.n_rounds,
            "size_share": round(res.size_share, 4), "target_ms": 1000,
            "peak_rss_mb": round(_peak_rss_mb(), 1)}


def case_phase_diagram(grid: tuple[int, int] = (40, 40), n: int = 50_000, repeats: int = 3) -> dict:
    lev = np.linspace(2.0, 100.0, grid[0])
    depth = np.geomspace(1e5, 1e9, grid[1])

    def sweep():
        return phase_diagram(lev, depth, shock=-0.02, n=n, total_notional=1e8)

    med, times = _median_ms(sweep, repeats)
    return {"case": "phase_diagram", "grid": list(grid), "positions": n, "median_ms": round(med, 2),
            "min_ms": round(min(times), 2), "target_ms": 10_000, "peak_rss_mb": round(_peak_rss_mb(), 1)}


def run() -> list[dict]:
    """Both cases, as rows for ``benchmarks/run.py``."""
    return [case_cascade(), case_phase_diagram()]


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row), flush=True)
