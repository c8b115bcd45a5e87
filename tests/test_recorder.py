"""Recorder: a local websocket server replays Binance forceOrder messages, drops, and reconnects."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time

import pytest

from liqlab.sources.exchange import RetryPolicy
from liqlab.sources.recorder import LiquidationRecorder
from liqlab.sources.store import Store
from tests.exchange_fixtures.fake_binance import SAMPLES, FakeBinance

websockets = pytest.importorskip("websockets")


def force_order(t_ms: int, side: str, qty: str, avg: str, symbol: str = "BTCUSDT") -> dict:
    msg = copy.deepcopy(SAMPLES["forceOrder"])
    msg["E"] = t_ms + 2
    msg["o"].update({"s": symbol, "S": side, "q": qty, "l": qty, "z": qty, "ap": avg, "T": t_ms})
    return msg


FIRST = [force_order(1700000000000, "SELL", "0.010", "40000"), force_order(1700000001000, "BUY", "0.500", "40100"),
         force_order(1700000002000, "SELL", "1.000", "39900")]
# after the reconnect the server repeats the last event (the store must not double it) and adds two
SECOND = [FIRST[-1], force_order(1700000003000, "BUY", "0.200", "40200"),
          force_order(1700000004000, "SELL", "2.000", "2000", symbol="ETHUSDT")]


class FakeBinanceStream:
    """Websocket server: first connection sends FIRST then closes; later ones send SECOND and stay open."""

    def __init__(self) -> None:
        self.connections = 0
        self.subscriptions: list[list[str]] = []
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with websockets.serve(self._handler, "127.0.0.1", 0) as server:
            port = list(server.sockets)[0].getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}"
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            await self._stop.wait()

    async def _handler(self, ws, *args) -> None:
        self.connections += 1
        first = self.connections == 1
        request = json.loads(await ws.recv())
        self.subscriptions.append(request["params"])
        await ws.send(json.dumps({"result": None, "id": request["id"]}))
        for msg in FIRST if first else SECOND:
            await ws.send(json.dumps(msg))
        if first:
            await ws.close()
            return
        try:
            await ws.wait_closed()
        except Exception:
            pass

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met before the deadline")


def test_recorder_stores_events_across_a_disconnect(tmp_path):
    store = Store(tmp_path)
    with FakeBinance() as rest, FakeBinanceStream() as stream:
        rec = LiquidationRecorder(
            "binance", ["BTCUSDT", "ETH/USDT:USDT"], store=store, batch_size=2, flush_interval=0.1,
            backoff=RetryPolicy(base_delay=0.01, max_delay=0.05), api_url=rest.url, ws_url=stream.url,
        )
        result = {}
        worker = threading.Thread(target=lambda: result.setdefault("stats", rec.run(duration=20)))
        worker.start()
        try:
            def stored() -> int:
                btc = store.read_liquidations("binanceusdm", "BTC/USDT:USDT")
                eth = store.read_liquidations("binanceusdm", "ETH/USDT:USDT")
                return len(btc) + len(eth)
            _wait_for(lambda: stored() >= 5)
        finally:
            rec.stop()
            worker.join(10)
    assert not worker.is_alive(), "recorder did not stop"
    stats = result["stats"]
    assert stream.connections >= 2 and stats.events == 5
    assert sorted(stream.subscriptions[0]) == ["btcusdt@forceOrder", "ethusdt@forceOrder"]
    btc = store.read_liquidations("binanceusdm", "BTC/USDT:USDT")
    assert len(btc) == 4  # the repeated event is stored once
    assert list(btc["side"]) == ["long", "short", "long", "short"]  # SELL closes a long
    assert btc["notional"].tolist() == pytest.approx([400.0, 20050.0, 39900.0, 8040.0])
    eth = store.read_liquidations("binanceusdm", "ETH/USDT:USDT")
    assert eth["notional"].tolist() == pytest.approx([4000.0])


def test_recorder_stops_cleanly_when_the_stream_is_unreachable(tmp_path):
    with FakeBinance() as rest:
        rec = LiquidationRecorder("binanceusdm", ["BTC/USDT:USDT"], store=Store(tmp_path), api_url=rest.url,
                                  ws_url="ws://127.0.0.1:9", backoff=RetryPolicy(base_delay=0.01, max_delay=0.02))
        stats = rec.run(duration=0.5)
    assert stats.events == 0 and stats.reconnects >= 1
    assert "Error" in (stats.last_error or "")


class _CacheOnlyExchange:
    """A ccxt.pro stand-in whose watch never returns; one event sits in its cache, as when a
    message arrives while no watch is pending and nothing follows it."""

    id = "binanceusdm"
    has = {"watchLiquidations": True, "watchLiquidationsForSymbols": True}

    def __init__(self) -> None:
        self.markets = {"BTC/USDT:USDT": {"id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "swap": True,
                                          "contractSize": 1.0, "inverse": False}}
        self.liquidations = [{"symbol": "BTC/USDT:USDT", "timestamp": 1700000000000, "side": "sell",
                              "price": 40000.0, "contracts": 0.5}]
        self.closed = False

    async def load_markets(self):
        return self.markets

    async def watch_liquidations(self, symbol):
        await asyncio.Event().wait()  # nothing more arrives

    async def close(self):
        self.closed = True


def test_recorder_keeps_an_event_that_only_reached_the_cache(tmp_path):
    store = Store(tmp_path)
    ex = _CacheOnlyExchange()
    stats = LiquidationRecorder(ex, ["BTC/USDT:USDT"], store=store, flush_interval=0.05).run(duration=0.5)
    assert stats.events == 1 and ex.closed
    stored = store.read_liquidations("binanceusdm", "BTC/USDT:USDT")
    assert stored["side"].tolist() == ["long"] and stored["notional"].tolist() == pytest.approx([20000.0])
