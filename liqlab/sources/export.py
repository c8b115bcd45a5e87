"""Export a stored market to the generic file that ``liqlab predict`` and ``liqlab validate`` read.

:func:`stored_market` assembles, from the store alone (no network), one row per candle::

    timestamp,open,high,low,close,volume,open_interest[,funding_rate,long_short_ratio]
        [,top_trader_account_ratio,top_trader_position_ratio,taker_buy_sell_ratio][,long_usd,short_usd]

Alignment, all backward-looking so that no row holds anything from after its candle's close:

* open interest and the ratios are snapshots stamped with the time they were taken. A candle
  ``[t, t + step)`` gets the latest snapshot stamped at or before its close ``t + step``, and
  only if that snapshot is at most ``max(step, period, 1h)`` old; otherwise the candle is left out (a gap
  in the file, reported) rather than given a stale value. One-minute candles with 5-minute open
  interest therefore carry the snapshot of 00:05 on the candle 00:04-00:05 and the one of 00:00 on
  the candles 00:00-00:04;
* open interest stored in base units (Bybit linear) is priced at the open of the candle that
  starts at or before the snapshot;
* funding holds from each funding time until the next (known at or before the close);
* realized liquidations are summed per candle ``[t, t + step)`` from stored events.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from liqlab.core.market import (
    LIQUIDATION_COLUMNS,
    Market,
    MarketDataError,
    make_market,
    timeframe_to_timedelta,
)
from liqlab.sources.store import Store, safe_name, to_ms

__all__ = ["LOWER_BOUND_SOURCES", "ExportReport", "export_market", "stored_market", "stored_symbol"]

RATIO_COLUMNS = ("top_trader_account_ratio", "top_trader_position_ratio", "taker_buy_sell_ratio")
#: Venues whose stored liquidations undercount: Binance's forceOrder stream (and its archive
#: snapshot) sends at most one liquidation per symbol per second.
LOWER_BOUND_SOURCES = {
    "binanceusdm": "Binance sends at most one liquidation per symbol per second (forceOrder), so these are a lower bound",
    "binancecoinm": "Binance sends at most one liquidation per symbol per second (forceOrder), so these are a lower bound",
}


class ExportError(MarketDataError):
    """Nothing (or not enough) is stored to export; the message says what to run."""


@dataclass
class ExportReport:
    """What an export wrote and what it left out."""

    path: Path | None
    exchange: str
    symbol: str
    timeframe: str
    candles: int = 0
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    columns: list[str] = field(default_factory=list)
    gaps: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        text = (f"wrote {self.candles} {self.timeframe} candles of {self.exchange} {self.symbol} "
                f"({self.start} .. {self.end}) to {self.path}; columns: {', '.join(self.columns)}")
        if self.gaps:
            text += f"; {self.gaps} gap(s) left as missing rows"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def _compact(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", str(text).upper())


def stored_symbol(store: Store, exchange: str, symbol: str) -> str:
    """The symbol the store files ``symbol`` under on ``exchange`` (``BTCUSDT`` -> ``BTC/USDT:USDT``).

    Raises
    ------
    ExportError
        When nothing is stored for that exchange and symbol (the stored symbols are listed).
    """
    wanted = _compact(symbol)
    seen = []
    for entry in store.entries():
        if safe_name(entry.exchange) != safe_name(exchange):
            continue
        seen.append(entry.symbol)
        if _compact(entry.symbol) == wanted or _compact(entry.symbol.split(":")[0]) == wanted:
            return entry.symbol
        if safe_name(entry.symbol).upper() == safe_name(symbol).upper():
            return entry.symbol
    listed = ", ".join(sorted(set(seen))[:8]) or "nothing"
    raise ExportError(
        f"the store at {store.root} holds no {exchange} {symbol} (it holds {listed} for {exchange}); "
        f"fill it with `liqlab archive {exchange} {symbol} ...` or `liqlab fetch {exchange} {symbol} ...`"
    )


def _periods(entries, exchange: str, symbol: str, kind: str) -> list[str]:
    out = []
    for entry in entries:
        same = entry.kind == kind and safe_name(entry.exchange) == safe_name(exchange) and entry.symbol == symbol
        if same and entry.period:
            out.append(entry.period)
    return out


def pick_period(periods: list[str], timeframe: str) -> str | None:
    """The stored snapshot period to use for candles of ``timeframe``: the coarsest that divides
    it, else the finest stored."""
    if not periods:
        return None
    step = timeframe_to_timedelta(timeframe)
    sized = sorted((timeframe_to_timedelta(p), p) for p in set(periods))
    dividing = [p for d, p in sized if d <= step and step % d == pd.Timedelta(0)]
    return dividing[-1] if dividing else sized[0][1]


def _asof(times: pd.Series, values: np.ndarray, at: np.ndarray, tolerance_ms: int | None) -> np.ndarray:
    """Latest value stamped at or before each of ``at`` (ms), NaN when none within the tolerance."""
    src = pd.DatetimeIndex(times).as_unit("ms").asi8
    order = np.argsort(src, kind="stable")
    src, values = src[order], np.asarray(values, dtype=float)[order]
    ok_rows = np.isfinite(values)
    src, values = src[ok_rows], values[ok_rows]
    pos = np.searchsorted(src, at, side="right") - 1
    out = np.full(len(at), np.nan)
    ok = pos >= 0
    if tolerance_ms is not None:
        ok &= at - src[np.clip(pos, 0, None)] <= tolerance_ms if len(src) else np.zeros(len(at), bool)
    out[ok] = values[pos[ok]]
    return out


def resample_candles(fine: pd.DataFrame, step: int, fine_step: int) -> pd.DataFrame:
    """Candles of ``step`` ms from candles of ``fine_step`` ms; groups missing a sub-candle are left out.

    open = first open, high = max, low = min, close = last close, volume = sum.
    """
    if fine.empty:
        return fine
    ms = pd.DatetimeIndex(fine["timestamp"]).as_unit("ms").asi8
    key = ms // step * step
    grouped = fine.assign(_key=key).groupby("_key", sort=True)
    out = grouped.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
                      volume=("volume", "sum"), n=("open", "size"))
    out = out.loc[out["n"] == step // fine_step].drop(columns="n")
    out.index = pd.to_datetime(out.index.to_numpy(), unit="ms", utc=True)
    return out.rename_axis("timestamp").reset_index()


def stored_market(
    store: Store,
    exchange: str,
    symbol: str,
    timeframe: str,
    since,
    until,
    *,
    notes: list[str] | None = None,
) -> tuple[Market, pd.DataFrame]:
    """Assemble a Market (gaps kept) and the extra ratio columns from what the store holds.

    Returns
    -------
    market, extras
        The validated :class:`Market` (``source="store"``) and a frame of
        :data:`RATIO_COLUMNS` on the market's index (empty columns are left out).

    Raises
    ------
    ExportError
        When no candles or no open interest are stored for the window.
    """
    notes = notes if notes is not None else []
    symbol = stored_symbol(store, exchange, symbol)
    entries = store.entries()
    step = int(timeframe_to_timedelta(timeframe).total_seconds() * 1000)
    lo, hi = to_ms(since), to_ms(until)
    candles = store.read(exchange, symbol, "ohlcv", timeframe, lo, hi)
    where = f"{exchange} {symbol}"
    if candles.empty:
        finer = pick_period(_periods(entries, exchange, symbol, "ohlcv"), timeframe)
        if finer is not None and finer != timeframe:
            fstep = int(timeframe_to_timedelta(finer).total_seconds() * 1000)
            if fstep < step and step % fstep == 0:
                fine = store.read(exchange, symbol, "ohlcv", finer, lo, hi + step - 1)
                candles = resample_candles(fine, step, fstep)
                if len(candles):
                    notes.append(f"{timeframe} candles built from stored {finer} candles (complete groups only)")
    if candles.empty:
        have = ", ".join(_periods(entries, exchange, symbol, "ohlcv")) or "none"
        raise ExportError(f"{where}: no {timeframe} candles stored between {pd.Timestamp(lo, unit='ms', tz='UTC')} "
                          f"and {pd.Timestamp(hi, unit='ms', tz='UTC')} (stored candle sizes: {have})")
    period = pick_period(_periods(entries, exchange, symbol, "open_interest"), timeframe)
    if period is None:
        raise ExportError(f"{where}: no open interest stored; import the archive's metrics or run `liqlab oi-history`")
    pstep = int(timeframe_to_timedelta(period).total_seconds() * 1000)
    tol = max(step, pstep, 3_600_000)
    opens = pd.DatetimeIndex(candles["timestamp"]).as_unit("ms").asi8
    closes = opens + step
    oi = store.read(exchange, symbol, "open_interest", period, lo - tol, hi + step)
    value = oi["open_interest_value"].to_numpy(dtype=float)
    if len(oi) and np.isnan(value).any():
        # base units (Bybit linear): price them at the candle open at or before the snapshot
        snap = pd.DatetimeIndex(oi["timestamp"]).as_unit("ms").asi8
        pos = np.clip(np.searchsorted(opens, snap, side="right") - 1, 0, len(opens) - 1)
        value = np.where(np.isnan(value), oi["open_interest_amount"].to_numpy(dtype=float) * candles["open"].to_numpy()[pos], value)
    data = candles.set_index("timestamp")
    data["open_interest"] = _asof(oi["timestamp"], value, closes, tol)
    funding = store.read(exchange, symbol, "funding", None, lo - 3 * 86_400_000, hi + step)
    if len(funding):
        data["funding_rate"] = _asof(funding["timestamp"], funding["funding_rate"].to_numpy(), closes, 3 * 86_400_000)
    ls_period = pick_period(_periods(entries, exchange, symbol, "long_short"), timeframe)
    if ls_period:
        ls = store.read(exchange, symbol, "long_short", ls_period, lo - tol, hi + step)
        data["long_short_ratio"] = _asof(ls["timestamp"], ls["long_short_ratio"].to_numpy(), closes, tol)
    extras = pd.DataFrame(index=data.index)
    r_period = pick_period(_periods(entries, exchange, symbol, "ratios"), timeframe)
    if r_period:
        ratios = store.read(exchange, symbol, "ratios", r_period, lo - tol, hi + step)
        for col in RATIO_COLUMNS:
            extras[col] = _asof(ratios["timestamp"], ratios[col].to_numpy(), closes, tol)
    missing = ~np.isfinite(data["open_interest"].to_numpy())
    if missing.all():
        raise ExportError(f"{where}: open interest ({period}) is stored, but none within {tol // 60000} min before "
                          f"the close of any {timeframe} candle in the window")
    if missing.any():
        notes.append(f"{int(missing.sum())} candle(s) without open interest within {tol // 60000} min left out")
        data, extras = data.loc[~missing], extras.loc[~missing]
    for frame in (data, extras):
        for col in [c for c in frame.columns if c != "open_interest" and frame[c].isna().all()]:
            frame.drop(columns=col, inplace=True)
    events = None
    if store.path(exchange, symbol, "liquidations").exists():
        events = store.read_liquidations(exchange, symbol, data.index[0], to_ms(data.index[-1]) + step - 1)
        cov = store.coverage(exchange, symbol, "liquidations")
        if cov:
            span = f"{pd.Timestamp(cov[0][0], unit='ms', tz='UTC')} .. {pd.Timestamp(cov[-1][1], unit='ms', tz='UTC')}"
            notes.append(f"realized liquidations stored for {span} (zero outside the recorded spans means unknown)")
        elif events is not None and len(events):
            notes.append(f"realized liquidations recorded live without a stored span: known at best from "
                         f"{events['timestamp'].iloc[0]} to {events['timestamp'].iloc[-1]} (zero elsewhere means unknown)")
        if exchange in LOWER_BOUND_SOURCES:
            notes.append(f"realized liquidations: {LOWER_BOUND_SOURCES[exchange]}")
    contract = "inverse" if re.fullmatch(r"([A-Z0-9]+)/[A-Z]+:\1", symbol) else "linear"
    market = make_market(data, symbol=symbol, exchange=exchange, timeframe=timeframe, contract=contract,
                         liquidation_events=events, source="store", gaps="keep")
    return market, extras.reindex(market.index)


def write_generic(frame: pd.DataFrame, path: Path) -> Path:
    """Write a candle frame (UTC index) as generic CSV (ISO ``...Z`` times) or Parquet, atomically."""
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]).lower() if path.name.lower().endswith(".csv.gz") else path.suffix.lower()
    if suffix not in (".csv", ".csv.gz", ".parquet", ".pq"):
        raise ExportError(f"{path.name}: write .csv, .csv.gz or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    index = pd.DatetimeIndex(frame.index).tz_convert("UTC")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-export-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        out = frame.copy()
        if suffix in (".parquet", ".pq"):
            out.index = index.rename("timestamp")
            out.reset_index().to_parquet(tmp, index=False)
        else:
            out.index = pd.Index(index.strftime("%Y-%m-%dT%H:%M:%SZ"), name="timestamp")
            out.to_csv(tmp, index=True, compression="gzip" if suffix == ".csv.gz" else None)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def export_market(
    exchange: str,
    symbol: str,
    timeframe: str,
    since,
    until,
    out,
    *,
    store: Store | str | os.PathLike | None = None,
) -> ExportReport:
    """Write the stored market for ``[since, until]`` to ``out`` (``.csv``, ``.csv.gz``, ``.parquet``).

    The file is the generic layout of :mod:`liqlab.sources.csv_files` plus the extra ratio
    columns, so ``liqlab predict FILE`` and ``liqlab validate FILE FILE`` read it (they ignore
    the extra columns; ``validate`` takes ``long_usd, short_usd`` from the same file).

    Raises
    ------
    ExportError
        When the store lacks candles or open interest for the window; nothing is written then.
    """
    store = store if isinstance(store, Store) else Store(store)
    notes: list[str] = []
    market, extras = stored_market(store, exchange, symbol, timeframe, since, until, notes=notes)
    frame = market.data.copy()
    for col in extras.columns:
        frame[col] = extras[col].to_numpy()
    if market.liquidations is not None:
        for col in LIQUIDATION_COLUMNS:
            frame[col] = market.liquidations[col].to_numpy()
    path = write_generic(frame, Path(out))
    return ExportReport(path, exchange, market.symbol, timeframe, len(market), market.start, market.end,
                        list(frame.columns), len(market.gaps), notes)
