"""Colours, axis layouts and text formats shared by liqlab's figures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # plotly and the engine are imported lazily: ``import liqlab`` stays light
    import plotly.graph_objects as go  # noqa: F401

    from liqlab.core.engine import HeatmapResult, LiquidationMap  # noqa: F401
    from liqlab.core.market import Market  # noqa: F401


LONG_COLOUR = "#e5484d"  # red: long positions liquidated (forced sells)


SHORT_COLOUR = "#30a46c"  # green: short positions liquidated (forced buys)


LONG_PREDICTED = "rgba(229, 72, 77, 0.45)"


SHORT_PREDICTED = "rgba(48, 164, 108, 0.45)"


PRICE_COLOUR = "#f5f5f5"


COLOURSCALE = "Viridis"


BACKGROUND = "#0e1117"


Parts = dict  # {"traces": {name: props}, "layout": {...}}


def format_usd(x: float) -> str:
    """Compact dollar text: $9.07M, $512k, $830."""
    a = abs(x)
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"${x / div:,.2f}{suf}"
    return f"${x:,.0f}"


def format_price(p: float) -> str:
    """Price text with sensible decimals for its size."""
    return f"{p:,.2f}" if abs(p) >= 1 else f"{p:.6g}"


def axis_key(axis_id: str) -> str:
    """``"x2"`` -> ``"xaxis2"``; ``"y"`` -> ``"yaxis"``."""
    return f"{axis_id[0]}axis{axis_id[1:]}"


def heatmap_layout(height: int) -> dict:
    return dict(
        template="plotly_dark", paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, height=height,
        # fixed margins with room for the colour bar and legend: margins that grow with tick
        # labels would make every update lay the figure out twice
        margin=dict(l=60, r=20, t=90, b=70, autoexpand=False), barmode="overlay", bargap=0, showlegend=True,
        legend=dict(orientation="h", x=0.0, xanchor="left", y=-0.06, yanchor="top", font=dict(size=11)),
        hovermode="closest", uirevision="keep",
        title=dict(x=0.0, xanchor="left", y=0.99, yanchor="top", font=dict(size=14)),
    )


def make_traces(traces: Mapping[str, dict]) -> list:
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
        props["meta"] = name  # the part name: the widgets look traces up by meta
        if name in ("time_anchor", "heatmap", "price_candles", "price_line", "snapshot_price", "map_labels"):
            props.setdefault("showlegend", False)
        out.append(kinds.get(name, go.Scatter)(**props))
    return out


def quote_currency(market: "Market") -> str:
    sym = market.symbol.split(":")[0].replace("/", "")
    for q in ("USDT", "USDC", "USD", "BUSD"):
        if sym.endswith(q):
            return q
    return "quote"


def apply_layout(fig, layout: Mapping[str, Any]) -> None:
    """Set dotted layout paths (``"yaxis.range"``) on a figure."""
    fig.update_layout({k.replace(".", "_"): v for k, v in layout.items()})


def allow_tick_label_overflow(fig) -> None:
    """Let every axis draw its tick labels without checking each against the figure's edges.

    By default plotly.js hides labels that would overflow the figure, measuring every label (a forced
    browser layout each, a large part of a first draw and of every redraw); these figures
    keep fixed margins with room for their labels.
    """
    fig.update_xaxes(ticklabeloverflow="allow")
    fig.update_yaxes(ticklabeloverflow="allow")


def map_layout(height: int) -> dict:
    base = heatmap_layout(height)
    base.update(barmode="overlay", bargap=0.0, margin=dict(l=60, r=20, t=70, b=40))
    return base
