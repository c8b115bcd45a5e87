"""Figures of engine results: the heatmap with realized bars, and the snapshot liquidation map.

Pure functions: a result (and its Market) in, a ``plotly.graph_objects.Figure`` out; nothing is
fetched or computed here beyond cropping, aggregating and formatting.

Each figure is assembled from *parts*: plain dicts of trace properties keyed by a stable trace
name, plus a dict of layout properties. :func:`heatmap_parts` and :func:`map_parts` return them;
the figure builders turn them into traces once, and the dashboard applies new parts to its
``FigureWidget`` in place (:func:`apply_parts`) instead of rebuilding the figure.

Conventions
-----------
* Heatmap colour is the outstanding liquidation notional per price bin (USD), on a perceptual
  scale (Viridis) from 0 to the 99th percentile of non-empty cells; empty and swept cells are
  transparent, so levels that price has swept visibly disappear.
* The full-resolution grid travels as one server-rendered PNG placed with ``layout.images`` in
  data coordinates, under the candles. A coarse, invisible ``go.Heatmap`` (at most
  ``COARSE_COLUMNS`` x ``COARSE_ROWS`` cells) on top of it carries the hover text and the colour
  bar, with the same colour-scale maximum as the image. A browser then handles one image and a
  few thousand cells instead of hundreds of thousands. The dashboard leaves plotly's colour bar
  out and shows :func:`colour_legend_html` above the figure (plotly redraws a colour bar on
  every update).
* Rows are cropped to the price range of the candles plus a margin (the model's grid also holds
  far low-leverage levels that would squash the picture).
* Realized liquidations: longs red above zero, shorts green below zero, per period; the model's
  predicted bars are drawn beside them in the same hue, lighter.
"""

from __future__ import annotations

import functools
import weakref
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # plotly is imported lazily: ``import liqlab`` stays light
    import plotly.graph_objects as go

    from liqlab.core.engine import HeatmapResult, LiquidationMap
    from liqlab.core.market import Market

LONG_COLOUR = "#e5484d"  # red: long positions liquidated (forced sells)
SHORT_COLOUR = "#30a46c"  # green: short positions liquidated (forced buys)
LONG_PREDICTED = "rgba(229, 72, 77, 0.45)"
SHORT_PREDICTED = "rgba(48, 164, 108, 0.45)"
PRICE_COLOUR = "#f5f5f5"
COLOURSCALE = "Viridis"
BACKGROUND = "#0e1117"
COARSE_COLUMNS = 150  # hover/colour-bar heatmap: at most this many time columns ...
COARSE_ROWS = 120  # ... and price rows, aggregated from the full grid
LABEL_ROOM = 0.05  # map labels within this share of the price range from its edge go inside it
LINE_POINTS = 2_000  # price line: at most this many points (lowest and highest close per run)
IMAGE_WIDTH = 1200  # heatmap image width in pixels (columns are repeated up to it, never blurred)
IMAGE_MIN_HEIGHT = 400  # rows are repeated a whole number of times to at least this height
IMAGE_LEVELS = 255  # colours in the image's palette; one more palette entry is transparent
_BAR_PERIODS = ("5min", "15min", "30min", "1h", "2h", "4h", "6h", "12h", "1D", "3D", "7D")

Parts = dict  # {"traces": {name: props}, "layout": {...}}


# ----------------------------------------------------------------------------- helpers
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


def _naive_utc(index) -> pd.DatetimeIndex:
    """``index`` as UTC wall times without a zone."""
    idx = pd.DatetimeIndex(index)
    return idx.tz_convert("UTC").tz_localize(None) if idx.tz is not None else idx


def _minute_labels(index) -> np.ndarray:
    """``"YYYY-MM-DD HH:MM"`` (UTC) per timestamp, as a numpy string array (vectorised)."""
    minutes = _naive_utc(index).to_numpy().astype("datetime64[m]")
    if minutes.size == 0:
        return np.zeros(0, dtype="<U16")
    return np.char.replace(np.datetime_as_string(minutes), "T", " ")


def _period_keys(index, period: str) -> tuple[np.ndarray, int, str]:
    """Each timestamp's period number since the epoch, the period in nanoseconds, the index's unit.

    ``floor(t / period)`` is what ``resample(period, origin="epoch", label="left")`` groups by;
    computed directly it costs a fraction of a pandas resample.
    """
    step = pd.Timedelta(period).value
    idx = _naive_utc(index)
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


def _per_market(market: "Market", key: tuple, make: Callable[[], Any]) -> Any:
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


def _ms(index) -> np.ndarray:
    """Timestamps as float milliseconds since the epoch (UTC).

    Date axes read numbers as epoch milliseconds; a float array travels to the browser as a
    binary buffer, where datetime objects would be converted and sent one by one.
    """
    idx = _naive_utc(index)
    # the index unit may be s, ms, us or ns: convert explicitly
    return idx.as_unit("ms").asi8.astype(np.float64) if len(idx) else np.zeros(0)


def _column_close(result: "HeatmapResult", market: "Market") -> np.ndarray:
    """Close of the candle ending each display column."""
    close = market.column("close")
    idx = np.clip(np.asarray(result.column_index, dtype=np.int64), 0, max(len(close) - 1, 0))
    return close[idx] if len(close) else np.zeros(0)


def colour_lut(colorscale: str = COLOURSCALE, n: int = 256) -> np.ndarray:
    """An ``(n, 4)`` ``uint8`` RGBA table sampled from a plotly colour scale (opaque).

    Entry ``i`` is the colour plotly draws at ``i / (n - 1)`` of the scale (linear RGB
    interpolation between the scale's stops, as plotly.js does). Cached per scale name.

    Parameters
    ----------
    colorscale
        A named plotly colour scale (``"Viridis"``, ``"Inferno"``, ...).
    n
        Number of entries.
    """
    return _colour_lut(str(colorscale), int(n))


@functools.lru_cache(maxsize=16)
def _colour_lut(colorscale: str, n: int) -> np.ndarray:
    import plotly.colors as pc

    samples = pc.sample_colorscale(colorscale, [i / (n - 1) for i in range(n)], colortype="rgb")
    lut = np.full((n, 4), 255, dtype=np.uint8)
    lut[:, :3] = np.rint([pc.unlabel_rgb(c) for c in samples]).clip(0, 255)
    lut.flags.writeable = False  # shared between calls
    return lut


def image_columns(column_index: np.ndarray, width: int) -> np.ndarray:
    """The display column drawn at each of ``width`` pixels spread evenly over the candles.

    Column ``j`` holds the book after candle ``column_index[j]`` and stands for the candles since
    the previous column, ``column_index[j - 1] + 1 .. column_index[j]``; a pixel shows the column
    covering the candle under its centre, so uneven columns still sit at their true times.
    """
    ends = np.asarray(column_index, dtype=np.float64) + 1.0
    if ends.size == 0:
        return np.zeros(0, np.int64)
    centres = (np.arange(width) + 0.5) * (ends[-1] / width)
    return np.minimum(np.searchsorted(ends, centres, side="right"), ends.size - 1)


def heatmap_palette(colorscale: str = COLOURSCALE) -> np.ndarray:
    """The heatmap image's palette: ``IMAGE_LEVELS`` colours of the scale, then transparent.

    Returns
    -------
    numpy.ndarray
        ``(IMAGE_LEVELS + 1, 4)`` ``uint8`` RGBA; entry ``IMAGE_LEVELS`` is ``(0, 0, 0, 0)``.
    """
    table = np.zeros((IMAGE_LEVELS + 1, 4), dtype=np.uint8)
    table[:IMAGE_LEVELS] = colour_lut(colorscale, IMAGE_LEVELS)
    return table


def heatmap_indices(
    z: np.ndarray,
    zmax: float,
    *,
    columns: np.ndarray | None = None,
    row_repeat: int = 1,
) -> np.ndarray:
    """The heatmap grid as palette indices (:func:`heatmap_palette`): highest price at the top.

    Parameters
    ----------
    z
        Notional per bin, shape ``(rows, columns)`` with rows in ascending price.
    zmax
        Value drawn with the top colour (the colour legend's maximum); 0 draws the bottom colour.
    columns
        Grid column shown at each pixel (:func:`image_columns`); default one pixel per column.
    row_repeat
        Pixels per price row (a whole number, so rows keep equal heights).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(rows * row_repeat, pixels)``: ``round(z / zmax * (IMAGE_LEVELS
        - 1))`` clipped to the scale, and ``IMAGE_LEVELS`` (transparent) for cells at or below
        zero (nothing outstanding, or swept) and NaN.
    """
    top = IMAGE_LEVELS - 1
    g = np.asarray(z, dtype=np.float32)[::-1]  # PNG row 0 is the top: highest price first
    scale = np.float32(top / zmax) if zmax > 0 else np.float32(0.0)
    with np.errstate(invalid="ignore"):
        idx = np.clip(np.rint(g * scale), 0, top).astype(np.uint8)
        idx[~(g > 0)] = IMAGE_LEVELS  # empty, swept or NaN: transparent
    if columns is not None:  # index each cell once, then spread the cells over pixels
        idx = idx[:, columns]
    if row_repeat > 1:
        idx = np.repeat(idx, int(row_repeat), axis=0)
    return np.ascontiguousarray(idx)


def heatmap_rgba(
    z: np.ndarray,
    zmax: float,
    colorscale: str = COLOURSCALE,
    *,
    columns: np.ndarray | None = None,
    row_repeat: int = 1,
) -> np.ndarray:
    """The heatmap grid as an RGBA image (:func:`heatmap_indices` through :func:`heatmap_palette`).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(rows * row_repeat, pixels, 4)``. Cells at or below zero
        (nothing outstanding, or swept) are fully transparent.
    """
    return heatmap_palette(colorscale)[heatmap_indices(z, zmax, columns=columns, row_repeat=row_repeat)]


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
    pixel by pixel at the plot's full size and encodes as a PNG on every redraw (36 ms against 7
    for the dashboard's hover grid, in a CPU profile). Rows go in blocks of equal count (the price
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


def _usd(x: float) -> str:
    """Compact dollar text: $9.07M, $512k, $830."""
    a = abs(x)
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"${x / div:,.2f}{suf}"
    return f"${x:,.0f}"


def _price(p: float) -> str:
    """Price text with sensible decimals for its size."""
    return f"{p:,.2f}" if abs(p) >= 1 else f"{p:.6g}"


def _zmax(z: np.ndarray) -> float:
    pos = z[z > 0]
    if pos.size == 0:
        return 1.0
    return float(max(np.percentile(pos, 99.0), 1.0))


# ----------------------------------------------------------------------------- heatmap
def heatmap_parts(
    result: "HeatmapResult",
    market: "Market",
    *,
    side: str = "combined",
    price_style: str = "candles",
    margin: float = 0.03,
    colorscale: str = COLOURSCALE,
    max_bars: int = 300,
    price_range: tuple[float, float] | None = None,
    axes: Mapping[str, str] | None = None,
    colorbar: bool = True,
) -> Parts:
    """Trace and layout properties of the heatmap, price and realized/predicted bars.

    Parameters
    ----------
    result, market
        An engine result and the market it was computed on.
    side
        ``"combined"`` (long + short), ``"long"`` or ``"short"`` outstanding notional.
    price_style
        ``"candles"`` or ``"line"`` for the price drawn over the heatmap.
    margin
        Price margin around the candles' range for the displayed rows (fraction of the range).
    colorscale
        A perceptual plotly colour scale name.
    max_bars
        At most this many bar periods (candles are aggregated to the same period).
    price_range
        Explicit displayed price range; overrides ``margin``.
    axes
        Axis ids: ``{"x": "x", "y": "y", "bars_y": "y2"}`` by default.
    colorbar
        Draw plotly's colour bar. A dashboard that updates the figure often shows
        :func:`colour_legend_html` beside it instead: plotly redraws its colour bar on every
        update, which is about a third of the browser's work for this figure.

    Returns
    -------
    dict
        ``{"traces": {name: properties}, "layout": {...}, "zmax": ..., "legend": {...}}``
        (``legend``: the colour bar's ``title``, ``zmax`` and ``colorscale``) with trace names
        ``time_anchor``, ``heatmap`` (coarse and invisible: hover and colour bar), ``price_candles``,
        ``price_line``, ``realized_long``, ``predicted_long``, ``realized_short``,
        ``predicted_short``; ``layout["images"]`` holds the full-resolution heatmap image
        (:func:`heatmap_image`) and ``zmax`` is the colour-scale maximum shared by both.
    """
    if side not in ("combined", "long", "short"):
        raise ValueError(f"side must be 'combined', 'long' or 'short', not {side!r}")
    if price_style not in ("candles", "line"):
        raise ValueError(f"price_style must be 'candles' or 'line', not {price_style!r}")
    ax = {"x": "x", "y": "y", "bars_y": "y2", **(axes or {})}
    grid = {"combined": result.combined, "long": result.long, "short": result.short}[side]
    rng = price_range or visible_price_range(market, margin)
    rows = crop_rows(result.prices, rng)
    prices = np.asarray(result.prices[rows], dtype=np.float64)
    z = np.asarray(grid[rows], dtype=np.float32)
    zmax = _zmax(z)
    label = {"combined": "long + short", "long": "longs", "short": "shorts"}[side]
    image, col_start, col_end = heatmap_image(result, market, z, prices, zmax, colorscale, ax)
    coarse = coarse_grid(z, prices, col_start, col_end, _column_close(result, market))
    bin_size = float(result.bin_size)
    legend_title = f"Outstanding liquidation notional per price bin of {bin_size:g} ({label}, USD)"

    period = bar_period(market, max_bars)
    candles = _per_market(market, ("candles", period), lambda: period_candles(market, period))
    realized = _per_market(market, ("realized", period), lambda: period_bars(market.liquidations, period))
    predicted = period_bars(result.predicted, period)
    width_ms = pd.Timedelta(period).total_seconds() * 1000.0
    step_ms = _timeframe_ms(market)
    show_line = price_style == "line"

    # from the first candle's open to the last one's close: the span of the image
    span = pd.DatetimeIndex([market.start, market.end + pd.Timedelta(milliseconds=step_ms)])
    anchor_x = [t.strftime("%Y-%m-%d %H:%M:%S") for t in span.tz_convert("UTC")]
    traces: dict[str, dict[str, Any]] = {
        # First on the time axis, with ISO dates: plotly.js re-guesses an axis type from the
        # first trace whenever x data change, and must keep guessing "date" (the others send ms).
        "time_anchor": dict(
            x=anchor_x,
            y=[float(prices[0]) if prices.size else 0.0] * 2, mode="markers", marker=dict(opacity=0, size=1),
            hoverinfo="skip", xaxis=ax["x"], yaxis=ax["y"],
        ),
        # Invisible and coarse: the picture is the image in the layout; this trace gives hover
        # and the colour bar, whose range equals the image's.
        "heatmap": dict(
            x=coarse["x"], y=coarse["y"], z=coarse["z"], customdata=coarse["distance"],
            zmin=0.0, zmax=zmax, zauto=False, colorscale=colorscale, zsmooth=False, hoverongaps=False,
            opacity=0.0, showscale=bool(colorbar), xaxis=ax["x"], yaxis=ax["y"],
            colorbar=dict(
                title=dict(text=legend_title, side="top"),
                orientation="h", x=0.0, xanchor="left", y=1.0, yanchor="bottom", len=0.55,
                thickness=10, tickformat="$.2s",
            ),
            # the name goes in the text: the side box would take the (invisible) trace colour
            hovertemplate=(
                f"<b>{label}</b><br>"
                f"Price %{{y:,.2f}} ± {coarse['row_span'] / 2:,.6g}<br>"
                f"%{{x|%Y-%m-%d %H:%M}} UTC ± {_duration(coarse['col_span_ms'] / 2)}<br>"
                f"Up to %{{z:$,.3s}} per price bin of {bin_size:g}<br>"
                "%{customdata:+.1f}% from price"
                "<extra></extra>"
            ),
        ),
        # Candles sit at the middle of their period, so they line up with the image's columns.
        "price_candles": dict(
            x=_ms(candles.index) + width_ms / 2 if not show_line else np.zeros(0),
            open=_f32(candles["open"]) if not show_line else np.zeros(0, np.float32),
            high=_f32(candles["high"]) if not show_line else np.zeros(0, np.float32),
            low=_f32(candles["low"]) if not show_line else np.zeros(0, np.float32),
            close=_f32(candles["close"]) if not show_line else np.zeros(0, np.float32),
            hovertext=_per_market(market, ("candle_text", period),
                                  lambda: [f"{period} from {t} UTC" for t in _minute_labels(candles.index)])
            if not show_line else [],
            hoverinfo="y+text", visible=not show_line, xaxis=ax["x"], yaxis=ax["y"],
            increasing=dict(line=dict(color="#e8e8e8", width=1), fillcolor="rgba(232,232,232,0.85)"),
            decreasing=dict(line=dict(color="#8a8f98", width=1), fillcolor="rgba(20,20,20,0.85)"),
        ),
        # the close at the candle's close time, at most LINE_POINTS points; only sent when shown
        "price_line": dict(
            **(_per_market(market, ("line", LINE_POINTS), lambda: price_line_points(market, LINE_POINTS))
               if show_line else {"x": np.zeros(0), "y": np.zeros(0, np.float32)}),
            visible=show_line, xaxis=ax["x"], yaxis=ax["y"], line=dict(color=PRICE_COLOUR, width=1.2),
            hovertemplate="Close %{y:,.2f}<extra></extra>",
        ),
        # realized and predicted side by side inside their period
        "realized_long": _bar(realized.index, realized["long_usd"].to_numpy(), LONG_COLOUR, 0.05 * width_ms,
                              0.45 * width_ms, "realized longs", ax),
        "predicted_long": _bar(predicted.index, predicted["long_usd"].to_numpy(), LONG_PREDICTED, 0.5 * width_ms,
                               0.45 * width_ms, "model longs", ax),
        "realized_short": _bar(realized.index, -realized["short_usd"].to_numpy(), SHORT_COLOUR, 0.05 * width_ms,
                               0.45 * width_ms, "realized shorts", ax),
        "predicted_short": _bar(predicted.index, -predicted["short_usd"].to_numpy(), SHORT_PREDICTED,
                                0.5 * width_ms, 0.45 * width_ms, "model shorts", ax),
    }
    title = f"{market.label} · {market.start:%Y-%m-%d %H:%M} → {market.end:%Y-%m-%d %H:%M} UTC"
    if market.liquidations is None:
        title += " · no realized liquidations in this data"
    layout = {
        "title.text": title,
        # exactly the image's time span (autorange would pad around the bars and candles)
        f"{_axis_key(ax['x'])}.range": list(anchor_x),
        f"{_axis_key(ax['x'])}.autorange": False,
        f"{_axis_key(ax['y'])}.range": [float(rng[0]), float(rng[1])],
        f"{_axis_key(ax['bars_y'])}.title.text": f"liquidated per {period} (USD)",
        "images": [image] if image else [],
        # room for the colour bar above the plot, or only for the title
        "margin.t": 90 if colorbar else 50,
    }
    return {"traces": traces, "layout": layout, "period": period, "rows": rows, "zmax": zmax,
            "legend": {"title": legend_title, "zmax": zmax, "colorscale": colorscale}}


def price_line_points(market: "Market", max_points: int = 2_000) -> dict[str, np.ndarray]:
    """Closes at their candles' close times, thinned to at most ``max_points`` points.

    Longer series keep, for each run of candles, its lowest and its highest close in time order,
    so spikes survive the thinning (a plain stride would skip them).

    Returns
    -------
    dict
        ``{"x": epoch milliseconds (float64), "y": closes (float32)}``.
    """
    x = _ms(market.index) + _timeframe_ms(market)
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


def colour_legend_html(legend: Mapping[str, Any], ticks: int = 5, width_px: int = 420, indent_px: int = 60) -> str:
    """The colour scale as HTML: title, gradient bar and tick labels from 0 to ``zmax``.

    Parameters
    ----------
    legend
        ``heatmap_parts(...)["legend"]``: ``title``, ``zmax`` and ``colorscale``.
    ticks
        Number of tick labels (evenly spaced, the first at 0).
    width_px
        Width of the gradient bar.
    indent_px
        Left indent, to line the bar up with the plot area (the figure's left margin).
    """
    import html

    lut = colour_lut(legend["colorscale"], 11)
    stops = ", ".join(f"rgb({r},{g},{b}) {i * 10}%" for i, (r, g, b, _a) in enumerate(lut.tolist()))
    zmax = float(legend["zmax"])
    labels = "".join(
        f"<span style='position:absolute;left:{100 * i / (ticks - 1):.4g}%;transform:translateX(-50%)'>"
        f"{html.escape(_usd(zmax * i / (ticks - 1)))}</span>" for i in range(ticks)
    )
    return (
        f"<div class='liqlab-legend' style='font-size:11px;line-height:1.3;margin-left:{indent_px}px'>"
        f"<div class='liqlab-legend-title'>{html.escape(str(legend['title']))}</div>"
        f"<div style='width:{width_px}px;height:10px;background:linear-gradient(to right, {stops})'></div>"
        f"<div style='position:relative;width:{width_px}px;height:14px'>{labels}</div></div>"
    )


def _f32(values) -> np.ndarray:
    """Prices as float32 (7 significant digits are plenty on screen; half the bytes)."""
    return np.asarray(values, dtype=np.float32)


def _timeframe_ms(market: "Market") -> float:
    from liqlab.core.market import timeframe_to_timedelta

    return timeframe_to_timedelta(market.timeframe).total_seconds() * 1000.0


def _duration(ms: float) -> str:
    """A short duration text: ``45 min``, ``2.9 h``, ``1.5 d``."""
    minutes = ms / 60_000.0
    if minutes < 90:
        return f"{minutes:.0f} min"
    if minutes < 36 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def heatmap_image(
    result: "HeatmapResult",
    market: "Market",
    z: np.ndarray,
    prices: np.ndarray,
    zmax: float,
    colorscale: str = COLOURSCALE,
    axes: Mapping[str, str] | None = None,
) -> tuple[dict | None, np.ndarray, np.ndarray]:
    """The displayed grid as a ``layout.images`` entry, and each column's time span.

    Parameters
    ----------
    result, market
        The engine result and its market (for the column positions and candle times).
    z, prices
        The displayed rows of the grid (ascending price) and their bin centres.
    zmax
        Colour-scale maximum (the colour bar's).
    colorscale
        Plotly colour scale name.
    axes
        ``{"x": ..., "y": ...}`` axis ids the image is placed on.

    Returns
    -------
    (image, col_start_ms, col_end_ms)
        ``image`` is a dict for ``layout.images`` (None when the grid is empty): a PNG data URI
        stretched over ``[first candle open, last column's candle close]`` and
        ``[lowest bin's lower edge, highest bin's upper edge]`` in data coordinates, under the
        traces. Column ``j`` stands for the candles after column ``j - 1`` up to its own.
    """
    from liqlab.viz.png import png_data_uri

    ax = {"x": "x", "y": "y", **(axes or {})}
    cidx = np.asarray(result.column_index, dtype=np.int64)
    times = _ms(market.index)
    step_ms = _timeframe_ms(market)
    if cidx.size == 0 or times.size == 0:
        return None, np.zeros(0), np.zeros(0)
    cidx = np.clip(cidx, 0, times.size - 1)
    col_end = times[cidx] + step_ms
    col_start = np.concatenate([[times[0]], times[np.minimum(cidx[:-1] + 1, times.size - 1)]])
    if z.size == 0:
        return None, col_start, col_end
    n_rows = z.shape[0]
    pixels = heatmap_indices(z, zmax, columns=image_columns(cidx, IMAGE_WIDTH),
                             row_repeat=max(1, -(-IMAGE_MIN_HEIGHT // n_rows)))
    bin_size = float(result.bin_size)
    top = float(prices[-1]) + bin_size / 2.0
    image = dict(
        source=png_data_uri(pixels, palette=heatmap_palette(colorscale), level=1),
        xref=ax["x"], yref=ax["y"], x=float(times[0]), sizex=float(col_end[-1] - times[0]), y=top,
        sizey=n_rows * bin_size, xanchor="left", yanchor="top",
        sizing="stretch", layer="below", opacity=1.0, name="heatmap_image",
    )
    return image, col_start, col_end


def _bar(x, y, colour: str, offset_ms: float, width_ms: float, name: str, ax: Mapping[str, str]) -> dict:
    """Bars of one series drawn as a single filled step path (one SVG element, not one per bar).

    Bar ``k`` spans ``[x_k + offset_ms, x_k + offset_ms + width_ms]`` from 0 to ``y_k``. Each bar
    is three points: its top-left and top-centre and its bottom-right corner, joined by
    horizontal-then-vertical steps and filled to zero; all three carry the bar's hover text, so
    hovering anywhere along its top shows the period and the amount.
    """
    y = np.asarray(y, dtype=np.float32)
    start = _ms(x) + offset_ms
    xs = np.repeat(start, 3) + np.tile([0.0, 0.5 * width_ms, width_ms], len(start))
    ys = np.repeat(y, 3)
    ys[2::3] = 0.0  # bottom-right corner
    labels = np.repeat(_minute_labels(x), 3).tolist()
    return dict(
        x=xs, y=ys, mode="lines", line=dict(width=0, shape="hv", color=colour), fill="tozeroy",
        fillcolor=colour, name=name, xaxis=ax["x"], yaxis=ax["bars_y"], text=labels,
        customdata=np.repeat(np.abs(y), 3),
        hovertemplate=f"%{{text}} UTC<br>{name}: $%{{customdata:,.0f}}<extra></extra>",
    )


def bar_values(trace) -> np.ndarray:
    """The per-bar heights of a trace made by :func:`_bar` (every third point is a bar's top-left)."""
    return np.asarray(trace["y"] if isinstance(trace, Mapping) else trace.y, dtype=np.float64)[0::3]


def _axis_key(axis_id: str) -> str:
    """``"x2"`` -> ``"xaxis2"``; ``"y"`` -> ``"yaxis"``."""
    return f"{axis_id[0]}axis{axis_id[1:]}"


def _heatmap_layout(height: int) -> dict:
    return dict(
        template="plotly_dark", paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, height=height,
        # fixed margins with room for the colour bar and legend: margins that grow with tick
        # labels would make every update lay the figure out twice
        margin=dict(l=60, r=20, t=90, b=70, autoexpand=False), barmode="overlay", bargap=0, showlegend=True,
        legend=dict(orientation="h", x=0.0, xanchor="left", y=-0.06, yanchor="top", font=dict(size=11)),
        hovermode="closest", uirevision="keep",
        title=dict(x=0.0, xanchor="left", y=0.99, yanchor="top", font=dict(size=14)),
    )


def _make_traces(traces: Mapping[str, dict]) -> list:
    import plotly.graph_objects as go

    kinds = {
        "time_anchor": go.Scatter, "heatmap": go.Heatmap, "price_candles": go.Candlestick, "price_line": go.Scatter,
        # bars are filled step paths (see _bar, _map_bar): one SVG element per series
        "realized_long": go.Scatter, "predicted_long": go.Scatter, "realized_short": go.Scatter,
        "predicted_short": go.Scatter, "map_long": go.Scatter, "map_short": go.Scatter,
        "cum_long": go.Scatter, "cum_short": go.Scatter, "snapshot_price": go.Scatter,
        "map_labels": go.Scatter,
    }
    out = []
    for name, props in traces.items():
        props = dict(props)
        props.setdefault("name", name)
        props["meta"] = name  # the part name; FigureWidget replaces uids, so look traces up by meta
        if name in ("time_anchor", "heatmap", "price_candles", "price_line", "snapshot_price", "map_labels"):
            props.setdefault("showlegend", False)
        out.append(kinds[name](**props))
    return out


def heatmap_figure(
    result: "HeatmapResult",
    market: "Market",
    *,
    side: str = "combined",
    price_style: str = "candles",
    margin: float = 0.03,
    colorscale: str = COLOURSCALE,
    height: int = 720,
) -> "go.Figure":
    """The liquidation heatmap over time with price on top and a realized-liquidation panel.

    Parameters
    ----------
    result, market
        An engine result and the market it was computed on.
    side
        ``"combined"``, ``"long"`` or ``"short"``.
    price_style
        ``"candles"`` or ``"line"``.
    margin
        Displayed price margin around the candles (fraction of their range).
    colorscale
        Perceptual colour scale (``"Viridis"``, ``"Inferno"``, ...).
    height
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces named (``meta``) ``time_anchor`` (invisible, keeps the axis a date axis), ``heatmap``, ``price_candles``, ``price_line``, ``realized_long``,
        ``predicted_long``, ``realized_short``, ``predicted_short``; the bar panel (``yaxis2``)
        shares the time axis.
    """
    import plotly.graph_objects as go

    parts = heatmap_parts(result, market, side=side, price_style=price_style, margin=margin,
                          colorscale=colorscale)
    fig = go.Figure(data=_make_traces(parts["traces"]), layout=_heatmap_layout(height))
    fig.update_layout(
        xaxis=dict(domain=[0, 1], anchor="y2", type="date", rangeslider=dict(visible=False), showgrid=False),
        yaxis=dict(domain=[0.3, 1.0], title=dict(text=f"price ({_quote(market)})"), showgrid=False,
                   tickformat=",.6~r"),
        yaxis2=dict(domain=[0.0, 0.25], anchor="x", tickformat="$.2s", zeroline=True,
                    zerolinecolor="#666"),
    )
    _apply_layout(fig, parts["layout"])
    _allow_tick_label_overflow(fig)
    return fig


def _quote(market: "Market") -> str:
    sym = market.symbol.split(":")[0].replace("/", "")
    for q in ("USDT", "USDC", "USD", "BUSD"):
        if sym.endswith(q):
            return q
    return "quote"


def _apply_layout(fig, layout: Mapping[str, Any]) -> None:
    """Set dotted layout paths (``"yaxis.range"``) on a figure."""
    fig.update_layout({k.replace(".", "_"): v for k, v in layout.items()})


def _allow_tick_label_overflow(fig) -> None:
    """Let every axis draw its tick labels without checking each against the figure's edges.

    By default plotly.js hides labels that would overflow the figure, measuring every label (a forced
    browser layout each, ~60 ms of the explorer's first draw and part of every redraw); these figures
    keep fixed margins with room for their labels.
    """
    fig.update_xaxes(ticklabeloverflow="allow")
    fig.update_yaxes(ticklabeloverflow="allow")


# ----------------------------------------------------------------------------- liquidation map
def map_parts(
    snapshot: "LiquidationMap",
    *,
    price_range: tuple[float, float] | None = None,
    span_pct: float = 15.0,
    threshold: float = 0.5,
    axes: Mapping[str, str] | None = None,
) -> Parts:
    """Trace and layout properties of a snapshot liquidation map.

    Parameters
    ----------
    snapshot
        A :class:`~liqlab.core.engine.LiquidationMap` (``HeatmapResult.snapshot(when)``).
    price_range
        Displayed price range; default ``price ± span_pct %``.
    span_pct
        Half-width of the default range, in percent of the price.
    threshold
        A cluster is a bin holding at least this share of its side's largest bin.
    axes
        Axis ids ``{"x": "x", "y": "y", "cum_x": "x2"}`` by default.

    Returns
    -------
    dict
        ``{"traces": {...}, "layout": {...}, "clusters": {"long": ..., "short": ...}}`` with trace
        names ``map_long``, ``map_short``, ``cum_long``, ``cum_short`` and ``map_labels`` (the price
        and the nearest cluster on each side, as text); the layout holds the price line.
    """
    ax = {"x": "x", "y": "y", "cum_x": "x2", **(axes or {})}
    price = float(snapshot.price)
    rng = price_range or (price * (1 - span_pct / 100.0), price * (1 + span_pct / 100.0))
    rows = crop_rows(snapshot.prices, rng)
    prices = np.asarray(snapshot.prices[rows], dtype=np.float64)
    long_usd = np.asarray(snapshot.long_usd[rows], dtype=np.float64)
    short_usd = np.asarray(snapshot.short_usd[rows], dtype=np.float64)
    cum_long = np.asarray(snapshot.cum_long[rows], dtype=np.float64)
    cum_short = np.asarray(snapshot.cum_short[rows], dtype=np.float64)
    dist = 100.0 * (prices / price - 1.0)
    lev_long = _share_text(snapshot, "long", rows)
    lev_short = _share_text(snapshot, "short", rows)
    below, above = prices <= price, prices >= price
    traces = {
        "map_long": _map_bar(long_usd, prices, dist, cum_long, lev_long, LONG_COLOUR,
                             "long liquidations (levels below)", "Longs liquidated here",
                             "If price falls here", ax),
        "map_short": _map_bar(short_usd, prices, dist, cum_short, lev_short, SHORT_COLOUR,
                              "short liquidations (levels above)", "Shorts liquidated here",
                              "If price rises here", ax),
        "cum_long": dict(
            x=np.where(below, cum_long, np.nan), y=prices, mode="lines", name="cumulative longs",
            line=dict(color=LONG_COLOUR, width=2, dash="dot"), xaxis=ax["cum_x"], yaxis=ax["y"],
            hovertemplate="If price falls to %{y:,.2f}: $%{x:,.0f} of longs<extra></extra>",
        ),
        "cum_short": dict(
            x=np.where(above, cum_short, np.nan), y=prices, mode="lines", name="cumulative shorts",
            line=dict(color=SHORT_COLOUR, width=2, dash="dot"), xaxis=ax["cum_x"], yaxis=ax["y"],
            hovertemplate="If price rises to %{y:,.2f}: $%{x:,.0f} of shorts<extra></extra>",
        ),
    }
    clusters = {s: snapshot.nearest_cluster(s, threshold) for s in ("long", "short")}
    # labels as one text trace rather than layout annotations: a trace update is a plain data
    # change for plotly, annotations are re-validated and re-measured on every update. Each label
    # starts at the panel's left edge (x = 0) just above or below its level, so it stays inside the
    # map panel however long the bars are.
    ys, texts, where = [price], [f"price {_price(price)} · {snapshot.time:%Y-%m-%d %H:%M} UTC"], ["top right"]
    for s, hit in clusters.items():
        if hit is None:
            continue
        p, notional, d = hit
        ys.append(float(p))
        texts.append(f"{s} cluster {_price(p)} ({d:+.2f}%) · {_usd(notional)}")
        where.append("bottom right" if s == "long" else "top right")
    # a label beyond its level would leave the panel at the range's edge (over the axis ticks there):
    # near an edge it goes on the inner side of its level instead
    room = LABEL_ROOM * (rng[1] - rng[0])
    where = ["bottom right" if (w == "top right" and y > rng[1] - room) else
             "top right" if (w == "bottom right" and y < rng[0] + room) else w for y, w in zip(ys, where)]
    # light text with a dark halo reads on the bars and on the background
    traces["map_labels"] = dict(
        x=np.zeros(len(ys)), y=np.asarray(ys), text=texts, mode="text", textposition=where,
        textfont=dict(color=PRICE_COLOUR, size=11, shadow=f"0px 0px 3px {BACKGROUND}"),
        cliponaxis=False, hoverinfo="skip", showlegend=False, xaxis=ax["x"], yaxis=ax["y"],
    )
    shapes = [dict(type="line", xref=f"{ax['x']} domain", yref=ax["y"], x0=0, x1=1, y0=price, y1=price,
                   line=dict(color=PRICE_COLOUR, width=1.5, dash="dash"), name="price")]
    layout = {
        f"{_axis_key(ax['y'])}.range": [float(rng[0]), float(rng[1])],
        # notional axes start at zero: no autorange padding to the left of the labels at x = 0
        f"{_axis_key(ax['x'])}.rangemode": "nonnegative",
        f"{_axis_key(ax['cum_x'])}.rangemode": "nonnegative",
        "shapes": shapes,
    }
    return {"traces": traces, "layout": layout, "clusters": clusters, "rows": rows}


def _map_bar(notional, prices, dist, cum, share, colour: str, name: str, here: str, total: str,
             ax: Mapping[str, str]) -> dict:
    """One side of the map as a filled step outline through every level: bars without gaps.

    The ``vhv`` steps hold each level's notional over its whole bin and the fill reaches back to
    zero, so it looks like adjacent horizontal bars but is one SVG path however many levels there
    are; each level is a point carrying its hover text.
    """
    return dict(
        x=np.asarray(notional, dtype=np.float32), y=np.asarray(prices, dtype=np.float32), mode="lines",
        line=dict(width=0, shape="vhv", color=colour), fill="tozerox", fillcolor=colour, name=name,
        xaxis=ax["x"], yaxis=ax["y"], customdata=np.column_stack([np.round(dist, 2), np.round(cum)]), hovertext=list(share),
        hovertemplate=("Price %{y:,.2f} (%{customdata[0]:+.2f}% from price)<br>"
                       f"{here} $%{{x:,.0f}}<br>"
                       f"{total}: $%{{customdata[1]:,.0f}} in total<br>"
                       "%{hovertext}<extra></extra>"),
    )


def _share_text(snapshot: "LiquidationMap", side: str, rows: slice) -> list[str]:
    """Per-bin text like ``10x 30% · 25x 45% · 50x 25%`` (tiers holding at least 1 %)."""
    share = snapshot.leverage_share(side)[:, rows]
    # whole percents looked up in a per-tier table: formatting floats per bin was the map's main cost
    table = np.array([[f"{lev:g}x {p}%" for p in range(101)] + [""] for lev in snapshot.leverages], dtype=object)
    finite = np.isfinite(share)
    pct = np.rint(np.clip(np.where(finite, share, 0.0), 0.0, 1.0) * 100).astype(np.int64)
    pct[~(finite & (share >= 0.01))] = 101  # the empty string: tier left out
    cells = table[np.arange(table.shape[0])[:, None], pct]
    return ["leverage: " + " · ".join(filter(None, col)) if any_open else "no open positions"
            for any_open, col in zip(finite.any(axis=0).tolist(), cells.T.tolist())]


def _map_layout(height: int) -> dict:
    base = _heatmap_layout(height)
    base.update(barmode="overlay", bargap=0.0, margin=dict(l=60, r=20, t=70, b=40))
    return base


def liquidation_map_figure(
    snapshot: "LiquidationMap",
    *,
    price_range: tuple[float, float] | None = None,
    span_pct: float = 15.0,
    threshold: float = 0.5,
    title: str | None = None,
    height: int = 640,
) -> "go.Figure":
    """The liquidation map at one moment: notional per price level with cumulative curves.

    Parameters
    ----------
    snapshot
        ``HeatmapResult.snapshot(when)``.
    price_range
        Displayed price range (default ``price ± span_pct %``).
    span_pct
        Half-width of the default range in percent.
    threshold
        Cluster threshold: share of the side's largest bin (see ``LiquidationMap.nearest_cluster``).
    title
        Figure title (default: the snapshot time and price).
    height
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        Horizontal bars per level (long red below the price, short green above) on ``xaxis``,
        cumulative curves running away from the price on ``xaxis2`` (top), the price as a dashed
        line and the nearest large cluster on each side annotated with its distance in %.
    """
    import plotly.graph_objects as go

    parts = map_parts(snapshot, price_range=price_range, span_pct=span_pct, threshold=threshold)
    fig = go.Figure(data=_make_traces(parts["traces"]), layout=_map_layout(height))
    fig.update_layout(
        title=dict(text=title or f"Liquidation map at {snapshot.time:%Y-%m-%d %H:%M} UTC"),
        xaxis=dict(title=dict(text="notional per level (USD)"), tickformat="$.2s", showgrid=False),
        xaxis2=dict(overlaying="x", side="top", tickformat="$.2s", showgrid=False,
                    title=dict(text="cumulative (USD)", font=dict(size=11))),
        yaxis=dict(title=dict(text="price"), tickformat=",.6~r", showgrid=False),
    )
    _apply_layout(fig, parts["layout"])
    _allow_tick_label_overflow(fig)
    return fig


# ----------------------------------------------------------------------------- explorer
def explorer_figure(
    result: "HeatmapResult",
    market: "Market",
    snapshot: "LiquidationMap",
    *,
    side: str = "combined",
    price_style: str = "candles",
    margin: float = 0.03,
    height: int = 760,
    widget: bool = False,
):
    """Heatmap, realized bars and the snapshot map side by side on one shared price axis.

    One figure (rather than two) keeps a published page to a single copy of plotly.js.

    Parameters
    ----------
    result, market, snapshot
        Engine result, its market, and ``result.snapshot(when)``.
    side, price_style, margin
        As in :func:`heatmap_figure`.
    height
        Figure height in pixels.
    widget
        Return a ``plotly.graph_objects.FigureWidget`` (for ipywidgets) instead of a Figure.
    """
    import plotly.graph_objects as go

    parts = explorer_parts(result, market, snapshot, side=side, price_style=price_style, margin=margin)
    fig = go.Figure(data=_make_traces(parts["traces"]), layout=_heatmap_layout(height))
    fig.update_layout(
        xaxis=dict(domain=[0, 0.74], anchor="y2", type="date", rangeslider=dict(visible=False), showgrid=False),
        yaxis=dict(domain=[0.3, 1.0], title=dict(text=f"price ({_quote(market)})"), showgrid=False,
                   tickformat=",.6~r"),
        yaxis2=dict(domain=[0.0, 0.25], anchor="x", tickformat="$.2s", zeroline=True, zerolinecolor="#666"),
        xaxis2=dict(domain=[0.77, 1.0], anchor="y", tickformat="$.2s", showgrid=False,
                    title=dict(text="per level (USD)", font=dict(size=11))),
        xaxis3=dict(overlaying="x2", side="top", anchor="y", tickformat="$.2s", showgrid=False,
                    showticklabels=True, tickfont=dict(size=9)),
        yaxis3=dict(matches="y", overlaying="y", visible=False),
    )
    _apply_layout(fig, parts["layout"])
    _allow_tick_label_overflow(fig)
    # a FigureWidget ships what it was created with: create it from the finished figure
    if widget:
        from liqlab.apps.figure_widget import figure_widget

        return figure_widget(fig)
    return fig


def explorer_parts(
    result: "HeatmapResult",
    market: "Market",
    snapshot: "LiquidationMap",
    *,
    side: str = "combined",
    price_style: str = "candles",
    margin: float = 0.03,
    colorbar: bool = True,
) -> Parts:
    """Parts of :func:`explorer_figure`: heatmap parts plus map parts on ``x2``/``x3``.

    ``colorbar=False`` leaves plotly's colour bar out (see :func:`heatmap_parts`).
    """
    rng = visible_price_range(market, margin)
    hm = heatmap_parts(result, market, side=side, price_style=price_style, price_range=rng, colorbar=colorbar)
    mp = map_parts(snapshot, price_range=rng, axes={"x": "x2", "y": "y", "cum_x": "x3"})
    # the snapshot time as a vertical line on the heatmap, the price line on the map
    t_ms = float(_ms([snapshot.time])[0])
    snap_line = dict(type="line", xref="x", yref="y domain", x0=t_ms, x1=t_ms, y0=0, y1=1,
                     line=dict(color="#ffffff", width=1, dash="dot"), name="snapshot_time")
    layout = {**hm["layout"], **mp["layout"]}
    layout["shapes"] = [snap_line, *mp["layout"]["shapes"]]
    return {"traces": {**hm["traces"], **mp["traces"]}, "layout": layout, "clusters": mp["clusters"],
            "period": hm["period"], "zmax": hm["zmax"], "legend": hm["legend"]}


# ----------------------------------------------------------------------------- in-place update
def apply_parts(fig, parts: Parts, previous: Parts | None = None) -> None:
    """Write new parts into an existing figure (or FigureWidget) as one ``plotly_update``.

    Traces are found by ``meta`` (the part name). Values equal to those in ``previous`` (the parts
    applied last time) are skipped, so that a leverage change, for instance, sends only new colours.
    The parts come from this module's builders, already in plotly's form, so they go through
    ``plotly_update`` (stored and sent as they are) rather than through the property validators,
    which would walk every array element by element on each update.
    """
    from plotly.basedatatypes import Undefined

    index = {t.meta: i for i, t in enumerate(fig.data)}
    old_traces = (previous or {}).get("traces", {})
    changes: dict[int, dict] = {}
    for name, props in parts["traces"].items():
        i = index.get(name)
        if i is None:
            continue
        before = old_traces.get(name, {})
        changed = {k: v for k, v in props.items()
                   if k not in ("xaxis", "yaxis") and not (k in before and _same(before[k], v))}
        if changed:
            changes[i] = changed
    traces = sorted(changes)
    keys = sorted({k for c in changes.values() for k in c})
    restyle = {k: [changes[i].get(k, Undefined) for i in traces] for k in keys}
    old_layout = (previous or {}).get("layout", {})
    relayout = {k: v for k, v in parts["layout"].items() if not (k in old_layout and _same(old_layout[k], v))}
    if restyle or relayout:
        fig.plotly_update(restyle_data=restyle or None, relayout_data=relayout or None,
                          trace_indexes=traces or None)


def _same(old, new) -> bool:
    """Cheap equality for trace values (arrays, lists, scalars); False when unsure or costly."""
    if old is None:
        return False
    if isinstance(new, dict):  # colour bars, markers, lines: equal nested values need no update
        return (isinstance(old, dict) and old.keys() == new.keys()
                and all(_same(old[k], new[k]) for k in new))
    try:
        if isinstance(new, np.ndarray) or isinstance(old, np.ndarray):
            a, b = np.asarray(old), np.asarray(new)
            if a.shape != b.shape or a.dtype != b.dtype:
                return False
            if a.dtype.kind in "fiub":
                return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
            return a.ndim == 1 and bool((a == b).all())
        if isinstance(new, list):
            return isinstance(old, list) and len(old) == len(new) and old == new
        return bool(old == new)
    except (TypeError, ValueError):
        return False
