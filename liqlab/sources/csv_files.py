"""Generic market files: CSV (plain or ``.csv.gz``) and Parquet, in and out.

The generic layout is one row per candle::

    timestamp,open,high,low,close,volume,open_interest[,funding_rate,long_short_ratio,taker_buy_volume][,long_usd,short_usd]

* ``timestamp`` is the candle open, UTC: ISO-8601 (``2025-12-04T06:00:00Z``, with or without ``Z``
  or an offset; naive times are read as UTC) or epoch seconds, milliseconds or microseconds
  (told apart by magnitude, value by value).
* ``volume`` and ``taker_buy_volume`` are in base units; ``open_interest`` is in quote currency
  (pass ``oi_unit="base"`` when the file holds contracts/coins: it is multiplied by ``close``).
* ``long_usd, short_usd``, when present, are realized liquidations per candle; that is what
  :func:`save_market_file` writes for a market that has them, so files round-trip exactly.

Realized liquidations may also live in their own file, read by :func:`load_liquidations_file`:
either bars ``timestamp,long_usd,short_usd`` or events ``timestamp,side,price,quantity|notional``.

Every malformed input raises :class:`~liqlab.market.MarketDataError` naming the file, the line
(or Parquet row) and column, and what to do about it.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from liqlab.atomic import atomic_write_bytes, atomic_write_parquet
from liqlab.market import (
    LIQUIDATION_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    GapPolicy,
    Market,
    MarketDataError,
    infer_timeframe,
    make_market,
    timeframe_to_timedelta,
)

__all__ = [
    "MAX_COLUMNS",
    "MAX_FILE_BYTES",
    "MAX_LINE_CHARS",
    "Table",
    "check_rows",
    "check_size",
    "clip_cell",
    "clip_error",
    "decode_text",
    "file_stem",
    "liquidations_from_frame",
    "load_candles_file",
    "load_liquidations_file",
    "load_market_file",
    "parse_numbers",
    "parse_timestamps",
    "read_table",
    "save_market_file",
    "table_from_text",
]

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")
TIME_ALIASES = ("timestamp", "time", "datetime", "date", "open_time")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EPOCH = re.compile(r"^[+-]?\d+(\.\d*)?$")
_NULL_TEXT = frozenset({"", "nan", "NaN", "NAN", "null", "NULL", "None", "none", "NA", "N/A"})
# pandas 3 defaults to microsecond datetimes; keep one unit so frames compare equal across sources
_UNIT = "us"
#: Largest file (after decompression) read, in bytes.
MAX_FILE_BYTES = 512 * 2**20
#: Longest line read, in characters (a market row is well under 300).
MAX_LINE_CHARS = 10_000
#: Most columns a header may name.
MAX_COLUMNS = 256
#: Longest piece of a cell or column name quoted in an error message.
MAX_ECHO = 60
# timestamps must lie in [1970-01-01, 2262-01-01): what datetime64[ns] holds, with room to spare
_FIRST_NS = 0
_LAST_NS = pd.Timestamp("2262-01-01").value
_SPAN_TEXT = "between 1970 and 2261"
_PRICE_COLUMNS = ("open", "high", "low", "close", "price")
_NON_NEGATIVE = (
    "volume", "open_interest", "taker_buy_volume", "long_usd", "short_usd", "long_short_ratio",
    "quantity", "notional",
)


def clip_cell(value: object, limit: int = MAX_ECHO) -> str:
    """``repr`` of a cell for an error message, cut to ``limit`` characters (length noted)."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def clip_error(exc: BaseException, limit: int = 120) -> str:
    """A library exception's text on one line, cut to ``limit`` characters, for an error message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _names(columns: Sequence[object], count: int = 12) -> str:
    """Up to ``count`` column names, each clipped, for an error message."""
    shown = ", ".join(clip_cell(c, 30) for c in list(columns)[:count])
    more = f" and {len(columns) - count} more" if len(columns) > count else ""
    return f"[{shown}]{more}"


# ---------------------------------------------------------------------------------------------
# reading raw tables
@dataclass
class Table:
    """A raw table read from one file, with where each row came from (for error messages).

    ``frame`` has lower-case, stripped column names; CSV cells are kept as text so each
    column is parsed once, by the caller, with messages that point at the offending line.
    """

    frame: pd.DataFrame
    name: str
    rows: np.ndarray
    unit: str = "line"

    def at(self, i: int) -> str:
        """``"file.csv, line 7"`` for positional row ``i``."""
        return f"{self.name}, {self.unit} {int(self.rows[i])}"

    def has(self, *columns: str) -> bool:
        return all(c in self.frame.columns for c in columns)

    def require(self, columns: Sequence[str], hint: str = "") -> None:
        """Raise naming the missing columns and the ones found."""
        missing = [c for c in columns if c not in self.frame.columns]
        if missing:
            raise MarketDataError(
                f"{self.name}: missing column(s) {missing}; found {_names(self.frame.columns)}. {hint}".rstrip()
            )

    def numbers(self, column: str, *, required: bool = True) -> np.ndarray:
        """Column ``column`` as float64; blanks become NaN (an error when ``required``)."""
        return parse_numbers(self.frame[column], column=column, where=self.at, required=required)

    def times(self, column: str) -> pd.DatetimeIndex:
        """Column ``column`` as a UTC DatetimeIndex named ``timestamp``."""
        return parse_timestamps(self.frame[column], column=column, where=self.at)

    def take(self, keep: np.ndarray) -> "Table":
        """The rows where boolean ``keep`` is true (row numbers follow them)."""
        return Table(self.frame.loc[keep].reset_index(drop=True), self.name, self.rows[keep], self.unit)


def _suffix_kind(path: Path) -> Literal["csv", "parquet"]:
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES) or name.endswith(".gz"):
        return "csv"
    raise MarketDataError(
        f"{path.name}: unknown file type; use a .csv, .csv.gz or .parquet file"
    )


def file_stem(path: str | Path) -> str:
    """The file name without ``.csv``, ``.csv.gz``, ``.parquet`` or ``.zip``."""
    name = Path(path).name
    for suffix in (".csv.gz", ".csv.zip", ".csv", ".parquet", ".pq", ".zip", ".gz", ".txt", ".tsv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def check_size(size: int, name: str) -> None:
    """Refuse content larger than :data:`MAX_FILE_BYTES`."""
    if size > MAX_FILE_BYTES:
        raise MarketDataError(
            f"{name}: more than {MAX_FILE_BYTES // 2**20} MiB of data; split it into smaller files "
            "(e.g. one per month)"
        )


def _check_line_lengths(raw: bytes, name: str) -> None:
    """Refuse a line longer than :data:`MAX_LINE_CHARS` bytes before any parsing (a fast scan)."""
    if len(raw) <= MAX_LINE_CHARS:
        return
    codes = np.frombuffer(raw, dtype=np.uint8)
    breaks = np.flatnonzero((codes == 10) | (codes == 13))
    edges = np.concatenate(([-1], breaks, [len(raw)]))
    lengths = np.diff(edges) - 1
    i = int(np.argmax(lengths))
    if lengths[i] > MAX_LINE_CHARS:
        line = raw[: edges[i] + 1].count(b"\n") + 1
        raise MarketDataError(
            f"{name}, line {line}: longer than {MAX_LINE_CHARS:,} characters; a market file has one "
            "short line per row: check that the right file was given"
        )


def decode_text(raw: bytes, name: str) -> str:
    """Bytes of a text file to ``str``, refusing binary content, huge files and huge lines."""
    if raw[:4] == b"PAR1":
        raise MarketDataError(f"{name}: this is a Parquet file; give it a .parquet suffix")
    if raw[:4] == b"PK\x03\x04":
        raise MarketDataError(f"{name}: this is a zip archive; unzip it or use the Binance archive readers")
    if b"\x00" in raw[:4096]:
        raise MarketDataError(
            f"{name}: binary content (NUL bytes), not a text CSV; check that the right file was given"
        )
    check_size(len(raw), name)
    _check_line_lengths(raw, name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MarketDataError(
            f"{name}, line {line}: bytes that are not UTF-8 text; re-save the file as UTF-8 CSV"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise MarketDataError(f"{name}, line {line}: a NUL character; this is not a text CSV")
    if not text.strip():
        raise MarketDataError(f"{name}: the file is empty; expected a header line and data rows")
    return text


def _first_records(text: str, name: str, has_header: bool) -> tuple[list[str] | None, list[str] | None, int]:
    """The header record (None without one), the first non-blank data record and its line number."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None) if has_header else None
        while has_header and header == []:
            header = next(reader, None)
        first = next(reader, None)
        while first == []:
            first = next(reader, None)
    except csv.Error as exc:
        raise MarketDataError(
            f"{name}, line {reader.line_num}: not a well-formed CSV ({clip_error(exc, 80)})"
        ) from None
    return header, first, reader.line_num


def _check_header(header: Sequence[str], name: str) -> list[str]:
    """Normalised column names (stripped, lower case); refuse too many or colliding ones."""
    if len(header) > MAX_COLUMNS:
        raise MarketDataError(
            f"{name}, line 1: {len(header)} columns; a market file has at most {MAX_COLUMNS}"
        )
    columns = [str(c).strip().lower() for c in header]
    seen: dict[str, str] = {}
    for raw, col in zip(header, columns):
        if col in seen:
            raise MarketDataError(
                f"{name}, line 1: the columns {clip_cell(seen[col], 30)} and {clip_cell(raw, 30)} both read "
                f"as {clip_cell(col, 30)} (names ignore case and surrounding spaces); rename or drop one"
            )
        seen[col] = raw
    return columns


def table_from_text(text: str, name: str, *, names: Sequence[str] | None = None) -> Table:
    """Parse CSV text into a :class:`Table` of text cells.

    Parameters
    ----------
    text
        The whole file.
    name
        File name used in messages.
    names
        Column names for a file without a header row; ``None`` reads them from line 1.

    Raises
    ------
    MarketDataError
        On an empty or malformed file, colliding or too many column names, or a row with more
        fields than the header (the first data row included).
    """
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    header, first, first_line_no = _first_records(text, name, names is None)
    if names is None and header is not None:
        _check_header(header, name)
    width = len(names) if names is not None else len(header or [])
    if first is not None and len(first) > width:
        raise MarketDataError(
            f"{name}, line {first_line_no}: {len(first)} fields but the header names {width}; every line "
            "needs the same number of comma-separated fields as the header"
        )
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            header=None if names is not None else 0,
            names=list(names) if names is not None else None,
            index_col=False,
        )
    except pd.errors.EmptyDataError:
        raise MarketDataError(f"{name}: the file is empty; expected a header line and data rows") from None
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        raise MarketDataError(
            f"{name}: not a well-formed CSV ({clip_error(exc)}); every line needs the same "
            "number of comma-separated fields as the header"
        ) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if names is None and len(frame.columns) == 1:
        for sep in (";", "\t", "|"):
            if sep in first_line:
                raise MarketDataError(
                    f"{name}, line 1: the header is one column separated by {sep!r}; "
                    "liqlab reads comma-separated files: re-save with ',' as the delimiter"
                )
    offset = 1 if names is not None else 2  # first data row is line 1 without header, 2 with
    rows = np.arange(len(frame)) + offset
    # blank lines (e.g. trailing ones) carry no data; drop them but keep true line numbers
    cells = frame.apply(lambda col: col.str.strip())
    blank = (cells == "").all(axis=1).to_numpy()
    table = Table(frame=cells, name=name, rows=rows)
    if blank.any():
        table = table.take(~blank)
    if len(table.frame) == 0:
        raise MarketDataError(f"{name}: no data rows under the header")
    return table


def _read_bytes(path: Path) -> bytes:
    """The file's bytes (gunzipped for ``.gz``), refusing folders, unreadable and oversized files."""
    name = path.name
    try:
        check_size(path.stat().st_size, name)
        raw = path.read_bytes()
    except OSError as exc:
        raise MarketDataError(
            f"{name}: cannot be read ({type(exc).__name__}); give a readable file, not a folder"
        ) from None
    if not name.lower().endswith(".gz"):
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise MarketDataError(f"{name}: not a valid gzip file ({clip_error(exc, 80)}); check the download") from None
    check_size(len(raw), name)
    return raw


def _read_parquet(path: Path) -> Table:
    name = path.name
    try:
        check_size(path.stat().st_size, name)
        frame = pd.read_parquet(path)
    except MarketDataError:
        raise
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise MarketDataError(
            f"{name}: not a readable Parquet file ({type(exc).__name__}: {clip_error(exc)}); "
            "check the file or save it again"
        ) from None
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.reset_index()
    frame.columns = _check_header([str(c) for c in frame.columns], name)
    if len(frame) == 0:
        raise MarketDataError(f"{name}: no data rows")
    return Table(frame=frame.reset_index(drop=True), name=name, rows=np.arange(len(frame)) + 1, unit="row")


def read_table(path: str | Path) -> Table:
    """Read a CSV, ``.csv.gz`` or Parquet file into a :class:`Table` (type chosen by suffix).

    Raises
    ------
    MarketDataError
        A missing, unreadable, oversized or malformed file (see :func:`table_from_text`).
    """
    path = Path(path)
    name = path.name
    if path.is_dir():
        raise MarketDataError(f"{name}: is a folder; give a file inside it")
    kind = _suffix_kind(path)
    if not path.exists():
        raise MarketDataError(f"{name}: no such file ({path})")
    if kind == "parquet":
        return _read_parquet(path)
    return table_from_text(decode_text(_read_bytes(path), name), name)


# ---------------------------------------------------------------------------------------------
# parsing columns
def _as_text(values: pd.Series) -> pd.Series:
    """Cells as stripped Python strings (missing -> empty string)."""
    return values.astype(object).where(values.notna(), "").astype(str).str.strip().astype(object)


def parse_numbers(
    values: pd.Series, *, column: str, where: Callable[[int], str], required: bool = True
) -> np.ndarray:
    """Parse a column of numbers (text or numeric) to float64, naming the first bad cell.

    Blank cells become NaN (an error when ``required``); infinite values are always refused.
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        out = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        text = _as_text(values)
        blank = text.isin(_NULL_TEXT).to_numpy()
        out = np.full(len(text), np.nan)
        try:
            # float() on each string: correctly rounded, so written floats read back exactly
            out[~blank] = text[~blank].to_numpy(dtype=object).astype(np.float64)
        except (ValueError, TypeError):
            bad = np.flatnonzero(pd.to_numeric(text.where(~blank, "0"), errors="coerce").isna().to_numpy())
            i = int(bad[0]) if bad.size else int(np.flatnonzero(~blank)[0])
            more = f" ({len(bad)} bad cells in all)" if len(bad) > 1 else ""
            raise MarketDataError(
                f"{where(i)}, column {column!r}: {clip_cell(text.iloc[i])} is not a number{more}; "
                "write plain decimal numbers (dot as decimal point, no thousands separators)"
            ) from None
    infinite = np.flatnonzero(np.isinf(out))
    if infinite.size:
        raise MarketDataError(
            f"{where(int(infinite[0]))}, column {column!r}: an infinite value; write a finite number "
            f"{'' if required else 'or leave the cell blank when unknown'}".rstrip()
        )
    if required:
        missing = np.flatnonzero(np.isnan(out))
        if missing.size:
            i = int(missing[0])
            more = f" ({missing.size} empty cells in all)" if missing.size > 1 else ""
            raise MarketDataError(
                f"{where(i)}, column {column!r}: empty or NaN{more}; "
                "this column must be filled on every row (fix or drop the row)"
            )
    return out


def _epoch_ns(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch numbers to int64 nanoseconds; each value's unit (s, ms, µs, ns) follows from its size.

    Returns
    -------
    ns, bad
        The nanoseconds (0 where bad) and a mask of values that are not finite or fall outside
        1970 .. 2261 (they would overflow or wrap around).
    """
    ns = np.zeros(len(numbers), dtype=np.int64)
    if numbers.dtype.kind in "iu":
        values = numbers.astype(np.int64) if numbers.dtype.kind == "i" else np.minimum(numbers, 2**63 - 1).astype(np.int64)
        exponent = np.where(values < 10**11, 9, np.where(values < 10**14, 6, np.where(values < 10**17, 3, 0)))
        factor = (10 ** exponent).astype(np.int64)
        bad = (values < 0) | (values >= _LAST_NS // factor)
        ns[~bad] = values[~bad] * factor[~bad]
        return ns, bad
    as_float = numbers.astype(np.float64)
    size = np.abs(as_float)
    exponent = np.where(size < 1e11, 9, np.where(size < 1e14, 6, np.where(size < 1e17, 3, 0)))
    with np.errstate(invalid="ignore", over="ignore"):
        approx = as_float * 10.0 ** exponent
        bad = ~(np.isfinite(approx) & (approx >= _FIRST_NS) & (approx < _LAST_NS))
    ns[~bad] = np.round(approx[~bad]).astype(np.int64)
    return ns, bad


def _out_of_span(column: str, cell: str, where: str) -> MarketDataError:
    return MarketDataError(
        f"{where}, column {column!r}: {clip_cell(cell)} is not a time {_SPAN_TEXT}; use ISO-8601 "
        "(2025-12-04T06:00:00Z) or epoch seconds, milliseconds or microseconds"
    )


def _epoch_index(numbers: np.ndarray, cells: Callable[[int], str], *, column: str,
                 where: Callable[[int], str]) -> pd.DatetimeIndex:
    """Epoch numbers to a UTC index, refusing values outside 1970 .. 2261."""
    ns, bad = _epoch_ns(numbers)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _out_of_span(column, cells(i), where(i))
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC").as_unit(_UNIT).rename("timestamp")


def _check_span(index: pd.DatetimeIndex, *, column: str, where: Callable[[int], str]) -> pd.DatetimeIndex:
    """Refuse times outside 1970 .. 2261, then give the index in microseconds named ``timestamp``."""
    index = index.as_unit("us") if index.unit != "us" else index
    values = index.asi8
    bad = np.flatnonzero((values < _FIRST_NS // 1000) | (values >= _LAST_NS // 1000))
    if bad.size:
        i = int(bad[0])
        raise _out_of_span(column, str(index[i]), where(i))
    return index.rename("timestamp")


def parse_timestamps(
    values: pd.Series, *, column: str = "timestamp", where: Callable[[int], str] = lambda i: f"row {i + 1}"
) -> pd.DatetimeIndex:
    """Parse timestamps to a UTC :class:`~pandas.DatetimeIndex` named ``timestamp``.

    Accepts datetimes, ISO-8601 text (``2024-10-01 00:05:00``, ``...T06:00:00Z``, ``...+02:00``;
    naive means UTC) and epoch numbers in seconds, milliseconds or microseconds, each value's
    unit told by its magnitude (Binance spot archives switched from ms to µs in 2025). Times
    must lie between 1970 and 2261.

    Raises
    ------
    MarketDataError
        Naming the first empty, unparseable or out-of-range cell via ``where(i)``.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        index = pd.DatetimeIndex(values)
        bad = np.flatnonzero(index.isna())
        if bad.size:
            raise MarketDataError(f"{where(int(bad[0]))}, column {column!r}: missing timestamp")
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        return _check_span(index, column=column, where=where)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy()
        if numbers.dtype.kind == "f":
            bad = np.flatnonzero(np.isnan(numbers))
            if bad.size:
                raise MarketDataError(f"{where(int(bad[0]))}, column {column!r}: missing timestamp")
        return _epoch_index(numbers, lambda i: str(numbers[i]), column=column, where=where)
    text = _as_text(values)
    blank = np.flatnonzero((text == "").to_numpy())
    if blank.size:
        raise MarketDataError(
            f"{where(int(blank[0]))}, column {column!r}: empty timestamp; every row needs one"
        )
    epoch = text.str.fullmatch(_EPOCH).to_numpy()
    if epoch.all():
        numbers = text.to_numpy(dtype=object).astype(np.float64)
        if text.str.fullmatch(r"[+-]?\d+").all():
            try:
                numbers = text.to_numpy(dtype=object).astype(np.int64)  # exact, unlike float64
            except (OverflowError, ValueError):
                pass  # past int64 (or too many digits to convert): refused as out of range below
        return _epoch_index(numbers, lambda i: text.iloc[i], column=column, where=where)
    if epoch.any():
        i = int(np.flatnonzero(epoch if epoch.sum() < len(epoch) / 2 else ~epoch)[0])
        raise MarketDataError(
            f"{where(i)}, column {column!r}: {clip_cell(text.iloc[i])} mixes epoch numbers and date text "
            "in one column; use one format throughout"
        )
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise MarketDataError(
            f"{where(i)}, column {column!r}: {clip_cell(text.iloc[i])} is not a timestamp; use ISO-8601 "
            "(2025-12-04T06:00:00Z) or epoch milliseconds"
        )
    return _check_span(pd.DatetimeIndex(parsed), column=column, where=where)


def _time_column(table: Table) -> str:
    for alias in TIME_ALIASES:
        if alias in table.frame.columns:
            return alias
    raise MarketDataError(
        f"{table.name}: no timestamp column; found {_names(table.frame.columns)}. "
        "Name the candle open time column 'timestamp' (ISO-8601 or epoch ms)"
    )


def _sorted_unique(table: Table, index: pd.DatetimeIndex, frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by time; drop exact repeated rows; refuse conflicting rows for one timestamp."""
    order = np.argsort(index.to_numpy(), kind="stable")
    frame = frame.iloc[order]
    index = index[order]
    rows = table.rows[order]
    frame.index = index
    same_time = np.asarray(index.duplicated(keep="first"))
    if same_time.any():
        exact = frame.reset_index().duplicated(keep="first").to_numpy()
        conflict = same_time & ~exact
        if conflict.any():
            j = int(np.flatnonzero(conflict)[0])
            first = int(rows[np.flatnonzero(index == index[j])[0]])
            raise MarketDataError(
                f"{table.name}, {table.unit} {int(rows[j])}: timestamp {index[j]} already appears on "
                f"{table.unit} {first} with different values; keep one row per candle"
            )
        frame = frame.loc[~same_time]
    return frame


# ---------------------------------------------------------------------------------------------
# values the Market contract forbids
def _refuse(table: Table, bad: np.ndarray, column: str, what: str, values: np.ndarray | None = None) -> None:
    """Raise naming the first row where ``bad`` holds (no-op when it holds nowhere)."""
    where = np.flatnonzero(bad)
    if where.size:
        i = int(where[0])
        shown = "" if values is None else f"{values[i]:.10g} "
        more = f" ({where.size} rows in all)" if where.size > 1 else ""
        raise MarketDataError(f"{table.at(i)}, column {column!r}: {shown}{what}{more}")


def check_rows(table: Table, data: dict[str, np.ndarray], non_negative: Sequence[str] = ()) -> None:
    """Refuse values the :class:`~liqlab.market.Market` contract forbids, naming the first bad line.

    Prices (``open, high, low, close, price``) must be positive; volumes, open interest,
    liquidation notionals, quantities and the long/short ratio must not be negative (blank cells,
    NaN, pass: they are checked where they are required); ``high`` may not be below ``low`` and
    ``open``/``close`` must lie inside ``[low, high]``. ``data`` holds one array per column, in
    the table's row order; ``non_negative`` names more columns that may not be negative.

    Raises
    ------
    MarketDataError
        Naming the file, the line (or row) and the column.
    """
    for col in _PRICE_COLUMNS:
        if col in data:
            _refuse(table, ~(data[col] > 0), col, "is not a positive price", data[col])
    for col in (*_NON_NEGATIVE, *non_negative):
        if col in data:
            _refuse(table, data[col] < 0, col, "is negative; it cannot be", data[col])
    if "high" in data and "low" in data:
        high, low = data["high"], data["low"]
        _refuse(table, high < low, "high", "is below the low of the same candle", high)
        tol = 1e-9 * high
        for col in ("open", "close"):
            if col in data:
                outside = (data[col] > high + tol) | (data[col] < low - tol)
                _refuse(table, outside, col, "lies outside [low, high] of the same candle", data[col])


# ---------------------------------------------------------------------------------------------
# candles and markets
def _candle_frame(table: Table, columns: Sequence[str]) -> pd.DataFrame:
    """Parse ``columns`` (required) plus any optional/liquidation columns present, and check them."""
    tcol = _time_column(table)
    index = table.times(tcol)
    data: dict[str, np.ndarray] = {c: table.numbers(c) for c in columns}
    for col in (*OPTIONAL_COLUMNS, *LIQUIDATION_COLUMNS):
        if col in table.frame.columns and col not in data:
            data[col] = table.numbers(col, required=False)
    check_rows(table, data)
    return _sorted_unique(table, index, pd.DataFrame(data))


def load_candles_file(path: str | Path) -> pd.DataFrame:
    """Read candles only (no open interest needed), e.g. a klines export.

    Parameters
    ----------
    path
        CSV, ``.csv.gz`` or Parquet with ``timestamp,open,high,low,close,volume`` (more columns
        such as ``taker_buy_volume`` are kept when they are known optional columns).

    Returns
    -------
    DataFrame
        Float64 columns indexed by UTC candle open ``timestamp``, sorted, exact repeats dropped.
        Gaps are not checked here: that happens when a :class:`~liqlab.market.Market` is built.

    Raises
    ------
    MarketDataError
        A malformed file, or values the Market contract forbids (see :func:`check_rows`).
    """
    table = read_table(path)
    table.require(CANDLE_COLUMNS, "A candle file needs timestamp,open,high,low,close,volume.")
    frame = _candle_frame(table, CANDLE_COLUMNS)
    return frame.drop(columns=[c for c in LIQUIDATION_COLUMNS if c in frame.columns])


def _span_filter(times: pd.DatetimeIndex, index: pd.DatetimeIndex, timeframe: str | None) -> np.ndarray:
    """True for times inside ``[first open, last open + step)``: others belong to no candle."""
    step = timeframe_to_timedelta(timeframe) if timeframe else (
        timeframe_to_timedelta(infer_timeframe(index)) if len(index) > 1 else pd.Timedelta(0)
    )
    return np.asarray((times >= index[0]) & (times < index[-1] + step))


def _liquidation_inputs(
    liquidations: str | Path | pd.DataFrame | None,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    if liquidations is None:
        return None, None
    if isinstance(liquidations, pd.DataFrame):
        return liquidations_from_frame(liquidations)
    return load_liquidations_file(liquidations)


def load_market_file(
    path: str | Path,
    *,
    symbol: str | None = None,
    exchange: str = "file",
    contract: Literal["linear", "inverse"] = "linear",
    timeframe: str | None = None,
    gaps: GapPolicy = "raise",
    oi_unit: Literal["quote", "base"] = "quote",
    liquidations: str | Path | pd.DataFrame | None = None,
) -> Market:
    """Load a generic market file (CSV, ``.csv.gz`` or Parquet) into a validated :class:`Market`.

    Parameters
    ----------
    path
        File with ``timestamp,open,high,low,close,volume,open_interest`` and optionally
        ``funding_rate, long_short_ratio, taker_buy_volume, long_usd, short_usd``.
    symbol
        Defaults to the file name without its suffix.
    exchange, contract
        Metadata for the market (``contract`` is ``"linear"`` or ``"inverse"``).
    timeframe
        Candle spacing such as ``"1h"``; inferred from the most common spacing when None.
    gaps
        ``"raise"`` refuses missing candles (naming them), ``"fill"`` inserts flat candles with
        OI carried forward, ``"keep"`` accepts them (listed in ``Market.gaps``).
    oi_unit
        ``"quote"`` (default) when ``open_interest`` is already in quote currency; ``"base"``
        multiplies it by ``close``.
    liquidations
        Realized liquidations: a path for :func:`load_liquidations_file` or a DataFrame of bars
        or events. It takes precedence over ``long_usd, short_usd`` columns in the file.
        Bars or events after the last candle's close are dropped (they belong to no candle).

    Raises
    ------
    MarketDataError
        On any malformed input, naming the file, the line/row and what to do.
    """
    path = Path(path)
    table = read_table(path)
    if not table.has("open_interest") and table.has(*CANDLE_COLUMNS):
        raise MarketDataError(
            f"{path.name}: no 'open_interest' column, so this is a candles-only file. A market needs "
            "open interest in quote currency: add it, or read the candles alone with "
            "liqlab.sources.csv_files.load_candles_file(path)"
        )
    table.require(REQUIRED_COLUMNS, "A market file needs timestamp," + ",".join(REQUIRED_COLUMNS) + ".")
    frame = _candle_frame(table, REQUIRED_COLUMNS)
    if oi_unit == "base":
        frame["open_interest"] = frame["open_interest"] * frame["close"]
    elif oi_unit != "quote":
        raise MarketDataError(f"oi_unit must be 'quote' or 'base', not {oi_unit!r}")

    bars, events = _liquidation_inputs(liquidations)
    liq_name = path.name
    if bars is not None or events is not None:
        liq_name = liquidations.name if isinstance(liquidations, Path) else (
            Path(liquidations).name if isinstance(liquidations, str) else "liquidations")
    elif table.has(*LIQUIDATION_COLUMNS):
        bars = frame[list(LIQUIDATION_COLUMNS)]
    frame = frame.drop(columns=[c for c in LIQUIDATION_COLUMNS if c in frame.columns])
    try:
        market = make_market(
            frame, symbol=symbol or file_stem(path), exchange=exchange, timeframe=timeframe,
            contract=contract, source=f"file:{path.name}", gaps=gaps,
        )
    except MarketDataError as exc:
        raise MarketDataError(f"{path.name}: {exc}") from None
    if bars is None and events is None:
        return market
    return _with_realized(market, bars, events, frame.index, timeframe, liq_name)


def _with_realized(
    market: Market, bars: pd.DataFrame | None, events: pd.DataFrame | None,
    index: pd.DatetimeIndex, timeframe: str | None, name: str,
) -> Market:
    """``market`` with realized liquidations attached; errors name the file they came from."""
    if bars is not None:
        bars = bars.loc[_span_filter(pd.DatetimeIndex(bars.index), index, timeframe)]
    if events is not None:
        events = events.loc[_span_filter(pd.DatetimeIndex(events["timestamp"]), index, timeframe)]
    try:
        realized = make_market(
            market.data, symbol=market.symbol, exchange=market.exchange, timeframe=market.timeframe,
            contract=market.contract, liquidations=bars, liquidation_events=events,
            source=market.source, gaps="keep",
        )
    except MarketDataError as exc:
        raise MarketDataError(f"{name}: {exc}") from None
    return replace(realized, gaps=market.gaps)


def save_market_file(market: Market, path: str | Path) -> Path:
    """Write ``market`` in the generic layout (CSV, ``.csv.gz`` or Parquet, by suffix).

    Realized liquidation bars are written as ``long_usd, short_usd`` columns; raw liquidation
    events and metadata (exchange, contract) are not stored. Floats are written at full
    precision, so :func:`load_market_file` reads back exactly the same data.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    kind = _suffix_kind(path)
    frame = market.data.copy()
    if market.liquidations is not None:
        for col in LIQUIDATION_COLUMNS:
            frame[col] = market.liquidations[col].to_numpy()
    index = pd.DatetimeIndex(frame.index).tz_convert("UTC")
    if kind == "parquet":
        import pyarrow as pa

        frame.index = index.rename("timestamp")
        return atomic_write_parquet(path, pa.Table.from_pandas(frame.reset_index(), preserve_index=False))
    whole_seconds = bool((index.microsecond == 0).all() and (index.nanosecond == 0).all())
    fmt = "%Y-%m-%dT%H:%M:%SZ" if whole_seconds else "%Y-%m-%dT%H:%M:%S.%fZ"
    frame.index = pd.Index(index.strftime(fmt), name="timestamp")
    text = frame.to_csv(index=True, float_format=None)
    data = gzip.compress(text.encode()) if path.name.lower().endswith(".gz") else text.encode()
    return atomic_write_bytes(path, data)


# ---------------------------------------------------------------------------------------------
# realized liquidations
_SIDES = {"long": "long", "short": "short", "sell": "long", "buy": "short"}


def _liquidation_bars(table: Table, tcol: str) -> pd.DataFrame:
    """Bars ``long_usd, short_usd`` by time: exact repeated rows count once, conflicting ones are refused."""
    index = table.times(tcol)
    data = {c: table.numbers(c) for c in LIQUIDATION_COLUMNS}
    check_rows(table, data)
    return _sorted_unique(table, index, pd.DataFrame(data))


def _liquidation_events(table: Table, tcol: str) -> pd.DataFrame:
    """Events ``timestamp, side, price, notional`` (+ ``quantity``) sorted by time, values checked."""
    times = table.times(tcol)
    raw_side = table.frame["side"].astype(str).str.strip().str.lower()
    side = raw_side.map(_SIDES)
    bad = np.flatnonzero(side.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise MarketDataError(
            f"{table.at(i)}, column 'side': {clip_cell(table.frame['side'].iloc[i])} is not a side; use "
            "long/short (the side liquidated) or BUY/SELL (the liquidation order: SELL = long liquidated)"
        )
    data = {"price": table.numbers("price")}
    for col in ("notional", "quantity"):
        if table.has(col):
            data[col] = table.numbers(col)
    check_rows(table, data)
    events = pd.DataFrame({"timestamp": times, "side": side.to_numpy(dtype=object), "price": data["price"]})
    if "notional" in data:
        events["notional"] = data["notional"]
    if "quantity" in data:
        events["quantity"] = data["quantity"]
        if "notional" not in data:
            notional = data["price"] * data["quantity"]
            _refuse(table, ~np.isfinite(notional), "quantity", "times price overflows", data["quantity"])
            events["notional"] = notional
    return events.iloc[np.argsort(times.to_numpy(), kind="stable")].reset_index(drop=True)


def _liquidations_from_table(table: Table) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    tcol = _time_column(table)
    if table.has(*LIQUIDATION_COLUMNS):
        return _liquidation_bars(table, tcol), None
    if table.has("side", "price") and (table.has("quantity") or table.has("notional")):
        return None, _liquidation_events(table, tcol)
    raise MarketDataError(
        f"{table.name}: not a liquidations file; found columns {_names(table.frame.columns)}. Use "
        "either bars 'timestamp,long_usd,short_usd' or events 'timestamp,side,price,quantity' "
        "(or 'notional')"
    )


def load_liquidations_file(path: str | Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Read realized liquidations: bars or events, told apart by their columns.

    Parameters
    ----------
    path
        CSV, ``.csv.gz`` or Parquet with either ``timestamp,long_usd,short_usd`` (bars, quote
        currency) or ``timestamp,side,price,quantity`` / ``...,notional`` (events). ``side`` is
        ``long``/``short`` (the side liquidated) or ``BUY``/``SELL`` (the liquidation order's side:
        ``SELL`` closes a long, so it becomes ``"long"``). Without ``notional`` it is
        ``price * quantity``.

    Returns
    -------
    bars, events
        Exactly one of them is a DataFrame: bars indexed by UTC ``timestamp`` with
        ``long_usd, short_usd`` (sorted; a row repeated exactly counts once); or events
        ``timestamp, side, price, notional`` (+ ``quantity``) sorted by time.

    Raises
    ------
    MarketDataError
        A malformed file; negative notionals or quantities; prices that are not positive; two
        different bars for one time.
    """
    return _liquidations_from_table(read_table(path))


def liquidations_from_frame(
    frame: pd.DataFrame, *, name: str = "liquidations"
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Same as :func:`load_liquidations_file` for an in-memory DataFrame (time in index or column)."""
    frame = frame.copy()
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if not any(a in frame.columns for a in TIME_ALIASES):
        frame = frame.rename_axis("timestamp").reset_index()
    frame = frame.reset_index(drop=True)
    return _liquidations_from_table(Table(frame, name, np.arange(len(frame)) + 1, unit="row"))
