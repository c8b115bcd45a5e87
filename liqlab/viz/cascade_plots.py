"""Figures of the cascade lab: a cascade round by round, and the phase diagram.

Pure functions: a :class:`~liqlab.sim.cascade.CascadeResult` (or
:class:`~liqlab.sim.cascade.PhaseDiagram`) in, trace/layout *parts* or a figure out, in the style of
:mod:`liqlab.viz.plotting` (dark theme, longs red, shorts green, trace names in ``meta``). The lab
builds its figure widget once from :func:`cascade_figure` and then writes new parts into it with
:meth:`liqlab.apps.plotly_view.PlotlyView.apply` as the round or the settings change.

The cascade figure has three panels:

* left, top: the *heatmap* of remaining liquidation notional per price bin (rows) after each round
  (columns), with the price path over it; rounds after the one shown are blank, so stepping
  reveals the cascade;
* left, bottom: notional liquidated per round (longs up, red; shorts down, green);
* right: the *positions map* after the round shown (remaining notional per bin) over a faint
  ghost of the map before the shock, on the same price axis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from liqlab.viz.style import BACKGROUND, LONG_COLOUR, PRICE_COLOUR, SHORT_COLOUR, format_usd

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from liqlab.sim.cascade import CascadeResult, PhaseDiagram

GHOST = "rgba(180, 180, 180, 0.22)"
SHOCK_COLOUR = "#c9a227"
MARKER_COLOUR = "#4cc9f0"
CASCADE_TRACES = ("heat", "path", "liq_long", "liq_short", "map0_long", "map0_short", "map_long", "map_short")
PHASE_TRACES = ("phase", "current")


def display_edges(result: "CascadeResult", bins: int = 120, min_span: float = 0.1) -> np.ndarray:
    """Price-bin edges covering the price path with room: ``p0 * (1 -/+ span)``.

    ``span`` is the larger of ``min_span`` and 1.3 times the furthest the price went, so the path
    never leaves the picture and small cascades are not squashed into a few bins.
    """
    p0 = result.population.price
    far = float(np.max(np.abs(result.rounds["price"].to_numpy() / p0 - 1.0), initial=0.0))
    span = min(max(min_span, 1.3 * far), 0.95)
    return np.linspace(p0 * (1 - span), p0 * (1 + span), int(bins) + 1)


def cascade_parts(result: "CascadeResult", round_: int | None = None, *, edges: np.ndarray | None = None) -> dict:
    """Trace and layout properties of the cascade figure at round ``round_``.

    Parameters
    ----------
    result
        A cascade from :func:`liqlab.sim.cascade.simulate_cascade`.
    round_
        Round shown (0 = before the shock); None = the last round simulated.
    edges
        Price-bin edges (default :func:`display_edges`).

    Returns
    -------
    dict
        ``{"traces": {name: properties}, "layout": {...}}`` with the trace names of
        :data:`CASCADE_TRACES`.
    """
    rounds = result.rounds
    last = len(rounds) - 1
    r = last if round_ is None else int(round_)
    if not 0 <= r <= last:
        raise ValueError(f"round must lie in [0, {last}], got {round_!r}")
    e = display_edges(result) if edges is None else np.asarray(edges, dtype=np.float64)
    centres = 0.5 * (e[1:] + e[:-1])
    long_m, short_m = result.map_matrix(e)  # (rounds, bins)
    heat = (long_m + short_m).T.astype(np.float64)  # (bins, rounds)
    heat[:, r + 1:] = np.nan  # rounds not yet played stay blank
    heat[heat <= 0] = np.nan
    zmax = float(np.nanpercentile(heat, 99)) if np.isfinite(heat).any() else 1.0
    x = np.arange(len(rounds), dtype=np.float64)
    price = rounds["price"].to_numpy(np.float64)
    long_usd = rounds["long_usd"].to_numpy(np.float64)
    short_usd = rounds["short_usd"].to_numpy(np.float64)
    shown = x <= r
    p0 = result.population.price
    pct = 100.0 * (centres / p0 - 1.0)
    traces: dict[str, dict[str, Any]] = {
        "heat": dict(
            x=x, y=centres, z=heat, zmin=0.0, zmax=max(zmax, 1.0), colorscale="Viridis", zsmooth=False,
            hoverongaps=False, xaxis="x", yaxis="y", showscale=False,
            hovertemplate="after round %{x}<br>price %{y:,.2f}<br>remaining $%{z:,.0f}<extra></extra>",
        ),
        "path": dict(
            x=x[shown], y=price[shown], mode="lines+markers", name="price", xaxis="x", yaxis="y",
            line=dict(color=PRICE_COLOUR, width=2), marker=dict(size=6, color=PRICE_COLOUR),
            hovertemplate="round %{x}: price %{y:,.3f}<extra></extra>",
        ),
        "liq_long": dict(
            x=x[shown], y=long_usd[shown], name="longs liquidated", xaxis="x", yaxis="y2",
            marker=dict(color=LONG_COLOUR, line=dict(width=0)),
            hovertemplate="round %{x}: longs $%{y:,.0f}<extra></extra>",
        ),
        "liq_short": dict(
            x=x[shown], y=-short_usd[shown], name="shorts liquidated", xaxis="x", yaxis="y2",
            marker=dict(color=SHORT_COLOUR, line=dict(width=0)), customdata=short_usd[shown],
            hovertemplate="round %{x}: shorts $%{customdata:,.0f}<extra></extra>",
        ),
        "map0_long": dict(
            x=long_m[0], y=centres, orientation="h", name="before the shock", legendgroup="ghost",
            xaxis="x2", yaxis="y", marker=dict(color=GHOST, line=dict(width=0)), customdata=pct,
            hovertemplate="price %{y:,.2f} (%{customdata:+.1f}%)<br>longs before the shock $%{x:,.0f}<extra></extra>",
        ),
        "map0_short": dict(
            x=short_m[0], y=centres, orientation="h", name="before the shock", legendgroup="ghost", showlegend=False,
            xaxis="x2", yaxis="y", marker=dict(color=GHOST, line=dict(width=0)), customdata=pct,
            hovertemplate="price %{y:,.2f} (%{customdata:+.1f}%)<br>shorts before the shock $%{x:,.0f}<extra></extra>",
        ),
        "map_long": dict(
            x=long_m[r], y=centres, orientation="h", name="longs remaining", xaxis="x2", yaxis="y",
            marker=dict(color=LONG_COLOUR, line=dict(width=0)), customdata=pct,
            hovertemplate="price %{y:,.2f} (%{customdata:+.1f}%)<br>longs remaining $%{x:,.0f}<extra></extra>",
        ),
        "map_short": dict(
            x=short_m[r], y=centres, orientation="h", name="shorts remaining", xaxis="x2", yaxis="y",
            marker=dict(color=SHORT_COLOUR, line=dict(width=0)), customdata=pct,
            hovertemplate="price %{y:,.2f} (%{customdata:+.1f}%)<br>shorts remaining $%{x:,.0f}<extra></extra>",
        ),
    }
    shock_price = result.shock_price
    now = float(price[r])
    liquidated = float(long_usd[: r + 1].sum() + short_usd[: r + 1].sum())
    shapes = [
        dict(type="line", xref="x2 domain", yref="y", x0=0, x1=1, y0=now, y1=now,
             line=dict(color=PRICE_COLOUR, width=1.5, dash="dash"), name="price_now"),
        dict(type="line", xref="x domain", yref="y", x0=0, x1=1, y0=shock_price, y1=shock_price,
             line=dict(color=SHOCK_COLOUR, width=1, dash="dot"), name="shock_price"),
        dict(type="line", xref="x", yref="y domain", x0=r, x1=r, y0=0, y1=1,
             line=dict(color="#ffffff", width=1, dash="dot"), name="round_now"),
        dict(type="line", xref="x", yref="y2 domain", x0=r, x1=r, y0=0, y1=1,
             line=dict(color="#ffffff", width=1, dash="dot"), name="round_now_bars"),
    ]
    annotations = [
        dict(xref="x domain", yref="y", x=0.0, y=shock_price, xanchor="left",
             yanchor="top" if result.shock <= 0 else "bottom", showarrow=False,
             text=f"shock {100 * result.shock:+.2f}% → {shock_price:,.2f}", font=dict(color=SHOCK_COLOUR, size=11)),
        dict(xref="x2 domain", yref="y", x=1.0, y=now, xanchor="right", yanchor="bottom", showarrow=False,
             text=f"price {now:,.2f}", font=dict(color=PRICE_COLOUR, size=11)),
    ]
    # the headline is an annotation inside the price panel, where it cannot collide with the legend
    annotations.append(dict(
        xref="paper", yref="paper", x=0.0, y=1.0, xanchor="left", yanchor="top", showarrow=False,
        bgcolor="rgba(14,17,23,0.75)",
        # "$" as an entity: plotly typesets text holding two dollar signs as LaTeX, which shows nothing
        text=(f"Round {r} of {last} · price {now:,.2f} ({100 * (now / p0 - 1):+.2f}%) · "
              f"liquidated so far {format_usd(liquidated)} · cascade in total {format_usd(result.size)} "
              f"({100 * result.size_share:.1f}% of {result.shocked_side}s) over {result.n_rounds} rounds"
              ).replace("$", "&#36;"),
        font=dict(size=13, color="#e8e8e8"), name="headline"))
    layout = {
        "xaxis.range": [-0.5, last + 0.5],
        "yaxis.range": [float(e[0]), float(e[-1])],
        "yaxis2.range": _bars_range(long_usd, short_usd),
        "shapes": shapes,
        "annotations": annotations,
    }
    return {"traces": traces, "layout": layout, "round": r}


def _bars_range(long_usd: np.ndarray, short_usd: np.ndarray) -> list[float]:
    """Symmetric-enough fixed range so the bar axis does not jump while stepping."""
    top = float(max(long_usd.max(initial=0.0), 1.0))
    bottom = float(max(short_usd.max(initial=0.0), 1.0))
    return [-1.1 * bottom if short_usd.any() else -0.1 * top, 1.1 * top if long_usd.any() else 0.1 * bottom]


def _cascade_layout(height: int) -> dict:
    return dict(
        template="plotly_dark", paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, height=height,
        # overlay: the map's remaining bars sit on the ghost of the map before the shock (not stacked);
        # per-round bars do not collide either, longs go up and shorts down
        margin=dict(l=60, r=20, t=50, b=45), barmode="overlay", bargap=0.15, hovermode="closest",
        uirevision="keep", showlegend=True,
        title=dict(x=0.0, xanchor="left", y=0.985, yanchor="top", font=dict(size=13)),
        # in the free corner under the positions map
        legend=dict(orientation="v", x=0.66, xanchor="left", y=0.2, yanchor="top", font=dict(size=11),
                    bgcolor="rgba(0,0,0,0)"),
        xaxis=dict(domain=[0, 0.6], anchor="y2", title=dict(text="round"), showgrid=False, zeroline=False,
                   dtick=None),
        yaxis=dict(domain=[0.34, 1.0], title=dict(text="price"), showgrid=False, tickformat=",.6~r"),
        yaxis2=dict(domain=[0.0, 0.26], anchor="x", tickformat="$.2s", zeroline=True, zerolinecolor="#666",
                    title=dict(text="liquidated", font=dict(size=11))),
        xaxis2=dict(domain=[0.64, 1.0], anchor="y", tickformat="$.2s", showgrid=False, rangemode="tozero",
                    title=dict(text="notional per price bin (USD)", font=dict(size=11))),
    )


def cascade_figure(result: "CascadeResult", round_: int | None = None, *, edges: np.ndarray | None = None,
                   height: int = 620):
    """The cascade at one round: heatmap and price path, per-round liquidations, positions map.

    Parameters
    ----------
    result
        A cascade.
    round_
        Round shown (None: the last).
    edges
        Price-bin edges (default :func:`display_edges`).
    height
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces named (``meta``) as in :data:`CASCADE_TRACES`.
    """
    import plotly.graph_objects as go

    parts = cascade_parts(result, round_, edges=edges)
    fig = go.Figure(data=_traces(parts["traces"]), layout=_cascade_layout(height))
    _apply(fig, parts["layout"])
    return fig


def _traces(traces: dict) -> list:
    import plotly.graph_objects as go

    kinds = {"heat": go.Heatmap, "path": go.Scatter, "phase": go.Heatmap, "current": go.Scatter}
    out = []
    for name, props in traces.items():
        props = dict(props)
        props["meta"] = name  # the widgets find traces by meta
        props.setdefault("name", name)
        if name in ("heat", "phase"):
            props.setdefault("showlegend", False)
        out.append(kinds.get(name, go.Bar)(**props))
    return out


def _apply(fig, layout: dict) -> None:
    fig.update_layout({k.replace(".", "_"): v for k, v in layout.items()})


# ----------------------------------------------------------------------------- phase diagram
def phase_parts(diagram: "PhaseDiagram", *, leverage: float | None = None, depth: float | None = None,
                size_share: float | None = None) -> dict:
    """Trace and layout properties of the phase diagram with the current setting marked.

    Parameters
    ----------
    diagram
        From :func:`liqlab.sim.cascade.phase_diagram`.
    leverage, depth
        The current setting (marked with a ring); None leaves the marker empty.
    size_share
        The current cascade's size as a share of the shocked side (shown in the marker's label).

    Returns
    -------
    dict
        ``{"traces": {"phase": ..., "current": ...}, "layout": {...}}``; ``phase`` has ``z`` =
        cascade size in percent of the shocked side, rows = depth (USD millions per 1 %), columns =
        leverage.
    """
    z = 100.0 * np.asarray(diagram.size_share, dtype=np.float64).T  # rows depth, cols leverage
    dep_m = np.asarray(diagram.depth, dtype=np.float64) / 1e6
    lev = np.asarray(diagram.leverage, dtype=np.float64)
    side = "longs" if diagram.shock <= 0 else "shorts"
    has = leverage is not None and depth is not None
    label = "" if size_share is None else f"{100 * size_share:.0f}%"
    traces = {
        "phase": dict(
            x=lev, y=dep_m, z=z, zmin=0.0, zmax=100.0, colorscale="Inferno", zsmooth=False,
            colorbar=dict(title=dict(text=f"% of {side} liquidated", side="right"), thickness=12, len=0.9),
            hovertemplate=("leverage %{x:.3g}x · depth $%{y:,.3g}M per 1%<br>"
                           f"cascade: %{{z:.1f}}% of {side}<extra></extra>"),
        ),
        "current": dict(
            x=[float(leverage)] if has else [], y=[float(depth) / 1e6] if has else [],
            mode="markers+text", name="this setting", text=[label] if has else [], textposition="top center",
            textfont=dict(color=MARKER_COLOUR, size=12),
            marker=dict(symbol="circle-open", size=16, color=MARKER_COLOUR, line=dict(width=3)),
            hovertemplate="this setting: %{x:.3g}x, $%{y:,.3g}M per 1%<extra></extra>",
        ),
    }
    layout = {"title.text": (f"Phase diagram: share of {side} liquidated by a {100 * diagram.shock:+.2f}% shock, "
                             "over leverage and book depth")}
    return {"traces": traces, "layout": layout}


def phase_figure(diagram: "PhaseDiagram", *, leverage: float | None = None, depth: float | None = None,
                 size_share: float | None = None, height: int = 420):
    """The phase diagram as a heatmap over leverage (x, log) and depth (y, log), current setting ringed.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces ``phase`` (heatmap) and ``current`` (marker).
    """
    import plotly.graph_objects as go

    parts = phase_parts(diagram, leverage=leverage, depth=depth, size_share=size_share)
    fig = go.Figure(data=_traces(parts["traces"]), layout=dict(
        template="plotly_dark", paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, height=height,
        margin=dict(l=70, r=20, t=50, b=50), showlegend=False, uirevision="keep",
        title=dict(x=0.0, xanchor="left", font=dict(size=13)),
        xaxis=dict(type="log", title=dict(text="leverage (x), every position"), showgrid=False,
                   tickvals=[2, 3, 5, 10, 20, 30, 50, 100], ticktext=["2", "3", "5", "10", "20", "30", "50", "100"]),
        yaxis=dict(type="log", title=dict(text="book depth (USD M per 1 % move)"), showgrid=False,
                   tickvals=[10, 20, 50, 100, 200, 500, 1000, 2000],
                   ticktext=["10", "20", "50", "100", "200", "500", "1,000", "2,000"]),
    ))
    _apply(fig, parts["layout"])
    return fig


# ----------------------------------------------------------------------------- the lab: one figure
#: Vertical layout of the lab figure (paper fractions): cascade on top, phase diagram below.
_LAB_DOMAINS = {"price": [0.64, 1.0], "bars": [0.47, 0.6], "phase": [0.0, 0.34]}


def lab_parts(result: "CascadeResult", diagram: "PhaseDiagram", round_: int | None = None, *,
              leverage: float | None = None, depth: float | None = None, edges: np.ndarray | None = None) -> dict:
    """Parts of :func:`lab_figure`: the cascade parts plus the phase-diagram parts on ``x3``/``y3``.

    One figure holds both, so a published page keeps a single plot to update (and one copy of
    plotly.js); the phase diagram's title becomes an annotation above its panel.
    """
    cas = cascade_parts(result, round_, edges=edges)
    ph = phase_parts(diagram, leverage=leverage, depth=depth, size_share=result.size_share)
    traces = dict(cas["traces"])
    for name, props in ph["traces"].items():
        traces[name] = {**props, "xaxis": "x3", "yaxis": "y3"}
    lo, hi = _LAB_DOMAINS["phase"]
    traces["phase"]["colorbar"] = {**traces["phase"]["colorbar"], "y": lo, "yanchor": "bottom", "len": hi - lo,
                                   "lenmode": "fraction", "x": 0.94}
    top = _LAB_DOMAINS["phase"][1]
    layout = dict(cas["layout"])
    layout["annotations"] = [*cas["layout"]["annotations"], dict(
        xref="paper", yref="paper", x=0.0, y=top + 0.015, xanchor="left", yanchor="bottom", showarrow=False,
        text=ph["layout"]["title.text"], font=dict(size=13, color="#e8e8e8"), name="phase_title")]
    return {"traces": traces, "layout": layout, "round": cas["round"]}


def lab_figure(result: "CascadeResult", diagram: "PhaseDiagram", round_: int | None = None, *,
               leverage: float | None = None, depth: float | None = None, edges: np.ndarray | None = None,
               height: int = 1000):
    """The cascade lab's figure: the cascade at a round (top) and the phase diagram (bottom).

    Parameters
    ----------
    result, diagram
        A cascade and a phase diagram (usually swept at the cascade's shock and margin).
    round_
        Round shown (None: the last).
    leverage, depth
        The current setting, ringed on the phase diagram.
    edges
        Price-bin edges of the cascade panels (default :func:`display_edges`).
    height
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces named as in :data:`CASCADE_TRACES` and :data:`PHASE_TRACES`.
    """
    import plotly.graph_objects as go

    parts = lab_parts(result, diagram, round_, leverage=leverage, depth=depth, edges=edges)
    layout = _cascade_layout(height)
    d = _LAB_DOMAINS
    layout["yaxis"]["domain"] = d["price"]
    layout["yaxis2"]["domain"] = d["bars"]
    layout["xaxis2"]["domain"] = [0.64, 1.0]
    layout["legend"].update(y=d["bars"][1], yanchor="top")
    layout["xaxis3"] = dict(domain=[0.0, 0.92], anchor="y3", type="log", showgrid=False,
                            title=dict(text="leverage (x), every position", font=dict(size=12)),
                            tickvals=[2, 3, 5, 10, 20, 30, 50, 100],
                            ticktext=["2", "3", "5", "10", "20", "30", "50", "100"])
    layout["yaxis3"] = dict(domain=d["phase"], anchor="x3", type="log", showgrid=False,
                            title=dict(text="book depth ($M per 1 %)", font=dict(size=12)),
                            tickvals=[10, 20, 50, 100, 200, 500, 1000, 2000],
                            ticktext=["10", "20", "50", "100", "200", "500", "1,000", "2,000"])
    fig = go.Figure(data=_traces(parts["traces"]), layout=layout)
    _apply(fig, parts["layout"])
    return fig
