"""``load_market``: fill the local store from an exchange (only what is missing) and build a Market.

The store is the source of truth: every load first asks the exchange for the ranges the store
does not hold yet (none at all when it is up to date), then reads the window back from the store
and assembles one validated :class:`~liqlab.core.market.Market`. When the exchange cannot be reached
the store alone serves the window and the result says so (``source="store"``, a
:class:`StoreFallbackWarning`); when nothing is stored either, the error names the bundled sample.

Alignment conventions (all backward-looking, so no value comes from the future):

* open interest and the long/short ratio are snapshots; a candle gets the latest snapshot taken at
  or before its open time. Exchanges whose history endpoint lacks the candle timeframe (1-minute
  OI on Binance) are fetched at the nearest accepted period and carried forward;
* open interest reported in base units is converted to quote currency with the price at the
  snapshot time (the open of the candle starting then);
* funding rates hold from each funding time until the next one;
* candles before the first stored open-interest snapshot are dropped (reported in the message).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from liqlab.core.market import Market, MarketDataError, make_market, timeframe_to_timedelta
from liqlab.sources.exchange import (
    ExchangeUnavailableError,
    Fetcher,
    RequestLog,
    RetryPolicy,
    UnknownSymbolError,
    contract_of,
    ensure_markets,
    exchange_label,
    floor_ms,
    make_exchange,
    now_ms,
    page_limit,
    resolve_symbol,
    stat_period,
)
from liqlab.sources.store import Store, safe_name, to_ms

DATA_KINDS = ("ohlcv", "open_interest", "funding", "long_short")
_KIND_LABEL = {
    "ohlcv": "candle", "open_interest": "open-interest", "funding": "funding",
    "long_short": "long/short", "liquidations": "liquidation",
}
SAMPLE_HINT = "or use the bundled sample: liqlab.sim.datasets.load_sample()"
_PAGES_PER_WRITE = 20  # write every 20 pages, so a failure late in a long fetch keeps the rest


class NoStoredDataError(MarketDataError):
    """The exchange is unreachable (or offline mode is on) and the store has nothing for the window."""


class StoreFallbackWarning(UserWarning):
    """Data was served from the local store because the exchange could not be reached."""


@dataclass
class LoadReport:
    """What a load fetched, from where, and where the data came from."""

    exchange: str
    symbol: str
    timeframe: str
    start: pd.Timestamp
    end: pd.Timestamp
    store_dir: Path
    host: str = ""
    source: str = "store"
    offline_reason: str | None = None
    requests: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    fetched: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    candles: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def message(self) -> str:
        """A one-paragraph summary for people (the CLI prints it)."""
        head = f"{self.exchange} {self.symbol} {self.timeframe}"
        if self.offline_reason:
            text = (f"{head}: exchange not used ({self.offline_reason}); served {self.candles} candles "
                    f"from the store at {self.store_dir}")
        elif self.total_requests == 0:
            text = f"{head}: already in the store at {self.store_dir}; no request needed ({self.candles} candles)"
        else:
            parts = ", ".join(f"{n} {_KIND_LABEL[k]}" for k, n in self.fetched.items())
            text = (f"{head}: fetched {parts} rows from {self.host} in {self.total_requests} request(s)"
                    f"{f' ({self.retries} retried)' if self.retries else ''}; "
                    f"{self.candles} candles in the store at {self.store_dir}")
        if self.skipped:
            text += "; not available: " + ", ".join(f"{_KIND_LABEL[k]} ({why})" for k, why in self.skipped.items())
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def _as_store(store) -> Store:
    if isinstance(store, Store):
        return store
    return Store(store)


def _window(timeframe: str, since, until, now: int) -> tuple[int, int, int]:
    step = int(timeframe_to_timedelta(timeframe).total_seconds() * 1000)
    end_ms = to_ms(until) if until is not None else now
    last_closed = floor_ms(now, step) - step  # the candle still forming is never stored
    end = min(floor_ms(end_ms, step), last_closed)
    start = floor_ms(to_ms(since), step) if since is not None else end - 7 * 86400 * 1000
    if start > end:
        raise MarketDataError(
            f"the window {pd.Timestamp(start, unit='ms', tz='UTC')} to {pd.Timestamp(end_ms, unit='ms', tz='UTC')} "
            f"holds no closed {timeframe} candle; pick an earlier since or a later until"
        )
    return start, end, step


def _plan(ex_id: str, timeframe: str, start: int, end: int, ex=None) -> dict[str, tuple[str | None, int, int, int]]:
    """Per kind: (period, range start, range end, row step in ms)."""
    step = int(timeframe_to_timedelta(timeframe).total_seconds() * 1000)
    period = stat_period(ex if ex is not None else ex_id, timeframe)
    pstep = int(timeframe_to_timedelta(period).total_seconds() * 1000)
    funding_back = 8 * 3600 * 1000  # the funding rate in force at the first candle
    return {
        "ohlcv": (timeframe, start, end, step),
        "open_interest": (period, floor_ms(start, pstep), floor_ms(end, pstep), pstep),
        "funding": (None, start - funding_back, end, 8 * 3600 * 1000),
        "long_short": (period, floor_ms(start, pstep), floor_ms(end, pstep), pstep),
        "liquidations": (None, start, end + step - 1, 1000),
    }


def fetch_to_store(
    ex,
    symbol: str,
    timeframe: str,
    start: int,
    end: int,
    *,
    store: Store,
    kinds=DATA_KINDS,
    policy: RetryPolicy | None = None,
    log: RequestLog | None = None,
    report: LoadReport | None = None,
    now: int | None = None,
) -> LoadReport:
    """Fetch into ``store`` every range of ``[start, end]`` it lacks, kind by kind.

    ``ex`` must have its markets loaded and ``symbol`` be resolved. Ranges ending less than an
    hour ago are recorded as fetched only up to the last row received, so late-published rows
    are asked for again next time.

    Raises
    ------
    ExchangeUnavailableError
        When the exchange cannot be reached; ranges finished before are kept in the store.
    """
    policy = policy or RetryPolicy()
    log = log if log is not None else RequestLog()
    now = now_ms() if now is None else now
    plan = _plan(ex.id, timeframe, start, end, ex)
    fetcher = Fetcher(ex, symbol, policy=policy, log=log)
    if report is None:
        report = LoadReport(ex.id, symbol, timeframe, pd.Timestamp(start, unit="ms", tz="UTC"),
                            pd.Timestamp(end, unit="ms", tz="UTC"), store.root)
    report.host = exchange_label(ex)
    for kind in kinds:
        if not fetcher.supports(kind):
            report.skipped[kind] = f"{ex.id} has no {kind.replace('_', ' ')} history in ccxt"
            continue
        period, a, b, row_step = plan[kind]
        chunk = _PAGES_PER_WRITE * page_limit(ex.id, kind) * row_step
        for lo, hi in store.missing(ex.id, symbol, kind, period, a, b):
            while lo <= hi:
                c_hi = min(hi, lo + chunk - 1)
                if kind == "ohlcv":
                    rows = fetcher.ohlcv(timeframe, lo, c_hi)
                elif kind in ("open_interest", "long_short"):
                    rows = getattr(fetcher, kind)(period, lo, c_hi)
                elif kind == "funding":
                    rows = fetcher.funding(lo, c_hi)
                else:
                    rows = fetcher.liquidations(lo, c_hi)
                covered_hi = c_hi
                if c_hi > now - 3600 * 1000 - 2 * row_step:
                    # recent rows may be published late: count as fetched only what arrived
                    # (irregular series: also anything older than a quarter of an hour)
                    last = to_ms(rows["timestamp"].iloc[-1]) if len(rows) else lo - 1
                    if kind in ("funding", "liquidations"):
                        last = max(last, now - 15 * 60 * 1000)
                    covered_hi = min(c_hi, last)
                store.write(ex.id, symbol, kind, period, rows,
                            covered=(lo, covered_hi) if covered_hi >= lo else None)
                report.fetched[kind] = report.fetched.get(kind, 0) + len(rows)
                lo = c_hi + 1
    report.requests = dict(log.counts)
    report.retries = log.retries
    return report


def read_market(
    store: Store,
    exchange: str,
    symbol: str,
    timeframe: str,
    start,
    end,
    *,
    contract: str = "linear",
    source: str = "store",
    gaps: str = "fill",
    period: str | None = None,
    notes: list[str] | None = None,
) -> Market:
    """Assemble a validated Market for ``[start, end]`` from what the store holds.

    Raises
    ------
    NoStoredDataError
        When no candles or no open interest are stored for the window.
    """
    start_ms, end_ms = to_ms(start), to_ms(end)
    step = int(timeframe_to_timedelta(timeframe).total_seconds() * 1000)
    period = period or stat_period(exchange, timeframe)
    where = f"{exchange} {symbol}"
    candles = store.read(exchange, symbol, "ohlcv", timeframe, start_ms, end_ms)
    if candles.empty:
        raise NoStoredDataError(
            f"{where}: no {timeframe} candles stored for {pd.Timestamp(start_ms, unit='ms', tz='UTC')} to "
            f"{pd.Timestamp(end_ms, unit='ms', tz='UTC')} in {store.root}; run `liqlab fetch {exchange} {symbol} "
            f"--timeframe {timeframe} --since ... --until ...` when online, {SAMPLE_HINT}"
        )
    pstep = int(timeframe_to_timedelta(period).total_seconds() * 1000)
    oi = store.read(exchange, symbol, "open_interest", period, floor_ms(start_ms, pstep) - pstep, end_ms)
    ts = candles["timestamp"]
    data = candles.set_index("timestamp")
    if len(oi):
        value = oi["open_interest_value"].to_numpy()
        if np.isnan(value).any():
            # base units: price them at the snapshot time (open of the candle starting then)
            pos = np.clip(ts.searchsorted(oi["timestamp"], side="right") - 1, 0, len(ts) - 1)
            price = candles["open"].to_numpy()[pos]
            value = np.where(np.isnan(value), oi["open_interest_amount"].to_numpy() * price, value)
        oi_q = pd.Series(value, index=pd.DatetimeIndex(oi["timestamp"])).dropna()
        data["open_interest"] = _asof(oi_q, data.index)
    else:
        data["open_interest"] = np.nan
    first_oi = data["open_interest"].first_valid_index()
    if first_oi is None:
        raise NoStoredDataError(
            f"{where}: no open interest stored for this window (exchanges keep only recent open-interest "
            f"history, Binance about 30 days); choose a more recent window, {SAMPLE_HINT}"
        )
    if first_oi > data.index[0]:
        dropped = int((data.index < first_oi).sum())
        if notes is not None:
            notes.append(f"{dropped} candles before the first open-interest snapshot ({first_oi}) dropped")
        data = data.loc[first_oi:]
    for kind, col in (("funding", "funding_rate"), ("long_short", "long_short_ratio")):
        p = None if kind == "funding" else period
        back = 8 * 3600 * 1000 if kind == "funding" else pstep
        rows = store.read(exchange, symbol, kind, p, start_ms - back, end_ms)
        if len(rows):
            data[col] = _asof(pd.Series(rows[col].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"])), data.index)
    events = None
    liq_path = store.path(exchange, symbol, "liquidations")
    if liq_path.exists():
        events = store.read_liquidations(exchange, symbol, data.index[0], to_ms(data.index[-1]) + step - 1)
    return make_market(
        data, symbol=symbol, exchange=exchange, timeframe=timeframe, contract=contract,
        liquidation_events=events, source=source, gaps=gaps,
    )


def _asof(series: pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    """Latest value of ``series`` at or before each time of ``index`` (NaN before the first)."""
    s = series[~series.index.duplicated(keep="last")].sort_index()
    src = s.index.as_unit("ms").asi8
    dst = index.as_unit("ms").asi8
    pos = np.searchsorted(src, dst, side="right") - 1
    out = np.full(len(index), np.nan)
    ok = pos >= 0
    out[ok] = s.to_numpy(dtype=float)[pos[ok]]
    return out


def _offline_symbol(store: Store, exchange: str, symbol: str) -> str:
    """Best guess of the unified symbol without the exchange: cached markets, then stored files."""
    cached = store.load_markets(exchange, max_age=None)
    if cached:
        class _Cached:  # resolve_symbol only needs .markets and .id
            id = exchange
            markets = {m["symbol"]: m for m in cached}

        try:
            return resolve_symbol(_Cached, symbol)
        except UnknownSymbolError:
            pass
    wanted = safe_name(symbol).upper()
    for entry in store.entries():
        if entry.exchange == exchange and safe_name(entry.symbol).upper() in (wanted, f"{wanted}_USDT_USDT"):
            return entry.symbol
    return symbol


def load_market_report(
    exchange,
    symbol: str,
    timeframe: str = "5m",
    since=None,
    until=None,
    *,
    store: Store | str | os.PathLike | None = None,
    offline: bool = False,
    api_url: str | None = None,
    kinds=DATA_KINDS,
    liquidations: bool = True,
    gaps: str = "fill",
    retry: RetryPolicy | None = None,
) -> tuple[Market, LoadReport]:
    """Like :func:`load_market`, also returning the :class:`LoadReport` of what was fetched."""
    store = _as_store(store)
    now = now_ms()
    start, end, _ = _window(timeframe, since, until, now)
    ex_id = exchange if isinstance(exchange, str) else exchange.id
    report = LoadReport(ex_id, symbol, timeframe, pd.Timestamp(start, unit="ms", tz="UTC"),
                        pd.Timestamp(end, unit="ms", tz="UTC"), store.root)
    contract = None
    ex = None
    resolved = None
    if offline:
        report.offline_reason = "offline mode"
    else:
        ex = make_exchange(exchange, api_url=api_url)
        policy = retry or RetryPolicy()
        log = RequestLog()
        try:
            ensure_markets(ex, store=store, policy=policy, log=log)
            try:
                resolved = resolve_symbol(ex, symbol)
            except UnknownSymbolError:
                # the cached market list may predate a listing: reload once before giving up
                ensure_markets(ex, store=store, policy=policy, log=log, reload=True)
                resolved = resolve_symbol(ex, symbol)
            report.symbol = resolved
            contract = contract_of(ex, resolved)
            wanted = tuple(kinds) + (("liquidations",) if liquidations and ex.has.get("fetchLiquidations") is True else ())
            fetch_to_store(ex, resolved, timeframe, start, end, store=store, kinds=wanted,
                           policy=policy, log=log, report=report, now=now)
            report.source = "live" if log.total else "store"
        except ExchangeUnavailableError as exc:
            report.offline_reason = f"unreachable: {exc}"
            report.requests, report.retries = dict(log.counts), log.retries
    if report.offline_reason:
        if resolved is None:
            report.symbol = _offline_symbol(store, ex_id, symbol)
        report.source = "store"
    contract = contract or contract_of(ex, report.symbol)
    try:
        market = read_market(store, ex_id, report.symbol, timeframe, start, end, contract=contract,
                             source=report.source, gaps=gaps, period=stat_period(ex or ex_id, timeframe),
                             notes=report.notes)
    except NoStoredDataError as exc:
        if report.offline_reason:
            raise NoStoredDataError(
                f"{ex_id} {report.symbol}: the exchange could not be used ({report.offline_reason.rstrip('.')}) "
                f"and nothing is stored for this window in {store.root}; fetch it when online with "
                f"`liqlab fetch {ex_id} {report.symbol} --timeframe {timeframe} --since ... --until ...`, {SAMPLE_HINT}"
            ) from exc
        raise
    report.candles = len(market)
    return market, report


def load_market(
    exchange,
    symbol: str,
    timeframe: str = "5m",
    since=None,
    until=None,
    *,
    store: Store | str | os.PathLike | None = None,
    offline: bool = False,
    api_url: str | None = None,
    kinds=DATA_KINDS,
    liquidations: bool = True,
    gaps: str = "fill",
    retry: RetryPolicy | None = None,
) -> Market:
    """Fetch what the store lacks for a window and return it as a validated Market.

    Parameters
    ----------
    exchange
        ccxt id (``"binanceusdm"``, ``"bybit"``, ``"okx"``, ...) or a ccxt exchange instance.
    symbol
        Unified symbol (``"BTC/USDT:USDT"``), exchange id (``"BTCUSDT"``) or coin (``"BTC"``).
    timeframe
        Candle size, e.g. ``"1m"``, ``"5m"``, ``"1h"``.
    since, until
        Window (anything ``pandas.Timestamp`` reads, or ms); ``until`` defaults to now and is
        clipped to the last closed candle; ``since`` defaults to 7 days before ``until``.
    store
        A :class:`~liqlab.sources.store.Store` or a data directory (default: see
        :func:`~liqlab.sources.store.default_data_dir`).
    offline
        Never contact the exchange; serve the store only.
    api_url
        Send REST requests to this base URL (a mirror or proxy).
    kinds
        Data kinds to fetch (candles and open interest are needed for a Market).
    liquidations
        Also fetch realized liquidations over REST where ccxt supports it.
    gaps
        Missing-candle policy passed to :func:`~liqlab.core.market.make_market`.
    retry
        Retry policy for transient failures.

    Returns
    -------
    Market
        ``source`` is ``"live"`` when the exchange was asked for something, ``"store"`` when the
        store already held the window or the exchange could not be reached (a
        :class:`StoreFallbackWarning` then says why).

    Raises
    ------
    UnknownSymbolError
        The exchange has no such market (close matches are listed).
    NoStoredDataError
        The exchange could not be used and the store has nothing for the window.
    """
    market, report = load_market_report(
        exchange, symbol, timeframe, since, until, store=store, offline=offline, api_url=api_url,
        kinds=kinds, liquidations=liquidations, gaps=gaps, retry=retry,
    )
    if report.offline_reason and not offline:
        warnings.warn(report.message, StoreFallbackWarning, stacklevel=2)
    return market
