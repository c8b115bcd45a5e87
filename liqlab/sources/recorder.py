"""Record realized liquidations live from exchange websockets into the local store.

Public REST history of liquidations is short or missing on most venues, so history has to be
built up by listening: :class:`LiquidationRecorder` subscribes to ccxt.pro ``watchLiquidations``
(binance/binanceusdm, bybit, okx), converts each event to ``timestamp, side, price, notional``
(``side`` = the liquidated position; notional in quote currency) and appends them to the store
in batches. Dropped connections are retried with exponential backoff (reset after each good
message); :meth:`LiquidationRecorder.stop` or the ``duration`` ends it cleanly, flushing what is
buffered. A raw Binance ``forceOrder`` message looks like::

    {"e":"forceOrder","E":1700000123061,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",
     "q":"0.014","p":"36900.10","ap":"36958.70","X":"FILLED","l":"0.014","z":"0.014","T":1700000123059}}

(``S`` = SELL: a long was liquidated; notional = 0.014 x 36958.70.) Binance sends at most one
liquidation per symbol per second, so its recordings are a lower bound. Bybit's ``allLiquidation``
stream sends every liquidation, and its ``S`` is the position's side::

    {"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1714521601000,
     "data":[{"T":1714521600900,"s":"BTCUSDT","S":"Buy","v":"0.500","p":"60000.10"}]}

(``S`` = Buy: a long was liquidated; notional = 0.5 x 60000.10.)
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import pandas as pd

from liqlab.sources.exchange import ExchangeDataError, RetryPolicy, liquidation_row, override_urls, resolve_symbol
from liqlab.sources.store import Store

#: ``liqlab record binance ...`` means the USD-M futures venue, stored under the same name as fetches.
_ALIASES = {"binance": "binanceusdm"}
#: Venues whose stream gives the side of the *position* liquidated rather than of the forced order:
#: Bybit ``allLiquidation`` ``"S": "Buy"`` means a long was liquidated.
POSITION_SIDE = {"bybit": {"buy": "long", "sell": "short"}}


@dataclass
class RecorderStats:
    """Counters of one recording session."""

    events: int = 0
    stored: int = 0
    batches: int = 0
    reconnects: int = 0
    last_error: str | None = None
    per_symbol: dict[str, int] = field(default_factory=dict)


class LiquidationRecorder:
    """Subscribe to live liquidations and append them to the store.

    Parameters
    ----------
    exchange
        ccxt.pro id (``"binanceusdm"``, ``"binance"``, ``"bybit"``, ``"okx"``) or a ccxt.pro instance.
    symbols
        Symbols to follow (unified, exchange ids or coins, as for ``load_market``).
    store
        Where events go (default store when None).
    batch_size, flush_interval
        Write when this many events are buffered or this many seconds have passed.
    backoff
        Delays between reconnection attempts (``retries`` is ignored: the recorder keeps trying).
    api_url, ws_url
        Send REST / websocket traffic to these base URLs instead (mirror, proxy, test server).
    """

    def __init__(
        self,
        exchange,
        symbols: list[str],
        *,
        store: Store | None = None,
        batch_size: int = 200,
        flush_interval: float = 5.0,
        backoff: RetryPolicy | None = None,
        api_url: str | None = None,
        ws_url: str | None = None,
        config: dict | None = None,
    ) -> None:
        if not symbols:
            raise ExchangeDataError("name at least one symbol to record, e.g. `liqlab record binanceusdm BTC/USDT:USDT`")
        self.exchange = exchange
        self.symbols = list(symbols)
        self.store = store if isinstance(store, Store) else Store(store)
        self.batch_size = int(batch_size)
        self.flush_interval = float(flush_interval)
        self.backoff = backoff or RetryPolicy(base_delay=1.0, max_delay=60.0)
        self.api_url, self.ws_url, self.config = api_url, ws_url, config or {}
        self.stats = RecorderStats()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer: list[tuple[str, tuple]] = []
        self._last_flush = time.monotonic()
        self._symbols: set[str] = set()
        self._seen: OrderedDict = OrderedDict()

    # -- control ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the recorder to flush and finish (safe to call from another thread)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def run(self, duration: float | None = None) -> RecorderStats:
        """Record until :meth:`stop` or for ``duration`` seconds (blocking)."""
        return asyncio.run(self.arun(duration))

    async def arun(self, duration: float | None = None) -> RecorderStats:
        """Record until :meth:`stop` or for ``duration`` seconds (in a running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        ex = self._client()
        timer = self._loop.call_later(duration, self._stop.set) if duration is not None else None
        try:
            markets = await self._load_markets(ex)
            if markets is None:
                return self.stats
            symbols = [resolve_symbol(ex, s) for s in self.symbols]
            self._symbols = set(symbols)
            await self._listen(ex, symbols)
        finally:
            if timer is not None:
                timer.cancel()
            await self._flush()
            await ex.close()
        return self.stats

    # -- internals ----------------------------------------------------------------------------
    def _client(self):
        if not isinstance(self.exchange, str):
            return self.exchange
        import ccxt.pro as ccxtpro  # heavy: only when recording

        name = _ALIASES.get(self.exchange, self.exchange)
        if name not in ccxtpro.exchanges:
            raise ExchangeDataError(f"ccxt.pro has no websocket support for {self.exchange!r}; use binanceusdm, bybit or okx")
        ex = getattr(ccxtpro, name)({"enableRateLimit": True, **self.config})
        if not ex.has.get("watchLiquidations"):
            raise ExchangeDataError(
                f"{name} has no public liquidation stream in ccxt.pro; record from binanceusdm, bybit or okx"
            )
        if self.api_url or self.ws_url:
            override_urls(ex, http=self.api_url, ws=self.ws_url)
        return ex

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped first; True when stopped."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def _load_markets(self, ex):
        import ccxt

        cached = self.store.load_markets(ex.id)
        if cached:
            ex.set_markets(cached)
            return ex.markets
        attempt = 0
        while not self._stop.is_set():
            try:
                return await ex.load_markets()
            except ccxt.NetworkError as exc:
                attempt += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if await self._sleep_or_stop(self.backoff.delay(attempt)):
                    return None
        return None

    async def _listen(self, ex, symbols: list[str]) -> None:
        import ccxt

        attempt = 0
        if len(symbols) > 1 and not ex.has.get("watchLiquidationsForSymbols"):
            starters = {s: (lambda s=s: ex.watch_liquidations(s)) for s in symbols}
        elif len(symbols) == 1:
            starters = {symbols[0]: lambda: ex.watch_liquidations(symbols[0])}
        else:
            starters = {"*": lambda: ex.watch_liquidations_for_symbols(symbols)}
        # a watch stays pending across flushes: cancelling it would cancel ccxt's shared future
        pending: dict[str, asyncio.Future] = {}
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                for key, start in starters.items():
                    if key not in pending:
                        pending[key] = asyncio.ensure_future(start())
                timeout = max(0.05, self.flush_interval - (time.monotonic() - self._last_flush))
                done, _ = await asyncio.wait([*pending.values(), stopper], timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                failed = None
                took = False
                for key, task in list(pending.items()):
                    if task in done:
                        del pending[key]
                        exc = task.exception()
                        if exc is None:
                            self._take(ex, task.result())  # scans ccxt's cache too
                            took = True
                            attempt = 0
                        else:
                            failed = exc
                if failed is not None:
                    if not isinstance(failed, ccxt.NetworkError):
                        raise failed
                    # connection dropped: keep what we have, then reconnect with backoff
                    attempt += 1
                    self.stats.reconnects += 1
                    self.stats.last_error = f"{type(failed).__name__}: {failed}"
                    await self._flush()
                    if await self._sleep_or_stop(self.backoff.delay(attempt)):
                        break
                    continue
                # a message that arrived while no watch was pending is only in ccxt's cache, and
                # no later watch returns it if nothing follows: sweep the cache on a quiet pass
                if not took:
                    self._take(ex, [])
                if len(self._buffer) >= self.batch_size or time.monotonic() - self._last_flush >= self.flush_interval:
                    await self._flush()
        finally:
            stopper.cancel()
            for task in pending.values():
                task.cancel()
            await asyncio.gather(*pending.values(), return_exceptions=True)
            self._take(ex, [])  # the last messages, before the final flush

    def _take(self, ex, items) -> None:
        # ccxt hands back only the message that woke the watch; messages that arrived while no
        # watch was pending are only in its cache, so scan both and skip what was already seen
        cached = list(getattr(ex, "liquidations", None) or [])
        for item in [*(items or []), *cached]:
            symbol = item.get("symbol")
            if symbol not in self._symbols:
                continue
            key = (symbol, item.get("timestamp"), item.get("side"), item.get("price"), item.get("contracts"))
            if key in self._seen:
                continue
            self._seen[key] = None
            if len(self._seen) > 100_000:
                self._seen.popitem(last=False)
            sides = POSITION_SIDE.get(ex.id)
            if sides is not None:
                item = {**item, "side": sides.get(str(item.get("side") or "").lower())}
            row = liquidation_row(item, (ex.markets or {}).get(symbol))
            if row[0] is None or row[1] is None or row[3] is None:
                continue
            self._buffer.append((symbol, row))
            self.stats.events += 1
            self.stats.per_symbol[symbol] = self.stats.per_symbol.get(symbol, 0) + 1

    async def _flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        ex_id = self.exchange if isinstance(self.exchange, str) else self.exchange.id
        ex_id = _ALIASES.get(ex_id, ex_id)
        frames: dict[str, list] = {}
        for symbol, row in batch:
            frames.setdefault(symbol, []).append(row)
        for symbol, rows in frames.items():
            events = pd.DataFrame(rows, columns=["timestamp", "side", "price", "notional"])
            events["timestamp"] = pd.to_datetime(events["timestamp"], unit="ms", utc=True)
            # the store write blocks on a file lock and disk: keep the event loop free
            self.stats.stored = await asyncio.to_thread(self.store.append_liquidations, ex_id, symbol, events)
        self.stats.batches += 1


def record(exchange, symbols: list[str], *, duration: float | None = None, store: Store | None = None,
           **options) -> RecorderStats:
    """Record live liquidations for ``symbols`` into the store (blocking; Ctrl-C or ``duration`` ends it).

    See :class:`LiquidationRecorder` for the options.
    """
    return LiquidationRecorder(exchange, symbols, store=store, **options).run(duration)
