"""Deep open-interest history from Bybit and OKX through ccxt, into the store.

Both endpoints answer newest rows first, so history is walked **backwards** from ``until``, one
window of ``page limit x period`` at a time, and stops at the first empty window (the contract's
listing on Bybit, the end of retention on OKX):

* Bybit ``GET /v5/market/open-interest`` (ccxt ``fetchOpenInterestHistory``): 5m, 15m, 30m, 1h,
  4h, 1d; at most 200 rows a request; history back to the listing. ``openInterest`` is in the
  base coin for linear contracts (stored as ``open_interest_amount``; priced with the candle when
  read) and in USD for inverse ones (``open_interest_value``).
* OKX ``GET /api/v5/rubik/stat/contracts/open-interest-history``: 5m, 1H, 1D; at most 100 rows a
  request; only about the last 1,440 rows of each period are kept (5 days of 5m, 60 days of 1H,
  about 4 years of 1D), so older windows are not asked for. Rows carry contracts, base coin and
  USD; the USD figure is stored as ``open_interest_value`` and the coin figure as the amount.

Every venue counts open interest once (one side of each contract); see ``docs/data_sources.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from liqlab.core.market import MarketDataError, timeframe_to_timedelta
from liqlab.sources.exchange import (
    ExchangeDataError,
    RequestLog,
    RetryPolicy,
    call_with_retry,
    ensure_markets,
    exchange_label,
    make_exchange,
    market_info,
    now_ms,
    page_limit,
    resolve_symbol,
)
from liqlab.sources.store import Store, to_ms

__all__ = ["PERIODS", "RETENTION_ROWS", "OIHistoryReport", "fetch_oi_history", "normalise_oi"]

#: Periods each venue's history endpoint accepts (ccxt timeframe strings).
PERIODS = {"bybit": ("5m", "15m", "30m", "1h", "4h", "1d"), "okx": ("5m", "1h", "1d")}
#: Rows of history a venue keeps per period (None: back to the listing).
RETENTION_ROWS = {"bybit": None, "okx": 1440}
_PAGES_PER_WRITE = 20


@dataclass
class OIHistoryReport:
    """What an open-interest history fetch stored and where the venue's history ends."""

    exchange: str
    symbol: str
    period: str
    start: pd.Timestamp
    end: pd.Timestamp
    host: str = ""
    rows: int = 0
    requests: int = 0
    retries: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    gaps: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        head = f"{self.exchange} {self.symbol} open interest ({self.period})"
        if self.requests == 0 and not self.gaps:
            return f"{head}: {self.start} .. {self.end} already in the store; no request needed"
        text = f"{head}: stored {self.rows} rows from {self.host} in {self.requests} request(s)"
        if self.first is not None:
            text += f", {self.first} .. {self.last}"
        if self.gaps:
            text += "; " + "; ".join(self.gaps)
        return text


def normalise_oi(items: list[dict], market: dict, exchange_id: str) -> pd.DataFrame:
    """ccxt open-interest structures as ``timestamp, open_interest_value, open_interest_amount``.

    ``value`` is quote currency (USD/USDT), ``amount`` base coins; whichever the venue does not
    give is NaN. Raw lines (from ``info``)::

        bybit linear   {"openInterest": "50123.000", "timestamp": "1714521600000"}     -> amount 50123 BTC
        bybit inverse  {"openInterest": "400000123", "timestamp": "1714521600000"}     -> value 400000123 USD
        okx            ["1714521600000", "2000123", "20001.23", "800049200.0"]         -> value 800049200 USD,
                       (ts, contracts, coin, USD)                                          amount 20001.23 BTC
    """
    rows = []
    inverse = bool(market.get("inverse"))
    for it in items:
        raw = it.get("info")
        if exchange_id == "okx" and isinstance(raw, list) and len(raw) >= 4:
            rows.append((int(raw[0]), float(raw[3]), float(raw[2])))
        elif exchange_id == "bybit" and isinstance(raw, dict) and raw.get("openInterest") is not None:
            oi = float(raw["openInterest"])
            rows.append((int(raw["timestamp"]), oi if inverse else np.nan, np.nan if inverse else oi))
        else:
            value, amount = it.get("openInterestValue"), it.get("openInterestAmount")
            rows.append((it.get("timestamp"), np.nan if value is None else float(value),
                         np.nan if amount is None else float(amount)))
    frame = pd.DataFrame(rows, columns=["timestamp", "open_interest_value", "open_interest_amount"])
    frame = frame.dropna(subset=["timestamp"]).sort_values("timestamp", kind="stable")
    frame = frame.drop_duplicates("timestamp", keep="last").reset_index(drop=True)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ms", utc=True)
    return frame


def fetch_oi_history(
    exchange,
    symbol: str,
    period: str,
    since,
    until=None,
    *,
    store: Store | str | os.PathLike | None = None,
    api_url: str | None = None,
    policy: RetryPolicy | None = None,
    now: int | None = None,
) -> OIHistoryReport:
    """Fill the store with ``period`` open-interest history of ``symbol`` for ``[since, until]``.

    Only ranges the store lacks are requested. Windows ending within the last hour are recorded
    as fetched only up to their last row, so late rows are asked for again next time.

    Parameters
    ----------
    exchange
        ``"bybit"`` or ``"okx"`` (or a ccxt instance of one).
    symbol
        Unified (``BTC/USDT:USDT``) or exchange id (``BTCUSDT``, ``BTC-USDT-SWAP``).
    period
        See :data:`PERIODS`.
    since, until
        The window (``until`` defaults to now).

    Returns
    -------
    OIHistoryReport
        Rows stored, requests made, and the gaps the venue's history leaves (before the listing,
        beyond OKX's retention).

    Raises
    ------
    ExchangeDataError
        An unsupported venue or period, an unknown symbol, or a venue unreachable after retries
        (windows finished before are kept in the store).
    """
    store = store if isinstance(store, Store) else Store(store)
    ex_id = exchange if isinstance(exchange, str) else exchange.id
    if ex_id not in PERIODS:
        raise ExchangeDataError(f"deep open-interest history is implemented for bybit and okx, not {ex_id!r}")
    if period not in PERIODS[ex_id]:
        raise ExchangeDataError(f"{ex_id} keeps open-interest history in {', '.join(PERIODS[ex_id])} periods, not {period!r}")
    policy = policy or RetryPolicy()
    log = RequestLog()
    ex = make_exchange(exchange, api_url=api_url)
    ensure_markets(ex, store=store, policy=policy, log=log)
    sym = resolve_symbol(ex, symbol)
    market = market_info(ex, sym)
    if not (market.get("swap") or market.get("future")):
        raise ExchangeDataError(f"{ex_id} {sym} is not a contract market; open interest exists for swaps and futures")
    step = int(timeframe_to_timedelta(period).total_seconds() * 1000)
    now = now_ms() if now is None else now
    start = -(-to_ms(since) // step) * step
    end = min(to_ms(until) if until is not None else now, now) // step * step
    if start > end:
        raise MarketDataError(f"the window {since} .. {until} holds no {period} period; pick an earlier since")
    report = OIHistoryReport(ex_id, sym, period, pd.Timestamp(start, unit="ms", tz="UTC"),
                             pd.Timestamp(end, unit="ms", tz="UTC"), exchange_label(ex))
    keep = RETENTION_ROWS.get(ex_id)
    oldest = (now // step - keep + 1) * step if keep else None
    limit = page_limit(ex_id, "open_interest")
    for lo, hi in reversed(store.missing(ex_id, sym, "open_interest", period, start, end)):
        if oldest is not None and lo < oldest:
            report.gaps.append(
                f"{ex_id} keeps only the last {keep} {period} rows, so {pd.Timestamp(lo, unit='ms', tz='UTC')} up to "
                f"{pd.Timestamp(min(hi + 1, oldest), unit='ms', tz='UTC')} is left as a gap")
            lo = oldest
            if lo > hi:
                continue
        if not _walk_back(ex, sym, market, period, step, limit, lo, hi, now, store, policy, log, report):
            break
    report.requests, report.retries = log.total - log.counts.get("markets", 0), log.retries
    return report


def _walk_back(ex, sym, market, period, step, limit, lo, hi, now, store, policy, log, report) -> bool:
    """Page ``[lo, hi]`` newest first; False when the venue's history ended inside it."""
    frames, covered, pages = [], [], 0
    cursor = hi
    ended = False
    while cursor >= lo:
        window_lo = max(lo, cursor - limit * step + 1)
        items = call_with_retry(ex, "fetch_open_interest_history", sym, period, window_lo, limit,
                                {"until": cursor}, symbol=sym, kind="open_interest", policy=policy, log=log)
        rows = normalise_oi(items, market, ex.id)
        ms = pd.DatetimeIndex(rows["timestamp"]).as_unit("ms").asi8
        rows = rows.loc[(ms >= window_lo) & (ms <= cursor)]
        if rows.empty:
            ended = True
            report.gaps.append(f"{ex.id} has no {period} open interest at or before "
                               f"{pd.Timestamp(cursor, unit='ms', tz='UTC')} (before the listing or beyond "
                               f"its retention); left as a gap")
            break
        top = cursor
        if cursor > now - 3_600_000 - 2 * step:
            top = min(cursor, int(rows["timestamp"].iloc[-1].value // 10**6))  # late rows: ask again later
        frames.append(rows)
        covered.append((window_lo, top))
        pages += 1
        if pages % _PAGES_PER_WRITE == 0:
            _flush(store, ex.id, sym, period, frames, covered, report)
            frames, covered = [], []
        cursor = window_lo - 1
    _flush(store, ex.id, sym, period, frames, covered, report)
    return not ended


def _flush(store: Store, ex_id: str, sym: str, period: str, frames: list, covered: list, report: OIHistoryReport) -> None:
    if not frames:
        return
    rows = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")
    store.write(ex_id, sym, "open_interest", period, rows, covered=covered)
    report.rows += len(rows)
    first, last = rows["timestamp"].iloc[0], rows["timestamp"].iloc[-1]
    report.first = first if report.first is None else min(report.first, first)
    report.last = last if report.last is None else max(report.last, last)
