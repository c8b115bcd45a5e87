"""A local Parquet store for exchange data: incremental, atomic, safe under concurrent writers.

Layout under the data directory (see :func:`default_data_dir`)::

    <root>/<exchange>/<SYMBOL>/<kind>[_<period>].parquet     e.g. binanceusdm/BTC_USDT_USDT/ohlcv_5m.parquet
    <root>/<exchange>/markets.json                          cached market list (avoids a request per refresh)

Every file carries, in its Parquet metadata, the exchange, the symbol and the time ranges already
fetched (``coverage``), so that a refresh asks the exchange only for what is missing, including
ranges the exchange had no rows for.

Writes take an exclusive ``fcntl.flock`` on a sidecar ``.lock`` file, re-read the current file,
merge, write a temporary file in the same directory, ``fsync`` it and ``os.replace`` it over the
old one. Two processes updating the same file therefore both land, and a writer killed at any
moment leaves either the old file or the new one, never a torn one. Reads check the file and its
schema and raise :class:`StoreError` saying which file to delete and what to run to rebuild it.
"""

from __future__ import annotations

import fcntl
import json
import os

import platformdirs
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from liqlab.core.market import EVENT_COLUMNS, MarketDataError

ENV_VAR = "LIQLAB_DATA_DIR"

#: Columns each kind of file must hold (besides ``timestamp``).
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "ohlcv": ("open", "high", "low", "close", "volume"),
    "open_interest": ("open_interest_value", "open_interest_amount"),
    "funding": ("funding_rate",),
    "long_short": ("long_short_ratio",),
    "ratios": ("top_trader_account_ratio", "top_trader_position_ratio", "taker_buy_sell_ratio"),
    "liquidations": ("side", "price", "notional"),
    "liquidation_bars": ("long_usd", "short_usd"),
}
_META_KEY = b"liqlab"
_TMP_PREFIX = ".tmp-"


class StoreError(MarketDataError):
    """A stored file that cannot be read or written; the message says how to repair it."""


def default_data_dir() -> Path:
    """The store directory: ``$LIQLAB_DATA_DIR``, else the user data folder that
    :func:`platformdirs.user_data_dir` names for liqlab, plus ``store`` (``~/.local/share/liqlab/store``
    on Linux)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("liqlab", appauthor=False)) / "store"


def safe_name(symbol: str) -> str:
    """A file-system-safe folder name for a symbol (``BTC/USDT:USDT`` -> ``BTC_USDT_USDT``)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", str(symbol)).strip("_") or "_"


def to_ms(value) -> int:
    """Milliseconds since the epoch (UTC) for a Timestamp, datetime, ISO string or int ms."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value // 1_000_000)


def merge_ranges(ranges) -> list[tuple[int, int]]:
    """Union of closed integer ranges ``[a, b]`` (touching ranges ``b + 1 == a`` are joined)."""
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges if b >= a):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def subtract_ranges(start: int, end: int, covered) -> list[tuple[int, int]]:
    """The parts of ``[start, end]`` not inside any of ``covered``."""
    missing, cursor = [], start
    for a, b in merge_ranges(covered):
        if b < cursor:
            continue
        if a > end:
            break
        if a > cursor:
            missing.append((cursor, a - 1))
        cursor = max(cursor, b + 1)
    if cursor <= end:
        missing.append((cursor, end))
    return missing


@dataclass(frozen=True)
class StoredFile:
    """One file of the store, as listed by :meth:`Store.entries`."""

    exchange: str
    symbol: str
    kind: str
    period: str | None
    path: Path
    rows: int
    coverage: tuple[tuple[int, int], ...]


class Store:
    """Parquet files of exchange data under one directory.

    Parameters
    ----------
    root
        Data directory; defaults to :func:`default_data_dir` (``$LIQLAB_DATA_DIR`` overrides it).
    lock_timeout
        Seconds to wait for another process's write lock before giving up.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, lock_timeout: float = 60.0) -> None:
        self.root = Path(root).expanduser() if root is not None else default_data_dir()
        self.lock_timeout = float(lock_timeout)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- paths --------------------------------------------------------------------------------
    def path(self, exchange: str, symbol: str, kind: str, period: str | None = None) -> Path:
        """The Parquet file holding ``kind`` (``ohlcv``, ``open_interest``, ...) for one symbol."""
        if kind not in KIND_COLUMNS:
            raise ValueError(f"unknown data kind {kind!r}; use one of {sorted(KIND_COLUMNS)}")
        name = kind if period is None else f"{kind}_{period}"
        return self.root / safe_name(exchange) / safe_name(symbol) / f"{name}.parquet"

    # -- reading ------------------------------------------------------------------------------
    def _repair_hint(self, path: Path, exchange: str, symbol: str, kind: str) -> str:
        if kind == "liquidations":
            again = f"`liqlab record {exchange} {symbol}` or re-import the archive"
        else:
            again = f"`liqlab fetch {exchange} {symbol} --since ... --until ...`"
        return f"delete {path} and run {again} to rebuild it"

    def _read_table(self, path: Path, exchange: str, symbol: str, kind: str):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            # one open file descriptor: a concurrent os.replace cannot mix two versions
            source = pa.memory_map(str(path), "r")
        except FileNotFoundError:
            return None
        try:
            # (not closed explicitly: the table's buffers may still point into the mapping)
            table = pq.read_table(source)
        except FileNotFoundError:
            return None
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise StoreError(
                f"stored file {path} for {exchange} {symbol} is unreadable ({str(exc).strip()[:160]}); "
                + self._repair_hint(path, exchange, symbol, kind)
            ) from exc
        need = ("timestamp", *KIND_COLUMNS[kind])
        missing = [c for c in need if c not in table.column_names]
        if missing:
            raise StoreError(
                f"stored file {path} for {exchange} {symbol} lacks column(s) {missing}; "
                + self._repair_hint(path, exchange, symbol, kind)
            )
        return table

    @staticmethod
    def _meta(table) -> dict:
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return {}

    def coverage(self, exchange: str, symbol: str, kind: str, period: str | None = None) -> list[tuple[int, int]]:
        """Time ranges (ms, inclusive) already fetched into this file."""
        import pyarrow.parquet as pq

        path = self.path(exchange, symbol, kind, period)
        if not path.exists():
            return []
        try:
            with open(path, "rb") as fh:
                meta = pq.read_schema(fh).metadata or {}
        except FileNotFoundError:
            return []
        except Exception:
            # a damaged file: let read() produce the detailed error; for planning, nothing is stored
            self._read_table(path, exchange, symbol, kind)
            return []
        raw = meta.get(_META_KEY)
        return merge_ranges(json.loads(raw).get("coverage", [])) if raw else []

    def missing(
        self, exchange: str, symbol: str, kind: str, period: str | None, start, end
    ) -> list[tuple[int, int]]:
        """Ranges of ``[start, end]`` (ms, inclusive) not yet fetched for this file."""
        return subtract_ranges(to_ms(start), to_ms(end), self.coverage(exchange, symbol, kind, period))

    def read(
        self,
        exchange: str,
        symbol: str,
        kind: str,
        period: str | None = None,
        start=None,
        end=None,
    ) -> pd.DataFrame:
        """Stored rows with ``start <= timestamp <= end`` (either may be None), sorted by time.

        Returns an empty frame with the kind's columns when nothing is stored.

        Raises
        ------
        StoreError
            If the file is damaged or has the wrong schema (the message says how to repair).
        """
        import pyarrow.compute as pc

        path = self.path(exchange, symbol, kind, period)
        table = self._read_table(path, exchange, symbol, kind)
        if table is None:
            return _empty(kind)
        if start is not None or end is not None:
            ts = table.column("timestamp").cast("int64")
            mask = None
            if start is not None:
                mask = pc.greater_equal(ts, to_ms(start))
            if end is not None:
                upper = pc.less_equal(ts, to_ms(end))
                mask = upper if mask is None else pc.and_(mask, upper)
            table = table.filter(mask)
        frame = table.to_pandas()
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame

    # -- writing ------------------------------------------------------------------------------
    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".lock")
        with open(lock_path, "a+") as fh:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"another process has held the write lock on {path} for more than "
                            f"{self.lock_timeout:.0f} s; wait for it to finish or stop it"
                        ) from None
                    time.sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def write(
        self,
        exchange: str,
        symbol: str,
        kind: str,
        period: str | None,
        rows: pd.DataFrame,
        *,
        covered: list[tuple[int, int]] | tuple[int, int] | None = None,
    ) -> int:
        """Merge ``rows`` into the stored file and record ``covered`` as fetched.

        Runs under an exclusive file lock as read-modify-write, so concurrent writers all land.
        Rows with a timestamp already stored replace the stored ones (liquidation events are
        de-duplicated on all their columns instead).

        Returns
        -------
        int
            The number of rows in the file afterwards.
        """
        path = self.path(exchange, symbol, kind, period)
        new_ranges = [] if covered is None else ([covered] if isinstance(covered[0], (int, np.integer)) else list(covered))
        rows = _normalise(rows, kind)
        with self._locked(path):
            self._remove_stale_temps(path)
            table = self._read_table(path, exchange, symbol, kind)
            old_cov: list = []
            if table is not None:
                old_cov = self._meta(table).get("coverage", [])
                old = table.to_pandas()
                old["timestamp"] = pd.to_datetime(old["timestamp"], utc=True)
                merged = pd.concat([old, rows], ignore_index=True) if len(rows) else old
            else:
                merged = rows
            if kind == "liquidations":
                merged = merged.drop_duplicates(subset=["timestamp", "side", "price", "notional"], keep="last")
            else:
                merged = merged.drop_duplicates(subset=["timestamp"], keep="last")
            merged = merged.sort_values("timestamp", kind="stable").reset_index(drop=True)
            meta = {
                "exchange": exchange, "symbol": symbol, "kind": kind, "period": period,
                "coverage": merge_ranges([*old_cov, *new_ranges]),
                "updated": int(time.time() * 1000),
            }
            self._atomic_write(path, merged, meta)
        return len(merged)

    def _atomic_write(self, path: Path, frame: pd.DataFrame, meta: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                pq.write_table(table, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        # persist the rename itself
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @staticmethod
    def _remove_stale_temps(path: Path) -> None:
        # called under the lock: any temp file of this name belongs to a writer that died
        for tmp in path.parent.glob(f"{_TMP_PREFIX}{path.name}.*"):
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass

    # -- liquidations ---------------------------------------------------------------------------
    def append_liquidations(self, exchange: str, symbol: str, events: pd.DataFrame, *, covered=None) -> int:
        """Add realized liquidation events (``timestamp, side, price, notional``) for one symbol.

        ``side`` is the side of the liquidated position (``long``/``short``); ``notional`` is in
        quote currency. Events already stored are not duplicated. Used by the REST fetcher, the
        websocket recorder and the Binance archive importer alike.

        Returns
        -------
        int
            The number of events stored afterwards.
        """
        missing = [c for c in EVENT_COLUMNS if c not in events.columns]
        if missing:
            raise MarketDataError(
                f"{exchange} {symbol}: liquidation events lack column(s) {missing}; need {list(EVENT_COLUMNS)}"
            )
        return self.write(exchange, symbol, "liquidations", None, events, covered=covered)

    def read_liquidations(self, exchange: str, symbol: str, start=None, end=None) -> pd.DataFrame:
        """Stored liquidation events for one symbol (``timestamp, side, price, notional``)."""
        return self.read(exchange, symbol, "liquidations", None, start, end)

    # -- markets cache --------------------------------------------------------------------------
    def save_markets(self, exchange: str, markets: list[dict]) -> None:
        """Cache an exchange's market list (atomically), so refreshes need no market request."""
        path = self.root / safe_name(exchange) / "markets.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"saved": int(time.time() * 1000), "markets": markets}, default=str)
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}markets.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def load_markets(self, exchange: str, max_age: float | None = 86400.0) -> list[dict] | None:
        """The cached market list, or None when absent, unreadable or older than ``max_age`` s."""
        path = self.root / safe_name(exchange) / "markets.json"
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if max_age is not None and time.time() * 1000 - payload.get("saved", 0) > max_age * 1000:
            return None
        return payload.get("markets")

    # -- listing --------------------------------------------------------------------------------
    def entries(self) -> list[StoredFile]:
        """Every stored file with its row count and fetched ranges."""
        import pyarrow.parquet as pq

        out = []
        for path in sorted(self.root.glob("*/*/*.parquet")):
            try:
                md = pq.read_metadata(path)
                meta = json.loads((md.metadata or {}).get(_META_KEY, b"{}"))
                rows = md.num_rows
            except Exception:
                meta, rows = {}, -1
            out.append(StoredFile(
                exchange=meta.get("exchange", path.parts[-3]), symbol=meta.get("symbol", path.parts[-2]),
                kind=meta.get("kind", path.stem), period=meta.get("period"), path=path, rows=rows,
                coverage=tuple(tuple(r) for r in meta.get("coverage", [])),
            ))
        return out


def _empty(kind: str) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in KIND_COLUMNS[kind]})
    if kind == "liquidations":
        frame["side"] = pd.Series(dtype="object")
    frame.insert(0, "timestamp", pd.Series(dtype="datetime64[ms, UTC]"))
    return frame


def _normalise(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Coerce incoming rows to the stored schema (UTC ms timestamps, float64 values)."""
    cols = KIND_COLUMNS[kind]
    if rows is None or len(rows) == 0:
        return _empty(kind)
    frame = rows.reset_index() if "timestamp" not in rows.columns else rows
    missing = [c for c in cols if c not in frame.columns]
    if kind == "open_interest":
        frame = frame.copy()
        for c in missing:
            frame[c] = np.nan
        missing = []
    if missing:
        raise MarketDataError(f"rows for the {kind} store lack column(s) {missing}")
    out = pd.DataFrame({"timestamp": _as_utc_ms(frame["timestamp"])})
    for c in cols:
        if c == "side":
            out[c] = frame[c].astype(str).to_numpy()
        else:
            out[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64").to_numpy()
    return out


def _as_utc_ms(values) -> pd.Series:
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(s):
        ts = pd.to_datetime(s.astype("int64"), unit="ms", utc=True)
    else:
        ts = pd.to_datetime(s, utc=True)
    return ts.astype("datetime64[ms, UTC]")
