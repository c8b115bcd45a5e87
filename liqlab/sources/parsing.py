"""Parsing a table's cells: numbers, timestamps (ISO-8601 or epoch), and the checks of the Market contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from liqlab.core.market import (
    MarketDataError,
)
from liqlab.sources.tables import (
    EPOCH,
    FIRST_NS,
    LAST_NS,
    NON_NEGATIVE,
    NULL_TEXT,
    PRICE_COLUMNS,
    SPAN_TEXT,
    TIME_ALIASES,
    UNIT,
    Table,
    clip_cell,
    names,
)


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
        blank = text.isin(NULL_TEXT).to_numpy()
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
        bad = (values < 0) | (values >= LAST_NS // factor)
        ns[~bad] = values[~bad] * factor[~bad]
        return ns, bad
    as_float = numbers.astype(np.float64)
    size = np.abs(as_float)
    exponent = np.where(size < 1e11, 9, np.where(size < 1e14, 6, np.where(size < 1e17, 3, 0)))
    with np.errstate(invalid="ignore", over="ignore"):
        approx = as_float * 10.0 ** exponent
        bad = ~(np.isfinite(approx) & (approx >= FIRST_NS) & (approx < LAST_NS))
    ns[~bad] = np.round(approx[~bad]).astype(np.int64)
    return ns, bad


def _out_of_span(column: str, cell: str, where: str) -> MarketDataError:
    return MarketDataError(
        f"{where}, column {column!r}: {clip_cell(cell)} is not a time {SPAN_TEXT}; use ISO-8601 "
        "(2025-12-04T06:00:00Z) or epoch seconds, milliseconds or microseconds"
    )


def _epoch_index(numbers: np.ndarray, cells: Callable[[int], str], *, column: str,
                 where: Callable[[int], str]) -> pd.DatetimeIndex:
    """Epoch numbers to a UTC index, refusing values outside 1970 .. 2261."""
    ns, bad = _epoch_ns(numbers)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _out_of_span(column, cells(i), where(i))
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC").as_unit(UNIT).rename("timestamp")


def _check_span(index: pd.DatetimeIndex, *, column: str, where: Callable[[int], str]) -> pd.DatetimeIndex:
    """Refuse times outside 1970 .. 2261, then give the index in microseconds named ``timestamp``."""
    index = index.as_unit("us") if index.unit != "us" else index
    values = index.asi8
    bad = np.flatnonzero((values < FIRST_NS // 1000) | (values >= LAST_NS // 1000))
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
    epoch = text.str.fullmatch(EPOCH).to_numpy()
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


def time_column(table: Table) -> str:
    for alias in TIME_ALIASES:
        if alias in table.frame.columns:
            return alias
    raise MarketDataError(
        f"{table.name}: no timestamp column; found {names(table.frame.columns)}. "
        "Name the candle open time column 'timestamp' (ISO-8601 or epoch ms)"
    )


def sorted_unique(table: Table, index: pd.DatetimeIndex, frame: pd.DataFrame) -> pd.DataFrame:
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
def refuse(table: Table, bad: np.ndarray, column: str, what: str, values: np.ndarray | None = None) -> None:
    """Raise naming the first row where ``bad`` holds (no-op when it holds nowhere)."""
    where = np.flatnonzero(bad)
    if where.size:
        i = int(where[0])
        shown = "" if values is None else f"{values[i]:.10g} "
        more = f" ({where.size} rows in all)" if where.size > 1 else ""
        raise MarketDataError(f"{table.at(i)}, column {column!r}: {shown}{what}{more}")


def check_rows(table: Table, data: dict[str, np.ndarray], non_negative: Sequence[str] = ()) -> None:
    """Refuse values the :class:`~liqlab.core.market.Market` contract forbids, naming the first bad line.

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
    for col in PRICE_COLUMNS:
        if col in data:
            refuse(table, ~(data[col] > 0), col, "is not a positive price", data[col])
    for col in (*NON_NEGATIVE, *non_negative):
        if col in data:
            refuse(table, data[col] < 0, col, "is negative; it cannot be", data[col])
    if "high" in data and "low" in data:
        high, low = data["high"], data["low"]
        refuse(table, high < low, "high", "is below the low of the same candle", high)
        tol = 1e-9 * high
        for col in ("open", "close"):
            if col in data:
                outside = (data[col] > high + tol) | (data[col] < low - tol)
                refuse(table, outside, col, "lies outside [low, high] of the same candle", data[col])


