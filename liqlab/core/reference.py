"""A slow, obvious implementation of the engine: one object per position cohort.

It exists to check the fast kernel (tests hold the two equal) and to measure how much faster the
kernel is (``benchmarks/run.py``). It follows the same candle order as :mod:`liqlab.core.kernels`:
touch, close (net of liquidations, plus churn), age, enter (same-candle liquidations first).

:func:`reference_prepare` derives the per-candle inputs (entries, OI flows, tier levels, ageing)
itself, candle by candle from the model's definitions and :func:`liqlab.core.brackets.liquidation_price`,
so that a test comparing it with :func:`liqlab.core.engine.prepare` checks the preparation too.
Only the price grid (a display choice, not part of the model) is taken from the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from liqlab.core.brackets import liquidation_price
from liqlab.core.market import Market


def reference_prepare(market: Market, params, grid) -> SimpleNamespace:
    """The inputs :func:`reference_predictions` reads, derived candle by candle.

    Supports the settings without a side tilt (``tilt="none"``) and with an explicit bracket table
    (``params.brackets``); ``grid`` is the engine's price grid (``engine.prepare(...).grid``).

    * entries: ``typical`` (H+L+C)/3, ``close``, ``ohlc4`` (O+H+L+C)/4, or ``range`` [L, H];
    * opened notional: a rise in OI, counted in contracts (``OI / close``) valued at the candle's
      mean entry, or in quote currency; a fall closes contracts valued at the candle's close;
    * turnover: ``turnover`` x volume x mean entry, at most the previous OI, both closed and opened;
    * ageing: a half-life in hours turned into a per-candle survival with the candle's length;
    * levels: ``liquidation_price(entry=1, leverage, side)`` with the bracket of the position size.
    """
    if params.tilt != "none" and params.tilt_strength != 0:
        raise ValueError("the reference preparation has no side tilt")
    table = params.brackets
    data = market.data
    n = len(market)
    hours = pd.Timedelta(market.timeframe).total_seconds() / 3600.0
    lev = np.asarray(params.mix.leverages, float)
    mmr, cum, max_lev = table.lookup(np.array([params.position_notional]))
    lev = np.minimum(lev, max_lev[0])
    factors = {side: np.array([float(liquidation_price(1.0, x, side, mmr=mmr[0], cum=cum[0],
                                                       notional=params.position_notional,
                                                       contract=market.contract)) for x in lev])
               for side in ("long", "short")}
    w_long = np.asarray(params.mix.weights("long"), float)
    w_short = np.asarray(params.mix.weights("short"), float)
    w_long = np.where(factors["long"] > 0, w_long, 0.0)
    w_short = np.where(np.isfinite(factors["short"]), w_short, 0.0)
    factors["short"] = np.where(np.isfinite(factors["short"]), factors["short"], 0.0)
    fields = {k: np.zeros(n) for k in ("entry_lo", "entry_hi", "new", "drop", "churn", "oi_prev")}
    for t in range(n):
        o, h, lo, c, oi = (float(data[k].iloc[t]) for k in ("open", "high", "low", "close", "open_interest"))
        entry = {"typical": ((h + lo + c) / 3,) * 2, "close": (c, c), "ohlc4": ((o + h + lo + c) / 4,) * 2,
                 "range": (lo, h)}[params.entry]
        fields["entry_lo"][t], fields["entry_hi"][t] = entry
        mid = 0.5 * (entry[0] + entry[1])
        if t == 0:
            continue
        prev_oi, prev_c = float(data["open_interest"].iloc[t - 1]), float(data["close"].iloc[t - 1])
        if params.oi_change == "contracts":
            change = oi / c - prev_oi / prev_c  # contracts
            fields["oi_prev"][t] = prev_oi / prev_c * c
            opened, dropped = max(change, 0.0) * mid, max(-change, 0.0) * c
        else:
            fields["oi_prev"][t] = prev_oi
            opened, dropped = max(oi - prev_oi, 0.0), max(prev_oi - oi, 0.0)
        if params.turnover > 0:
            fields["churn"][t] = min(params.turnover * float(data["volume"].iloc[t]) * mid, fields["oi_prev"][t])
        fields["new"][t] = opened + fields["churn"][t]
        fields["drop"][t] = dropped
    if params.half_life_hours is None:
        decay = np.ones(lev.size)
    else:
        decay = 0.5 ** (hours / np.broadcast_to(np.asarray(params.half_life_hours, float), lev.shape))
    return SimpleNamespace(
        high=data["high"].to_numpy(float), low=data["low"].to_numpy(float), close=data["close"].to_numpy(float),
        entry_lo=fields["entry_lo"], entry_hi=fields["entry_hi"], new_long=fields["new"], new_short=fields["new"].copy(),
        drop=fields["drop"], churn=fields["churn"], oi_prev=fields["oi_prev"],
        long_factor=np.vstack([factors["long"], w_long]), short_factor=np.vstack([factors["short"], w_short]),
        leverages=lev, decay_per_tier=decay, grid=grid, same_candle=params.same_candle,
    )


@dataclass
class _Cohort:
    side: int      # 0 long, 1 short
    tier: int
    bin: int
    notional: float


def reference_predictions(prep) -> tuple[np.ndarray, dict]:
    """Predicted liquidations ``(n, 2)`` and totals from a prepared input (``engine.prepare`` or
    :func:`reference_prepare`)."""
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
