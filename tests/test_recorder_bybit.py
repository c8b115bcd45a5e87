"""``liqlab record bybit``: a local websocket replays Bybit ``allLiquidation`` messages, drops, reconnects."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from liqlab.cli import main
from liqlab.sources.exchange import RetryPolicy
from liqlab.sources.recorder import LiquidationRecorder
from liqlab.sources.store import Store
from tests.exchange_fixtures.fake_venues import FakeBybit

websockets = pytest.importorskip("websockets")

T0 = 1714521600000


def liq(t_ms: int, side: str, size: str, price: str, symbol: str = "BTCUSDT") -> dict:
    """One documented ``allLiquidation`` push (``S`` is the side of the position liquidated)."""
    return {"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": t_ms + 300,
            "data": [{"T": t_ms, "s": symbol, "S": side, "v": size, "p": price}]}


FIRST = [liq(T0, "Buy", "0.500", "60000.0"), liq(T0 + 200, "Sell", "0.010", "60010.0"),
         liq(T0 + 400, "Buy", "1.000", "59990.0")]  # three in one second: Bybit sends every one
SECOND = [FIRST[-1], liq(T0 + 5000, "Sell", "2.000", "60100.0")]


class FakeBybitStream:
    """First connection sends FIRST then closes; later ones send SECOND and stay open."""

    def __init__(self) -> None:
        self.connections = 0
        self.topics: list[list[str]] = []
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with websockets.serve(self._handler, "127.0.0.1", 0) as server:
            self.url = f"ws://127.0.0.1:{list(server.sockets)[0].getsockname()[1]}"
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            await self._stop.wait()

    async def _handler(self, ws, *args) -> None:
        self.connections += 1
        first = self.connections == 1
        try:
            request = json.loads(await ws.recv())
            while request.get("op") != "subscribe":
                await ws.send(json.dumps({"success": True, "ret_msg": "pong", "conn_id": "c1",
                                          "req_id": request.get("req_id"), "op": request.get("op")}))
                request = json.loads(await ws.recv())
            self.topics.append(request["args"])
            await ws.send(json.dumps({"success": True, "ret_msg": "", "conn_id": "c1",
                                      "req_id": request.get("req_id"), "op": "subscribe"}))
            for msg in FIRST if first else SECOND:
                await ws.send(json.dumps(msg))
            if first:
                await ws.close()
                return
            async for raw in ws:  # answer pings until the client leaves
                request = json.loads(raw)
                await ws.send(json.dumps({"success": True, "ret_msg": "pong", "conn_id": "c1",
                                          "req_id": request.get("req_id"), "op": request.get("op")}))
        except websockets.ConnectionClosed:
            pass

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


def _wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met before the deadline")


def test_bybit_all_liquidations_across_a_disconnect(tmp_path):
    store = Store(tmp_path)
    with FakeBybit(listing_ms=T0, now_ms=T0) as rest, FakeBybitStream() as stream:
        rec = LiquidationRecorder("bybit", ["BTCUSDT"], store=store, batch_size=2, flush_interval=0.1,
                                  backoff=RetryPolicy(base_delay=0.01, max_delay=0.05), api_url=rest.url,
                                  ws_url=stream.url)
        result = {}
        worker = threading.Thread(target=lambda: result.setdefault("stats", rec.run(duration=30)))
        worker.start()
        try:
            _wait_for(lambda: len(store.read_liquidations("bybit", "BTC/USDT:USDT")) >= 4)
        finally:
            rec.stop()
            worker.join(10)
    assert not worker.is_alive(), "recorder did not stop"
    assert stream.connections >= 2 and stream.topics[0] == ["allLiquidation.BTCUSDT"]
    stats = result["stats"]
    assert stats.events == 4  # the repeated event after the reconnect is stored once
    events = store.read_liquidations("bybit", "BTC/USDT:USDT")
    assert events["timestamp"].astype("int64").tolist() == [T0, T0 + 200, T0 + 400, T0 + 5000]  # ms
    assert events["side"].tolist() == ["long", "short", "long", "short"]  # Buy = a long liquidated
    assert events["notional"].tolist() == pytest.approx([30000.0, 600.1, 59990.0, 120200.0])


def test_record_binance_says_lower_bound(tmp_path, capsys):
    from tests.exchange_fixtures.fake_binance import FakeBinance

    with FakeBinance() as server:
        code = main(["record", "binanceusdm", "BTCUSDT", "--duration", "0.3", "--data-dir", str(tmp_path),
                     "--api-url", server.url, "--ws-url", "ws://127.0.0.1:9"])
    out = capsys.readouterr().out
    assert code == 0 and "at most one liquidation per symbol per second" in out and "lower bound" in out
