"""A local stand-in for the Binance USD-M futures REST API (and its liquidation websocket).

It answers the endpoints ccxt's ``binanceusdm`` calls, with the JSON shapes of
``binanceusdm_samples.json`` (see README.md for the documentation page of each), generating rows
on the fly for any requested window from deterministic price / open-interest curves, never past
the real current time. Faults can be queued per endpoint to exercise retries.
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

HERE = Path(__file__).resolve().parent
EXCHANGE_INFO = json.loads((HERE / "binanceusdm_exchangeInfo.json").read_text())
SAMPLES = json.loads((HERE / "binanceusdm_samples.json").read_text())
INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
               "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "12h": 43_200_000, "1d": 86_400_000}
STAT_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
FUNDING_MS = 8 * 3_600_000
BASE_PRICE = {"BTCUSDT": 40000.0, "ETHUSDT": 2000.0, "SOLUSDT": 100.0}


def price(symbol: str, t_ms: int) -> float:
    """Deterministic mid price of ``symbol`` at ``t_ms``."""
    return BASE_PRICE.get(symbol, 10.0) * (1.0 + 0.02 * math.sin(t_ms / 3.7e7) + 0.005 * math.sin(t_ms / 1.1e6))


def oi_amount(symbol: str, t_ms: int) -> float:
    """Deterministic open interest (base units) of ``symbol`` at ``t_ms``."""
    return 80_000.0 * (1.0 + 0.1 * math.sin(t_ms / 5.3e7)) * 40000.0 / BASE_PRICE.get(symbol, 10.0)


class FakeBinance:
    """Threaded HTTP server; use as a context manager. ``url`` is its base URL.

    Attributes
    ----------
    requests
        ``(path, params)`` of every request received, in order.
    faults
        ``path -> list`` of faults consumed one per request on that path: ``"429"``, ``"418"``,
        ``"500"``, ``"503"``, ``"timeout"`` (sleeps ``slow_seconds`` before answering),
        ``"malformed"`` (broken JSON), ``"drop"`` (closes the connection half-way through the body).
    """

    def __init__(self, *, now_ms: int | None = None, slow_seconds: float = 1.0) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.faults: dict[str, list[str]] = {}
        self.now_ms = now_ms
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server API)
                owner._handle(self)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients that time out close their socket early: expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeBinance":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, path_suffix: str) -> int:
        with self._lock:
            return sum(1 for p, _ in self.requests if p.endswith(path_suffix))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- request handling ---------------------------------------------------------------------
    def _now(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(h.path)
        params = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        path = parsed.path
        with self._lock:
            self.requests.append((path, params))
            queue = self.faults.get(path) or []
            fault = queue.pop(0) if queue else None
        if fault in ("429", "418"):
            return self._send(h, int(fault), SAMPLES["error_too_many_requests"], {"Retry-After": "0"})
        if fault in ("500", "503"):
            return self._send(h, int(fault), "<html><body>Service Unavailable</body></html>", raw=True)
        if fault == "timeout":
            time.sleep(self.slow_seconds)
        if fault == "malformed":
            return self._send(h, 200, '[[1700000000000, "37000.1", "37050"', raw=True)
        try:
            status, body = self._route(path, params)
        except KeyError:
            status, body = 404, {"code": -5000, "msg": f"Path {path}, Method GET is invalid"}
        if fault == "drop":
            data = json.dumps(body).encode()
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        self._send(h, status, body)

    @staticmethod
    def _send(h, status: int, body, headers: dict | None = None, raw: bool = False) -> None:
        data = (body if raw else json.dumps(body)).encode()
        h.send_response(status)
        h.send_header("Content-Type", "text/html" if raw else "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _route(self, path: str, q: dict):
        if path == "/fapi/v1/exchangeInfo":
            return 200, EXCHANGE_INFO
        known = {s["symbol"] for s in EXCHANGE_INFO["symbols"]}
        symbol = q.get("symbol")
        if symbol not in known:
            return 400, SAMPLES["error_invalid_symbol"]
        if path == "/fapi/v1/klines":
            step = INTERVAL_MS[q["interval"]]
            limit = min(int(q.get("limit", 500)), 1500)
            rows = []
            for t in self._grid(q, step, limit, step):
                o, c = price(symbol, t), price(symbol, t + step)
                hi, lo = max(o, c) * 1.001, min(o, c) * 0.999
                vol = 100.0 + (t // step) % 50
                rows.append([t, f"{o:.2f}", f"{hi:.2f}", f"{lo:.2f}", f"{c:.2f}", f"{vol:.3f}", t + step - 1,
                             f"{vol * o:.2f}", 1000, f"{vol / 2:.3f}", f"{vol * o / 2:.2f}", "0"])
            return 200, rows
        if path == "/futures/data/openInterestHist":
            return self._stat(q, lambda t: {
                "symbol": symbol, "sumOpenInterest": f"{oi_amount(symbol, t):.8f}",
                "sumOpenInterestValue": f"{oi_amount(symbol, t) * price(symbol, t):.8f}",
                "CMCCirculatingSupply": "19541221.000", "timestamp": t})
        if path == "/futures/data/globalLongShortAccountRatio":
            def row(t):
                long = 0.55 + 0.05 * math.sin(t / 2e7)
                return {"symbol": symbol, "longShortRatio": f"{long / (1 - long):.4f}", "longAccount": f"{long:.4f}",
                        "shortAccount": f"{1 - long:.4f}", "timestamp": t}
            return self._stat(q, row)
        if path == "/fapi/v1/fundingRate":
            limit = min(int(q.get("limit", 100)), 1000)
            return 200, [{"symbol": symbol, "fundingTime": t, "fundingRate": f"{0.0001 * (1 + math.sin(t / 1e8)):.8f}",
                          "markPrice": f"{price(symbol, t):.8f}"} for t in self._grid(q, FUNDING_MS, limit, 0)]
        raise KeyError(path)

    def _stat(self, q: dict, make):
        period = q.get("period")
        if period not in STAT_PERIODS:
            return 400, {"code": -1120, "msg": "Invalid period."}
        limit = int(q.get("limit", 30))
        if limit > 500:
            return 400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}
        return 200, [make(t) for t in self._grid(q, INTERVAL_MS[period], limit, 0)]

    def _grid(self, q: dict, step: int, limit: int, closing: int) -> list[int]:
        """Grid times in [startTime, endTime], up to ``limit``, that exist by now (open + ``closing``)."""
        now = self._now()
        end = min(int(q.get("endTime", now)), now - closing)
        start = int(q.get("startTime", end - step * (limit - 1)))
        first = -(-start // step) * step
        out = []
        t = first
        while t <= end and len(out) < limit:
            out.append(t)
            t += step
        return out


def binance_client(url: str, **config):
    """A real ccxt ``binanceusdm`` instance whose REST URLs point at ``url``, fast to test with."""
    from liqlab.sources.exchange import make_exchange

    ex = make_exchange("binanceusdm", api_url=url, config={"timeout": 2000, **config})
    ex.rateLimit = 1  # the local server has no limit; keep ccxt's limiter on but short
    return ex
