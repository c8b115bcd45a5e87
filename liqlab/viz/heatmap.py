"""The liquidation heatmap: price, heatmap image, hover grid and realized/predicted bars."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from liqlab.viz.grid import (
    LINE_POINTS,
    as_float32,
    bar_period,
    coarse_grid,
    colour_max,
    column_close,
    crop_rows,
    epoch_ms,
    format_duration,
    minute_labels,
    per_market,
    period_bars,
    period_candles,
    price_line_points,
    timeframe_ms,
    visible_price_range,
)
from liqlab.viz.raster import heatmap_image
from liqlab.viz.style import (
    COLOURSCALE,
    LONG_COLOUR,
    LONG_PREDICTED,
    PRICE_COLOUR,
    SHORT_COLOUR,
    SHORT_PREDICTED,
    Parts,
    allow_tick_label_overflow,
    apply_layout,
    axis_key,
    heatmap_layout,
    make_traces,
    quote_currency,
)

if TYPE_CHECKING:  # plotly and the engine are imported lazily: ``import liqlab`` stays light
    import plotly.graph_objects as go  # noqa: F401

    from liqlab.core.engine import HeatmapResult, LiquidationMap  # noqa: F401
    from liqlab.core.market import Market  # noqa: F401


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
    zmax = colour_max(z)
    label = {"combined": "long + short", "long": "longs", "short": "shorts"}[side]
    image, col_start, col_end = heatmap_image(result, market, z, prices, zmax, colorscale, ax)
    coarse = coarse_grid(z, prices, col_start, col_end, column_close(result, market))
    bin_size = float(result.bin_size)
    legend_title = f"Outstanding liquidation notional per price bin of {bin_size:g} ({label}, USD)"

    period = bar_period(market, max_bars)
    candles = per_market(market, ("candles", period), lambda: period_candles(market, period))
    realized = per_market(market, ("realized", period), lambda: period_bars(market.liquidations, period))
    predicted = period_bars(result.predicted, period)
    width_ms = pd.Timedelta(period).total_seconds() * 1000.0
    step_ms = timeframe_ms(market)
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
                f"%{{x|%Y-%m-%d %H:%M}} UTC ± {format_duration(coarse['col_span_ms'] / 2)}<br>"
                f"Up to %{{z:$,.3s}} per price bin of {bin_size:g}<br>"
                "%{customdata:+.1f}% from price"
                "<extra></extra>"
            ),
        ),
        # Candles sit at the middle of their period, so they line up with the image's columns.
        "price_candles": dict(
            x=epoch_ms(candles.index) + width_ms / 2 if not show_line else np.zeros(0),
            open=as_float32(candles["open"]) if not show_line else np.zeros(0, np.float32),
            high=as_float32(candles["high"]) if not show_line else np.zeros(0, np.float32),
            low=as_float32(candles["low"]) if not show_line else np.zeros(0, np.float32),
            close=as_float32(candles["close"]) if not show_line else np.zeros(0, np.float32),
            hovertext=per_market(market, ("candle_text", period),
                                  lambda: [f"{period} from {t} UTC" for t in minute_labels(candles.index)])
            if not show_line else [],
            hoverinfo="y+text", visible=not show_line, xaxis=ax["x"], yaxis=ax["y"],
            increasing=dict(line=dict(color="#e8e8e8", width=1), fillcolor="rgba(232,232,232,0.85)"),
            decreasing=dict(line=dict(color="#8a8f98", width=1), fillcolor="rgba(20,20,20,0.85)"),
        ),
        # the close at the candle's close time, at most LINE_POINTS points; only sent when shown
        "price_line": dict(
            **(per_market(market, ("line", LINE_POINTS), lambda: price_line_points(market, LINE_POINTS))
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
        f"{axis_key(ax['x'])}.range": list(anchor_x),
        f"{axis_key(ax['x'])}.autorange": False,
        f"{axis_key(ax['y'])}.range": [float(rng[0]), float(rng[1])],
        f"{axis_key(ax['bars_y'])}.title.text": f"liquidated per {period} (USD)",
        "images": [image] if image else [],
        # room for the colour bar above the plot, or only for the title
        "margin.t": 90 if colorbar else 50,
    }
    return {"traces": traces, "layout": layout, "period": period, "rows": rows, "zmax": zmax,
            "legend": {"title": legend_title, "zmax": zmax, "colorscale": colorscale}}


def _bar(x, y, colour: str, offset_ms: float, width_ms: float, name: str, ax: Mapping[str, str]) -> dict:
    """Bars of one series drawn as a single filled step path (one SVG element, not one per bar).

    Bar ``k`` spans ``[x_k + offset_ms, x_k + offset_ms + width_ms]`` from 0 to ``y_k``. Each bar
    is three points: its top-left and top-centre and its bottom-right corner, joined by
    horizontal-then-vertical steps and filled to zero; all three carry the bar's hover text, so
    hovering anywhere along its top shows the period and the amount.
    """
    y = np.asarray(y, dtype=np.float32)
    start = epoch_ms(x) + offset_ms
    xs = np.repeat(start, 3) + np.tile([0.0, 0.5 * width_ms, width_ms], len(start))
    ys = np.repeat(y, 3)
    ys[2::3] = 0.0  # bottom-right corner
    labels = np.repeat(minute_labels(x), 3).tolist()
    return dict(
        x=xs, y=ys, mode="lines", line=dict(width=0, shape="hv", color=colour), fill="tozeroy",
        fillcolor=colour, name=name, xaxis=ax["x"], yaxis=ax["bars_y"], text=labels,
        customdata=np.repeat(np.abs(y), 3),
        hovertemplate=f"%{{text}} UTC<br>{name}: $%{{customdata:,.0f}}<extra></extra>",
    )


def bar_values(trace) -> np.ndarray:
    """The per-bar heights of a trace made by :func:`_bar` (every third point is a bar's top-left)."""
    return np.asarray(trace["y"] if isinstance(trace, Mapping) else trace.y, dtype=np.float64)[0::3]


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
    fig = go.Figure(data=make_traces(parts["traces"]), layout=heatmap_layout(height))
    fig.update_layout(
        xaxis=dict(domain=[0, 1], anchor="y2", type="date", rangeslider=dict(visible=False), showgrid=False),
        yaxis=dict(domain=[0.3, 1.0], title=dict(text=f"price ({quote_currency(market)})"), showgrid=False,
                   tickformat=",.6~r"),
        yaxis2=dict(domain=[0.0, 0.25], anchor="x", tickformat="$.2s", zeroline=True,
                    zerolinecolor="#666"),
    )
    apply_layout(fig, parts["layout"])
    allow_tick_label_overflow(fig)
    return fig
