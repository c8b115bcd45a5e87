"""Figures of a market scan: magnet zones ranked across the universe.

Pure functions: a scan table (:func:`liqlab.scan.scan`, ranked by :func:`liqlab.scan.magnet_zones`)
in, a plotly Figure out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from liqlab.viz.style import BACKGROUND, LONG_COLOUR, SHORT_COLOUR, format_price, format_usd

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import plotly.graph_objects as go


def _hover(zones: "pd.DataFrame", side: str) -> list[str]:
    out = []
    for r in zones.itertuples():
        price, usd, share = (getattr(r, f"{side}_cluster_{k}") for k in ("price", "usd", "oi_share"))
        if not np.isfinite(price):
            out.append(f"{r.symbol}: no {side} cluster")
            continue
        out.append(f"{r.symbol} {side}s at {format_price(price)} ({getattr(r, f'{side}_cluster_pct'):+.2f} %)<br>"
                   f"{format_usd(usd)}, {100 * share:.2f} % of open interest")
    return out


def magnet_zones_figure(zones: "pd.DataFrame", *, n: int = 25, height: int | None = None) -> "go.Figure":
    """Ranked magnet zones: each symbol's nearest large long and short cluster, nearest first.

    Parameters
    ----------
    zones
        Rows of a scan table ranked by :func:`liqlab.scan.magnet_zones` (``symbol`` and the
        ``long_cluster_*`` / ``short_cluster_*`` columns).
    n
        Symbols shown (the first ``n`` rows).
    height
        Figure height in pixels (default: grows with the rows).

    Returns
    -------
    plotly.graph_objects.Figure
        Two horizontal bar traces (``meta`` ``long_zone`` and ``short_zone``): distance from the price
        in %, long clusters to the left (red), short ones to the right (green), the nearest
        symbol at the top; bar opacity follows the cluster's share of open interest.
    """
    import plotly.graph_objects as go

    top = zones.head(n)
    labels = [f"{r.symbol} #{r.params_id}" if "params_id" in top and top["symbol"].duplicated().any() else r.symbol
              for r in top.itertuples()]
    fig = go.Figure()
    for side, colour in (("long", LONG_COLOUR), ("short", SHORT_COLOUR)):
        x = top[f"{side}_cluster_pct"].to_numpy(float)
        share = np.nan_to_num(top[f"{side}_cluster_oi_share"].to_numpy(float))
        peak = share.max(initial=0.0) or 1.0
        fig.add_trace(go.Bar(
            x=np.where(np.isfinite(x), x, 0.0), y=labels, orientation="h", name=f"nearest {side} cluster",
            meta=f"{side}_zone", marker=dict(color=colour, opacity=list(0.35 + 0.65 * share / peak)),
            hovertext=_hover(top, side), hoverinfo="text",
            text=[format_usd(v) if v > 0 else "" for v in np.nan_to_num(top[f"{side}_cluster_usd"].to_numpy(float))],
            textposition="auto", cliponaxis=False, insidetextanchor="middle",
        ))
    fig.update_layout(
        template="plotly_dark", paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, barmode="overlay",
        height=height or max(260, 60 + 22 * len(top)), margin=dict(l=90, r=40, t=50, b=40),
        title=dict(text="Magnet zones: nearest large liquidation clusters, nearest first", font=dict(size=14)),
        xaxis=dict(title=dict(text="distance from the price (%)"), zeroline=True, zerolinecolor="#888",
                   ticksuffix=" %"),
        yaxis=dict(autorange="reversed", type="category"),
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    return fig
