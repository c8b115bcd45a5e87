"""The one data contract every source returns: :class:`Market`.

A ``Market`` holds, on one regular UTC time grid,

* ``data``: candles ``open, high, low, close, volume`` (base units), ``open_interest``
  (**quote currency**, e.g. USD), and optionally ``funding_rate`` (decimal per funding period),
  ``long_short_ratio`` (long/short account ratio) and ``taker_buy_volume`` (base units);
* ``liquidations``: realized liquidations per candle, ``long_usd, short_usd`` (quote currency),
  aligned to ``data.index`` (``None`` when unknown);
* ``liquidation_events``: optional raw events ``timestamp, side, price, notional``;
* metadata: ``symbol``, ``exchange``, ``contract`` (``"linear"`` or ``"inverse"``), ``timeframe``,
  ``source`` (where it came from) and ``synthetic``.

Exchange quirks (units, duplicated or unordered rows, ms vs µs) are fixed inside each source;
:func:`validate_market` is the single place that checks the result and raises
:class:`MarketDataError` naming what is wrong and where.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("open", "high", "low", "close", "volume", "open_interest")
OPTIONAL_COLUMNS = ("funding_rate", "long_short_ratio", "taker_buy_volume")
LIQUIDATION_COLUMNS = ("long_usd", "short_usd")
EVENT_COLUMNS = ("timestamp", "side", "price", "notional")
GapPolicy = Literal["raise", "fill", "keep"]

_TIMEFRAME_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}


class MarketDataError(ValueError):
    """Market data that breaks the contract; the message says what is wrong, where, and what to do."""


def timeframe_to_timedelta(timeframe: str) -> pd.Timedelta:
    """Convert a ccxt-style timeframe (``"5m"``, ``"1h"``, ``"1d"``) to a Timedelta.

    Raises
    ------
    MarketDataError
        If the string is not ``<positive int><s|m|h|d|w>``.
    """
    tf = str(timeframe).strip()
    if len(tf) < 2 or tf[-1] not in _TIMEFRAME_UNITS or not tf[:-1].isdigit() or int(tf[:-1]) <= 0:
        raise MarketDataError(
            f"timeframe {timeframe!r} is not understood; use e.g. '1m', '5m', '1h', '4h' or '1d'"
        )
    return pd.Timedelta(int(tf[:-1]), unit=_TIMEFRAME_UNITS[tf[-1]])


def infer_timeframe(index: pd.DatetimeIndex) -> str:
    """Return the most common spacing of ``index`` as a timeframe string (e.g. ``"5m"``)."""
    if len(index) < 2:
        raise MarketDataError("cannot infer the timeframe from fewer than two timestamps; pass timeframe=")
    step = pd.Series(index[1:] - index[:-1]).mode().iloc[0]
    seconds = int(step.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise MarketDataError(f"timestamps are spaced {step}, which is not a whole number of seconds")


@dataclass(frozen=True, eq=False)
class Market:
    """Candles, open interest and realized liquidations for one instrument, validated.

    Build one with :func:`make_market` (which validates) rather than directly.
    """

    data: pd.DataFrame
    symbol: str
    exchange: str
    timeframe: str
    contract: Literal["linear", "inverse"] = "linear"
    liquidations: pd.DataFrame | None = None
    liquidation_events: pd.DataFrame | None = None
    source: str = "unknown"
    synthetic: bool = False
    gaps: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = field(default_factory=tuple)
    breakdown: dict[str, pd.DataFrame] | None = None

    # -- convenient views -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.data)

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.data.index  # type: ignore[return-value]

    @property
    def start(self) -> pd.Timestamp:
        return self.data.index[0]

    @property
    def end(self) -> pd.Timestamp:
        return self.data.index[-1]

    @property
    def has_realized(self) -> bool:
        return self.liquidations is not None

    def column(self, name: str) -> np.ndarray:
        """The column ``name`` as a float64 array (NaN-free after validation)."""
        return self.data[name].to_numpy(dtype=np.float64)

    @property
    def label(self) -> str:
        tag = " (synthetic)" if self.synthetic else ""
        return f"{self.exchange}:{self.symbol} {self.timeframe}{tag}"

    def slice(self, start=None, end=None) -> "Market":
        """The candles with ``start <= timestamp <= end`` (either may be None), as a new Market."""
        start = None if start is None else pd.Timestamp(start)
        end = None if end is None else pd.Timestamp(end)
        if start is not None and start.tzinfo is None:
            start = start.tz_localize("UTC")
        if end is not None and end.tzinfo is None:
            end = end.tz_localize("UTC")
        data = self.data.loc[start:end]
        liq = None if self.liquidations is None else self.liquidations.loc[start:end]
        events = self.liquidation_events
        if events is not None:
            t = events["timestamp"]
            keep = np.ones(len(events), dtype=bool)
            if start is not None:
                keep &= (t >= start).to_numpy()
            if end is not None:
                keep &= (t <= end).to_numpy()
            events = events.loc[keep].reset_index(drop=True)
        gaps = tuple(g for g in self.gaps if (start is None or g[1] >= start) and (end is None or g[0] <= end))
        return replace(self, data=data, liquidations=liq, liquidation_events=events, gaps=gaps)

    def tail(self, n: int) -> "Market":
        """The last ``n`` candles."""
        if n <= 0:
            raise MarketDataError(f"tail needs a positive number of candles, got {n}")
        return self.slice(self.data.index[max(0, len(self.data) - n)], None)

    def with_liquidations(self, liquidations: pd.DataFrame | None) -> "Market":
        """A copy with realized liquidation bars replaced (aligned and validated)."""
        return make_market(
            self.data, symbol=self.symbol, exchange=self.exchange, timeframe=self.timeframe,
            contract=self.contract, liquidations=liquidations,
            liquidation_events=self.liquidation_events, source=self.source,
            synthetic=self.synthetic, gaps="keep",
        )


# ---------------------------------------------------------------------------------------------
def _to_utc_index(index, what: str) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(pd.to_datetime(index, utc=True))
        except (ValueError, TypeError) as exc:
            raise MarketDataError(f"{what}: timestamps could not be parsed ({exc})") from exc
    if index.tz is None:
        index = index.tz_localize("UTC")
    else:
        index = index.tz_convert("UTC")
    # one resolution everywhere, so frames from different sources compare equal
    return index.as_unit("us").rename("timestamp")


def _first_bad(index: pd.DatetimeIndex, mask: np.ndarray) -> str:
    where = np.flatnonzero(mask)
    shown = ", ".join(str(index[i]) for i in where[:3])
    more = f" and {len(where) - 3} more" if len(where) > 3 else ""
    return f"{shown}{more}"


def find_gaps(index: pd.DatetimeIndex, step: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Return ``(last_before, first_after)`` pairs where consecutive timestamps are more than ``step`` apart."""
    if len(index) < 2:
        return []
    diffs = index[1:] - index[:-1]
    where = np.flatnonzero(diffs > step)
    return [(index[i], index[i + 1]) for i in where]


def validate_market(
    data: pd.DataFrame,
    *,
    timeframe: str | None = None,
    gaps: GapPolicy = "raise",
    where: str = "market data",
) -> tuple[pd.DataFrame, str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """Check candles and open interest against the contract.

    Parameters
    ----------
    data
        Frame indexed by timestamp with at least :data:`REQUIRED_COLUMNS`.
    timeframe
        Expected spacing (``"5m"``); inferred from the most common spacing when None.
    gaps
        ``"raise"`` (default) refuses missing candles and lists them; ``"fill"`` inserts them
        (flat candle at the previous close, zero volume, open interest carried forward);
        ``"keep"`` accepts them and reports them in the returned list.
    where
        Name of the input used in error messages (a file name, ``"binanceusdm BTC/USDT:USDT"``).

    Returns
    -------
    data, timeframe, gaps
        The cleaned frame (float64 columns, UTC ``timestamp`` index), the timeframe string and the
        list of gaps found (``(last_before, first_after)`` pairs).

    Raises
    ------
    MarketDataError
        Missing columns, unparseable/unsorted/duplicated timestamps, gaps (with ``gaps="raise"``),
        NaN or infinite values (optional columns: infinite ones), non-positive prices, high below
        low or outside open/close, negative volume, open interest, taker volume or long/short
        ratio, or open interest that looks like base units.
    """
    if not isinstance(data, pd.DataFrame):
        raise MarketDataError(f"{where}: expected a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in data.columns]
    if missing:
        raise MarketDataError(
            f"{where}: missing column(s) {missing}; a market needs {list(REQUIRED_COLUMNS)} "
            f"(open interest in quote currency)"
        )
    if len(data) == 0:
        raise MarketDataError(f"{where}: no rows")
    keep = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in data.columns]
    frame = data[keep].copy()
    frame.index = _to_utc_index(frame.index, where)
    for col in keep:
        try:
            frame[col] = pd.to_numeric(frame[col], errors="raise").astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise MarketDataError(f"{where}: column {col!r} is not numeric ({exc})") from exc

    idx = frame.index
    if len(idx) > 1:
        back = np.asarray(idx[1:] < idx[:-1])
        if back.any():
            raise MarketDataError(
                f"{where}: timestamps are not sorted (first out of order at {_first_bad(idx[1:], back)}); "
                "sort by time in the source"
            )
        dup = np.asarray(idx[1:] == idx[:-1])
        if dup.any():
            raise MarketDataError(
                f"{where}: duplicated timestamps at {_first_bad(idx[1:], dup)}; "
                "drop duplicates in the source"
            )
    if timeframe is None:
        timeframe = infer_timeframe(idx)
    step = timeframe_to_timedelta(timeframe)
    if len(idx) > 1:
        off = np.asarray(((idx - idx[0]) % step) != pd.Timedelta(0))
        if off.any():
            raise MarketDataError(
                f"{where}: timestamps off the {timeframe} grid at {_first_bad(idx, off)}"
            )

    # NaN / inf in required columns (optional columns may be NaN: they are filled below)
    for col in REQUIRED_COLUMNS:
        bad = ~np.isfinite(frame[col].to_numpy())
        if bad.any():
            raise MarketDataError(
                f"{where}: column {col!r} has {int(bad.sum())} NaN or infinite value(s), "
                f"first at {_first_bad(idx, bad)}"
            )
    o, h, l, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    nonpos = (o <= 0) | (h <= 0) | (l <= 0) | (c <= 0)
    if nonpos.any():
        raise MarketDataError(f"{where}: non-positive prices at {_first_bad(idx, nonpos)}")
    tol = 1e-9 * h
    inverted = h < l
    if inverted.any():
        raise MarketDataError(f"{where}: high is below low at {_first_bad(idx, inverted)}")
    outside = (np.maximum(o, c) > h + tol) | (np.minimum(o, c) < l - tol)
    if outside.any():
        raise MarketDataError(
            f"{where}: open or close lies outside [low, high] at {_first_bad(idx, outside)}"
        )
    for col in ("volume", "open_interest"):
        neg = frame[col].to_numpy() < 0
        if neg.any():
            raise MarketDataError(f"{where}: negative {col} at {_first_bad(idx, neg)}")
    oi = frame["open_interest"].to_numpy()
    positive_oi = oi[oi > 0]
    if positive_oi.size and np.median(positive_oi) < 100.0 * np.median(c):
        raise MarketDataError(
            f"{where}: open interest (median {np.median(positive_oi):,.4g}) is worth less than 100 "
            f"contracts at the median close ({np.median(c):,.6g}); it looks like base units. "
            "Open interest must be in quote currency: multiply by the close price "
            "(importers take oi_unit='base' to do this)"
        )

    found = find_gaps(idx, step)
    if found and gaps == "raise":
        shown = ", ".join(f"{a} -> {b}" for a, b in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise MarketDataError(
            f"{where}: {len(found)} gap(s) in the {timeframe} candles: {shown}{more}. "
            "Pass gaps='fill' to insert flat candles (OI carried forward) or gaps='keep' to accept them"
        )
    if found and gaps == "fill":
        full = pd.date_range(idx[0], idx[-1], freq=step, name="timestamp")
        frame = frame.reindex(full)
        filled = frame["close"].isna().to_numpy()
        frame["close"] = frame["close"].ffill()
        for col in ("open", "high", "low"):
            frame[col] = frame[col].fillna(frame["close"])
        frame["volume"] = frame["volume"].fillna(0.0)
        if "taker_buy_volume" in frame:
            frame.loc[filled, "taker_buy_volume"] = 0.0
        frame["open_interest"] = frame["open_interest"].ffill()
    elif gaps not in ("raise", "fill", "keep"):
        raise MarketDataError(f"gaps must be 'raise', 'fill' or 'keep', not {gaps!r}")
    for col in OPTIONAL_COLUMNS:
        if col in frame:
            values = frame[col]
            infinite = np.isinf(values.to_numpy())
            if infinite.any():
                raise MarketDataError(
                    f"{where}: column {col!r} has {int(infinite.sum())} infinite value(s), first at "
                    f"{_first_bad(frame.index, infinite)}; leave unknown values blank (NaN) instead"
                )
            negative = values.to_numpy() < 0
            if col != "funding_rate" and negative.any():
                raise MarketDataError(f"{where}: negative {col} at {_first_bad(frame.index, negative)}")
            if values.isna().all():  # a column with no value at all carries no information
                frame = frame.drop(columns=col)
                continue
            # carry the last known value forward; leading blanks take the first known one
            frame[col] = values.ffill().bfill()
    frame.index.freq = None
    return frame, timeframe, found


def align_liquidations(
    liquidations: pd.DataFrame,
    index: pd.DatetimeIndex,
    *,
    step: pd.Timedelta | None = None,
    where: str = "liquidations",
) -> pd.DataFrame:
    """Align realized liquidation bars (``long_usd, short_usd``) to a candle index.

    Bars are summed into the candle ``[open, open + step)`` that holds the bar's time; bars
    outside every candle (before the first, after the last, inside a gap) are dropped. ``step``
    defaults to the index's most common spacing. Candles with no bar get zero. Raises
    :class:`MarketDataError` on missing columns, NaN or negatives.
    """
    missing = [c for c in LIQUIDATION_COLUMNS if c not in liquidations.columns]
    if missing:
        raise MarketDataError(f"{where}: missing column(s) {missing}; need {list(LIQUIDATION_COLUMNS)}")
    frame = liquidations[list(LIQUIDATION_COLUMNS)].copy()
    frame.index = _to_utc_index(frame.index, where)
    for col in LIQUIDATION_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
        bad = ~np.isfinite(frame[col].to_numpy())
        if bad.any():
            raise MarketDataError(
                f"{where}: column {col!r} has {int(bad.sum())} missing or non-numeric value(s), "
                f"first at {_first_bad(frame.index, bad)}"
            )
        neg = frame[col].to_numpy() < 0
        if neg.any():
            raise MarketDataError(f"{where}: negative {col} at {_first_bad(frame.index, neg)}")
    if step is None:
        step = timeframe_to_timedelta(infer_timeframe(index)) if len(index) > 1 else pd.Timedelta(0)
    pos = index.searchsorted(frame.index, side="right") - 1
    inside = pos >= 0
    if len(index) and step > pd.Timedelta(0):
        opens = index[np.clip(pos, 0, len(index) - 1)]
        inside &= np.asarray(frame.index < opens + step)
    out = np.zeros((len(index), 2))
    np.add.at(out, pos[inside], frame.to_numpy()[inside])
    return pd.DataFrame(out, index=index.rename("timestamp"), columns=list(LIQUIDATION_COLUMNS))


def events_to_bars(
    events: pd.DataFrame, index: pd.DatetimeIndex, step: pd.Timedelta | None = None
) -> pd.DataFrame:
    """Sum liquidation events (``timestamp, side, notional``; side ``long``/``short``) into bars."""
    frame = pd.DataFrame(
        {
            "long_usd": np.where(events["side"].to_numpy() == "long", events["notional"].to_numpy(), 0.0),
            "short_usd": np.where(events["side"].to_numpy() == "short", events["notional"].to_numpy(), 0.0),
        },
        index=pd.DatetimeIndex(events["timestamp"]),
    )
    return align_liquidations(frame, index, step=step, where="liquidation events")


def _check_events(events: pd.DataFrame, where: str) -> None:
    """Refuse liquidation events whose price is not positive or whose notional is negative or not finite."""
    for col, ok, what in (("price", lambda v: v > 0, "a positive price"),
                          ("notional", lambda v: v >= 0, "a non-negative notional")):
        try:
            values = pd.to_numeric(events[col], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            raise MarketDataError(f"{where}: liquidation event column {col!r} is not numeric") from None
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(values) & ok(values))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise MarketDataError(
                f"{where}: liquidation event {col} must be {what}; {int(bad.sum())} event(s) are not, "
                f"first at {events['timestamp'].iloc[i]} ({values[i]:.10g})"
            )


def make_market(
    data: pd.DataFrame,
    *,
    symbol: str,
    exchange: str,
    timeframe: str | None = None,
    contract: Literal["linear", "inverse"] = "linear",
    liquidations: pd.DataFrame | None = None,
    liquidation_events: pd.DataFrame | None = None,
    source: str = "unknown",
    synthetic: bool = False,
    gaps: GapPolicy = "raise",
    breakdown: dict[str, pd.DataFrame] | None = None,
) -> Market:
    """Validate inputs and build a :class:`Market`.

    ``data`` may carry the timestamps as its index or in a ``timestamp`` column. Realized
    liquidations may be given as bars (``liquidations``), as events (``liquidation_events``:
    ``timestamp, side, price, notional``; bars are then derived from them), or both.

    Raises
    ------
    MarketDataError
        See :func:`validate_market`; also an unknown contract type or malformed events (a side
        other than long/short, a price that is not positive, a negative or non-finite notional).
    """
    if contract not in ("linear", "inverse"):
        raise MarketDataError(f"contract must be 'linear' or 'inverse', not {contract!r}")
    where = f"{exchange}:{symbol}"
    if "timestamp" in getattr(data, "columns", ()):
        data = data.set_index("timestamp")
    frame, tf, found = validate_market(data, timeframe=timeframe, gaps=gaps, where=where)
    events = None
    if liquidation_events is not None:
        missing = [c for c in EVENT_COLUMNS if c not in liquidation_events.columns]
        if missing:
            raise MarketDataError(f"{where}: liquidation events lack column(s) {missing}")
        extra = [c for c in liquidation_events.columns if c not in EVENT_COLUMNS]
        events = liquidation_events[list(EVENT_COLUMNS) + extra].copy()
        events["timestamp"] = _to_utc_index(events["timestamp"], where)
        bad_side = ~events["side"].isin(["long", "short"])
        if bad_side.any():
            raise MarketDataError(
                f"{where}: liquidation event side must be 'long' or 'short', got "
                f"{sorted(set(events.loc[bad_side, 'side'].astype(str)))[:3]}"
            )
        _check_events(events, where)
        events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    if liquidations is not None:
        bars = align_liquidations(liquidations, frame.index, step=timeframe_to_timedelta(tf),
                                  where=f"{where} liquidations")
    elif events is not None:
        bars = events_to_bars(events, frame.index, timeframe_to_timedelta(tf))
    else:
        bars = None
    return Market(
        data=frame, symbol=symbol, exchange=exchange, timeframe=tf, contract=contract,
        liquidations=bars, liquidation_events=events, source=source, synthetic=synthetic,
        gaps=tuple(found), breakdown=breakdown,
    )
