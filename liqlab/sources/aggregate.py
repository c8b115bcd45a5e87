"""One Market for a coin across several exchanges, with the per-exchange breakdown kept.

Open interest is summed in quote currency; candles come from a chosen reference venue or are
volume-weighted across venues (open, high, low and close each averaged with the same per-candle
volume weights, which keeps ``low <= open, close <= high``); volume and taker volume are summed;
funding is averaged weighted by open interest; the long/short ratio is averaged; realized
liquidations are summed over the venues that have them. Only candles present on every venue are
kept, so no venue's missing data is silently read as zero.
"""

from __future__ import annotations

from typing import Iterable, Literal

import numpy as np
import pandas as pd

from liqlab.core.market import Market, MarketDataError, make_market

CandleMode = Literal["reference", "volume_weighted"]


def aggregate_markets(
    markets: dict[str, Market] | Iterable[Market],
    *,
    candles: CandleMode = "reference",
    reference: str | None = None,
    symbol: str | None = None,
) -> Market:
    """Combine per-exchange Markets of one coin into one.

    Parameters
    ----------
    markets
        ``{exchange: Market}`` or Markets (keyed by their ``exchange``); same timeframe.
    candles
        ``"reference"``: prices and volume from ``reference`` (default: the venue with the most
        open interest); ``"volume_weighted"``: prices averaged across venues by candle volume.
    reference
        The reference venue for ``candles="reference"``.
    symbol
        Symbol of the result (default: the base coin, e.g. ``"BTC"``).

    Returns
    -------
    Market
        ``exchange`` is ``"agg(ex1+ex2+...)"``; ``breakdown`` maps each exchange to its frame
        (its candles, ``open_interest`` and, when known, ``long_usd``/``short_usd``) on the
        common index.

    Raises
    ------
    MarketDataError
        No markets, mixed timeframes or contract types, no common candles, an unknown reference.
    """
    named = dict(markets) if isinstance(markets, dict) else {m.exchange: m for m in markets}
    if not named:
        raise MarketDataError("aggregate_markets needs at least one market")
    tfs = {m.timeframe for m in named.values()}
    if len(tfs) > 1:
        raise MarketDataError(f"cannot aggregate markets of different timeframes {sorted(tfs)}; load them alike")
    index = None
    for m in named.values():
        index = m.index if index is None else index.intersection(m.index)
    if index is None or len(index) == 0:
        raise MarketDataError(f"markets on {sorted(named)} share no candle times; choose an overlapping window")
    frames = {ex: m.data.reindex(index) for ex, m in named.items()}
    oi = pd.DataFrame({ex: f["open_interest"] for ex, f in frames.items()})
    if reference is None:
        reference = oi.mean().idxmax()
    if reference not in frames:
        raise MarketDataError(f"reference venue {reference!r} is not among {sorted(frames)}")

    if candles == "reference":
        out = frames[reference][["open", "high", "low", "close", "volume"]].copy()
    elif candles == "volume_weighted":
        vol = pd.DataFrame({ex: f["volume"] for ex, f in frames.items()})
        total = vol.sum(axis=1)
        # a candle with no volume anywhere: equal weights
        w = vol.div(total.where(total > 0), axis=0).fillna(1.0 / len(frames))
        out = pd.DataFrame(index=index)
        for col in ("open", "high", "low", "close"):
            out[col] = sum(frames[ex][col] * w[ex] for ex in frames)
        out["volume"] = total
    else:
        raise MarketDataError(f"candles must be 'reference' or 'volume_weighted', not {candles!r}")
    out["open_interest"] = oi.sum(axis=1)
    if all("taker_buy_volume" in f for f in frames.values()):
        out["taker_buy_volume"] = sum(f["taker_buy_volume"] for f in frames.values())
    fund = {ex: f["funding_rate"] for ex, f in frames.items() if "funding_rate" in f}
    if fund:
        rates = pd.DataFrame(fund)
        weights = oi[rates.columns].where(rates.notna())
        out["funding_rate"] = (rates * weights).sum(axis=1) / weights.sum(axis=1).replace(0, np.nan)
    lsr = [f["long_short_ratio"] for f in frames.values() if "long_short_ratio" in f]
    if lsr:
        out["long_short_ratio"] = pd.concat(lsr, axis=1).mean(axis=1)

    liq = None
    breakdown = {}
    for ex, m in named.items():
        part = frames[ex].copy()
        if m.liquidations is not None:
            bars = m.liquidations.reindex(index).fillna(0.0)
            part[["long_usd", "short_usd"]] = bars
            liq = bars if liq is None else liq + bars
        breakdown[ex] = part
    first = next(iter(named.values()))
    contracts = {m.contract for m in named.values()}
    base = first.symbol.split("/")[0]
    return make_market(
        out, symbol=symbol or base, exchange="agg(" + "+".join(named) + ")", timeframe=first.timeframe,
        contract=first.contract if len(contracts) == 1 else "linear", liquidations=liq,
        source="+".join(sorted({m.source for m in named.values()})), gaps="keep", breakdown=breakdown,
    )


def load_aggregate(
    coin: str,
    exchanges: Iterable[str] = ("binanceusdm", "bybit", "okx"),
    timeframe: str = "5m",
    since=None,
    until=None,
    *,
    candles: CandleMode = "reference",
    reference: str | None = None,
    store=None,
    offline: bool = False,
    skip_failed: bool = True,
) -> Market:
    """Load ``coin``'s USDT perpetual on each exchange and aggregate them.

    Exchanges that fail (unknown symbol, unreachable with nothing stored) are skipped with a
    warning when ``skip_failed``; at least one must succeed.
    """
    import warnings

    from liqlab.sources.loader import load_market

    loaded, errors = {}, []
    for ex in exchanges:
        try:
            loaded[ex] = load_market(ex, coin, timeframe, since, until, store=store, offline=offline)
        except MarketDataError as exc:
            if not skip_failed:
                raise
            errors.append(str(exc))
            warnings.warn(f"{ex} skipped: {exc}", stacklevel=2)
    if not loaded:
        raise MarketDataError(f"{coin}: no exchange could be loaded ({'; '.join(errors)})")
    return aggregate_markets(loaded, candles=candles, reference=reference, symbol=coin.upper())
