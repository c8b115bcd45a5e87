"""Local stand-ins for the Bybit v5, OKX v5 and Coinalyze REST APIs (127.0.0.1 only).

Response shapes follow each API's documentation (see README.md in this folder):

* Bybit ``GET /v5/market/instruments-info`` and ``GET /v5/market/open-interest`` (newest row
  first, at most 200 rows, ``startTime``/``endTime`` inclusive, nothing before the listing);
* OKX ``GET /api/v5/public/instruments``, ``GET /api/v5/rubik/stat/contracts/open-interest-history``
  (rows ``[ts, oi contracts, oiCcy, oiUsd]`` newest first, at most 100, ``begin``/``end``
  exclusive, only the last 1,440 periods kept) and ``GET /api/v5/public/liquidation-orders``;
* Coinalyze ``GET /v1/future-markets``, ``/v1/open-interest-history``, ``/v1/liquidation-history``,
  ``/v1/funding-rate-history`` (``api_key`` header, times in seconds, intraday history only for
  the last ``intraday_points`` intervals, HTTP 429 with ``Retry-After``).

Values come from deterministic functions of time so tests can assert exact numbers.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MINUTE = 60_000
BYBIT_INTERVALS = {"5min": 5 * MINUTE, "15min": 15 * MINUTE, "30min": 30 * MINUTE, "1h": 60 * MINUTE,
                   "4h": 240 * MINUTE, "1d": 1440 * MINUTE}
OKX_PERIODS = {"5m": 5 * MINUTE, "1H": 60 * MINUTE, "1D": 1440 * MINUTE}


def bybit_oi(t_ms: int) -> str:
    """Open interest (BTC for linear) at ``t_ms``: exact decimal text."""
    return f"{50000 + (t_ms // 300_000) % 1000}.000"


def okx_oi(t_ms: int) -> tuple[str, str, str]:
    """(contracts, BTC, USD) at ``t_ms`` for BTC-USDT-SWAP (0.01 BTC per contract, price 40,000)."""
    contracts = 2_000_000 + (t_ms // 300_000) % 1000
    return str(contracts), f"{contracts / 100:.2f}", f"{contracts * 400:.1f}"


class _Server:
    """A threaded JSON server; subclasses implement ``route(path, params) -> (status, body, headers)``."""

    #: body of an HTTP 429 answer, as the venue documents it
    rate_limit_body: object = {"message": "Too Many Requests"}

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.headers_seen: list[dict] = []
        self.faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                parsed = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                with owner._lock:
                    owner.requests.append((parsed.path, params))
                    owner.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
                    queue = owner.faults.get(parsed.path) or []
                    fault = queue.pop(0) if queue else None
                if fault == "429":
                    status, body, headers = 429, owner.rate_limit_body, {"Retry-After": "0"}
                elif fault == "500":
                    status, body, headers = 500, {"error": "internal"}, {}
                else:
                    status, body, headers = owner.route(parsed.path, params, owner.headers_seen[-1])
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def paths(self, path: str) -> list[dict]:
        with self._lock:
            return [q for p, q in self.requests if p == path]

    def route(self, path: str, q: dict, headers: dict):  # pragma: no cover - overridden
        raise NotImplementedError


# -- Bybit ---------------------------------------------------------------------------------------
BYBIT_LINEAR = {
    "symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "BTC",
    "quoteCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
    "priceScale": "2", "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.10", "maxPrice": "199999.80", "tickSize": "0.10"},
    "lotSizeFilter": {"maxOrderQty": "100.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                      "postOnlyMaxOrderQty": "1000.000", "maxMktOrderQty": "100.000", "minNotionalValue": "5"},
    "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "USDT", "copyTrading": "both",
    "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375", "isPreListing": False, "preListingInfo": None,
}
BYBIT_INVERSE = {**BYBIT_LINEAR, "symbol": "BTCUSD", "contractType": "InversePerpetual", "quoteCoin": "USD",
                 "settleCoin": "BTC", "unifiedMarginTrade": False,
                 "lotSizeFilter": {"maxOrderQty": "1000000", "minOrderQty": "1", "qtyStep": "1",
                                   "postOnlyMaxOrderQty": "1000000", "maxMktOrderQty": "1000000",
                                   "minNotionalValue": "1"}}


class FakeBybit(_Server):
    """Bybit v5 public REST; open interest exists from ``listing_ms`` on, up to ``now_ms``."""

    rate_limit_body = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}, "time": 0}

    def __init__(self, *, listing_ms: int, now_ms: int) -> None:
        super().__init__()
        self.listing_ms, self.now_ms = listing_ms, now_ms

    def route(self, path, q, headers):
        def ok(result):
            return 200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": self.now_ms}, {}

        if path == "/v5/market/instruments-info":
            found = {"linear": [BYBIT_LINEAR], "inverse": [BYBIT_INVERSE]}.get(q.get("category"), [])
            if q.get("status") == "PreLaunch":
                found = []
            return ok({"category": q.get("category"), "list": found, "nextPageCursor": ""})
        if path == "/v5/market/open-interest":
            step = BYBIT_INTERVALS[q["intervalTime"]]
            limit = min(200, int(q.get("limit", 50)))
            end = min(int(q.get("endTime", self.now_ms)), self.now_ms)
            start = max(int(q.get("startTime", 0)), self.listing_ms)
            first = -(-start // step) * step
            stamps = list(range(first, end + 1, step))[::-1][:limit]
            rows = [{"openInterest": bybit_oi(t) if q["category"] == "linear" else str(400_000_000 + t // 300_000 % 1000),
                     "timestamp": str(t)} for t in stamps]
            return ok({"symbol": q["symbol"], "category": q["category"], "list": rows, "nextPageCursor": ""})
        return 404, {"retCode": 10001, "retMsg": f"unknown path {path}"}, {}


# -- OKX -----------------------------------------------------------------------------------------
OKX_SWAP = {
    "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear", "ctVal": "0.01",
    "ctValCcy": "BTC", "expTime": "", "instFamily": "BTC-USDT", "instId": "BTC-USDT-SWAP", "instType": "SWAP",
    "lever": "100", "listTime": "1573557408000", "lotSz": "0.01", "maxIcebergSz": "100000000", "maxLmtAmt": "20000000",
    "maxLmtSz": "100000000", "maxMktAmt": "", "maxMktSz": "12000", "maxStopSz": "12000", "maxTriggerSz": "100000000",
    "maxTwapSz": "100000000", "minSz": "0.01", "optType": "", "quoteCcy": "", "settleCcy": "USDT", "state": "live",
    "stk": "", "tickSz": "0.1", "uly": "BTC-USDT", "ruleType": "normal",
}
OKX_INVERSE = {**OKX_SWAP, "ctType": "inverse", "ctVal": "100", "ctValCcy": "USD", "instFamily": "BTC-USD",
               "instId": "BTC-USD-SWAP", "settleCcy": "BTC", "uly": "BTC-USD", "lotSz": "1", "minSz": "1"}
#: Documented shape of ``/api/v5/public/liquidation-orders`` (sizes in contracts).
OKX_LIQUIDATIONS = [
    {"details": [
        {"bkLoss": "0", "bkPx": "40100.5", "ccy": "", "posSide": "long", "side": "sell", "sz": "250",
         "time": "1714521660000", "ts": "1714521660000"},
        {"bkLoss": "0", "bkPx": "40200.0", "ccy": "", "posSide": "short", "side": "buy", "sz": "3",
         "time": "1714521600000", "ts": "1714521600000"},
    ], "instFamily": "BTC-USDT", "instId": "BTC-USDT-SWAP", "instType": "SWAP", "totalLoss": "0", "uly": "BTC-USDT"},
    {"details": [
        {"bkLoss": "0", "bkPx": "40300.0", "ccy": "", "posSide": "net", "side": "sell", "sz": "7",
         "time": "1714521720000", "ts": "1714521720000"},
    ], "instFamily": "BTC-USD", "instId": "BTC-USD-SWAP", "instType": "SWAP", "totalLoss": "0", "uly": "BTC-USD"},
]


class FakeOkx(_Server):
    """OKX v5 public REST; open-interest history keeps only the last ``retention`` periods."""

    rate_limit_body = {"msg": "Too Many Requests", "code": "50011"}

    def __init__(self, *, now_ms: int, retention: int = 1440) -> None:
        super().__init__()
        self.now_ms, self.retention = now_ms, retention

    def route(self, path, q, headers):
        def ok(data):
            return 200, {"code": "0", "data": data, "msg": ""}, {}

        if path == "/api/v5/public/instruments":
            return ok({"SWAP": [OKX_SWAP, OKX_INVERSE]}.get(q.get("instType"), []))
        if path == "/api/v5/rubik/stat/contracts/open-interest-history":
            step = OKX_PERIODS[q["period"]]
            limit = min(100, int(q.get("limit", 100)))
            newest = self.now_ms // step * step
            oldest = newest - (self.retention - 1) * step
            end = min(int(q["end"]) - 1 if "end" in q else newest, newest)  # exclusive bounds
            begin = max(int(q["begin"]) + 1 if "begin" in q else oldest, oldest)
            first = -(-begin // step) * step
            stamps = list(range(first, end + 1, step))[::-1][:limit]
            return ok([[str(t), *okx_oi(t)] for t in stamps])
        if path == "/api/v5/public/liquidation-orders":
            if q.get("instType") != "SWAP" or q.get("state") != "filled":
                return 200, {"code": "51000", "data": [], "msg": "Parameter instType error"}, {}
            family = q.get("instFamily") or q.get("uly")
            after = int(q.get("after", 2**62))  # older than this ts
            out = []
            for group in OKX_LIQUIDATIONS:
                details = [d for d in group["details"] if int(d["ts"]) < after]
                if group["instFamily"] == family and details:
                    out.append({**group, "details": details})
            return ok(out)
        return 404, {"code": "50030", "data": [], "msg": f"unknown path {path}"}, {}


# -- Coinalyze -----------------------------------------------------------------------------------
COINALYZE_MARKETS = [
    {"symbol": "BTCUSDT_PERP.A", "exchange": "A", "symbol_on_exchange": "BTCUSDT", "base_asset": "BTC",
     "quote_asset": "USDT", "is_perpetual": True, "margined": "STABLE", "expire_at": None,
     "oi_lq_vol_denominated_in": "BASE_ASSET", "has_long_short_ratio_data": True, "has_ohlcv_data": True,
     "has_buy_sell_data": True},
    {"symbol": "BTCUSDT.6", "exchange": "6", "symbol_on_exchange": "BTCUSDT", "base_asset": "BTC",
     "quote_asset": "USDT", "is_perpetual": True, "margined": "STABLE", "expire_at": None,
     "oi_lq_vol_denominated_in": "BASE_ASSET", "has_long_short_ratio_data": True, "has_ohlcv_data": True,
     "has_buy_sell_data": True},
    {"symbol": "BTCUSDT_PERP.3", "exchange": "3", "symbol_on_exchange": "BTC-USDT-SWAP", "base_asset": "BTC",
     "quote_asset": "USDT", "is_perpetual": True, "margined": "STABLE", "expire_at": None,
     "oi_lq_vol_denominated_in": "BASE_ASSET", "has_long_short_ratio_data": True, "has_ohlcv_data": True,
     "has_buy_sell_data": True},
    {"symbol": "BTCUSD_PERP.A", "exchange": "A", "symbol_on_exchange": "BTCUSD_PERP", "base_asset": "BTC",
     "quote_asset": "USD", "is_perpetual": True, "margined": "COIN", "expire_at": None,
     "oi_lq_vol_denominated_in": "QUOTE_ASSET", "has_long_short_ratio_data": True, "has_ohlcv_data": True,
     "has_buy_sell_data": True},
]
COINALYZE_EXCHANGES = [{"name": "Binance", "code": "A"}, {"name": "OKX", "code": "3"}, {"name": "Bybit", "code": "6"}]
COINALYZE_SECONDS = {"1min": 60, "5min": 300, "15min": 900, "30min": 1800, "1hour": 3600, "2hour": 7200,
                     "4hour": 14400, "6hour": 21600, "12hour": 43200, "daily": 86400}


def coinalyze_liq(symbol: str, t: int) -> tuple[float, float]:
    """(long, short) USD liquidated in the interval starting at ``t`` (seconds)."""
    k = {"BTCUSDT_PERP.A": 1, "BTCUSDT.6": 2, "BTCUSDT_PERP.3": 3}.get(symbol, 9)
    return float(k * 1000 + t // 3600 % 100), float(k * 500 + t // 3600 % 50)


def coinalyze_oi(symbol: str, t: int) -> float:
    k = {"BTCUSDT_PERP.A": 1, "BTCUSDT.6": 2, "BTCUSDT_PERP.3": 3}.get(symbol, 9)
    return float(k * 1_000_000_000 + t // 3600 % 1000)


class FakeCoinalyze(_Server):
    """Coinalyze v1: needs the ``api_key`` header; intraday history only for the last ``intraday_points``."""

    def __init__(self, *, key: str, now_s: int, intraday_points: int = 1500) -> None:
        super().__init__()
        self.key, self.now_s, self.intraday_points = key, now_s, intraday_points

    def route(self, path, q, headers):
        if headers.get("api_key") != self.key:
            return 401, {"message": "Unauthorized"}, {}
        if path == "/v1/exchanges":
            return 200, COINALYZE_EXCHANGES, {}
        if path == "/v1/future-markets":
            return 200, COINALYZE_MARKETS, {}
        kinds = {"/v1/open-interest-history": "oi", "/v1/liquidation-history": "liq", "/v1/funding-rate-history": "fr"}
        if path not in kinds:
            return 404, {"message": "Not found"}, {}
        step = COINALYZE_SECONDS[q["interval"]]
        oldest = 0 if q["interval"] == "daily" else (self.now_s // step - self.intraday_points + 1) * step
        lo = max(int(q["from"]), oldest)
        hi = min(int(q["to"]), self.now_s)
        out = []
        for sym in q["symbols"].split(","):
            hist = []
            for t in range(-(-lo // step) * step, hi + 1, step):
                if kinds[path] == "liq":
                    long_, short = coinalyze_liq(sym, t)
                    hist.append({"t": t, "l": long_, "s": short})
                elif kinds[path] == "oi":
                    v = coinalyze_oi(sym, t)
                    hist.append({"t": t, "o": v - 5, "h": v + 10, "l": v - 10, "c": v})
                else:
                    hist.append({"t": t, "o": 0.01, "h": 0.012, "l": 0.009, "c": 0.01})
            out.append({"symbol": sym, "history": hist})
        return 200, out, {}
