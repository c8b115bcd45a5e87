"""Mutated importer inputs and the contract every loader must keep, for fuzzing.

Shared by ``tests/test_fuzz_importers.py`` (a bounded property-based run) and
``benchmarks/fuzz_importers.py`` (10,000 inputs). A case is one mutated file of one *kind*
(market, liquidations, the four Binance archive files, a stored Parquet file); each kind is read
by two or three loaders. Every call ends in one of:

``ok``
    the loader returned data that keeps the contract (see the ``*_violations`` functions);
``named``
    it raised :class:`~liqlab.core.market.MarketDataError` (or a subclass such as ``StoreError``)
    with a message of one line and at most :data:`MAX_MESSAGE` characters;
``crash``
    it raised anything else, or a named error with an unbounded message;
``hang``
    it used more CPU time than the time limit (or blocked for ten times as long);
``silent``
    a *silent acceptance*: it returned data that breaks the contract: a non-finite or
    non-positive price, high below low, open or close outside [low, high], negative or
    non-finite volume, open interest, ratio, funding or notional, a NaN in a required column,
    unsorted or repeated times, times outside 1970..2261, a side other than long/short, or a
    row with more fields than the header accepted (a field silently dropped).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import signal
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from liqlab.core.market import MarketDataError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KINDS = ("market", "liquidations", "klines", "metrics", "snapshot", "funding", "store")
MAX_MESSAGE = 600
FIRST = pd.Timestamp("1970-01-01", tz="UTC")
LAST = pd.Timestamp("2262-01-01", tz="UTC")
EX, SYM = "binanceusdm", "BTC/USDT:USDT"

HOSTILE_CELLS = (
    b"", b"nan", b"inf", b"-inf", b"-1", b"0", b"-0", b"1e309", b"99999999999999999999999", b"1e19",
    b"-5e3", b"9" * 30, b"abc", b"1,5", b"2300-01-01T00:00:00Z", b"0001-01-01", b"NaT", b"  ", b'"',
    b"x" * 5000, b"99999999999999", b"1727740800000", b"2024-10-01T00:00:00Z", b"SELL", b"long", b"1e-300",
    b"\xff\xfe", b"\xe2\x82\xac", b"0x10", b"1_000", b"+7", b".5", b"None", b"-9223372036854775809",
)


# -- seeds -------------------------------------------------------------------------------------------
def _market_seed(n: int = 48) -> bytes:
    rng = np.random.default_rng(7)
    ts = pd.date_range("2024-10-01", periods=n, freq="1h", tz="UTC")
    close = 63000 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    open_ = np.r_[63000.0, close[:-1]]
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    frame = pd.DataFrame({
        "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": open_.round(2), "high": high.round(2),
        "low": low.round(2), "close": close.round(2), "volume": rng.gamma(2, 50, n).round(3),
        "open_interest": (5e9 + rng.normal(0, 1e7, n)).round(0), "funding_rate": 0.0001,
        "long_short_ratio": (1.5 + rng.normal(0, 0.05, n)).round(4), "taker_buy_volume": rng.gamma(2, 20, n).round(3),
        "long_usd": rng.gamma(1, 1e5, n).round(1), "short_usd": rng.gamma(1, 1e5, n).round(1),
    })
    return frame.to_csv(index=False).encode()


def _events_seed() -> bytes:
    return (b"timestamp,side,price,notional\n2024-10-01T00:10:00Z,long,63000,5000\n"
            b"2024-10-01T01:20:00Z,short,63400,2500\n2024-10-01T01:20:00Z,short,63400,2500\n"
            b"2024-10-01T05:00:00Z,SELL,62900,100\n")


def seeds() -> dict[str, list[tuple[str, bytes]]]:
    """Per kind, the valid files mutations start from: ``(file name, content)``."""
    arc = FIXTURES / "binance_archive"
    mf = FIXTURES / "market_files"
    with zipfile.ZipFile(arc / "BTCUSDT-5m-2024-10-01.zip") as z:
        klines_5m = z.read("BTCUSDT-5m-2024-10-01.csv")
    return {
        "market": [("m.csv", _market_seed()), ("m.csv", (mf / "market_iso.csv").read_bytes()),
                   ("m.csv", (mf / "market_epoch_ms.csv").read_bytes())],
        "liquidations": [("l.csv", (mf / "liq_bars.csv").read_bytes()), ("l.csv", (mf / "liq_events.csv").read_bytes()),
                         ("l.csv", _events_seed())],
        "klines": [("k.csv", klines_5m), ("k.csv", (arc / "BTCUSDT-1m-2020-01-01.csv").read_bytes()),
                   ("k.csv", (arc / "BTCUSDT-5m-2025-01-01.spot-us.csv").read_bytes())],
        "metrics": [("x.csv", (arc / "BTCUSDT-metrics-2024-10-01.csv").read_bytes())],
        "snapshot": [("s.csv", (arc / "BTCUSDT-liquidationSnapshot-2024-10-01.csv").read_bytes()),
                     ("s.csv", (arc / "BTCUSD_PERP-liquidationSnapshot-2024-10-02.csv").read_bytes())],
        "funding": [("f.csv", (arc / "BTCUSDT-fundingRate-2024-10.csv").read_bytes())],
        "store": [("ohlcv", b"")],
    }


# -- mutations ------------------------------------------------------------------------------------------
def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _pick(rng: np.random.Generator, n: int, start: int = 0) -> int:
    return int(rng.integers(start, max(start + 1, n)))


def flip_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    raw = bytearray(data)
    for _ in range(int(rng.integers(1, 8))):
        if raw:
            raw[_pick(rng, len(raw))] = int(rng.integers(0, 256))
    return bytes(raw)


def delete_slice(data: bytes, rng: np.random.Generator) -> bytes:
    a = _pick(rng, len(data))
    return data[:a] + data[a + int(rng.integers(1, 200)):]


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: _pick(rng, len(data))]


def duplicate_line(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    i = _pick(rng, len(lines))
    return b"\n".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])


def swap_lines(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    i, j = _pick(rng, len(lines), 1), _pick(rng, len(lines), 1)
    if i < len(lines) and j < len(lines):
        lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _edit_cell(data: bytes, rng: np.random.Generator, edit: Callable[[bytes], bytes], header: bool = False) -> bytes:
    lines = _lines(data)
    i = 0 if header else _pick(rng, len(lines), 1 if len(lines) > 1 else 0)
    if i >= len(lines):
        return data
    cells = lines[i].split(b",")
    j = _pick(rng, len(cells))
    cells[j] = edit(cells[j])
    lines[i] = b",".join(cells)
    return b"\n".join(lines)


def hostile_cell(data: bytes, rng: np.random.Generator) -> bytes:
    value = HOSTILE_CELLS[_pick(rng, len(HOSTILE_CELLS))]
    return _edit_cell(data, rng, lambda _: value)


def negate_cell(data: bytes, rng: np.random.Generator) -> bytes:
    return _edit_cell(data, rng, lambda c: c[1:] if c.startswith(b"-") else b"-" + c)


def scale_cell(data: bytes, rng: np.random.Generator) -> bytes:
    factor = (b"e30", b"e-30", b"000000", b"e300")[_pick(rng, 4)]
    return _edit_cell(data, rng, lambda c: c + factor)


def extra_field(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    i = _pick(rng, min(len(lines), 4), 1) if rng.random() < 0.6 else _pick(rng, len(lines), 1)
    if i < len(lines):
        lines[i] = lines[i] + b"," + HOSTILE_CELLS[_pick(rng, 6)]
    return b"\n".join(lines)


def drop_field(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    i = _pick(rng, len(lines))
    lines[i] = lines[i].rsplit(b",", 1)[0]
    return b"\n".join(lines)


def swap_high_low(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    i = _pick(rng, len(lines), 1)
    if i < len(lines):
        cells = lines[i].split(b",")
        if len(cells) > 3:
            cells[2], cells[3] = cells[3], cells[2]
        lines[i] = b",".join(cells)
    return b"\n".join(lines)


def mangle_header(data: bytes, rng: np.random.Generator) -> bytes:
    choice = _pick(rng, 5)
    if choice == 0:  # a name repeated in another case
        return _edit_cell(data, rng, lambda c: c.upper() + b"," + b" " + c, header=True)
    if choice == 1:  # quoted names
        lines = _lines(data)
        lines[0] = b",".join(b'"' + c + b'"' for c in lines[0].split(b","))
        return b"\n".join(lines)
    if choice == 2:
        return _edit_cell(data, rng, lambda c: HOSTILE_CELLS[_pick(rng, len(HOSTILE_CELLS))], header=True)
    if choice == 3:
        return b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
    return _edit_cell(data, rng, lambda c: c.upper(), header=True)


def long_line(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    i = _pick(rng, len(lines))
    fill = (b",", b"9", b" ")[_pick(rng, 3)] * int(rng.integers(5_000, 400_000))
    return b"\n".join(lines[:i] + [fill] + lines[i:])


def blank_lines(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    i = _pick(rng, len(lines))
    return b"\n".join(lines[:i] + [b"", b" ", b","] [: _pick(rng, 3) + 1] + lines[i:])


def repeat_rows(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    return b"\n".join(lines + lines[1:] * int(rng.integers(1, 4)))


MUTATORS: tuple[Callable[[bytes, np.random.Generator], bytes], ...] = (
    flip_bytes, delete_slice, truncate, duplicate_line, swap_lines, hostile_cell, hostile_cell, hostile_cell,
    negate_cell, scale_cell, extra_field, drop_field, swap_high_low, mangle_header, long_line, blank_lines,
    repeat_rows,
)


# -- stored files -------------------------------------------------------------------------------------
def _store_table(rng: np.random.Generator):
    """A stored ohlcv table, damaged in one of the ways a foreign or broken writer could."""
    import pyarrow as pa

    ts = pd.date_range("2024-10-01", periods=24, freq="5min", tz="UTC").as_unit("ms")
    price = 63000 + np.arange(24.0)
    cols: dict[str, object] = {"timestamp": pa.array(ts), "open": price, "high": price + 5, "low": price - 5,
                               "close": price, "volume": np.ones(24)}
    meta = json.dumps({"coverage": [[int(ts[0].value // 10**6), int(ts[-1].value // 10**6)]]}).encode()
    choice = _pick(rng, 12)
    if choice == 0:
        cols["timestamp"] = pa.array([str(t) for t in ts])
    elif choice == 1:
        cols["timestamp"] = pa.array(ts.asi8 // 1000)
    elif choice == 2:
        cols["close"] = pa.array([str(v) for v in price])
    elif choice == 3:
        del cols["volume"]
    elif choice == 4:
        cols["timestamp"] = pa.array(ts[rng.permutation(24)])
    elif choice == 5:
        cols["timestamp"] = pa.array(ts[np.r_[0, np.arange(23)]])
    elif choice == 6:
        cols["timestamp"] = pa.array([None] + list(ts[1:]), type=pa.timestamp("ms", tz="UTC"))
    elif choice == 7:
        meta = HOSTILE_CELLS[_pick(rng, len(HOSTILE_CELLS))] or b"{"
    elif choice == 8:
        meta = (b'{"coverage": [[1]]}', b'{"coverage": "all"}', b"[]", b'{"coverage": [["a", 2]]}')[_pick(rng, 4)]
    elif choice == 9:
        cols["timestamp"] = pa.array(ts.as_unit("us"))
    elif choice == 10:
        cols["high"] = pa.array([True] * 24)
    table = pa.table(cols).replace_schema_metadata({b"liqlab": meta})
    return table


def store_bytes(rng: np.random.Generator) -> bytes:
    """Bytes of a damaged stored ohlcv file (a damaged table, or a good one with bytes flipped)."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(_store_table(rng), buf)
    data = buf.getvalue()
    if rng.random() < 0.3:
        data = (flip_bytes, truncate, delete_slice)[_pick(rng, 3)](data, rng)
    return data


# -- cases ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One mutated input file."""

    kind: str
    name: str
    data: bytes


def make_case(kind: str, seed_index: int, steps: Sequence[tuple[int, int]], container: int = 0) -> Case:
    """Apply ``steps`` (mutator index, random seed) to seed file ``seed_index`` of ``kind``.

    ``container`` picks how a text file is wrapped: 0 plain, 1 gzip (market) or zip (archive
    files), 2 Parquet (market), 3 gzip corrupted after compression.
    """
    if kind == "store":
        return Case(kind, "ohlcv_5m.parquet", store_bytes(np.random.default_rng(steps[0][1] if steps else 0)))
    options = seeds()[kind]
    name, data = options[seed_index % len(options)]
    for mutator, seed in steps:
        data = MUTATORS[mutator % len(MUTATORS)](data, np.random.default_rng(seed))
    container %= 4
    if kind == "market" and container in (1, 3):
        data = gzip.compress(data)
        if container == 3:
            data = flip_bytes(data, np.random.default_rng(len(data)))
        return Case(kind, name + ".gz", data)
    if kind == "market" and container == 2:
        return Case(kind, "m.parquet", _as_parquet(data))
    if kind in ("klines", "metrics", "snapshot", "funding") and container == 1:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name, data)
        raw = buf.getvalue()
        if seed_index % 2:
            raw = flip_bytes(raw, np.random.default_rng(len(raw)))
        return Case(kind, name.replace(".csv", ".zip"), raw)
    return Case(kind, name, data)


def _as_parquet(data: bytes) -> bytes:
    """The CSV text as a Parquet file with inferred column types (or the bytes, when unreadable)."""
    try:
        frame = pd.read_csv(io.BytesIO(data))
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue()
    except Exception:
        return b"PAR1" + data[:2000] + b"PAR1"


def random_case(rng: np.random.Generator) -> Case:
    """A random case: a kind, a seed, one to three mutations, a container."""
    kind = KINDS[_pick(rng, len(KINDS))]
    steps = [(int(rng.integers(0, len(MUTATORS))), int(rng.integers(0, 2**32))) for _ in range(int(rng.integers(1, 4)))]
    return make_case(kind, int(rng.integers(0, 3)), steps, int(rng.integers(0, 4)) if rng.random() < 0.4 else 0)


# -- the contract ------------------------------------------------------------------------------------
def _times(index: pd.DatetimeIndex | pd.Series, what: str) -> list[str]:
    index = pd.DatetimeIndex(index)
    out = []
    if index.tz is None:
        out.append(f"{what}: naive times")
    if index.isna().any():
        out.append(f"{what}: NaT")
    elif len(index):
        if not index.is_monotonic_increasing:
            out.append(f"{what}: unsorted times")
        if index.min() < FIRST or index.max() >= LAST:
            out.append(f"{what}: times outside 1970..2261")
    return out


def _finite(frame: pd.DataFrame, cols: Sequence[str], what: str, *, allow_nan: bool = False) -> list[str]:
    out = []
    for c in cols:
        if c in frame:
            v = frame[c].to_numpy(dtype=np.float64)
            bad = np.isinf(v) if allow_nan else ~np.isfinite(v)
            if bad.any():
                out.append(f"{what}: non-finite {c}")
    return out


def _non_negative(frame: pd.DataFrame, cols: Sequence[str], what: str) -> list[str]:
    return [f"{what}: negative {c}" for c in cols if c in frame and (frame[c].to_numpy(dtype=np.float64) < 0).any()]


def candles_violations(frame: pd.DataFrame, what: str = "candles") -> list[str]:
    """Broken promises of a candle frame (load_candles_file, read_klines, Market.data)."""
    out = _times(frame.index, what)
    if frame.index.has_duplicates:
        out.append(f"{what}: repeated times")
    out += _finite(frame, ("open", "high", "low", "close", "volume"), what)
    out += _finite(frame, ("taker_buy_volume",), what, allow_nan=True)
    o, h, l, c = (frame[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    with np.errstate(invalid="ignore"):
        if not ((o > 0) & (h > 0) & (l > 0) & (c > 0)).all():
            out.append(f"{what}: price not positive")
        if (h < l).any():
            out.append(f"{what}: high below low")
        tol = 1e-9 * h
        if ((np.maximum(o, c) > h + tol) | (np.minimum(o, c) < l - tol)).any():
            out.append(f"{what}: open/close outside [low, high]")
    return out + _non_negative(frame, ("volume", "taker_buy_volume"), what)


def events_violations(events: pd.DataFrame, what: str = "events") -> list[str]:
    out = _times(events["timestamp"], what)
    if not set(events["side"]).issubset({"long", "short"}):
        out.append(f"{what}: side not long/short")
    out += _finite(events, ("price", "notional"), what)
    with np.errstate(invalid="ignore"):
        if not (events["price"].to_numpy(dtype=np.float64) > 0).all():
            out.append(f"{what}: price not positive")
    return out + _non_negative(events, ("notional", "quantity"), what)


def bars_violations(bars: pd.DataFrame, what: str = "bars") -> list[str]:
    out = _times(bars.index, what)
    if bars.index.has_duplicates:
        out.append(f"{what}: repeated times")
    return out + _finite(bars, ("long_usd", "short_usd"), what) + _non_negative(bars, ("long_usd", "short_usd"), what)


def market_violations(market) -> list[str]:
    """Broken promises of a validated Market."""
    data = market.data
    out = candles_violations(data, "market")
    out += _finite(data, ("open_interest", "funding_rate", "long_short_ratio", "taker_buy_volume"), "market")
    out += _non_negative(data, ("open_interest", "long_short_ratio"), "market")
    if market.liquidations is not None:
        out += bars_violations(market.liquidations, "market bars")
        if not market.liquidations.index.equals(data.index):
            out.append("market bars: not on the candle index")
    if market.liquidation_events is not None:
        out += events_violations(market.liquidation_events, "market events")
    return out


def metrics_violations(frame: pd.DataFrame) -> list[str]:
    out = _times(frame.index, "metrics")
    if frame.index.has_duplicates:
        out.append("metrics: repeated times")
    out += _finite(frame, list(frame.columns), "metrics", allow_nan=True)
    return out + _non_negative(frame, list(frame.columns), "metrics")


def funding_violations(series: pd.Series) -> list[str]:
    out = _times(series.index, "funding")
    if series.index.has_duplicates:
        out.append("funding: repeated times")
    return out + _finite(series.to_frame(), ("funding_rate",), "funding")


def store_violations(frame: pd.DataFrame) -> list[str]:
    """A frame read from the store: the kind's numeric columns and times sorted, unique, UTC."""
    out = _times(frame["timestamp"], "store")
    if frame["timestamp"].duplicated().any():
        out.append("store: repeated times")
    for c in ("open", "high", "low", "close", "volume"):
        if c not in frame or not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]):
            out.append(f"store: column {c} missing or not numeric")
    return out


def dropped_field(case: Case) -> bool:
    """True when the file has a header row and some row has more fields than it (a field to drop)."""
    raw = case.data
    if case.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except Exception:
            return False
    elif not case.name.endswith(".csv"):
        return False
    if len(raw) > 2_000_000:
        return False
    try:
        text = raw.decode("utf-8-sig")
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    except (UnicodeDecodeError, csv.Error):
        return False
    if not rows:
        return False
    first = rows[0][0].strip().strip("\"'").strip()
    if case.kind in ("klines", "metrics", "snapshot", "funding") and not first.replace("_", "").replace(" ", "").isalpha():
        return False  # a headerless archive file: its first line sets the width
    return any(len(r) > len(rows[0]) for r in rows[1:])


# -- running one case ------------------------------------------------------------------------------------
class _TimeLimit(BaseException):
    """Raised in a call that runs past its time limit (a BaseException: loaders cannot swallow it)."""


def _on_alarm(signum, frame):
    raise _TimeLimit()


@dataclass(frozen=True)
class Outcome:
    call: str
    status: str  # ok | named | crash | hang | silent
    detail: str
    seconds: float


class Workdir:
    """Seed files on disk that loaders combine with the mutated one."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        arc = FIXTURES / "binance_archive"
        self.archive = {
            "klines": arc / "BTCUSDT-5m-2024-10-01.zip",
            "metrics": arc / "BTCUSDT-metrics-2024-10-01.csv",
            "snapshot": arc / "BTCUSDT-liquidationSnapshot-2024-10-01.csv",
            "funding": arc / "BTCUSDT-fundingRate-2024-10.csv",
        }
        self.market = self.root / "seed_market.csv"
        self.market.write_bytes(_market_seed())
        self.counter = 0

    def place(self, case: Case) -> Path:
        self.counter += 1
        folder = self.root / f"c{self.counter % 8}"
        folder.mkdir(exist_ok=True)
        path = folder / case.name
        if path.is_dir():
            path.rmdir()
        path.write_bytes(case.data)
        return path

    def store_with(self, case: Case):
        """A store holding the mutated ohlcv file and a valid open-interest file."""
        from liqlab.sources.store import Store

        self.counter += 1
        store = Store(self.root / f"store{self.counter % 8}")
        oi = store.path(EX, SYM, "open_interest", "5m")
        if not oi.exists():
            ts = pd.date_range("2024-10-01", periods=24, freq="5min", tz="UTC")
            store.write(EX, SYM, "open_interest", "5m",
                        pd.DataFrame({"timestamp": ts, "open_interest_value": 5e9, "open_interest_amount": np.nan}))
        path = store.path(EX, SYM, "ohlcv", "5m")
        for stale in path.parent.glob(".tmp-*"):
            stale.unlink()
        path.write_bytes(case.data)
        return store


def _calls(case: Case, work: Workdir) -> list[tuple[str, Callable[[], object], Callable[[object], list[str]]]]:
    from liqlab.sources import binance_archive as ba
    from liqlab.sources import csv_files as cf
    from liqlab.sources.loader import read_market

    kind = case.kind
    if kind == "store":
        store = work.store_with(case)
        return [
            ("store.read", lambda: store.read(EX, SYM, "ohlcv", "5m"), store_violations),
            ("store.coverage", lambda: store.coverage(EX, SYM, "ohlcv", "5m"),
             lambda cov: [] if all(isinstance(a, int) and a <= b for a, b in cov) else ["store: bad coverage"]),
            ("read_market(store)", lambda: read_market(store, EX, SYM, "5m", "2024-10-01", "2024-10-01 02:00"),
             market_violations),
        ]
    path = work.place(case)
    if kind == "market":
        return [
            ("load_market_file", lambda: cf.load_market_file(path, gaps="keep"), market_violations),
            ("load_candles_file", lambda: cf.load_candles_file(path), candles_violations),
        ]
    if kind == "liquidations":
        def liq_check(result):
            bars, events = result
            return (bars_violations(bars) if bars is not None else []) + (
                events_violations(events) if events is not None else [])
        return [
            ("load_liquidations_file", lambda: cf.load_liquidations_file(path), liq_check),
            ("load_market_file(liquidations=)", lambda: cf.load_market_file(work.market, liquidations=path, gaps="keep"),
             market_violations),
        ]
    files = {k: [p] for k, p in work.archive.items()}
    files[kind] = [path]
    archive = lambda: ba.load_binance_archive(  # noqa: E731
        klines=files["klines"], metrics=files["metrics"], liquidations=files["snapshot"], funding=files["funding"],
        symbol="BTCUSDT", gaps="keep")
    reader = {
        "klines": ("read_klines", lambda: ba.read_klines(path), candles_violations),
        "metrics": ("read_metrics", lambda: ba.read_metrics(path), metrics_violations),
        "snapshot": ("read_liquidation_snapshot", lambda: ba.read_liquidation_snapshot(path), events_violations),
        "funding": ("read_funding_rate", lambda: ba.read_funding_rate(path), funding_violations),
    }[kind]
    return [reader, ("load_binance_archive", archive, market_violations)]


#: A call is also stopped after this many times its CPU limit in wall-clock time (it is blocked).
WALL_FACTOR = 10


def _timed(call: Callable[[], object], time_limit: float) -> tuple[object, BaseException | None, float, bool]:
    """Run ``call`` with a CPU-time limit: ``(result, exception, wall seconds, over the limit)``.

    The limit counts the CPU time this process spends (``ITIMER_PROF``), so a busy machine does
    not turn a slow call into a hang; a wall-clock backstop of ``WALL_FACTOR`` times the limit
    catches calls that block. Where interval timers do not exist, wall time is compared after
    the call returns.
    """
    timers = hasattr(signal, "setitimer") and hasattr(signal, "SIGPROF")
    previous = {}
    if timers:
        for sig in (signal.SIGPROF, signal.SIGALRM):
            previous[sig] = signal.signal(sig, _on_alarm)
    t0, c0 = time.perf_counter(), time.process_time()
    result, error, timed_out = None, None, False
    try:
        if timers:
            signal.setitimer(signal.ITIMER_PROF, time_limit)
            signal.setitimer(signal.ITIMER_REAL, time_limit * WALL_FACTOR)
        try:
            result = call()
        finally:
            if timers:
                signal.setitimer(signal.ITIMER_PROF, 0)
                signal.setitimer(signal.ITIMER_REAL, 0)
    except _TimeLimit:
        timed_out = True
    except Exception as exc:  # classified by the caller
        error = exc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    over = timed_out or cpu > time_limit or (not timers and seconds > time_limit)
    return result, error, seconds, over


def _classify(name: str, result: object, error: BaseException | None, seconds: float,
              check: Callable[[object], list[str]], dropped: bool) -> Outcome:
    if isinstance(error, MarketDataError):
        message = str(error)
        if len(message) > MAX_MESSAGE or "\n" in message:
            return Outcome(name, "crash", f"unbounded message ({len(message)} chars)", seconds)
        return Outcome(name, "named", message[:200], seconds)
    if error is not None:
        return Outcome(name, "crash", f"{type(error).__name__}: {str(error)[:160]}", seconds)
    problems = check(result)
    if dropped:
        problems = problems + ["a row with more fields than the header was accepted"]
    return Outcome(name, "silent" if problems else "ok", "; ".join(problems)[:200], seconds)


def run_case(case: Case, work: Workdir, time_limit: float = 2.0) -> list[Outcome]:
    """Run every loader of ``case.kind`` on it and classify each call.

    A call is a hang when it uses more than ``time_limit`` seconds of CPU time, or blocks for
    more than ``WALL_FACTOR`` times that (see :func:`_timed`).
    """
    outcomes = []
    dropped = dropped_field(case) and case.kind != "store"
    for name, call, check in _calls(case, work):
        result, error, seconds, over = _timed(call, time_limit)
        if over:
            outcomes.append(Outcome(name, "hang", f"over {time_limit} s of CPU time", seconds))
            continue
        outcomes.append(_classify(name, result, error, seconds, check, dropped))
    return outcomes
