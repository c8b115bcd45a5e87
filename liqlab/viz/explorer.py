"""The explorer figure: heatmap, bars and the snapshot map on one shared price axis."""

from __future__ import annotations

from typing import TYPE_CHECKING

from liqlab.viz.grid import epoch_ms, visible_price_range
from liqlab.viz.heatmap import heatmap_parts
from liqlab.viz.liqmap import map_parts
from liqlab.viz.style import Parts, allow_tick_label_overflow, apply_layout, heatmap_layout, make_traces, quote_currency

if TYPE_CHECKING:  # plotly and the engine are imported lazily: ``import liqlab`` stays light
    import plotly.graph_objects as go  # noqa: F401

    from liqlab.core.engine import HeatmapResult, LiquidationMap  # noqa: F401
    from liqlab.core.market import Market  # noqa: F401


def explorer_axes(split: float, *, price_title: str | None = None,
                  map_title: str = "per level (USD)") -> dict:
    """The explorer's axes: heatmap and price on ``x``/``y`` left of ``split`` (a share of the width),
    realized bars on ``y2`` below them, the snapshot map on ``x2`` (per level) and ``x3`` (cumulative)
    to the right, sharing the price axis."""
    price = dict(domain=[0.3, 1.0], showgrid=False, tickformat=",.6~r")
    if price_title:
        price["title"] = dict(text=price_title)
    return dict(
        xaxis=dict(domain=[0, split], anchor="y2", type="date", rangeslider=dict(visible=False), showgrid=False),
        yaxis=price,
        yaxis2=dict(domain=[0.0, 0.25], anchor="x", tickformat="$.2s", zeroline=True, zerolinecolor="#666"),
        xaxis2=dict(domain=[split + 0.03, 1.0], anchor="y", tickformat="$.2s", showgrid=False,
                    title=dict(text=map_title, font=dict(size=11))),
        xaxis3=dict(overlaying="x2", side="top", anchor="y", tickformat="$.2s", showgrid=False,
                    showticklabels=True, tickfont=dict(size=9)),
    )


def explorer_figure(
    result: "HeatmapResult",
    market: "Market",
    snapshot: "LiquidationMap",
    *,
    side: str = "combined",
    price_style: str = "candles",
    margin: float = 0.03,
    height: int = 760,
) -> "go.Figure":
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
    """
    import plotly.graph_objects as go

    parts = explorer_parts(result, market, snapshot, side=side, price_style=price_style, margin=margin)
    fig = go.Figure(data=make_traces(parts["traces"]), layout=heatmap_layout(height))
    fig.update_layout(explorer_axes(0.74, price_title=f"price ({quote_currency(market)})"))
    fig.update_layout(yaxis3=dict(matches="y", overlaying="y", visible=False))
    apply_layout(fig, parts["layout"])
    allow_tick_label_overflow(fig)
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
    t_ms = float(epoch_ms([snapshot.time])[0])
    snap_line = dict(type="line", xref="x", yref="y domain", x0=t_ms, x1=t_ms, y0=0, y1=1,
                     line=dict(color="#ffffff", width=1, dash="dot"), name="snapshot_time")
    layout = {**hm["layout"], **mp["layout"]}
    layout["shapes"] = [snap_line, *mp["layout"]["shapes"]]
    return {"traces": {**hm["traces"], **mp["traces"]}, "layout": layout, "clusters": mp["clusters"],
            "period": hm["period"], "zmax": hm["zmax"], "legend": hm["legend"]}
