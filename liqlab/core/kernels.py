"""Hot loops of the liquidation engine, written once in plain Python and compiled with numba.

State is kept per side (0 = long, 1 = short), per *slot* (a leverage tier, or all tiers merged
when they age alike), per price bin. Three tricks keep a candle O(tiers + bins touched):

* **Lazy pro-rata scaling.** Closing a fraction ``f`` of every outstanding position multiplies a
  per-slot ``scale`` instead of every bin; stored values are ``actual / scale``.
* **Sweep pointers.** Long levels at or above the candle low are all liquidated, so the long book
  is empty above a pointer that only moves down when sweeping and up when entering; likewise for
  shorts below a pointer. Each bin is cleared at most once per fill.
* **Snapshots only at display columns**, summing slots for the heatmap.

``run_engine`` equals, candle by candle (see ``tests/test_engine.py`` for the slow reference):

1. touch: ``liq_long += book_long[centres >= low].sum()``, those bins emptied
   (shorts: ``centres <= high``);
2. close: ``f = min(1, max(0, drop - liq_long - liq_short) / oi_prev + churn / oi_prev)``;
   ``book *= 1 - f``;
3. age: ``book[slot] *= decay[slot]``;
4. enter: each tier's new notional is placed at ``entry * factor[tier]`` (a point, or spread
   uniformly over ``[entry_lo, entry_hi] * factor``), vulnerable from the next candle; with
   ``same_candle``, the share whose level lies beyond the close (above it for longs, below for
   shorts) is liquidated in this candle instead: the close comes after every entry, so the price
   crossed those levels after they were opened;
5. snapshot the summed book at display columns.
"""

from __future__ import annotations

import numpy as np

from liqlab.core.jit import njit

_RENORM = 1e-150


@njit
def _place(book, s, slot, lo_level, hi_level, amount, p0, step, n_bins):
    """Add ``amount`` spread uniformly over ``[lo_level, hi_level]`` (a point when equal).

    Returns the lowest and highest bin touched.
    """
    b_lo = int(np.floor((lo_level - p0) / step))
    b_hi = int(np.floor((hi_level - p0) / step))
    if b_lo < 0:
        b_lo = 0
    if b_hi > n_bins - 1:
        b_hi = n_bins - 1
    if b_hi < b_lo:
        b_hi = b_lo
    width = hi_level - lo_level
    if b_lo == b_hi or width <= 0.0:
        book[s, slot, b_lo] += amount
        return b_lo, b_lo
    for b in range(b_lo, b_hi + 1):
        left = p0 + b * step
        right = left + step
        if left < lo_level:
            left = lo_level
        if right > hi_level:
            right = hi_level
        if right > left:
            book[s, slot, b] += amount * (right - left) / width
    return b_lo, b_hi


@njit
def _beyond_close(lo_level, hi_level, close, side):
    """Share of levels spread uniformly over ``[lo_level, hi_level]`` already crossed by the close.

    Longs: levels above the close; shorts: levels below it. A point counts whole or not at all.
    """
    if hi_level <= lo_level:
        if side == 0:
            return 1.0 if lo_level > close else 0.0
        return 1.0 if lo_level < close else 0.0
    if side == 0:
        share = (hi_level - max(lo_level, close)) / (hi_level - lo_level)
    else:
        share = (min(hi_level, close) - lo_level) / (hi_level - lo_level)
    if share < 0.0:
        return 0.0
    if share > 1.0:
        return 1.0
    return share


@njit
def run_engine(
    high, low, close, entry_lo, entry_hi, new_long, new_short, drop, churn, oi_prev,
    long_factor, short_factor, slot_of_tier, decay, p0, step, n_bins, snap_at, grid_dtype_probe,
    same_candle,
):
    """Run the position book over all candles.

    Parameters
    ----------
    high, low, close : float64[n]
        Candle extremes, used for touches, and the close (for same-candle liquidations).
    entry_lo, entry_hi : float64[n]
        Entry price range of positions opened in each candle (equal for a point entry).
    new_long, new_short : float64[n]
        Notional opened per side in each candle (quote currency), before the tier split.
    drop, churn, oi_prev : float64[n]
        Fall in open interest during the candle (>= 0), notional replaced by turnover (closed
        here and re-opened in ``new_*``), and open interest before the candle, in the same quote
        units; ``(drop - liquidated) / oi_prev + churn / oi_prev`` is the closing fraction.
    long_factor, short_factor : float64[2, k]
        Row 0: liquidation price / entry per tier; row 1: weight of the tier on that side.
    slot_of_tier : int64[k]
        Book slot of each tier (all 0 to merge tiers that age alike).
    decay : float64[slots]
        Per-candle survival factor of each slot (1.0 = no ageing).
    p0, step, n_bins
        Grid: bin ``b`` covers ``[p0 + b*step, p0 + (b+1)*step)``; touches use bin centres.
    snap_at : int64[c]
        Sorted candle indices after which the book is snapshotted.
    grid_dtype_probe : float32[0]
        Carries the snapshot dtype (float32).
    same_candle : bool
        Liquidate at once the share of new positions whose level lies beyond the candle's close.

    Returns
    -------
    pred : float64[n, 2]
        Model-liquidated notional per candle, long and short.
    grids : float32[2, c, n_bins]
        Outstanding notional per side, snapshot and bin (each snapshot contiguous: written in order).
    book : float64[2, slots, n_bins]
        Final outstanding notional per side, slot and bin (actual units).
    totals : float64[4, 2]
        Rows: entered, closed, liquidated, outstanding; columns: long, short.
    """
    n = high.shape[0]
    k = long_factor.shape[1]
    n_slots = decay.shape[0]
    n_snap = snap_at.shape[0]
    book = np.zeros((2, n_slots, n_bins))
    scale = np.ones((2, n_slots))
    sums = np.zeros((2, n_slots))
    top = np.full(n_slots, -1, np.int64)        # highest possibly non-empty long bin
    bottom = np.full(n_slots, n_bins, np.int64)  # lowest possibly non-empty short bin
    pred = np.zeros((n, 2))
    grids = np.zeros((2, n_snap, n_bins), grid_dtype_probe.dtype)
    totals = np.zeros((4, 2))
    centre0 = p0 + 0.5 * step
    ageing = False
    for j in range(n_slots):
        if decay[j] != 1.0:
            ageing = True
    snap_pos = 0

    for t in range(n):
        # 1. touch: levels reached by this candle's range are liquidated
        lo = low[t]
        hi = high[t]
        liq_l = 0.0
        liq_s = 0.0
        for j in range(n_slots):
            b = top[j]
            acc = 0.0
            while b >= 0 and centre0 + b * step >= lo:
                acc += book[0, j, b]
                book[0, j, b] = 0.0
                b -= 1
            top[j] = b
            if acc > 0.0:
                sums[0, j] -= acc
                if sums[0, j] < 0.0:
                    sums[0, j] = 0.0
                liq_l += acc * scale[0, j]
            b = bottom[j]
            acc = 0.0
            while b < n_bins and centre0 + b * step <= hi:
                acc += book[1, j, b]
                book[1, j, b] = 0.0
                b += 1
            bottom[j] = b
            if acc > 0.0:
                sums[1, j] -= acc
                if sums[1, j] < 0.0:
                    sums[1, j] = 0.0
                liq_s += acc * scale[1, j]
        pred[t, 0] = liq_l
        pred[t, 1] = liq_s
        totals[2, 0] += liq_l
        totals[2, 1] += liq_s

        # 2. close pro rata on a fall in OI, net of what the model liquidated itself
        f = 0.0
        if oi_prev[t] > 0.0 and (drop[t] > 0.0 or churn[t] > 0.0):
            f = (drop[t] - liq_l - liq_s) / oi_prev[t]
            if f < 0.0:
                f = 0.0
            f += churn[t] / oi_prev[t]
            if f > 1.0:
                f = 1.0
        # 3. ageing
        if f > 0.0 or ageing:
            for s in range(2):
                for j in range(n_slots):
                    keep = (1.0 - f) * decay[j]
                    if keep == 1.0:
                        continue
                    totals[1, s] += sums[s, j] * scale[s, j] * (1.0 - keep)
                    if keep <= 0.0:
                        for b in range(n_bins):
                            book[s, j, b] = 0.0
                        sums[s, j] = 0.0
                        scale[s, j] = 1.0
                        if s == 0:
                            top[j] = -1
                        else:
                            bottom[j] = n_bins
                        continue
                    scale[s, j] *= keep
                    if scale[s, j] < _RENORM:
                        for b in range(n_bins):
                            book[s, j, b] *= scale[s, j]
                        sums[s, j] *= scale[s, j]
                        scale[s, j] = 1.0

        # 4. enter new positions (vulnerable from the next candle)
        for side in range(2):
            amount = new_long[t] if side == 0 else new_short[t]
            if amount <= 0.0:
                continue
            for i in range(k):
                if side == 0:
                    factor = long_factor[0, i]
                    weight = long_factor[1, i]
                else:
                    factor = short_factor[0, i]
                    weight = short_factor[1, i]
                if weight <= 0.0:
                    continue
                x = amount * weight
                j = slot_of_tier[i]
                totals[0, side] += x
                lo_level = entry_lo[t] * factor
                hi_level = entry_hi[t] * factor
                if same_candle:
                    # the close comes after every entry: levels beyond it were crossed already
                    gone = _beyond_close(lo_level, hi_level, close[t], side)
                    if gone > 0.0:
                        pred[t, side] += x * gone
                        totals[2, side] += x * gone
                        x *= 1.0 - gone
                        if x <= 0.0:
                            continue
                        # what survives is the part of the range on the near side of the close
                        if side == 0:
                            hi_level = close[t]
                        else:
                            lo_level = close[t]
                stored = x / scale[side, j]
                b_lo, b_hi = _place(book, side, j, lo_level, hi_level, stored, p0, step, n_bins)
                sums[side, j] += stored
                if side == 0:
                    if b_hi > top[j]:
                        top[j] = b_hi
                else:
                    if b_lo < bottom[j]:
                        bottom[j] = b_lo

        # 5. snapshot
        while snap_pos < n_snap and snap_at[snap_pos] == t:
            for s in range(2):
                for j in range(n_slots):
                    sc = scale[s, j]
                    if s == 0:
                        b_from = 0
                        b_to = top[j] + 1
                    else:
                        b_from = bottom[j]
                        b_to = n_bins
                    for b in range(b_from, b_to):
                        grids[s, snap_pos, b] += book[s, j, b] * sc
            snap_pos += 1

    for s in range(2):
        for j in range(n_slots):
            sc = scale[s, j]
            for b in range(n_bins):
                book[s, j, b] *= sc
            totals[3, s] += sums[s, j] * sc
    return pred, grids, book, totals
