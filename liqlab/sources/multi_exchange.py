"""Open interest and realized liquidations of one coin across venues, from the store alone.

:func:`load_multi_exchange` puts every venue on one candle grid and says where each figure comes
from, so a dashboard can show per-venue and summed open interest and liquidations with honest
labels:

* open interest, quote currency, one side of each contract (how each venue counts it is in
  ``docs/data_sources.md``): the venue's own history in the store (Binance archive metrics,
  Bybit/OKX ``oi-history``, REST fetches), else Coinalyze's figure for that venue. A candle gets
  the latest snapshot taken at or before its close, if at most ``max(step, 1h)`` (Coinalyze: one
  of its periods) old; otherwise NaN. Base-unit figures (Bybit linear) are priced at the venue's
  candle open, or at the reference venue's when the venue has no candles stored (noted);
* realized liquidations, USD per candle ``[t, t + step)``: the venue's stored events (recorder,
  archive snapshot, OKX REST), else Coinalyze bars when their period divides the candle.
  Binance's figures are a **lower bound** (its stream sends at most one liquidation per symbol
  per second), and are flagged so. Candles outside a source's recorded spans are NaN, not zero.

Sums (``total``) add the venues that have a value for the candle; ``venues_in_total`` counts them,
so a partial sum is visible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from liqlab.core.market import (
    MarketDataError,
    align_liquidations,
    events_to_bars,
    timeframe_to_timedelta,
)
from liqlab.sources.coinalyze import store_exchange
from liqlab.sources.export import ExportError, pick_period, stored_symbol
from liqlab.sources.store import Store, safe_name, to_ms

__all__ = ["DEFAULT_VENUES", "LOWER_BOUND_VENUES", "MultiExchange", "load_multi_exchange"]

DEFAULT_VENUES = ("binanceusdm", "bybit", "okx")
#: Venues whose realized liquidations undercount, with the reason shown next to them.
LOWER_BOUND_VENUES = {
    "binanceusdm": "Binance publishes at most one liquidation per symbol per second",
    "binancecoinm": "Binance publishes at most one liquidation per symbol per second",
}
COVERAGE_COLUMNS = ("venue", "figure", "source", "period", "first", "last", "candles", "lower_bound", "note")


@dataclass(frozen=True)
class MultiExchange:
    """Per-venue figures on one UTC candle grid.

    Attributes
    ----------
    open_interest
        One column per venue (quote currency), ``total`` and ``venues_in_total``.
    long_usd, short_usd
        Realized liquidations per candle, same layout.
    coverage
        One row per venue and figure: ``venue, figure, source, period, first, last, candles,
        lower_bound, note``.
    """

    symbol: str
    timeframe: str
    index: pd.DatetimeIndex
    open_interest: pd.DataFrame
    long_usd: pd.DataFrame
    short_usd: pd.DataFrame
    coverage: pd.DataFrame

    @property
    def lower_bound_venues(self) -> list[str]:
        """Venues whose liquidation figures are lower bounds."""
        rows = self.coverage[(self.coverage["figure"] == "liquidations") & self.coverage["lower_bound"]]
        return sorted(set(rows["venue"]))


def _with_total(columns: dict[str, np.ndarray], index: pd.DatetimeIndex) -> pd.DataFrame:
    frame = pd.DataFrame(columns, index=index)
    values = frame.to_numpy(dtype=float) if len(frame.columns) else np.empty((len(index), 0))
    have = np.isfinite(values)
    frame["total"] = np.where(have.any(axis=1), np.nansum(np.where(have, values, 0.0), axis=1), np.nan)
    frame["venues_in_total"] = have.sum(axis=1)
    return frame


def _asof(times, values, at: np.ndarray, tolerance: int) -> np.ndarray:
    src = pd.DatetimeIndex(times).as_unit("ms").asi8
    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    src, values = src[keep], values[keep]
    order = np.argsort(src, kind="stable")
    src, values = src[order], values[order]
    out = np.full(len(at), np.nan)
    if not len(src):
        return out
    pos = np.searchsorted(src, at, side="right") - 1
    ok = (pos >= 0) & (at - src[np.clip(pos, 0, None)] <= tolerance)
    out[ok] = values[pos[ok]]
    return out


def _periods(entries, exchange: str, symbol: str, kind: str) -> list[str]:
    return [e.period for e in entries if e.kind == kind and e.period and safe_name(e.exchange) == safe_name(exchange)
            and e.symbol == symbol]


def _symbol(store: Store, exchange: str, symbol: str) -> str | None:
    try:
        return stored_symbol(store, exchange, symbol)
    except ExportError:
        return None


def _span(index: pd.DatetimeIndex, values: np.ndarray) -> tuple:
    ok = np.flatnonzero(np.isfinite(values))
    return (index[ok[0]], index[ok[-1]], int(ok.size)) if ok.size else (None, None, 0)


def _mask_outside(index_ms: np.ndarray, step: int, coverage) -> np.ndarray:
    """True for candles lying wholly inside a recorded span."""
    inside = np.zeros(len(index_ms), dtype=bool)
    for a, b in coverage:
        inside |= (index_ms >= a) & (index_ms + step - 1 <= b)
    return inside


def _partly(index_ms: np.ndarray, step: int, coverage) -> np.ndarray:
    """True for candles that hold the end of a span inferred from events (the last event's candle)."""
    out = np.zeros(len(index_ms), dtype=bool)
    for _, b in coverage:
        out |= (index_ms <= b) & (b < index_ms + step)
    return out


def load_multi_exchange(
    symbol: str,
    timeframe: str,
    since,
    until,
    store: Store | str | os.PathLike | None = None,
    *,
    venues: tuple[str, ...] | list[str] = DEFAULT_VENUES,
) -> MultiExchange:
    """Per-venue and summed open interest and realized liquidations for ``[since, until]``.

    Parameters
    ----------
    symbol
        ``BTCUSDT`` or ``BTC/USDT:USDT`` (matched against each venue's stored symbols).
    timeframe
        Candle size of the common grid.
    since, until
        Window; candle opens ``since <= t <= until``.
    store
        A :class:`Store` or data directory.
    venues
        Venue ids (``binanceusdm``, ``bybit``, ``okx``, ...).

    Raises
    ------
    MarketDataError
        When no venue has open interest or liquidations stored for the symbol.
    """
    store = store if isinstance(store, Store) else Store(store)
    step_td = timeframe_to_timedelta(timeframe)
    step = int(step_td.total_seconds() * 1000)
    lo, hi = to_ms(since) // step * step, to_ms(until) // step * step
    index = pd.date_range(pd.Timestamp(lo, unit="ms", tz="UTC"), pd.Timestamp(hi, unit="ms", tz="UTC"), freq=step_td)
    opens = index.as_unit("ms").asi8
    closes = opens + step
    entries = store.entries()
    coverage: list[dict] = []
    oi, longs, shorts = {}, {}, {}
    prices: dict[str, np.ndarray] = {}
    for venue in venues:
        sym = _symbol(store, venue, symbol)
        if sym is None:
            continue
        tf = pick_period(_periods(entries, venue, sym, "ohlcv"), timeframe)
        if tf is not None:
            candles = store.read(venue, sym, "ohlcv", tf, lo - 86_400_000, hi + step)
            if len(candles):
                prices[venue] = _asof(candles["timestamp"], candles["open"].to_numpy(), opens, 86_400_000)
    reference = next(iter(prices.values()), None)
    for venue in venues:
        sym = _symbol(store, venue, symbol)
        ca = store_exchange(venue)
        ca_sym = _symbol(store, ca, symbol)
        lower = venue in LOWER_BOUND_VENUES
        # -- open interest -------------------------------------------------------------------
        source, period, note, values = None, None, "", None
        if sym is not None and (period := pick_period(_periods(entries, venue, sym, "open_interest"), timeframe)):
            source, pstep = f"{venue} store", int(timeframe_to_timedelta(period).total_seconds() * 1000)
            rows = store.read(venue, sym, "open_interest", period, lo - max(step, 3_600_000), hi + step)
            value = rows["open_interest_value"].to_numpy(dtype=float)
            if np.isnan(value).any() and len(rows):
                price = prices.get(venue, reference)
                if price is None:
                    note = "open interest in base units and no candles stored to price it"
                else:
                    if venue not in prices:
                        note = "base-unit open interest priced with another venue's candles"
                    snap = pd.DatetimeIndex(rows["timestamp"]).as_unit("ms").asi8
                    pos = np.clip(np.searchsorted(opens, snap, side="right") - 1, 0, len(opens) - 1)
                    value = np.where(np.isnan(value), rows["open_interest_amount"].to_numpy(dtype=float) * price[pos], value)
            values = _asof(rows["timestamp"], value, closes, max(step, 3_600_000, pstep))
        elif ca_sym is not None and (period := pick_period(_periods(entries, ca, ca_sym, "open_interest"), timeframe)):
            source = "coinalyze"
            pstep = int(timeframe_to_timedelta(period).total_seconds() * 1000)
            rows = store.read(ca, ca_sym, "open_interest", period, lo - pstep, hi + step)
            values = _asof(rows["timestamp"], rows["open_interest_value"].to_numpy(), closes, max(step, pstep))
        if values is not None:
            oi[venue] = values
            first, last, n = _span(index, values)
            coverage.append(dict(venue=venue, figure="open_interest", source=source, period=period, first=first,
                                 last=last, candles=n, lower_bound=False, note=note))
        # -- realized liquidations -----------------------------------------------------------
        got = None
        liq_note = ""
        if sym is not None and store.path(venue, sym, "liquidations").exists():
            cov = store.coverage(venue, sym, "liquidations")
            if not cov:
                # live recordings keep no span: count as known only from the first to the last event
                every = store.read_liquidations(venue, sym)
                if len(every):
                    stamps = pd.DatetimeIndex(every["timestamp"]).as_unit("ms").asi8
                    cov = [(int(stamps.min()) // step * step, int(stamps.max()))]
                    liq_note = "recorded span not stored; taken as the first to the last event"
            inside = _mask_outside(opens, step, cov) if cov else np.zeros(len(opens), dtype=bool)
            if liq_note:
                inside |= _partly(opens, step, cov)
            if inside.any():
                events = store.read_liquidations(venue, sym, lo, hi + step - 1)
                bars = events_to_bars(events, index, step_td) if len(events) else pd.DataFrame(
                    {"long_usd": 0.0, "short_usd": 0.0}, index=index)
                got = (f"{venue} store", None, bars["long_usd"].to_numpy(), bars["short_usd"].to_numpy(), inside)
        if got is None and ca_sym is not None:
            periods = [p for p in _periods(entries, ca, ca_sym, "liquidation_bars")
                       if step % int(timeframe_to_timedelta(p).total_seconds() * 1000) == 0]
            if periods:
                period = pick_period(periods, timeframe)
                cov = store.coverage(ca, ca_sym, "liquidation_bars", period)
                rows = store.read(ca, ca_sym, "liquidation_bars", period, lo, hi + step - 1)
                frame = rows.set_index("timestamp")
                bars = align_liquidations(frame, index, step=step_td, where=f"coinalyze {venue}")
                got = ("coinalyze", period, bars["long_usd"].to_numpy(), bars["short_usd"].to_numpy(),
                       _mask_outside(opens, step, cov))
        if got is not None:
            source, period, long_v, short_v, inside = got
            longs[venue] = np.where(inside, long_v, np.nan)
            shorts[venue] = np.where(inside, short_v, np.nan)
            first, last, n = _span(index, longs[venue])
            coverage.append(dict(venue=venue, figure="liquidations", source=source, period=period, first=first,
                                 last=last, candles=n, lower_bound=lower,
                                 note="; ".join(n for n in (LOWER_BOUND_VENUES.get(venue, "") + (
                                     " (lower bound)" if lower else ""), liq_note) if n)))
    if not coverage:
        raise MarketDataError(
            f"the store at {store.root} has no open interest or liquidations for {symbol} on "
            f"{', '.join(venues)}; fill it with `liqlab archive`, `liqlab oi-history`, `liqlab record` or "
            "`liqlab coinalyze`")
    return MultiExchange(
        symbol=symbol, timeframe=timeframe, index=index,
        open_interest=_with_total(oi, index), long_usd=_with_total(longs, index), short_usd=_with_total(shorts, index),
        coverage=pd.DataFrame(coverage, columns=list(COVERAGE_COLUMNS)),
    )
