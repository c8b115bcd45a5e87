"""A hand-made store with three venues for the "all exchanges" tests (written through ``Store``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from liqlab.sources.store import Store

SYM = "BTC/USDT:USDT"


def fill_store(root, t0: pd.Timestamp, n: int, *, bybit_oi_from: int = 0, bybit_liq_until: int | None = None,
               scale: float = 1.0) -> Store:
    """``n`` 5-minute candles from ``t0`` on Binance; OI on all three venues; a few liquidations.

    * Binance: candles, OI ``1e9 + i * 1e5`` at each 5-minute snapshot ``i``; liquidations (a lower
      bound) long 1000 at minute 1 and short 300 at minute 12, recorded over the whole span.
    * Bybit: OI 5e8 from snapshot ``bybit_oi_from`` on; liquidations long 50 at minute 3 and short
      70 at minute 62, recorded for the first ``bybit_liq_until`` minutes (default: half the span).
    * OKX: OI 2e8; liquidations long 20 at minute 7, recorded over the whole span.

    Liquidation amounts are multiplied by ``scale``.
    """
    s = Store(root)
    ms0 = int(t0.value // 10**6)

    def at(m):
        return t0 + pd.Timedelta(minutes=m)

    def span(a, b):
        return ms0 + a * 60_000, ms0 + b * 60_000 - 1

    px = 60_000 + 400 * np.sin(np.arange(n) / 15.0)
    s.write("binanceusdm", SYM, "ohlcv", "5m", pd.DataFrame({
        "timestamp": [at(5 * i) for i in range(n)], "open": px, "high": px + 120, "low": px - 120, "close": px,
        "volume": 1.0}))
    snaps = [at(5 * i) for i in range(n + 1)]
    s.write("binanceusdm", SYM, "open_interest", "5m", pd.DataFrame({
        "timestamp": snaps, "open_interest_value": [1e9 + i * 1e5 for i in range(n + 1)]}))
    s.write("bybit", SYM, "open_interest", "5m", pd.DataFrame({
        "timestamp": snaps[bybit_oi_from:], "open_interest_value": 5e8}))
    s.write("okx", SYM, "open_interest", "5m", pd.DataFrame({"timestamp": snaps, "open_interest_value": 2e8}))

    def liq(venue, rows, until_min):
        s.append_liquidations(venue, SYM, pd.DataFrame({
            "timestamp": [at(m) for m, _, _ in rows], "side": [side for _, side, _ in rows],
            "price": 60_000.0, "notional": [usd * scale for _, _, usd in rows]}), covered=span(0, until_min))

    liq("binanceusdm", [(1, "long", 1000.0), (12, "short", 300.0)], 5 * n)
    liq("bybit", [(3, "long", 50.0), (62, "short", 70.0)], bybit_liq_until or 5 * n // 2)
    liq("okx", [(7, "long", 20.0)], 5 * n)
    return s
