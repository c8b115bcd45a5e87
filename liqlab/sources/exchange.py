"""Fetch exchange data with ccxt: candles, open interest, funding, long/short ratio, liquidations.

Each fetcher returns a tidy frame with a ``timestamp`` column (UTC) and normalised units:

* candles: ``open, high, low, close, volume`` (base units);
* open interest: ``open_interest_value`` (quote currency, when the exchange or the contract size
  gives it) and ``open_interest_amount`` (base units, converted with the candle close later);
* funding: ``funding_rate`` (decimal per funding period); long/short: ``long_short_ratio``;
* liquidations: ``side`` (side of the *liquidated position*: a forced SELL closes a long),
  ``price``, ``notional`` (quote currency).

Requests go through :func:`call_with_retry`: ccxt's own rate limiter stays on, transient failures
(``ccxt.NetworkError`` and its subclasses: timeouts, 5xx, 429/418 rate-limit answers, dropped
connections) and malformed answers are retried with exponential backoff, and the final failure
is one sentence naming the exchange, the symbol and what to do. Pagination stays inside each
exchange's page limits (:data:`PAGE_LIMITS`).
"""

from __future__ import annotations

import difflib
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from liqlab.core.market import MarketDataError, timeframe_to_timedelta

#: Rows per request by exchange and data kind (each within the exchange's documented maximum).
PAGE_LIMITS: dict[str, dict[str, int]] = {
    "binanceusdm": {"ohlcv": 1000, "open_interest": 500, "funding": 1000, "long_short": 500, "liquidations": 1000},
    "binancecoinm": {"ohlcv": 1000, "open_interest": 500, "funding": 1000, "long_short": 500, "liquidations": 1000},
    "bybit": {"ohlcv": 1000, "open_interest": 200, "funding": 200, "long_short": 500, "liquidations": 200},
    "okx": {"ohlcv": 100, "open_interest": 100, "funding": 100, "long_short": 100, "liquidations": 100},
    "gate": {"ohlcv": 1000, "open_interest": 100, "funding": 1000, "long_short": 100, "liquidations": 1000},
    "htx": {"ohlcv": 1000, "open_interest": 200, "funding": 50, "long_short": 100, "liquidations": 100},
    "bitfinex": {"ohlcv": 1000, "open_interest": 500, "funding": 500, "long_short": 100, "liquidations": 500},
    "deribit": {"ohlcv": 1000, "open_interest": 100, "funding": 500, "long_short": 100, "liquidations": 1000},
}
DEFAULT_PAGE_LIMIT = {"ohlcv": 500, "open_interest": 100, "funding": 100, "long_short": 100, "liquidations": 100}

#: Periods the open-interest and long/short history endpoints accept (ccxt timeframe strings).
STAT_PERIODS: dict[str, tuple[str, ...]] = {
    "binanceusdm": ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"),
    "binancecoinm": ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"),
    "bybit": ("5m", "15m", "30m", "1h", "4h", "1d"),
    "okx": ("5m", "1h", "1d"),
}
#: ccxt method per data kind, and the ``has`` flag that must be true.
FETCH_METHODS = {
    "ohlcv": "fetchOHLCV",
    "open_interest": "fetchOpenInterestHistory",
    "funding": "fetchFundingRateHistory",
    "long_short": "fetchLongShortRatioHistory",
    "liquidations": "fetchLiquidations",
}
FUNDING_STEP_MS = 8 * 3600 * 1000  # nominal funding interval, used only to size pages


class ExchangeDataError(MarketDataError):
    """A failure talking to an exchange; the message is one sentence saying what to do."""


class UnknownSymbolError(ExchangeDataError):
    """The exchange has no such market; the message lists close matches."""


class ExchangeUnavailableError(ExchangeDataError):
    """The exchange could not be reached (network down, timeouts, rate limits) after retries."""


@dataclass
class RetryPolicy:
    """Retries with exponential backoff for transient failures.

    The delay before retry ``k`` (1-based) is ``min(max_delay, base_delay * 2**(k-1))``, or the
    exchange's ``Retry-After`` header when it sends one (capped by ``max_delay``).
    """

    retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


@dataclass
class RequestLog:
    """Counts requests per data kind (retries included) for reports and benchmarks."""

    counts: dict[str, int] = field(default_factory=dict)
    retries: int = 0

    def add(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# -- exchange instances --------------------------------------------------------------------------
def _ccxt():
    import ccxt  # heavy: imported on first use only

    return ccxt


def make_exchange(exchange_id: str, *, api_url: str | None = None, config: dict | None = None):
    """A ccxt exchange instance with the rate limiter on and a sensible timeout.

    Parameters
    ----------
    exchange_id
        A ccxt id such as ``"binanceusdm"``, ``"bybit"`` or ``"okx"``.
    api_url
        Send every REST request to this base URL instead (a mirror, a proxy or a test server).
    config
        Extra ccxt constructor options.

    Raises
    ------
    ExchangeDataError
        If ccxt has no such exchange (close matches are listed).
    """
    ccxt = _ccxt()
    if isinstance(exchange_id, ccxt.Exchange):
        return exchange_id
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(str(exchange_id).lower(), ccxt.exchanges, n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see ccxt.exchanges for the list"
        raise ExchangeDataError(f"ccxt has no exchange {exchange_id!r}{hint}")
    options = {"enableRateLimit": True, "timeout": 20000}
    options.update(config or {})
    ex = getattr(ccxt, exchange_id)(options)
    if api_url:
        override_urls(ex, http=api_url)
    return ex


def override_urls(ex, *, http: str | None = None, ws: str | None = None) -> None:
    """Point every REST (``http``) and/or websocket (``ws``) URL of ``ex`` at another base URL."""
    pattern = re.compile(r"^(https?|wss?)://[^/]+")

    def swap(node):
        if isinstance(node, dict):
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, str):
            match = pattern.match(node)
            if match:
                is_ws = match.group(1).startswith("ws")
                target = ws if is_ws else http
                if target:
                    return target.rstrip("/") + node[match.end():]
        return node

    ex.urls["api"] = swap(ex.urls["api"])


def exchange_label(ex) -> str:
    """The host requests go to, for messages (``fapi.binance.com`` or ``127.0.0.1:8000``)."""
    urls = []

    def walk(node):
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, str) and node.startswith("http"):
            urls.append(node)

    walk(ex.urls.get("api", {}))
    hosts = sorted({re.sub(r"^https?://([^/]+).*$", r"\1", u).replace("{hostname}", str(ex.hostname or "")) for u in urls})
    return ", ".join(hosts[:2]) + (" ..." if len(hosts) > 2 else "")


# -- retries ---------------------------------------------------------------------------------------
def call_with_retry(
    ex,
    method: str,
    *args,
    symbol: str | None = None,
    kind: str = "request",
    policy: RetryPolicy | None = None,
    log: RequestLog | None = None,
    **kwargs,
):
    """Call ``ex.<method>(*args, **kwargs)``, retrying transient failures with backoff.

    Raises
    ------
    UnknownSymbolError
        When the exchange answers that the symbol does not exist.
    ExchangeUnavailableError
        When the exchange stays unreachable, keeps rate-limiting or keeps answering garbage.
    ExchangeDataError
        For other exchange errors (not retried).
    """
    ccxt = _ccxt()
    policy = policy or RetryPolicy()
    what = f"{ex.id} {symbol}" if symbol else ex.id
    last: Exception | None = None
    for attempt in range(policy.retries + 1):
        if log is not None:
            log.add(kind)
        try:
            result = getattr(ex, method)(*args, **kwargs)
            if isinstance(result, list) and not result:
                _check_body(ex)
            return result
        except ccxt.BadSymbol as exc:
            raise UnknownSymbolError(
                f"{what}: the exchange does not know this symbol ({_short(exc)}); "
                f"list valid symbols with `liqlab universe {ex.id}`"
            ) from exc
        except (ccxt.NetworkError, ccxt.BadResponse, ValueError, TypeError, KeyError) as exc:
            # ValueError/TypeError/KeyError: ccxt parsing a malformed or truncated body
            last = exc
        except ccxt.ExchangeError as exc:
            raise ExchangeDataError(f"{what}: the exchange refused the {kind} request ({_short(exc)})") from exc
        if attempt == policy.retries:
            break
        if log is not None:
            log.retries += 1
        wait = _retry_after(ex, last, policy)
        policy.sleep(policy.delay(attempt + 1) if wait is None else wait)
    assert last is not None
    if isinstance(last, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
        todo = "the exchange is rate-limiting this address; wait a few minutes and run it again"
    elif isinstance(last, ccxt.NetworkError):
        todo = "check the network connection (or pass offline=True to use stored data) and try again"
    else:
        todo = "the exchange answered with malformed data; try again later"
    raise ExchangeUnavailableError(
        f"{what}: {kind} failed after {policy.retries + 1} attempts ({type(last).__name__}: {_short(last)}); {todo}"
    ) from last


def _check_body(ex) -> None:
    """Raise ``ccxt.BadResponse`` when the last body was not JSON (ccxt then silently returns [])."""
    import json

    body = getattr(ex, "last_http_response", None)
    if isinstance(body, str) and body.strip():
        try:
            json.loads(body)
        except ValueError:
            raise _ccxt().BadResponse(f"{ex.id} answered with malformed JSON: {body[:60]!r}") from None


def _retry_after(ex, exc, policy: RetryPolicy) -> float | None:
    ccxt = _ccxt()
    if not isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
        return None
    headers = getattr(ex, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return min(policy.max_delay, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def _short(exc: Exception, n: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= n else text[: n - 3] + "..."


# -- markets and symbols ---------------------------------------------------------------------------
def ensure_markets(ex, *, store=None, policy: RetryPolicy | None = None, log: RequestLog | None = None,
                   reload: bool = False) -> None:
    """Load ``ex``'s markets, from the store's cache when fresh (no request), else from the exchange."""
    if ex.markets and not reload:
        return
    if store is not None and not reload:
        cached = store.load_markets(ex.id)
        if cached:
            ex.set_markets(cached)
            return
    call_with_retry(ex, "load_markets", True, kind="markets", policy=policy, log=log)
    if store is not None:
        store.save_markets(ex.id, [_jsonable(m) for m in ex.markets.values()])


def _jsonable(market: dict) -> dict:
    import json

    return json.loads(json.dumps(market, default=str))


def resolve_symbol(ex, symbol: str) -> str:
    """The unified ccxt symbol for ``symbol`` on ``ex`` (markets must be loaded).

    Accepts the unified symbol (``BTC/USDT:USDT``), the exchange id (``BTCUSDT``), or a bare
    coin (``BTC``: its USDT-settled perpetual, else USD/USDC).

    Raises
    ------
    UnknownSymbolError
        With up to five close matches.
    """
    markets = ex.markets or {}
    if symbol in markets:
        return symbol
    text = str(symbol).strip()
    upper = text.upper()
    for m in markets.values():
        if m.get("id") == text or str(m.get("id", "")).upper() == upper:
            if m.get("swap") or len([x for x in markets.values() if x.get("id") == m.get("id")]) == 1:
                return m["symbol"]
    for m in markets.values():
        if m["symbol"].upper() == upper:
            return m["symbol"]
    if re.fullmatch(r"[A-Z0-9]+", upper):
        for quote in ("USDT", "USDC", "USD"):
            for settle in (quote, upper):
                cand = f"{upper}/{quote}:{settle}"
                if cand in markets:
                    return cand
    pool = sorted(markets)
    ids = {str(m.get("id", "")).upper(): m["symbol"] for m in markets.values()}
    close = difflib.get_close_matches(upper, [p.upper() for p in pool], n=5, cutoff=0.6)
    by_upper = {p.upper(): p for p in pool}
    matches = [by_upper[c] for c in close]
    for c in difflib.get_close_matches(upper.replace("/", "").replace(":", ""), list(ids), n=5, cutoff=0.6):
        if ids[c] not in matches:
            matches.append(ids[c])
    hint = f"close matches: {', '.join(matches[:5])}" if matches else f"list them with `liqlab universe {ex.id}`"
    raise UnknownSymbolError(f"{ex.id} has no market {symbol!r}; {hint}")


def market_info(ex, symbol: str) -> dict:
    """The ccxt market structure of a resolved symbol."""
    return ex.markets[symbol]


def contract_of(ex, symbol: str) -> str:
    """``"inverse"`` for coin-margined contracts, else ``"linear"``."""
    m = (ex.markets or {}).get(symbol) if ex is not None else None
    if m is not None and m.get("inverse"):
        return "inverse"
    if m is None:
        base, _, rest = symbol.partition("/")
        settle = rest.partition(":")[2]
        if settle and settle.split("-")[0] == base:
            return "inverse"
    return "linear"


def list_perpetuals(exchange, *, api_url: str | None = None, store=None,
                    policy: RetryPolicy | None = None) -> pd.DataFrame:
    """The active perpetual swaps of an exchange.

    Returns
    -------
    DataFrame
        One row per perpetual: ``symbol, id, base, quote, settle, contract, contract_size``,
        sorted by symbol.
    """
    ex = make_exchange(exchange, api_url=api_url)
    ensure_markets(ex, store=store, policy=policy)
    rows = [
        {
            "symbol": m["symbol"], "id": m.get("id"), "base": m.get("base"), "quote": m.get("quote"),
            "settle": m.get("settle"), "contract": "inverse" if m.get("inverse") else "linear",
            "contract_size": m.get("contractSize"),
        }
        for m in ex.markets.values()
        if m.get("swap") and m.get("active") is not False and m.get("expiry") is None
    ]
    cols = ["symbol", "id", "base", "quote", "settle", "contract", "contract_size"]
    return pd.DataFrame(rows, columns=cols).sort_values("symbol").reset_index(drop=True)


# -- periods and limits ----------------------------------------------------------------------------
def page_limit(exchange_id: str, kind: str) -> int:
    """Rows per request for ``kind`` on ``exchange_id``."""
    return PAGE_LIMITS.get(exchange_id, {}).get(kind, DEFAULT_PAGE_LIMIT[kind])


def stat_period(ex_or_id, timeframe: str) -> str:
    """The period to request open-interest / long-short history in, for candles of ``timeframe``.

    The candle timeframe when the endpoint accepts it; else the coarsest accepted period that
    divides it; else the finest accepted period (values are then carried forward onto the grid).
    """
    exchange_id = ex_or_id if isinstance(ex_or_id, str) else ex_or_id.id
    periods = STAT_PERIODS.get(exchange_id)
    if periods is None and not isinstance(ex_or_id, str):
        periods = tuple((getattr(ex_or_id, "timeframes", None) or {}).keys())
    if not periods or timeframe in periods:
        return timeframe
    step = timeframe_to_timedelta(timeframe)
    sized = sorted(((timeframe_to_timedelta(p), p) for p in periods if _parsable(p)))
    dividing = [p for d, p in sized if d <= step and step % d == pd.Timedelta(0)]
    return dividing[-1] if dividing else sized[0][1]


def _parsable(tf: str) -> bool:
    try:
        timeframe_to_timedelta(tf)
        return True
    except MarketDataError:
        return False


# -- pagination ------------------------------------------------------------------------------------
def paginate(fetch_page: Callable[[int, int, int], list], start: int, end: int, step_ms: int, limit: int) -> list:
    """Walk ``[start, end]`` (ms, inclusive) in windows of ``limit`` rows.

    ``fetch_page(since, until, limit)`` returns rows whose first item is a ms timestamp. A full
    page continues right after its last row; a short page means its window is done.
    """
    out: list = []
    cursor = start
    while cursor <= end:
        window_end = min(end, cursor + limit * step_ms - 1)
        page = [r for r in fetch_page(cursor, window_end, limit) if r[0] is not None]
        out.extend(r for r in page if start <= r[0] <= end)
        last = max((r[0] for r in page), default=None)
        if len(page) >= limit and last is not None and last >= cursor:
            cursor = last + 1
        else:
            cursor = window_end + 1
    return out


# -- fetchers --------------------------------------------------------------------------------------
@dataclass
class Fetcher:
    """Fetches one symbol's history from one exchange (markets loaded, symbol resolved).

    Parameters
    ----------
    ex
        A ccxt exchange instance (see :func:`make_exchange`).
    symbol
        Unified ccxt symbol.
    policy, log
        Retry policy and request counter shared by all calls.
    """

    ex: Any
    symbol: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    log: RequestLog = field(default_factory=RequestLog)

    def supports(self, kind: str) -> bool:
        return bool(self.ex.has.get(FETCH_METHODS[kind]))

    def _call(self, kind: str, method: str, *args, **kwargs):
        return call_with_retry(self.ex, method, *args, symbol=self.symbol, kind=kind,
                               policy=self.policy, log=self.log, **kwargs)

    def ohlcv(self, timeframe: str, start: int, end: int) -> pd.DataFrame:
        """Candles with open time in ``[start, end]`` (ms)."""
        step = int(timeframe_to_timedelta(timeframe).total_seconds() * 1000)

        def page(since, until, limit):
            return self._call("ohlcv", "fetch_ohlcv", self.symbol, timeframe, since, limit, {"until": until})

        rows = paginate(page, start, end, step, page_limit(self.ex.id, "ohlcv"))
        frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
        return _tidy(frame)

    def open_interest(self, period: str, start: int, end: int) -> pd.DataFrame:
        """Open-interest history: ``open_interest_value`` (quote) and ``open_interest_amount`` (base)."""
        step = int(timeframe_to_timedelta(period).total_seconds() * 1000)
        market = market_info(self.ex, self.symbol)
        size = float(market.get("contractSize") or 1.0)
        inverse = bool(market.get("inverse"))

        def page(since, until, limit):
            items = self._call("open_interest", "fetch_open_interest_history", self.symbol, period,
                               since, limit, {"until": until})
            rows = []
            for it in items:
                amount, value = it.get("openInterestAmount"), it.get("openInterestValue")
                if inverse:
                    # coin-margined: contracts x contract size is already quote (USD); the
                    # exchange's "value" is in base coins there, except on Bybit, which gives
                    # no contract count and its USD open interest as the value
                    value = amount * size if amount is not None else (value if self.ex.id == "bybit" else None)
                    amount = None
                elif amount is not None:
                    amount = amount * size  # contracts -> base units
                rows.append((it.get("timestamp"), value, amount))
            return rows

        rows = paginate(page, start, end, step, page_limit(self.ex.id, "open_interest"))
        frame = pd.DataFrame(rows, columns=["timestamp", "open_interest_value", "open_interest_amount"])
        return _tidy(frame)

    def funding(self, start: int, end: int) -> pd.DataFrame:
        """Funding-rate history: ``funding_rate`` at each funding time."""

        def page(since, until, limit):
            items = self._call("funding", "fetch_funding_rate_history", self.symbol, since, limit, {"until": until})
            return [(it.get("timestamp"), it.get("fundingRate")) for it in items]

        rows = paginate(page, start, end, FUNDING_STEP_MS, page_limit(self.ex.id, "funding"))
        return _tidy(pd.DataFrame(rows, columns=["timestamp", "funding_rate"]))

    def long_short(self, period: str, start: int, end: int) -> pd.DataFrame:
        """Long/short account-ratio history."""
        step = int(timeframe_to_timedelta(period).total_seconds() * 1000)

        def page(since, until, limit):
            items = self._call("long_short", "fetch_long_short_ratio_history", self.symbol, period,
                               since, limit, {"until": until})
            return [(it.get("timestamp"), it.get("longShortRatio")) for it in items]

        rows = paginate(page, start, end, step, page_limit(self.ex.id, "long_short"))
        return _tidy(pd.DataFrame(rows, columns=["timestamp", "long_short_ratio"]))

    def liquidations(self, start: int, end: int) -> pd.DataFrame:
        """Public liquidation events via REST ``fetchLiquidations`` (gate, htx, bitfinex, deribit)."""
        market = market_info(self.ex, self.symbol)

        def page(since, until, limit):
            items = self._call("liquidations", "fetch_liquidations", self.symbol, since, limit, {"until": until})
            return [liquidation_row(it, market) for it in items]

        # liquidations are irregular: size windows as one event per second
        rows = paginate(page, start, end, 1000, page_limit(self.ex.id, "liquidations"))
        frame = pd.DataFrame(rows, columns=["timestamp", "side", "price", "notional"]).dropna()
        frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ms", utc=True)
        return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def liquidation_row(item: dict, market: dict | None) -> tuple:
    """One ccxt liquidation structure as ``(timestamp_ms, side, price, notional_quote)``.

    ccxt's ``side`` is the side of the forced order: ``sell`` closes (liquidates) a long,
    ``buy`` a short. Rows without a side or size get ``None`` and are dropped by the caller.
    """
    order_side = str(item.get("side") or "").lower()
    side = {"sell": "long", "buy": "short", "long": "long", "short": "short"}.get(order_side)
    price = item.get("price")
    contracts = item.get("contracts")
    size = float((market or {}).get("contractSize") or item.get("contractSize") or 1.0)
    if market is not None and market.get("inverse") and contracts is not None:
        notional = contracts * size
    else:
        notional = item.get("quoteValue")
        if notional is None and contracts is not None and price is not None:
            notional = contracts * size * price
    return (item.get("timestamp"), side, price, notional)


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort, drop duplicated timestamps (last wins) and convert ms to UTC timestamps."""
    frame = frame.dropna(subset=["timestamp"])
    frame = frame.sort_values("timestamp", kind="stable").drop_duplicates("timestamp", keep="last")
    frame = frame.reset_index(drop=True)
    ts = frame["timestamp"].astype("int64")
    # some venues answer in seconds or microseconds: bring everything to ms
    if len(ts) and ts.max() < 10**11:
        ts = ts * 1000
    elif len(ts) and ts.max() > 10**14:
        ts = ts // 1000
    frame["timestamp"] = pd.to_datetime(ts, unit="ms", utc=True)
    for c in frame.columns[1:]:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    return frame


def floor_ms(ms: int, step_ms: int) -> int:
    """``ms`` rounded down to the grid of ``step_ms``."""
    return int(math.floor(ms / step_ms) * step_ms)


def now_ms() -> int:
    return int(time.time() * 1000)


__all__ = [
    "ExchangeDataError", "ExchangeUnavailableError", "UnknownSymbolError", "RetryPolicy", "RequestLog",
    "Fetcher", "make_exchange", "override_urls", "call_with_retry", "ensure_markets", "resolve_symbol",
    "list_perpetuals", "stat_period", "page_limit", "paginate", "liquidation_row", "PAGE_LIMITS",
]
