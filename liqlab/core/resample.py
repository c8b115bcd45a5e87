"""Aggregating a market to a longer timeframe."""

from __future__ import annotations

import pandas as pd

from liqlab.core.market import Market, MarketDataError, make_market, timeframe_to_timedelta


def resample_market(market: Market, timeframe: str) -> Market:
    """Aggregate a market to a longer timeframe (OHLC, summed volumes and liquidations, last OI).

    Raises
    ------
    MarketDataError
        If ``timeframe`` is shorter than the market's own or not a whole multiple of it.
    """
    src = timeframe_to_timedelta(market.timeframe)
    dst = timeframe_to_timedelta(timeframe)
    if dst == src:
        return market
    if dst < src or dst % src != pd.Timedelta(0):
        raise MarketDataError(
            f"{market.label} has {market.timeframe} candles; choose {market.timeframe} or a multiple of it"
        )
    rule = pd.Timedelta(dst)
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum",
           "open_interest": "last"}
    for col, how in (("funding_rate", "last"), ("long_short_ratio", "last"), ("taker_buy_volume", "sum")):
        if col in market.data:
            agg[col] = how
    data = market.data.resample(rule, origin="epoch", label="left").agg(agg).dropna(subset=["close"])
    liq = None
    if market.liquidations is not None:
        liq = market.liquidations.resample(rule, origin="epoch", label="left").sum().reindex(data.index)
        liq = liq.fillna(0.0)
    return make_market(data, symbol=market.symbol, exchange=market.exchange, timeframe=timeframe,
                       contract=market.contract, liquidations=liq, source=market.source,
                       synthetic=market.synthetic, gaps="fill")
