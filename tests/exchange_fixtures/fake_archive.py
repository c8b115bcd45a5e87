"""A local stand-in for the Binance public archive (data.binance.vision), on 127.0.0.1.

Files live under a temporary folder in the archive's real layout
(``data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-01.zip`` and its
``.zip.CHECKSUM``: ``<sha256 hex>  <file name>``, as the archive writes them). The builders write
zips with one CSV inside, with or without a header row, and generate deterministic rows;
``faults`` makes the next requests of a path slow, fail, or stop half-way through the body.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
import time
import zipfile
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                "taker_buy_volume,taker_buy_quote_volume,ignore")
METRICS_HEADER = ("create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
                  "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio")
FUNDING_HEADER = "calc_time,funding_interval_hours,last_funding_rate"
SNAPSHOT_HEADER = ("time,side,order_type,time_in_force,original_quantity,price,average_price,order_status,"
                   "last_fill_quantity,accumulated_fill_quantity")
MS_DAY = 86_400_000


def ms(d: date) -> int:
    return int((d - date(1970, 1, 1)).days * MS_DAY)


def price_at(t_ms: int) -> float:
    """Deterministic price: whole cents, so CSV round trips are exact."""
    return round(40000.0 + 2000.0 * math.sin(t_ms / 4.1e8) + 150.0 * math.sin(t_ms / 7.3e6), 1)


def oi_value_at(t_ms: int) -> float:
    return round(5.0e9 + 4.0e8 * math.sin(t_ms / 9.7e8), 2)


def klines_csv(start_ms: int, n: int, step_ms: int = 300_000, header: bool = True) -> str:
    lines = [KLINE_HEADER] if header else []
    for i in range(n):
        t = start_ms + i * step_ms
        o, c = price_at(t), price_at(t + step_ms)
        hi, lo = round(max(o, c) + 5.0, 1), round(min(o, c) - 5.0, 1)
        v = 100 + (i % 7)
        lines.append(f"{t},{o},{hi},{lo},{c},{v},{t + step_ms - 1},{round(v * c, 2)},{50 + i % 5},{v // 2},"
                     f"{round(v // 2 * c, 2)},0")
    return "\n".join(lines) + "\n"


def metrics_csv(day: date, labels: str = "end", header: bool = True, symbol: str = "BTCUSDT") -> str:
    """One day of 5-minute metrics rows; ``labels`` says how rows are stamped.

    The value of the period ``[t, t+5m)`` is the open interest at ``t + 5m`` (``oi_value_at``);
    with ``labels="end"`` the row is stamped ``t + 5m``, with ``"start"`` it is stamped ``t``.
    Rows run from the day's 00:00 to 23:55 stamps either way, as the archive files do.
    """
    lines = [METRICS_HEADER] if header else []
    base = ms(day)
    for i in range(288):
        stamp = base + i * 300_000
        taken = stamp if labels == "end" else stamp + 300_000
        value = oi_value_at(taken)
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp / 1000))
        lines.append(f"{t},{symbol},{round(value / 40000.0, 3)},{value},1.5,1.6,1.4,0.9")
    return "\n".join(lines) + "\n"


def funding_csv(month: date, header: bool = True) -> str:
    lines = [FUNDING_HEADER] if header else []
    d = month
    while d.month == month.month:
        for h in (0, 8, 16):
            t = ms(d) + h * 3_600_000
            lines.append(f"{t + 3},8,{0.0001 if h != 8 else -0.00005}")
        d += timedelta(days=1)
    return "\n".join(lines) + "\n"


def zip_bytes(member: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, text)
    return buf.getvalue()


class FakeArchive:
    """Serve a folder laid out like the Binance archive; use as a context manager.

    Attributes
    ----------
    root
        The folder served (it holds ``data/``).
    requests
        Paths requested, in order.
    faults
        ``path -> list`` consumed one per request: ``"slow"`` (answer after ``slow_seconds``),
        ``"truncate"`` (send half the body, announcing all of it, then close), ``"500"``.
    """

    def __init__(self, root: Path, *, slow_seconds: float = 1.0) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[str] = []
        self.faults: dict[str, list[str]] = {}
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
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

    def __enter__(self) -> FakeArchive:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def zip_requests(self) -> list[str]:
        with self._lock:
            return [p for p in self.requests if p.endswith(".zip")]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- building files -----------------------------------------------------------------------
    def add(self, relpath: str, text: str, *, checksum: str | None = "auto", raw: bytes | None = None) -> Path:
        """Write ``relpath`` (a zip holding ``text`` as one CSV) and its ``.CHECKSUM``.

        ``checksum="auto"`` writes the true SHA-256, a hex string writes that one, None writes none.
        ``raw`` writes these bytes as the zip instead.
        """
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        data = raw if raw is not None else zip_bytes(path.name[:-4] + ".csv", text)
        path.write_bytes(data)
        if checksum is not None:
            digest = hashlib.sha256(data).hexdigest() if checksum == "auto" else checksum
            Path(str(path) + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
        return path

    # -- serving ------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(path)
            queue = self.faults.get(path) or []
            fault = queue.pop(0) if queue else None
        if fault == "500":
            return self._send(h, 500, b"<html>Internal Server Error</html>")
        if fault == "slow":
            time.sleep(self.slow_seconds)
        target = (self.root / path.lstrip("/")).resolve()
        if self.root.resolve() not in target.parents or not target.is_file():
            return self._send(h, 404, b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>")
        data = target.read_bytes()
        if fault == "truncate":
            h.send_response(200)
            h.send_header("Content-Type", "application/zip")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        self._send(h, 200, data)

    @staticmethod
    def _send(h, status: int, data: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/zip" if status == 200 else "application/xml")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def build_year(archive: FakeArchive, year: int, symbol: str = "BTCUSDT") -> dict[str, int]:
    """A year of 5-minute klines (monthly files), daily metrics and monthly funding for ``symbol``."""
    counts = {"klines": 0, "metrics": 0, "funding": 0}
    base = "data/futures/um"
    for m in range(1, 13):
        month = date(year, m, 1)
        nxt = date(year + (m == 12), m % 12 + 1, 1)
        n = (nxt - month).days * 288
        archive.add(f"{base}/monthly/klines/{symbol}/5m/{symbol}-5m-{month:%Y-%m}.zip", klines_csv(ms(month), n))
        archive.add(f"{base}/monthly/fundingRate/{symbol}/{symbol}-fundingRate-{month:%Y-%m}.zip", funding_csv(month))
        counts["klines"] += n
        counts["funding"] += (nxt - month).days * 3
    d = date(year, 1, 1)
    while d.year == year:
        archive.add(f"{base}/daily/metrics/{symbol}/{symbol}-metrics-{d}.zip", metrics_csv(d, symbol=symbol))
        counts["metrics"] += 288
        d += timedelta(days=1)
    return counts
