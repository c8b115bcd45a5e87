"""Reading a generic file into a :class:`Table` of text cells, with bounds on size, lines and columns."""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from liqlab.core.market import (
    MarketDataError,
)

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")
TIME_ALIASES = ("timestamp", "time", "datetime", "date", "open_time")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")
EPOCH = re.compile(r"^[+-]?\d+(\.\d*)?$")
NULL_TEXT = frozenset({"", "nan", "NaN", "NAN", "null", "NULL", "None", "none", "NA", "N/A"})
# pandas 3 defaults to microsecond datetimes; keep one unit so frames compare equal across sources
UNIT = "us"
#: Largest file (after decompression) read, in bytes.
MAX_FILE_BYTES = 512 * 2**20
#: Longest line read, in characters (a market row is well under 300).
MAX_LINE_CHARS = 10_000
#: Most columns a header may name.
MAX_COLUMNS = 256
#: Longest piece of a cell or column name quoted in an error message.
MAX_ECHO = 60
# timestamps must lie in [1970-01-01, 2262-01-01): what datetime64[ns] holds, with room to spare
FIRST_NS = 0
LAST_NS = pd.Timestamp("2262-01-01").value
SPAN_TEXT = "between 1970 and 2261"
PRICE_COLUMNS = ("open", "high", "low", "close", "price")
NON_NEGATIVE = (
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


def names(columns: Sequence[object], count: int = 12) -> str:
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
                f"{self.name}: missing column(s) {missing}; found {names(self.frame.columns)}. {hint}".rstrip()
            )

    def numbers(self, column: str, *, required: bool = True) -> np.ndarray:
        """Column ``column`` as float64; blanks become NaN (an error when ``required``)."""
        from liqlab.sources.parsing import parse_numbers  # (parsing builds on this module)

        return parse_numbers(self.frame[column], column=column, where=self.at, required=required)

    def times(self, column: str) -> pd.DatetimeIndex:
        """Column ``column`` as a UTC DatetimeIndex named ``timestamp``."""
        from liqlab.sources.parsing import parse_timestamps

        return parse_timestamps(self.frame[column], column=column, where=self.at)

    def take(self, keep: np.ndarray) -> "Table":
        """The rows where boolean ``keep`` is true (row numbers follow them)."""
        return Table(self.frame.loc[keep].reset_index(drop=True), self.name, self.rows[keep], self.unit)


def suffix_kind(path: Path) -> Literal["csv", "parquet"]:
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
    kind = suffix_kind(path)
    if not path.exists():
        raise MarketDataError(f"{name}: no such file ({path})")
    if kind == "parquet":
        return _read_parquet(path)
    return table_from_text(decode_text(_read_bytes(path), name), name)


