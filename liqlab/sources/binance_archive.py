"""Binance public-archive files (data.binance.vision), zipped or plain CSV.

Readers for the four file kinds a liquidation map needs, each normalising the archive's quirks
at the edge:

* ``klines``: no header row before 2022; open times in ms, or µs in 2025+ spot files;
* ``metrics``: 5-minute open interest and long/short ratios, sometimes out of order, with
  repeated timestamps and blank ratios;
* ``liquidationSnapshot``: every row appears twice; ``side`` is the liquidation *order's* side
  (SELL closes a long); COIN-M quantities are contracts (100 USD each for BTCUSD_PERP);
* ``fundingRate``: settlement times a few milliseconds off the hour.

:func:`load_binance_archive` joins many daily files into one validated :class:`Market`.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from liqlab.core.market import GapPolicy, Market, MarketDataError, infer_timeframe, make_market, timeframe_to_timedelta
from liqlab.sources.csv_files import Table, check_rows, check_size, clip_cell, clip_error, decode_text, table_from_text

__all__ = [
    "load_binance_archive",
    "read_funding_rate",
    "read_klines",
    "read_liquidation_snapshot",
    "read_metrics",
]

KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)
METRICS_COLUMNS = (
    "create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
    "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio",
    "count_long_short_ratio", "sum_taker_long_short_vol_ratio",
)
SNAPSHOT_COLUMNS = (
    "time", "side", "order_type", "time_in_force", "original_quantity", "price",
    "average_price", "order_status", "last_fill_quantity", "accumulated_fill_quantity",
)
FUNDING_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")

# archive column -> Market column (linear contracts; see read_metrics for inverse OI)
_METRIC_RENAMES = {
    "count_long_short_ratio": "long_short_ratio",
    "count_toptrader_long_short_ratio": "top_trader_account_ratio",
    "sum_toptrader_long_short_ratio": "top_trader_position_ratio",
    "sum_taker_long_short_vol_ratio": "taker_buy_sell_ratio",
}
_HEADER_CELL = re.compile(r"^[A-Za-z_ ]+$")

Contract = Literal["linear", "inverse"]
PathLike = str | Path


# ---------------------------------------------------------------------------------------------
def _zip_member(path: Path) -> bytes:
    """The bytes of the one CSV inside the zip archive ``path``."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                m for m in archive.infolist()
                if m.filename.lower().endswith(".csv") and not m.filename.startswith("__MACOSX/")
            ]
            if len(members) != 1:
                raise MarketDataError(
                    f"{path.name}: expected one CSV inside the zip, found {len(members)} "
                    f"({[clip_cell(m.filename, 40) for m in members[:3]]}); pass the daily archive files one by one"
                )
            check_size(members[0].file_size, path.name)
            return archive.read(members[0])
    except MarketDataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise MarketDataError(
            f"{path.name}: damaged zip archive ({type(exc).__name__}: {clip_error(exc, 80)}); download it again"
        ) from None


def _archive_text(path: Path) -> str:
    """The CSV text of ``path``: a plain CSV, or a ``.zip`` holding exactly one CSV."""
    if not path.exists():
        raise MarketDataError(f"{path.name}: no such file ({path})")
    try:
        check_size(path.stat().st_size, path.name)
        raw = path.read_bytes()
    except OSError as exc:
        raise MarketDataError(
            f"{path.name}: cannot be read ({type(exc).__name__}); give a readable file, not a folder"
        ) from None
    if raw[:2] == b"PK":
        raw = _zip_member(path)
    return decode_text(raw, path.name)


def _archive_table(path: PathLike, columns: Sequence[str], required: Sequence[str], what: str) -> Table:
    """Read an archive file, with or without its header row (told by the first cell)."""
    path = Path(path)
    text = _archive_text(path)
    first = text.lstrip("\r\n").split("\n", 1)[0].split(",")
    has_header = bool(_HEADER_CELL.match(first[0].strip().strip("\"'").strip()))
    if has_header:
        table = table_from_text(text, path.name)
    else:
        n = len(first)
        if n < len(required):
            raise MarketDataError(
                f"{path.name}, line 1: {n} fields and no header; a headerless {what} line has "
                f"{len(columns)} fields ({','.join(columns)})"
            )
        table = table_from_text(text, path.name, names=list(columns[:n]) + [f"extra_{i}" for i in range(n - len(columns))])
    table.require(required, f"Is this a Binance {what} file?")
    return table


def _dedupe_by_time(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by the index (stable) and keep the last row of each repeated timestamp."""
    frame = frame.iloc[np.argsort(frame.index.to_numpy(), kind="stable")]
    return frame.loc[~frame.index.duplicated(keep="last")]


# ---------------------------------------------------------------------------------------------
def read_klines(path: PathLike, *, contract: Contract = "linear") -> pd.DataFrame:
    """Read a Binance archive klines file (``.zip`` or ``.csv``), header row or not.

    A real raw line (BTCUSDT USD-M 1m, 2020-01-01, no header row in files of that age)::

        1577836800000,7189.43,7190.52,7177,7182.44,246.092,1577836859999,1767430.16121,336,46.630,334813.19820,0

    Parameters
    ----------
    path
        The archive file.
    contract
        ``"linear"`` (USD-M, spot): ``volume`` is already base units. ``"inverse"`` (COIN-M):
        ``volume`` counts contracts, so the base-coin columns (``quote_volume`` and
        ``taker_buy_quote_volume`` in COIN-M files) are used instead.

    Returns
    -------
    DataFrame
        ``open, high, low, close, volume, taker_buy_volume`` (float64) indexed by the UTC candle
        open ``timestamp`` (ms or µs open times, told apart by magnitude), sorted, one row per time.
    """
    table = _archive_table(path, KLINE_COLUMNS, KLINE_COLUMNS[:6], "klines")
    volume, taker = ("volume", "taker_buy_volume") if contract == "linear" else (
        "quote_volume", "taker_buy_quote_volume")
    if contract not in ("linear", "inverse"):
        raise MarketDataError(f"contract must be 'linear' or 'inverse', not {contract!r}")
    table.require([volume], "COIN-M klines carry the base-coin volume in column 8.")
    data = {c: table.numbers(c) for c in ("open", "high", "low", "close")}
    data["volume"] = table.numbers(volume)
    if taker in table.frame.columns:
        data["taker_buy_volume"] = table.numbers(taker, required=False)
    check_rows(table, data)
    frame = pd.DataFrame(data, index=table.times("open_time"))
    return _dedupe_by_time(frame)


def read_metrics(path: PathLike, *, contract: Contract = "linear", contract_size: float = 100.0) -> pd.DataFrame:
    """Read a Binance archive ``metrics`` file (5-minute open interest and ratios).

    A real raw line (BTCUSDT-metrics-2024-06-03)::

        2024-06-03 00:00:00,BTCUSDT,76155.768,5159979653.83,1.91673877,1.55748,1.9209649,0.624167

    Parameters
    ----------
    path
        The archive file (``.zip`` or ``.csv``).
    contract, contract_size
        For ``"linear"`` open interest is ``sum_open_interest_value`` (quote currency). For
        ``"inverse"`` it is ``sum_open_interest`` (contracts) times ``contract_size`` USD.

    Returns
    -------
    DataFrame
        Indexed by UTC ``timestamp`` (``create_time``), sorted, repeated timestamps resolved by
        keeping the last row of the file; columns ``open_interest`` (quote), ``long_short_ratio``
        (all accounts), ``top_trader_account_ratio``, ``top_trader_position_ratio``,
        ``taker_buy_sell_ratio``. Blank cells are NaN (the Market contract forward-fills ratios).

    Raises
    ------
    MarketDataError
        A malformed file, infinite values, or negative open interest or ratios (naming the line).
    """
    table = _archive_table(path, METRICS_COLUMNS, ("create_time", "sum_open_interest_value"), "metrics")
    if contract == "linear":
        oi = table.numbers("sum_open_interest_value", required=False)
    elif contract == "inverse":
        table.require(["sum_open_interest"])
        oi = table.numbers("sum_open_interest", required=False) * float(contract_size)
    else:
        raise MarketDataError(f"contract must be 'linear' or 'inverse', not {contract!r}")
    data = {"open_interest": oi}
    for raw, name in _METRIC_RENAMES.items():
        if raw in table.frame.columns:
            data[name] = table.numbers(raw, required=False)
    check_rows(table, data, non_negative=tuple(_METRIC_RENAMES.values()))
    frame = pd.DataFrame(data, index=table.times("create_time"))
    return _dedupe_by_time(frame)


def read_liquidation_snapshot(
    path: PathLike, *, contract: Contract = "linear", contract_size: float = 100.0
) -> pd.DataFrame:
    """Read a Binance archive ``liquidationSnapshot`` file into liquidation events.

    A real raw line (BTCUSD_PERP COIN-M, 2024-10-01; every line appears twice in the archive)::

        1727740869082,BUY,LIMIT,IOC,7,63661.4,63425.1,FILLED,7,7

    Parameters
    ----------
    path
        The archive file (``.zip`` or ``.csv``).
    contract
        ``"linear"`` (USDT-M): notional = ``average_price * accumulated_fill_quantity``.
        ``"inverse"`` (COIN-M): quantities are contracts, notional = quantity * ``contract_size``.
    contract_size
        USD per COIN-M contract (100 for BTCUSD_PERP, 10 for most others).

    Returns
    -------
    DataFrame
        ``timestamp, side, price, notional, quantity`` sorted by time. Exact doubled rows are
        dropped; ``side`` is the side liquidated (order SELL -> ``"long"``, BUY -> ``"short"``);
        ``price`` is ``average_price`` (``price`` when that is blank or zero); ``quantity`` is
        ``accumulated_fill_quantity`` (``original_quantity`` in files without it). Rows that
        filled nothing are dropped.

    Raises
    ------
    MarketDataError
        A malformed file, a negative quantity, or a filled row without a positive price.
    """
    table = _archive_table(path, SNAPSHOT_COLUMNS, ("time", "side", "price"), "liquidationSnapshot")
    # the archive writes every event twice; identical text rows are one event
    table = table.take(~table.frame.duplicated(keep="first").to_numpy())
    side_raw = table.frame["side"].str.upper()
    side = side_raw.map({"SELL": "long", "BUY": "short"})
    bad = np.flatnonzero(side.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise MarketDataError(f"{table.at(i)}, column 'side': {clip_cell(table.frame['side'].iloc[i])} is not BUY or SELL")
    price = table.numbers("price", required=False)
    if "average_price" in table.frame.columns:
        avg = table.numbers("average_price", required=False)
        price = np.where(np.isfinite(avg) & (avg > 0), avg, price)
    qcol = "accumulated_fill_quantity" if "accumulated_fill_quantity" in table.frame.columns else "original_quantity"
    table.require([qcol])
    quantity = table.numbers(qcol)
    check_rows(table, {"quantity": quantity})
    filled = quantity > 0
    bad_price = np.flatnonzero(filled & ~(np.isfinite(price) & (price > 0)))
    if bad_price.size:
        raise MarketDataError(f"{table.at(int(bad_price[0]))}: no usable price or average_price (positive numbers)")
    if contract == "linear":
        notional = price * quantity
    elif contract == "inverse":
        notional = quantity * float(contract_size)
    else:
        raise MarketDataError(f"contract must be 'linear' or 'inverse', not {contract!r}")
    overflow = np.flatnonzero(filled & ~np.isfinite(notional))
    if overflow.size:
        raise MarketDataError(f"{table.at(int(overflow[0]))}: the quantity times the price overflows")
    events = pd.DataFrame({
        "timestamp": table.times("time"),
        "side": side.to_numpy(dtype=object),
        "price": price,
        "notional": notional,
        "quantity": quantity,
    })
    events = events.loc[filled]
    return events.iloc[np.argsort(events["timestamp"].to_numpy(), kind="stable")].reset_index(drop=True)


def read_funding_rate(path: PathLike) -> pd.Series:
    """Read a Binance archive ``fundingRate`` file.

    A real raw line (BTCUSDT-fundingRate-2020-01)::

        1577836800000,8,-0.00012359

    Returns
    -------
    Series
        ``funding_rate`` (decimal per funding period) indexed by UTC ``timestamp`` (``calc_time``,
        which may sit a few ms after the hour), sorted, one value per time (last kept).
    """
    table = _archive_table(path, FUNDING_COLUMNS, ("calc_time", "last_funding_rate"), "fundingRate")
    series = pd.Series(table.numbers("last_funding_rate"), index=table.times("calc_time"), name="funding_rate")
    return _dedupe_by_time(series.to_frame())["funding_rate"]


# ---------------------------------------------------------------------------------------------
def _paths(files: PathLike | Iterable[PathLike] | None) -> list[Path]:
    if files is None:
        return []
    if isinstance(files, (str, Path)):
        return [Path(files)]
    return [Path(f) for f in files]


def _asof(values: pd.DataFrame, at: pd.DatetimeIndex, tolerance: pd.Timedelta | None = None) -> pd.DataFrame:
    """For each time in ``at``, each column's last non-NaN value stamped at or before it."""
    out = {}
    target = pd.DataFrame({"t": at.as_unit("us")})
    for col in values.columns:
        known = values[col].dropna()
        right = pd.DataFrame({"t": pd.DatetimeIndex(known.index).as_unit("us"), col: known.to_numpy()})
        merged = pd.merge_asof(target, right, on="t", direction="backward", tolerance=tolerance)
        out[col] = merged[col].to_numpy(dtype=np.float64)
    return pd.DataFrame(out, index=at)


def load_binance_archive(
    klines: PathLike | Iterable[PathLike],
    metrics: PathLike | Iterable[PathLike] | None = None,
    liquidations: PathLike | Iterable[PathLike] | None = None,
    funding: PathLike | Iterable[PathLike] | None = None,
    *,
    symbol: str,
    timeframe: str | None = None,
    contract: Contract = "linear",
    contract_size: float = 100.0,
    gaps: GapPolicy = "raise",
    known_at: Literal["close", "open"] = "close",
) -> Market:
    """Combine daily Binance archive files into one validated :class:`Market`.

    Parameters
    ----------
    klines
        Kline files (any order; overlaps resolved by keeping the last).
    metrics
        ``metrics`` files: open interest (required by the Market contract) and ratios.
    liquidations
        ``liquidationSnapshot`` files: realized liquidation events, summed into candle bars.
    funding
        ``fundingRate`` files.
    symbol, timeframe
        Instrument name and candle spacing (inferred when None).
    contract, contract_size
        ``"linear"`` for USD-M, ``"inverse"`` for COIN-M (``contract_size`` USD per contract).
    gaps
        Missing-candle policy, see :func:`liqlab.core.market.validate_market`.
    known_at
        Which value each candle gets from the 5-minute metrics and from funding: ``"close"``
        (default) takes the last value stamped at or before the candle's close, i.e. open interest
        at the end of the candle, never anything later; ``"open"`` takes the last one at or before
        its open (one candle more conservative).

    Returns
    -------
    Market
        ``source="binance-archive"``, exchange ``binanceusdm`` or ``binancecoinm``. Candles before
        the first and after the last open-interest value are trimmed; open interest must be known
        within ``max(timeframe, 1h)`` of every other candle. Liquidation events after the last
        candle's close are dropped.

    Raises
    ------
    MarketDataError
        Missing files, malformed rows, missing open interest inside the span, gaps (``"raise"``).
    """
    if contract not in ("linear", "inverse"):
        raise MarketDataError(f"contract must be 'linear' or 'inverse', not {contract!r}")
    exchange = "binanceusdm" if contract == "linear" else "binancecoinm"
    where = f"{exchange}:{symbol} archive"
    kline_paths = _paths(klines)
    metric_paths = _paths(metrics)
    if not kline_paths:
        raise MarketDataError(f"{where}: no klines files given")
    if not metric_paths:
        raise MarketDataError(
            f"{where}: no metrics files given; a market needs open interest (the archive's "
            "'metrics' files). For candles alone use read_klines"
        )
    candles = _dedupe_by_time(pd.concat([read_klines(p, contract=contract) for p in kline_paths]))
    if known_at not in ("close", "open"):
        raise MarketDataError(f"known_at must be 'close' or 'open', not {known_at!r}")
    step = timeframe_to_timedelta(timeframe or infer_timeframe(candles.index))
    known = candles.index + step if known_at == "close" else candles.index

    frames = [read_metrics(p, contract=contract, contract_size=contract_size) for p in metric_paths]
    metric = _dedupe_by_time(pd.concat(frames))
    oi = _asof(metric[["open_interest"]], known, tolerance=max(step, pd.Timedelta("1h")))
    ratios = _asof(metric[["long_short_ratio"]], known) if "long_short_ratio" in metric else None
    data = candles.copy()
    data["open_interest"] = oi["open_interest"].to_numpy()
    if ratios is not None:
        data["long_short_ratio"] = ratios["long_short_ratio"].to_numpy()
    funding_paths = _paths(funding)
    if funding_paths:
        rates = _dedupe_by_time(pd.concat([read_funding_rate(p).to_frame() for p in funding_paths]))
        data["funding_rate"] = _asof(rates, known)["funding_rate"].to_numpy()

    # metrics files rarely start and end on the same candle as the klines: trim the edges only
    have = np.flatnonzero(np.isfinite(data["open_interest"].to_numpy()))
    if have.size == 0:
        raise MarketDataError(
            f"{where}: no open interest at or before any candle's {known_at} "
            f"({candles.index[0]} .. {candles.index[-1]}); give the metrics files for these days"
        )
    data = data.iloc[have[0]: have[-1] + 1]
    # an optional column with no value at all (e.g. early files with blank ratios) says nothing
    data = data.drop(columns=[c for c in ("long_short_ratio", "funding_rate")
                              if c in data and data[c].isna().all()])
    missing = np.flatnonzero(~np.isfinite(data["open_interest"].to_numpy()))
    if missing.size:
        raise MarketDataError(
            f"{where}: no open interest within {max(step, pd.Timedelta('1h'))} of {missing.size} "
            f"candle(s), first at {data.index[missing[0]]}; add the metrics files for those days"
        )

    events = None
    snapshot_paths = _paths(liquidations)
    if snapshot_paths:
        events = pd.concat(
            [read_liquidation_snapshot(p, contract=contract, contract_size=contract_size) for p in snapshot_paths],
            ignore_index=True,
        )
        # the same file given twice, or overlapping exports, must not double the events
        events = events.drop_duplicates(ignore_index=True)
        t = events["timestamp"]
        inside = (t >= data.index[0]) & (t < data.index[-1] + step)
        events = events.loc[inside.to_numpy()].sort_values("timestamp", kind="stable").reset_index(drop=True)
    return make_market(
        data, symbol=symbol, exchange=exchange, timeframe=timeframe, contract=contract,
        liquidation_events=events, source="binance-archive", gaps=gaps,
    )
