"""Cropping, aggregating and resampling a result and its market for display."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # plotly and the engine are imported lazily: ``import liqlab`` stays light
    import plotly.graph_objects as go  # noqa: F401

    from liqlab.core.engine import HeatmapResult, LiquidationMap  # noqa: F401
    from liqlab.core.market import Market  # noqa: F401


COARSE_COLUMNS = 150  # hover/colour-bar heatmap: at most this many time columns ...


COARSE_ROWS = 120  # ... and price rows, aggregated from the full grid


LINE_POINTS = 2_000  # price line: at most this many points (lowest and highest close per run)


_BAR_PERIODS = ("5min", "15min", "30min", "1h", "2h", "4h", "6h", "12h", "1D", "3D", "7D")


def visible_price_range(market: "Market", margin: float = 0.03) -> tuple[float, float]:
    """The candles' low-high range widened by ``margin`` (a fraction of the range, at least 0.5 %).

    Parameters
    ----------
    market
        The market whose candles set the range.
    margin
        Extra room on each side as a fraction of the high-low range.

    Returns
    -------
    (low, high)
        Price bounds for the displayed rows.
    """
    lo = float(market.data["low"].min())
    hi = float(market.data["high"].max())
    pad = max((hi - lo) * margin, 0.005 * hi)
    return lo - pad, hi + pad


def crop_rows(prices: np.ndarray, price_range: tuple[float, float]) -> slice:
    """The slice of ascending bin centres ``prices`` lying inside ``price_range``."""
    lo, hi = price_range
    start = int(np.searchsorted(prices, lo, side="left"))
    stop = int(np.searchsorted(prices, hi, side="right"))
    return slice(start, max(stop, start))


def bar_period(market: "Market", max_bars: int = 300) -> str:
    """The shortest period from a nice list giving at most ``max_bars`` bars over the market.

    Never shorter than the market's own timeframe.
    """
    from liqlab.core.market import timeframe_to_timedelta

    step = timeframe_to_timedelta(market.timeframe)
    span = (market.end - market.start) + step if len(market) else step
    for p in _BAR_PERIODS:
        td = pd.Timedelta(p)
        if td >= step and span / td <= max_bars:
            return p
    return _BAR_PERIODS[-1]


def naive_utc(index) -> pd.DatetimeIndex:
    """``index`` as UTC wall times without a zone."""
    idx = pd.DatetimeIndex(index)
    return idx.tz_convert("UTC").tz_localize(None) if idx.tz is not None else idx


def minute_labels(index) -> np.ndarray:
    """``"YYYY-MM-DD HH:MM"`` (UTC) per timestamp, as a numpy string array (vectorised)."""
    minutes = naive_utc(index).to_numpy().astype("datetime64[m]")
    if minutes.size == 0:
        return np.zeros(0, dtype="<U16")
    return np.char.replace(np.datetime_as_string(minutes), "T", " ")


def _period_keys(index, period: str) -> tuple[np.ndarray, int, str]:
    """Each timestamp's period number since the epoch, the period in nanoseconds, the index's unit.

    ``floor(t / period)`` is what ``resample(period, origin="epoch", label="left")`` groups by;
    computed directly it costs a fraction of a pandas resample.
    """
    step = pd.Timedelta(period).value
    idx = naive_utc(index)
    return idx.as_unit("ns").asi8 // step, step, idx.unit


def _period_index(keys: np.ndarray, step: int, unit: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(keys, dtype=np.int64) * step, tz="UTC").as_unit(unit)


def period_bars(frame: pd.DataFrame | None, period: str) -> pd.DataFrame:
    """Sum per-candle ``long_usd, short_usd`` into bars of ``period`` (labelled by period start).

    Every period from the first to the last is present (zero where nothing happened), as with
    ``resample(period, origin="epoch", label="left").sum()``. Returns an empty frame with those
    columns when ``frame`` is None or empty.
    """
    if frame is None or len(frame) == 0:
        return pd.DataFrame({"long_usd": [], "short_usd": []}, index=pd.DatetimeIndex([], tz="UTC"))
    keys, step, unit = _period_keys(frame.index, period)
    first = int(keys[0])
    n = int(keys[-1]) - first + 1
    pos = keys - first
    cols = {c: np.bincount(pos, weights=np.nan_to_num(frame[c].to_numpy(dtype=np.float64)), minlength=n)
            for c in ("long_usd", "short_usd")}
    return pd.DataFrame(cols, index=_period_index(first + np.arange(n), step, unit))


def period_candles(market: "Market", period: str) -> pd.DataFrame:
    """Aggregate candles to ``period`` (open first, high max, low min, close last), non-empty periods only."""
    keys, step, unit = _period_keys(market.index, period)
    n = keys.size
    if n == 0:
        return pd.DataFrame({c: [] for c in ("open", "high", "low", "close")}, index=pd.DatetimeIndex([], tz="UTC"))
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], n] - 1
    col = market.column
    return pd.DataFrame(
        {"open": col("open")[starts], "high": np.maximum.reduceat(col("high"), starts),
         "low": np.minimum.reduceat(col("low"), starts), "close": col("close")[ends]},
        index=_period_index(keys[starts], step, unit),
    )


_MARKET_MEMO: "weakref.WeakKeyDictionary[Market, dict]" = weakref.WeakKeyDictionary()


def per_market(market: "Market", key: tuple, make: Callable[[], Any]) -> Any:
    """``make()``, computed once per market object and ``key`` (markets are immutable).

    A dashboard recompute that changes only model settings keeps its market: the candles,
    realized bars and price line drawn from it are then reused instead of resampled.
    """
    memo = _MARKET_MEMO.setdefault(market, {})
    if key not in memo:
        if len(memo) > 16:
            memo.clear()
        memo[key] = make()
    return memo[key]


def epoch_ms(index) -> np.ndarray:
    """Timestamps as float milliseconds since the epoch (UTC).

    Date axes read numbers as epoch milliseconds; a float array travels to the browser as a
    binary buffer, where datetime objects would be converted and sent one by one.
    """
    idx = naive_utc(index)
    # the index unit may be s, ms, us or ns: convert explicitly
    return idx.as_unit("ms").asi8.astype(np.float64) if len(idx) else np.zeros(0)


def column_close(result: "HeatmapResult", market: "Market") -> np.ndarray:
    """Close of the candle ending each display column."""
    close = market.column("close")
    idx = np.clip(np.asarray(result.column_index, dtype=np.int64), 0, max(len(close) - 1, 0))
    return close[idx] if len(close) else np.zeros(0)


def _blocks(n: int, most: int) -> np.ndarray:
    """Start indices of equal blocks (the last may be shorter) covering ``n`` items, at most ``most``."""
    factor = max(1, -(-n // max(most, 1)))
    return np.arange(0, n, factor)


def coarse_grid(
    z: np.ndarray,
    prices: np.ndarray,
    col_start_ms: np.ndarray,
    col_end_ms: np.ndarray,
    close: np.ndarray,
    *,
    max_columns: int = COARSE_COLUMNS,
    max_rows: int = COARSE_ROWS,
) -> dict[str, np.ndarray]:
    """Aggregate the grid into at most ``max_rows x max_columns`` blocks for hover and colour bar.

    Blocks are evenly spaced in price and in time: plotly.js draws a heatmap whose cells are evenly
    spaced as a canvas of one pixel per cell, scaled by the browser; any other heatmap it paints
    pixel by pixel at the plot's full size and encodes as a PNG on every redraw, several times
    slower. Rows go in blocks of equal count (the price
    bins are even; the last block may hold fewer, its centre stays on the regular grid). Time is cut into equal
    spans, each holding the columns whose middle falls in it: display columns may hold unequal
    numbers of candles, and a gap in the data leaves spans with no column (NaN: no hover).

    Parameters
    ----------
    z
        Notional per bin, ``(rows, columns)``, rows in ascending price.
    prices
        Bin centres of the rows (evenly spaced).
    col_start_ms, col_end_ms
        Time span of each grid column (epoch ms), in time order.
    close
        Close price at the end of each grid column.
    max_columns, max_rows
        Block counts are at most these.

    Returns
    -------
    dict
        ``x`` (block centre times, one per block column), ``y`` (block centre prices, one per
        block row), ``z`` (``float32`` ``(block rows, block columns)``: the largest per-bin
        notional in the block, NaN when none is above zero) and ``distance`` (same shape: % from
        the close at the block's last column to its centre price), plus ``row_span`` (price span
        of a block) and ``col_span_ms`` (time span of a block).
    """
    g = np.asarray(z, dtype=np.float32)
    n_rows, n_cols = g.shape
    if n_rows == 0 or n_cols == 0:
        empty = np.zeros((0, 0), np.float32)
        return {"x": np.zeros(0), "y": np.zeros(0), "z": empty, "distance": empty, "row_span": 0.0,
                "col_span_ms": 0.0}
    p = np.asarray(prices, dtype=np.float64)
    step = float(p[1] - p[0]) if p.size > 1 else 0.0
    r0 = _blocks(n_rows, max_rows)
    per_block = int(r0[1] - r0[0]) if r0.size > 1 else n_rows
    y = p[0] + (r0 + (per_block - 1) / 2.0) * step
    rows = np.maximum.reduceat(g, r0, axis=0)

    start = np.asarray(col_start_ms, np.float64)
    end = np.asarray(col_end_ms, np.float64)
    n_blocks = _blocks(n_cols, max_columns).size
    t0, span = start[0], (end[-1] - start[0]) / n_blocks
    block = np.zeros(n_cols, np.int64)  # the span of each column's middle (all in one if no time passes)
    if span > 0:
        block = np.clip(((start + end) / 2.0 - t0) // span, 0, n_blocks - 1).astype(np.int64)
    c0 = np.searchsorted(block, np.arange(n_blocks))  # first column of each span (the next one's if empty)
    c_next = np.append(c0[1:], n_cols)
    filled = c_next > c0
    zb = np.full((rows.shape[0], n_blocks), np.nan, np.float32)
    zb[:, filled] = np.maximum.reduceat(rows, c0[filled], axis=1)
    zb[~(zb > 0)] = np.nan  # nothing outstanding: a gap, without hover
    x = t0 + (np.arange(n_blocks) + 0.5) * span
    c = np.full(n_blocks, np.nan)
    if len(close):
        c[filled] = np.asarray(close, dtype=np.float64)[c_next[filled] - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = 100.0 * (y[:, None] / c[None, :] - 1.0)
    return {"x": x, "y": y, "z": np.ascontiguousarray(zb, dtype=np.float32),
            "distance": np.ascontiguousarray(dist, dtype=np.float32),
            "row_span": step * per_block, "col_span_ms": float(span)}


def colour_max(z: np.ndarray) -> float:
    pos = z[z > 0]
    if pos.size == 0:
        return 1.0
    return float(max(np.percentile(pos, 99.0), 1.0))


def price_line_points(market: "Market", max_points: int = 2_000) -> dict[str, np.ndarray]:
    """Closes at their candles' close times, thinned to at most ``max_points`` points.

    Longer series keep, for each run of candles, its lowest and its highest close in time order,
    so spikes survive the thinning (a plain stride would skip them).

    Returns
    -------
    dict
        ``{"x": epoch milliseconds (float64), "y": closes (float32)}``.
    """
    x = epoch_ms(market.index) + timeframe_ms(market)
    y = np.asarray(market.column("close"), dtype=np.float64)
    n = y.size
    if n <= max_points:
        return {"x": x, "y": y.astype(np.float32)}
    runs = max(max_points // 2, 1)
    edges = np.linspace(0, n, runs + 1).astype(np.int64)
    lo = np.array([a + int(np.argmin(y[a:b])) for a, b in zip(edges[:-1], edges[1:])])
    hi = np.array([a + int(np.argmax(y[a:b])) for a, b in zip(edges[:-1], edges[1:])])
    keep = np.unique(np.concatenate([lo, hi]))  # sorted: time order
    return {"x": x[keep], "y": y[keep].astype(np.float32)}


def as_float32(values) -> np.ndarray:
    """Prices as float32 (7 significant digits are plenty on screen; half the bytes)."""
    return np.asarray(values, dtype=np.float32)


def timeframe_ms(market: "Market") -> float:
    from liqlab.core.market import timeframe_to_timedelta

    return timeframe_to_timedelta(market.timeframe).total_seconds() * 1000.0


def format_duration(ms: float) -> str:
    """A short duration text: ``45 min``, ``2.9 h``, ``1.5 d``."""
    minutes = ms / 60_000.0
    if minutes < 90:
        return f"{minutes:.0f} min"
    if minutes < 36 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"
