"""Coinalyze API client: liquidation, open-interest and funding history per exchange.

Coinalyze (``https://api.coinalyze.net/v1``, a free key from coinalyze.net in the ``api_key``
header, 40 calls a minute) aggregates derivatives data per exchange market. Its symbols look like
``BTCUSDT_PERP.A`` (Binance), the suffix being the exchange code listed by ``/exchanges``; markets
come from ``/future-markets``. History endpoints take ``symbols`` (comma-separated), ``interval``
(``1min`` .. ``12hour``, ``daily``), ``from`` and ``to`` in **seconds**, and answer
``[{"symbol": ..., "history": [{"t": ..., ...}]}]`` in ascending time. With
``convert_to_usd=true`` open interest and liquidations are in USD.

**Retention**: daily points are kept for years, intraday ones only for the last 1,500-2,000
points of each interval (about 5 days of 5min, 2-3 months of 1hour). :func:`fetch_coinalyze_history`
says plainly where that leaves a gap and records only what came back as fetched.

Stored under the exchange ``coinalyze-<venue>`` (``coinalyze-bybit``) and the unified symbol:

* ``liquidation_bars`` (period = interval): ``long_usd, short_usd`` per interval, stamped with the
  interval's start (``l`` = longs liquidated, ``s`` = shorts);
* ``open_interest`` (period): the interval's closing value (``c``, USD), stamped with the interval's
  end, the time it was taken;
* ``funding``: the closing funding rate, Coinalyze's percent divided by 100, stamped likewise.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from liqlab.core.market import MarketDataError
from liqlab.sources.store import Store, to_ms

__all__ = [
    "INTERVALS",
    "VENUE_NAMES",
    "CoinalyzeClient",
    "CoinalyzeError",
    "CoinalyzeReport",
    "fetch_coinalyze_history",
    "store_exchange",
]

BASE_URL = "https://api.coinalyze.net/v1"
KEY_ENV = "COINALYZE_API_KEY"
#: Coinalyze interval -> (store period, seconds).
INTERVALS = {"1min": ("1m", 60), "5min": ("5m", 300), "15min": ("15m", 900), "30min": ("30m", 1800),
             "1hour": ("1h", 3600), "2hour": ("2h", 7200), "4hour": ("4h", 14400), "6hour": ("6h", 21600),
             "12hour": ("12h", 43200), "daily": ("1d", 86400)}
#: liqlab venue -> Coinalyze exchange name (as ``/exchanges`` lists it).
VENUE_NAMES = {"binanceusdm": "Binance", "binancecoinm": "Binance", "bybit": "Bybit", "okx": "OKX"}
INTRADAY_POINTS = "1,500-2,000"


class CoinalyzeError(MarketDataError):
    """A Coinalyze failure; the message is one sentence saying what to do."""


def store_exchange(venue: str) -> str:
    """The store's exchange name for Coinalyze data about ``venue`` (``coinalyze-bybit``)."""
    return f"coinalyze-{venue}"


class CoinalyzeClient:
    """A small client for the Coinalyze REST API with client-side pacing and 429 handling.

    Parameters
    ----------
    api_key
        Default ``$COINALYZE_API_KEY``.
    base_url
        Default ``https://api.coinalyze.net/v1`` (a test server may stand in).
    min_interval
        Seconds between calls (1.5 keeps within 40 calls a minute).
    retries
        Retries of a 429 / 5xx / dropped connection; a 429 waits its ``Retry-After``.
    """

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None, min_interval: float = 1.5,
                 retries: int = 3, timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get(KEY_ENV)
        self.base_url = (base_url or BASE_URL).rstrip("/")
        if base_url and not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.min_interval, self.retries, self.timeout, self.sleep = float(min_interval), int(retries), timeout, sleep
        self.calls = 0
        self._last = 0.0

    def get(self, endpoint: str, params: dict | None = None):
        """GET ``endpoint`` (``"future-markets"``) and return the decoded JSON."""
        if not self.api_key:
            raise CoinalyzeError(f"set {KEY_ENV} to a Coinalyze API key (free at coinalyze.net) to use Coinalyze")
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"{self.base_url}/{endpoint}{query}"
        for attempt in range(self.retries + 1):
            wait = self.min_interval - (time.monotonic() - self._last)
            if wait > 0:
                self.sleep(wait)
            self._last = time.monotonic()
            self.calls += 1
            req = urllib.request.Request(url, headers={"api_key": self.api_key, "Accept": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    body = resp.read()
                try:
                    return json.loads(body)
                except ValueError:
                    raise CoinalyzeError(f"coinalyze {endpoint}: the answer is not JSON ({body[:60]!r})") from None
            except urllib.error.HTTPError as exc:
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                exc.close()
                if exc.code in (401, 403):
                    raise CoinalyzeError(f"coinalyze refused the API key (HTTP {exc.code}); check {KEY_ENV}") from None
                if exc.code != 429 and exc.code < 500:
                    raise CoinalyzeError(f"coinalyze {endpoint}: HTTP {exc.code} for {params}") from None
                last = f"HTTP {exc.code}"
                delay = float(retry_after) if retry_after and retry_after.replace(".", "").isdigit() else 2.0 ** attempt
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = str(getattr(exc, "reason", exc))
                delay = 2.0 ** attempt
            if attempt < self.retries:
                self.sleep(min(delay, 60.0))
        raise CoinalyzeError(f"coinalyze {endpoint}: failed after {self.retries + 1} attempt(s) ({last}); "
                             "wait a minute (40 calls a minute per key) and try again")

    def perpetual(self, venue: str, coin: str, quote: str | None = None) -> dict:
        """The ``/future-markets`` entry of ``coin``'s perpetual on ``venue``.

        ``quote`` defaults to USDT (USD for ``binancecoinm``, coin-margined).
        """
        name = VENUE_NAMES.get(venue)
        if name is None:
            raise CoinalyzeError(f"no Coinalyze exchange known for {venue!r}; use {', '.join(VENUE_NAMES)}")
        if not hasattr(self, "_exchange_codes"):
            self._exchange_codes = {e["name"].lower(): e["code"] for e in self.get("exchanges")}
        codes = self._exchange_codes
        code = codes.get(name.lower())
        if code is None:
            raise CoinalyzeError(f"coinalyze lists no exchange named {name}")
        quote = quote or ("USD" if venue == "binancecoinm" else "USDT")
        for m in self._markets():
            if (m.get("exchange") == code and str(m.get("base_asset")).upper() == coin.upper()
                    and str(m.get("quote_asset")).upper() == quote and m.get("is_perpetual")):
                return m
        raise CoinalyzeError(f"coinalyze has no {coin.upper()}/{quote} perpetual on {name}")

    def _markets(self) -> list[dict]:
        if not hasattr(self, "_market_cache"):
            self._market_cache = self.get("future-markets")
        return self._market_cache

    def history(self, kind: str, symbol: str, interval: str, start_s: int, end_s: int) -> list[dict]:
        """The ``history`` list of one symbol: ``kind`` is ``liquidation``, ``open-interest`` or ``funding-rate``."""
        if interval not in INTERVALS:
            raise CoinalyzeError(f"coinalyze interval {interval!r} is not one of {', '.join(INTERVALS)}")
        params = {"symbols": symbol, "interval": interval, "from": int(start_s), "to": int(end_s)}
        if kind != "funding-rate":
            params["convert_to_usd"] = "true"
        answer = self.get(f"{kind}-history", params)
        for item in answer or []:
            if item.get("symbol") == symbol:
                return list(item.get("history") or [])
        return []


@dataclass
class CoinalyzeReport:
    """What a Coinalyze fetch stored, per venue, and where retention left gaps."""

    coin: str
    interval: str
    rows: dict[str, int] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)
    calls: int = 0

    @property
    def message(self) -> str:
        parts = ", ".join(f"{k} {n}" for k, n in self.rows.items()) or "nothing"
        text = f"coinalyze {self.coin} {self.interval}: stored {parts} rows in {self.calls} call(s)"
        if self.gaps:
            text += "; " + "; ".join(self.gaps)
        return text


def _unified(market: dict) -> str:
    base, quote = str(market["base_asset"]).upper(), str(market["quote_asset"]).upper()
    settle = base if str(market.get("margined", "")).upper() == "COIN" else quote
    return f"{base}/{quote}:{settle}"


def fetch_coinalyze_history(
    client: CoinalyzeClient,
    coin: str,
    venues: list[str],
    interval: str,
    since,
    until=None,
    *,
    store: Store | str | os.PathLike | None = None,
    kinds: tuple[str, ...] = ("liquidation", "open-interest", "funding-rate"),
    now: int | None = None,
) -> CoinalyzeReport:
    """Fetch ``coin``'s per-venue Coinalyze history for ``[since, until]`` into the store.

    Returns
    -------
    CoinalyzeReport
        Rows stored per ``venue/kind`` and one sentence per retention gap.

    Raises
    ------
    CoinalyzeError
        No API key, an unknown venue or coin, or Coinalyze unreachable after retries.
    """
    store = store if isinstance(store, Store) else Store(store)
    if interval not in INTERVALS:
        raise CoinalyzeError(f"coinalyze interval {interval!r} is not one of {', '.join(INTERVALS)}")
    period, step = INTERVALS[interval]
    now_s = (int(time.time()) if now is None else now // 1000)
    start_s = -(-to_ms(since) // 1000 // step) * step
    end_s = min(to_ms(until) // 1000 if until is not None else now_s, now_s)
    report = CoinalyzeReport(coin.upper(), interval)
    calls0 = client.calls
    for venue in venues:
        market = client.perpetual(venue, coin)
        symbol, unified, exchange = market["symbol"], _unified(market), store_exchange(venue)
        for kind in kinds:
            history = client.history(kind, symbol, interval, start_s, end_s)
            history = [h for h in history if start_s <= int(h["t"]) <= end_s]
            first = int(history[0]["t"]) if history else None
            if interval != "daily" and (first is None or first > start_s):
                upto = pd.Timestamp(first or end_s, unit="s", tz="UTC")
                report.gaps.append(
                    f"{venue} {kind}: Coinalyze keeps only the last {INTRADAY_POINTS} {interval} points, so "
                    f"{pd.Timestamp(start_s, unit='s', tz='UTC')} up to {upto} is a gap (use --interval daily "
                    "for older history)")
            if not history:
                continue
            t = np.array([int(h["t"]) for h in history], dtype=np.int64) * 1000
            last_closed = int(t[-1]) + step * 1000 <= now_s * 1000
            covered = (int(t[0]), int(t[-1]) + step * 1000 - 1 if last_closed else int(t[-1]) - 1)
            if kind == "liquidation":
                rows = pd.DataFrame({"timestamp": pd.to_datetime(t, unit="ms", utc=True),
                                     "long_usd": [float(h.get("l") or 0.0) for h in history],
                                     "short_usd": [float(h.get("s") or 0.0) for h in history]})
                name = "liquidation_bars"
                store.write(exchange, unified, name, period, rows, covered=covered)
            elif kind == "open-interest":
                rows = pd.DataFrame({"timestamp": pd.to_datetime(t + step * 1000, unit="ms", utc=True),
                                     "open_interest_value": [float(h["c"]) for h in history],
                                     "open_interest_amount": np.nan})
                name = "open_interest"
                if not last_closed:
                    rows = rows.iloc[:-1]  # the interval still running has no close yet
                store.write(exchange, unified, name, period, rows, covered=covered)
            else:
                rows = pd.DataFrame({"timestamp": pd.to_datetime(t + step * 1000, unit="ms", utc=True),
                                     "funding_rate": [float(h["c"]) / 100.0 for h in history]})
                name = "funding"
                if not last_closed:
                    rows = rows.iloc[:-1]
                store.write(exchange, unified, name, None, rows, covered=covered)
            report.rows[f"{venue} {name}"] = len(rows)
    report.calls = client.calls - calls0
    return report
