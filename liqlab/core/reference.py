"""A slow, obvious implementation of the engine: one object per position cohort.

It exists to check the fast kernel (tests hold the two equal) and to measure how much faster the
kernel is (``benchmarks/run.py``). It follows the same candle order as :mod:`liqlab.core.kernels`:
touch, close (net of liquidations, plus churn), age, enter (same-candle liquidations first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class _Cohort:
    side: int      # 0 long, 1 short
    tier: int
    bin: int
    notional: float


def reference_predictions(prep) -> tuple[np.ndarray, dict]:
    """Predicted liquidations ``(n, 2)`` and totals from a prepared input (``engine.prepare``)."""
    g = prep.grid
    centres = g.centres
    cohorts: list[_Cohort] = []
    n = prep.high.shape[0]
    pred = np.zeros((n, 2))
    entered = np.zeros(2)
    closed = np.zeros(2)
    liquidated = np.zeros(2)
    k = prep.leverages.size
    for t in range(n):
        alive = []
        for c in cohorts:
            hit = centres[c.bin] >= prep.low[t] if c.side == 0 else centres[c.bin] <= prep.high[t]
            if hit:
                pred[t, c.side] += c.notional
            else:
                alive.append(c)
        cohorts = alive
        liquidated += pred[t]
        f = 0.0
        if prep.oi_prev[t] > 0 and (prep.drop[t] > 0 or prep.churn[t] > 0):
            f = max(0.0, (prep.drop[t] - pred[t].sum()) / prep.oi_prev[t]) + prep.churn[t] / prep.oi_prev[t]
            f = min(f, 1.0)
        for c in cohorts:
            keep = (1.0 - f) * prep.decay_per_tier[c.tier]
            closed[c.side] += c.notional * (1.0 - keep)
            c.notional *= keep
        for side, amount in ((0, prep.new_long[t]), (1, prep.new_short[t])):
            if amount <= 0:
                continue
            table = prep.long_factor if side == 0 else prep.short_factor
            for i in range(k):
                factor, weight = table[0, i], table[1, i]
                if weight <= 0:
                    continue
                x = amount * weight
                entered[side] += x
                lo, hi = prep.entry_lo[t] * factor, prep.entry_hi[t] * factor
                if prep.same_candle:
                    c = prep.close[t]
                    if hi <= lo:
                        gone = float(lo > c) if side == 0 else float(lo < c)
                    elif side == 0:
                        gone = min(max((hi - max(lo, c)) / (hi - lo), 0.0), 1.0)
                    else:
                        gone = min(max((min(hi, c) - lo) / (hi - lo), 0.0), 1.0)
                    pred[t, side] += x * gone
                    liquidated[side] += x * gone
                    x *= 1.0 - gone
                    if gone > 0:
                        lo, hi = (lo, min(hi, c)) if side == 0 else (max(lo, c), hi)
                    if x <= 0:
                        continue
                b_lo = min(max(int(np.floor((lo - g.p0) / g.step)), 0), g.n_bins - 1)
                b_hi = min(max(int(np.floor((hi - g.p0) / g.step)), 0), g.n_bins - 1)
                b_hi = max(b_hi, b_lo)
                if b_lo == b_hi or hi <= lo:
                    cohorts.append(_Cohort(side, i, b_lo, x))
                    continue
                for b in range(b_lo, b_hi + 1):
                    left = max(g.p0 + b * g.step, lo)
                    right = min(g.p0 + (b + 1) * g.step, hi)
                    if right > left:
                        cohorts.append(_Cohort(side, i, b, x * (right - left) / (hi - lo)))
    outstanding = np.zeros(2)
    for c in cohorts:
        outstanding[c.side] += c.notional
    totals = {"entered": entered, "closed": closed, "liquidated": liquidated, "outstanding": outstanding}
    return pred, totals
