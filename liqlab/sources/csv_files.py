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

Every malformed input raises :class:`~liqlab.core.market.MarketDataError` naming the file, the line
(or Parquet row) and column, and what to do about it.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from liqlab.core.atomic import atomic_write_bytes, atomic_write_parquet
from liqlab.core.market import (
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
from liqlab.sources.parsing import check_rows, parse_numbers, parse_timestamps, refuse, sorted_unique, time_column  # noqa: F401
from liqlab.sources.tables import (  # noqa: F401
    CANDLE_COLUMNS,
    MAX_COLUMNS,
    MAX_FILE_BYTES,
    MAX_LINE_CHARS,
    TIME_ALIASES,
    Table,
    check_size,
    clip_cell,
    clip_error,
    decode_text,
    file_stem,
    names,
    read_table,
    suffix_kind,
    table_from_text,
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


# ---------------------------------------------------------------------------------------------
# candles and markets
def _candle_frame(table: Table, columns: Sequence[str]) -> pd.DataFrame:
    """Parse ``columns`` (required) plus any optional/liquidation columns present, and check them."""
    tcol = time_column(table)
    index = table.times(tcol)
    data: dict[str, np.ndarray] = {c: table.numbers(c) for c in columns}
    for col in (*OPTIONAL_COLUMNS, *LIQUIDATION_COLUMNS):
        if col in table.frame.columns and col not in data:
            data[col] = table.numbers(col, required=False)
    check_rows(table, data)
    return sorted_unique(table, index, pd.DataFrame(data))


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
        Gaps are not checked here: that happens when a :class:`~liqlab.core.market.Market` is built.

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
    kind = suffix_kind(path)
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
    return sorted_unique(table, index, pd.DataFrame(data))


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
            refuse(table, ~np.isfinite(notional), "quantity", "times price overflows", data["quantity"])
            events["notional"] = notional
    return events.iloc[np.argsort(times.to_numpy(), kind="stable")].reset_index(drop=True)


def _liquidations_from_table(table: Table) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    tcol = time_column(table)
    if table.has(*LIQUIDATION_COLUMNS):
        return _liquidation_bars(table, tcol), None
    if table.has("side", "price") and (table.has("quantity") or table.has("notional")):
        return None, _liquidation_events(table, tcol)
    raise MarketDataError(
        f"{table.name}: not a liquidations file; found columns {names(table.frame.columns)}. Use "
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
