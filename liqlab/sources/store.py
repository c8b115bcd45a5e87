"""A local Parquet store for exchange data: incremental, atomic, safe under concurrent writers.

Layout under the data directory (see :func:`default_data_dir`)::

    <root>/<exchange>/<SYMBOL>/<kind>[_<period>].parquet     e.g. binanceusdm/BTC_USDT_USDT/ohlcv_5m.parquet
    <root>/<exchange>/markets.json                          cached market list (avoids a request per refresh)

Every file carries, in its Parquet metadata, the exchange, the symbol and the time ranges already
fetched (``coverage``), so that a refresh asks the exchange only for what is missing, including
ranges the exchange had no rows for.

Writes take an exclusive lock (the ``filelock`` package) on a sidecar ``.lock`` file, re-read the
current file, merge, and replace it atomically (:func:`liqlab.core.atomic.atomic_write_parquet`: a
temporary file in the same directory, ``fsync``, ``os.replace``). Two processes updating the same
file therefore both land, and a writer killed at any moment leaves either the old file or the new
one, never a torn one. Reads check the file, its column types, its metadata and the order of its
rows, and raise :class:`StoreError` saying which file to delete and what to run to rebuild it.
"""

from __future__ import annotations

import json
import os

import platformdirs
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from filelock import FileLock, Timeout

from liqlab.core.atomic import atomic_write_parquet, atomic_write_text, remove_stale_temps
from liqlab.core.market import EVENT_COLUMNS, MarketDataError
from liqlab.sources.csv_files import clip_error

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



def symbol_from_folder(folder: str) -> str:
    """Best inverse of :func:`safe_name` for ccxt symbols (``BTC_USDT_USDT`` -> ``BTC/USDT:USDT``).

    Used only for files whose metadata does not say their symbol.
    """
    parts = folder.split("_")
    if len(parts) == 3 and all(parts):
        return f"{parts[0]}/{parts[1]}:{parts[2]}"
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}/{parts[1]}"
    return folder


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


def _column_type_ok(kind: str, column: str, dtype) -> bool:
    """True when a stored column has a type the store writes (timestamp, number or text)."""
    import pyarrow as pa

    if column == "timestamp":
        return pa.types.is_timestamp(dtype)
    if column == "side":
        return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
    return pa.types.is_floating(dtype) or pa.types.is_integer(dtype)


def _timestamps_ms(column) -> np.ndarray:
    """A stored timestamp column (any unit) as int64 milliseconds since the epoch."""
    import pyarrow as pa

    values = column.cast(pa.int64()).to_numpy()
    unit = column.type.unit
    if unit == "s":
        return values * 1000
    return values // {"ms": 1, "us": 1000, "ns": 1_000_000}[unit]


def _valid_coverage(coverage) -> bool:
    """True for a list of ``[start, end]`` integer pairs with ``start <= end``."""
    if not isinstance(coverage, list):
        return False
    for item in coverage:
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            return False
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in item) or item[0] > item[1]:
            return False
    return True


def parse_metadata(raw: bytes | None) -> dict:
    """The liqlab metadata of a stored file (``{}`` when absent).

    Raises
    ------
    ValueError
        When it is not a JSON object or its ``coverage`` is not a list of ``[start, end]`` pairs.
    """
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        raise ValueError("its liqlab metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ValueError("its liqlab metadata is not a JSON object")
    if not _valid_coverage(meta.get("coverage", [])):
        raise ValueError("its liqlab metadata has a malformed 'coverage' entry")
    return meta


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

    def _damaged(self, path: Path, exchange: str, symbol: str, kind: str, what: str) -> StoreError:
        """A :class:`StoreError` for a damaged file: what is wrong and how to rebuild it."""
        return StoreError(
            f"stored file {path} for {exchange} {symbol} {what}; " + self._repair_hint(path, exchange, symbol, kind)
        )

    def _read_table(self, path: Path, exchange: str, symbol: str, kind: str):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            # one open file descriptor: a concurrent os.replace cannot mix two versions
            source = pa.memory_map(str(path), "r")
        except FileNotFoundError:
            return None
        except OSError as exc:  # e.g. a directory where the file should be
            raise self._damaged(path, exchange, symbol, kind,
                                f"cannot be opened ({type(exc).__name__}: {clip_error(exc)})") from None
        try:
            # (not closed explicitly: the table's buffers may still point into the mapping)
            table = pq.read_table(source)
        except FileNotFoundError:
            return None
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._damaged(path, exchange, symbol, kind,
                                f"is unreadable ({clip_error(exc, 160)})") from exc
        self._check_table(table, path, exchange, symbol, kind)
        return table

    def _check_schema(self, schema, path: Path, exchange: str, symbol: str, kind: str) -> dict:
        """Refuse missing or mistyped columns and malformed metadata; return the metadata."""
        need = ("timestamp", *KIND_COLUMNS[kind])
        try:
            names = schema.names
        except ValueError:  # names that are not UTF-8 (UnicodeDecodeError)
            raise self._damaged(path, exchange, symbol, kind, "has column names that are not text") from None
        missing = [c for c in need if c not in names]
        if missing:
            raise self._damaged(path, exchange, symbol, kind, f"lacks column(s) {missing}")
        if len(set(names)) != len(names):
            raise self._damaged(path, exchange, symbol, kind, "has repeated column names")
        wrong = [f"{c} ({schema.field(c).type})" for c in need if not _column_type_ok(kind, c, schema.field(c).type)]
        if wrong:
            raise self._damaged(path, exchange, symbol, kind, f"has column(s) of the wrong type: {', '.join(wrong)}")
        try:
            return parse_metadata((schema.metadata or {}).get(_META_KEY))
        except ValueError as exc:
            raise self._damaged(path, exchange, symbol, kind, str(exc)) from None

    def _check_table(self, table, path: Path, exchange: str, symbol: str, kind: str) -> None:
        """Refuse a stored table with a bad schema (see :meth:`_check_schema`) or rows out of order."""
        need = ("timestamp", *KIND_COLUMNS[kind])
        self._check_schema(table.schema, path, exchange, symbol, kind)
        column = table.column("timestamp")
        if column.null_count:
            raise self._damaged(path, exchange, symbol, kind, f"has {column.null_count} row(s) without a timestamp")
        ms = _timestamps_ms(column)
        step = np.diff(ms)
        if (step < 0).any():
            raise self._damaged(path, exchange, symbol, kind, "has rows out of time order")
        if kind != "liquidations" and (step == 0).any():
            raise self._damaged(path, exchange, symbol, kind, "has repeated timestamps")
        if kind == "liquidations" and (step == 0).any():
            frame = table.select(list(need)).to_pandas()
            if frame.duplicated().any():
                raise self._damaged(path, exchange, symbol, kind, "has repeated liquidation events")

    def _meta(self, table, path: Path, exchange: str, symbol: str, kind: str) -> dict:
        try:
            return parse_metadata((table.schema.metadata or {}).get(_META_KEY))
        except ValueError as exc:
            raise self._damaged(path, exchange, symbol, kind, str(exc)) from None

    def coverage(self, exchange: str, symbol: str, kind: str, period: str | None = None) -> list[tuple[int, int]]:
        """Time ranges (ms, inclusive) already fetched into this file.

        Raises
        ------
        StoreError
            If the file is damaged (the message says how to repair).
        """
        import pyarrow.parquet as pq

        path = self.path(exchange, symbol, kind, period)
        if not path.exists():
            return []
        try:
            with open(path, "rb") as fh:
                schema = pq.read_schema(fh)
        except FileNotFoundError:
            return []
        except Exception:
            # a damaged file: let _read_table produce the detailed error; for planning, nothing is stored
            self._read_table(path, exchange, symbol, kind)
            return []
        meta = self._check_schema(schema, path, exchange, symbol, kind)
        return merge_ranges(meta.get("coverage", []))

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
            If the file is damaged, has the wrong schema or column types, malformed metadata, or
            rows out of order or repeated (the message says how to repair).
        """
        import pyarrow as pa

        path = self.path(exchange, symbol, kind, period)
        table = self._read_table(path, exchange, symbol, kind)
        if table is None:
            return _empty(kind)
        if start is not None or end is not None:
            ms = _timestamps_ms(table.column("timestamp"))
            mask = np.ones(len(ms), dtype=bool)
            if start is not None:
                mask &= ms >= to_ms(start)
            if end is not None:
                mask &= ms <= to_ms(end)
            table = table.filter(pa.array(mask))
        return self._to_frame(table, path, exchange, symbol, kind)

    def _to_frame(self, table, path: Path, exchange: str, symbol: str, kind: str) -> pd.DataFrame:
        """The stored table as a DataFrame with UTC timestamps (damaged pandas metadata: StoreError)."""
        import pyarrow as pa

        try:
            frame = table.to_pandas()
        except (pa.ArrowException, ValueError, TypeError, KeyError) as exc:
            raise self._damaged(path, exchange, symbol, kind,
                                f"cannot be converted ({type(exc).__name__}: {clip_error(exc)})") from None
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame

    # -- writing ------------------------------------------------------------------------------
    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store folder {path.parent} ({type(exc).__name__}); "
                "check that no file stands in its place and that it is writable"
            ) from None
        lock = FileLock(str(path.with_name(path.name + ".lock")), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout:
            raise StoreError(
                f"another process has held the write lock on {path} for more than "
                f"{self.lock_timeout:.0f} s; wait for it to finish or stop it"
            ) from None
        try:
            yield
        finally:
            lock.release()

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

        Raises
        ------
        StoreError
            If the stored file is damaged: it is left as it is (the message says how to repair).
        """
        path = self.path(exchange, symbol, kind, period)
        new_ranges = [] if covered is None else ([covered] if isinstance(covered[0], (int, np.integer)) else list(covered))
        rows = _normalise(rows, kind)
        with self._locked(path):
            remove_stale_temps(path)  # under the lock: any temp file of this name belongs to a dead writer
            table = self._read_table(path, exchange, symbol, kind)
            old_cov: list = []
            if table is not None:
                old_cov = self._meta(table, path, exchange, symbol, kind).get("coverage", [])
                old = self._to_frame(table, path, exchange, symbol, kind)
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

    @staticmethod
    def _atomic_write(path: Path, frame: pd.DataFrame, meta: dict) -> None:
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
        atomic_write_parquet(path, table, compression="zstd")

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
        payload = json.dumps({"saved": int(time.time() * 1000), "markets": markets}, default=str)
        atomic_write_text(path, payload)

    def load_markets(self, exchange: str, max_age: float | None = 86400.0) -> list[dict] | None:
        """The cached market list, or None when absent, unreadable or older than ``max_age`` s."""
        path = self.root / safe_name(exchange) / "markets.json"
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("markets"), list):
            return None
        saved = payload.get("saved", 0)
        if not isinstance(saved, (int, float)):
            return None
        if max_age is not None and time.time() * 1000 - saved > max_age * 1000:
            return None
        return [m for m in payload["markets"] if isinstance(m, dict) and isinstance(m.get("symbol"), str)]

    # -- listing --------------------------------------------------------------------------------
    def entries(self) -> list[StoredFile]:
        """Every stored file with its row count and fetched ranges.

        A file that cannot be read is listed with ``rows=-1``; one whose metadata does not say its
        symbol is listed under the symbol its folder name stands for (``BTC_USDT_USDT`` ->
        ``BTC/USDT:USDT``).
        """
        import pyarrow.parquet as pq

        out = []
        for path in sorted(self.root.glob("*/*/*.parquet")):
            try:
                md = pq.read_metadata(path)
                meta = parse_metadata((md.metadata or {}).get(_META_KEY))
                rows = md.num_rows
            except Exception:
                meta, rows = {}, -1
            text = {k: meta.get(k) if isinstance(meta.get(k), str) else None for k in ("exchange", "symbol", "kind", "period")}
            out.append(StoredFile(
                exchange=text["exchange"] or path.parts[-3],
                symbol=text["symbol"] or symbol_from_folder(path.parts[-2]),
                kind=text["kind"] or path.stem, period=text["period"], path=path, rows=rows,
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
