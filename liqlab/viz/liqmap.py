"""The liquidation map: outstanding notional per price level at one moment, with cumulative curves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np

from liqlab.viz.grid import crop_rows
from liqlab.viz.style import (
    BACKGROUND,
    LONG_COLOUR,
    PRICE_COLOUR,
    SHORT_COLOUR,
    Parts,
    allow_tick_label_overflow,
    apply_layout,
    axis_key,
    format_price,
    format_usd,
    make_traces,
    map_layout,
)

if TYPE_CHECKING:  # plotly and the engine are imported lazily: ``import liqlab`` stays light
    import plotly.graph_objects as go  # noqa: F401

    from liqlab.core.engine import HeatmapResult, LiquidationMap  # noqa: F401
    from liqlab.core.market import Market  # noqa: F401


LABEL_ROOM = 0.05  # map labels within this share of the price range from its edge go inside it


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
    ys, texts, where = [price], [f"price {format_price(price)} · {snapshot.time:%Y-%m-%d %H:%M} UTC"], ["top right"]
    for s, hit in clusters.items():
        if hit is None:
            continue
        p, notional, d = hit
        ys.append(float(p))
        texts.append(f"{s} cluster {format_price(p)} ({d:+.2f}%) · {format_usd(notional)}")
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
        f"{axis_key(ax['y'])}.range": [float(rng[0]), float(rng[1])],
        # notional axes start at zero: no autorange padding to the left of the labels at x = 0
        f"{axis_key(ax['x'])}.rangemode": "nonnegative",
        f"{axis_key(ax['cum_x'])}.rangemode": "nonnegative",
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
    fig = go.Figure(data=make_traces(parts["traces"]), layout=map_layout(height))
    fig.update_layout(
        title=dict(text=title or f"Liquidation map at {snapshot.time:%Y-%m-%d %H:%M} UTC"),
        xaxis=dict(title=dict(text="notional per level (USD)"), tickformat="$.2s", showgrid=False),
        xaxis2=dict(overlaying="x", side="top", tickformat="$.2s", showgrid=False,
                    title=dict(text="cumulative (USD)", font=dict(size=11))),
        yaxis=dict(title=dict(text="price"), tickformat=",.6~r", showgrid=False),
    )
    apply_layout(fig, parts["layout"])
    allow_tick_label_overflow(fig)
    return fig
