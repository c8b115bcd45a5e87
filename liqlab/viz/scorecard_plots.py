"""Figures of the model scorecard: metrics, predicted against realized over time, log-log scatter,
sensitivity of the metrics to each model setting.

Pure functions: frames in, a ``plotly.graph_objects.Figure`` out; the only computation is the
training-span calibration (:func:`liqlab.evaluate.scoring.calibrate`) that puts predictions on the realized
scale. Same look as :mod:`liqlab.viz.plotting` (dark theme, longs red, shorts green) and every trace
carries a stable name in ``meta`` so tests can find it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from liqlab.evaluate.validation import SIDES, split_position
from liqlab.viz.grid import epoch_ms
from liqlab.viz.style import BACKGROUND, LONG_COLOUR, SHORT_COLOUR

if TYPE_CHECKING:
    import plotly.graph_objects as go

SIDE_COLOUR = {"long": LONG_COLOUR, "short": SHORT_COLOUR}
#: One colour per predictor: the model bright, baselines muted.
MODEL_COLOURS = ("#4cc9f0", "#c9a227", "#8a8f98", "#b197fc", "#f08c00")
METRICS = {"spearman": "Spearman (ranks)", "log_r2": "out-of-sample log R²", "cascade_recall": "cascade recall"}


def _layout(height: int, title: str) -> dict:
    return dict(
        template="plotly_dark", paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, height=height,
        margin=dict(l=70, r=20, t=100, b=50),
        title=dict(text=title, x=0.0, xanchor="left", y=0.99, yanchor="top", font=dict(size=14)),
        # above the subplot titles, which sit just over each panel
        legend=dict(orientation="h", x=1.0, xanchor="right", y=0.985, yanchor="top", font=dict(size=11),
                    yref="container"),
        hovermode="closest",
    )


def _colour(i: int) -> str:
    return MODEL_COLOURS[i % len(MODEL_COLOURS)]


# ----------------------------------------------------------------------------- metrics
def metrics_figure(table: pd.DataFrame, *, height: int = 380, title: str | None = None) -> "go.Figure":
    """The scorecard as grouped bars: one panel per metric, sides on the x-axis, one bar per model.

    Parameters
    ----------
    table
        :func:`liqlab.evaluate.validation.scorecard` output (``model, side, spearman, log_r2, cascade_recall``).
    height
        Figure height in pixels.
    title
        Figure title (default says the span sizes).

    Returns
    -------
    plotly.graph_objects.Figure
        Bar traces named ``metric:<metric>:<model>`` (x = sides, y = values, text = values).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(METRICS), subplot_titles=list(METRICS.values()), horizontal_spacing=0.07)
    models = list(dict.fromkeys(table["model"]))
    for j, metric in enumerate(METRICS, start=1):
        for i, model in enumerate(models):
            rows = table[table["model"] == model].set_index("side").reindex(list(SIDES))
            y = rows[metric].to_numpy(float)
            fig.add_trace(go.Bar(
                x=list(SIDES), y=y, name=model, legendgroup=model, showlegend=j == 1, meta=f"metric:{metric}:{model}",
                marker=dict(color=_colour(i)), text=[f"{v:.2f}" if np.isfinite(v) else "n/a" for v in y],
                textposition="outside", cliponaxis=False,
                hovertemplate=f"{model} · %{{x}}<br>{METRICS[metric]}: %{{y:.3f}}<extra></extra>",
            ), row=1, col=j)
        fig.update_yaxes(range=[min(0.0, float(np.nanmin(table[metric])) - 0.05) if len(table) else 0, 1.08],
                         row=1, col=j, zeroline=True, zerolinecolor="#666")
    if title is None and len(table):
        title = f"Scored on {int(table['n_test'].iloc[0])} test candles, calibrated on {int(table['n_train'].iloc[0])}"
    fig.update_layout(**_layout(height, title or "Scorecard"), barmode="group", bargap=0.25)
    return fig


# ----------------------------------------------------------------------------- over time
def timeline_figure(
    predicted: pd.DataFrame,
    realized: pd.DataFrame,
    *,
    split=None,
    baseline: pd.DataFrame | None = None,
    names: tuple[str, str] = ("liqlab", "move_x_oi"),
    warmup: int = 0,
    height: int = 560,
) -> "go.Figure":
    """Realized liquidations per candle with the calibrated model (and a baseline) over them, per side.

    Predictions are mapped to the realized scale with the log-line fitted on the training span
    (:func:`liqlab.evaluate.scoring.calibrate`), so the test span (shaded) shows them out of sample.

    Parameters
    ----------
    predicted, realized
        ``long_usd, short_usd`` per candle on one index.
    split
        Test-span start (timestamp or fraction).
    baseline
        Optional second predictor, drawn dotted.
    names
        Labels of ``predicted`` and ``baseline``.
    warmup
        Candles left out of calibration.
    height
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        Rows longs (top) and shorts; log y-axes. Traces ``realized_<side>``, ``model_<side>``
        (and ``baseline_<side>``); the test span is a shaded shape named ``test_span``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from liqlab.evaluate.scoring import calibrate

    cal = calibrate(predicted, realized, split=split, warmup=warmup)
    cal_b = calibrate(baseline, realized, split=split, warmup=warmup) if baseline is not None else None
    x = epoch_ms(realized.index)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("long liquidations", "short liquidations"))
    for row, side in enumerate(SIDES, start=1):
        col = f"{side}_usd"
        fig.add_trace(go.Scatter(
            x=x, y=realized[col].to_numpy(float), mode="lines", name=f"realized {side}s", meta=f"realized_{side}",
            line=dict(color=SIDE_COLOUR[side], width=1.2),
            hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>realized $%{y:,.0f}<extra></extra>",
        ), row=row, col=1)
        fig.add_trace(go.Scatter(
            x=x, y=cal[col].to_numpy(float), mode="lines", name=f"{names[0]} (calibrated)", meta=f"model_{side}",
            legendgroup="model", showlegend=row == 1, line=dict(color=MODEL_COLOURS[0], width=1.3),
            hovertemplate=f"%{{x|%Y-%m-%d %H:%M}} UTC<br>{names[0]} $%{{y:,.0f}}<extra></extra>",
        ), row=row, col=1)
        if cal_b is not None:
            fig.add_trace(go.Scatter(
                x=x, y=cal_b[col].to_numpy(float), mode="lines", name=f"{names[1]} (calibrated)",
                meta=f"baseline_{side}", legendgroup="baseline", showlegend=row == 1,
                line=dict(color=MODEL_COLOURS[1], width=1.0, dash="dot"),
                hovertemplate=f"%{{x|%Y-%m-%d %H:%M}} UTC<br>{names[1]} $%{{y:,.0f}}<extra></extra>",
            ), row=row, col=1)
        fig.update_yaxes(type="log", tickformat="$.2s", title=dict(text="USD per candle"), row=row, col=1)
    cut = split_position(realized.index, split)
    if 0 < cut < len(realized):
        fig.add_shape(type="rect", xref="x", yref="paper", x0=float(x[cut]), x1=float(x[-1]), y0=0, y1=1,
                      fillcolor="rgba(255,255,255,0.06)", line=dict(width=0), layer="below", name="test_span")
        fig.add_annotation(x=float(x[cut]), y=1.0, xref="x", yref="paper", xanchor="left", yanchor="bottom",
                           text="test span →", showarrow=False, font=dict(size=11, color="#c8c8c8"))
    fig.update_xaxes(type="date")
    fig.update_layout(**_layout(height, "Predicted (calibrated on the training span) against realized, per candle"),
                      bargap=0)
    return fig


# ----------------------------------------------------------------------------- scatter
def scatter_figure(
    predicted: pd.DataFrame,
    realized: pd.DataFrame,
    *,
    split=None,
    warmup: int = 0,
    name: str = "liqlab",
    height: int = 460,
) -> "go.Figure":
    """Log-log scatter of realized against predicted per candle, training grey, test coloured.

    Axes show ``1 + value`` on log scales (``log1p``, the scale the R² is computed on), so candles
    with nothing predicted or realized sit at the left or bottom edge instead of vanishing. The
    line is the training-span fit.

    Returns
    -------
    plotly.graph_objects.Figure
        Two panels (longs, shorts); traces ``train_<side>``, ``test_<side>``, ``fit_<side>``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from liqlab.evaluate.scoring import calibrate

    lines = calibrate(predicted, realized, split=split, warmup=warmup).attrs["lines"]
    cut = split_position(realized.index, split)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("long liquidations", "short liquidations"))
    times = realized.index.strftime("%Y-%m-%d %H:%M")
    for j, side in enumerate(SIDES, start=1):
        col = f"{side}_usd"
        p = predicted[col].to_numpy(float)
        r = realized[col].to_numpy(float)
        for part, sl, colour, size in (("train", slice(0, cut), "rgba(160,160,160,0.35)", 4),
                                       ("test", slice(cut, None), SIDE_COLOUR[side], 6)):
            fig.add_trace(go.Scattergl(
                x=1.0 + p[sl], y=1.0 + r[sl], mode="markers", name=f"{part} span", meta=f"{part}_{side}",
                legendgroup=part, showlegend=j == 1, marker=dict(color=colour, size=size),
                customdata=np.asarray(times[sl]),
                hovertemplate=("%{customdata} UTC<br>predicted $%{x:,.0f}<br>realized $%{y:,.0f}"
                               f"<extra>{part}</extra>"),
            ), row=1, col=j)
        a, b = lines[side]
        xs = np.geomspace(1.0 + max(p.min(initial=0.0), 0.0), 1.0 + max(p.max(initial=1.0), 1.0), 50)
        fig.add_trace(go.Scatter(
            x=xs, y=np.exp(a + b * np.log(xs)), mode="lines", name="training fit", meta=f"fit_{side}",
            legendgroup="fit", showlegend=j == 1, line=dict(color="#f5f5f5", width=1.5, dash="dash"),
            hovertemplate=f"log1p(real) = {a:.2f} + {b:.2f}·log1p(pred)<extra></extra>",
        ), row=1, col=j)
        fig.update_xaxes(type="log", tickformat="$.1s", title=dict(text=f"1 + predicted ({name}), USD"), row=1, col=j)
        fig.update_yaxes(type="log", tickformat="$.1s", title=dict(text="1 + realized, USD"), row=1, col=j)
    fig.update_layout(**_layout(height, "Realized against predicted per candle (log-log)"))
    return fig


# ----------------------------------------------------------------------------- sensitivity
def sensitivity_figure(
    table: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("spearman", "log_r2", "cascade_recall"),
    reference: Mapping[str, object] | None = None,
    height: int | None = None,
) -> "go.Figure":
    """Test-span metrics as each model setting moves: rows are metrics, columns are settings.

    Parameters
    ----------
    table
        :func:`liqlab.evaluate.validation.sensitivity` output (``setting, value, side`` and the metrics).
    metrics
        Metric columns to show, one row each.
    reference
        ``{setting: value}`` of the base parameters, marked on the x-axis with a vertical line.
    height
        Figure height (default 230 px per metric).

    Returns
    -------
    plotly.graph_objects.Figure
        Line+marker traces named ``sens:<setting>:<metric>:<side>``; x values are the setting's
        values as text (a categorical axis, in the order tried).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    settings = list(dict.fromkeys(table["setting"]))
    fig = make_subplots(rows=len(metrics), cols=max(len(settings), 1), shared_yaxes="rows",
                        horizontal_spacing=0.03, vertical_spacing=0.08, column_titles=settings)
    for i, metric in enumerate(metrics, start=1):
        for j, setting in enumerate(settings, start=1):
            sub = table[table["setting"] == setting]
            for side in SIDES:
                s = sub[sub["side"] == side]
                fig.add_trace(go.Scatter(
                    x=[_label(v) for v in s["value"]], y=s[metric].to_numpy(float), mode="lines+markers",
                    name=f"{side}s", legendgroup=side, showlegend=(i == 1 and j == 1),
                    meta=f"sens:{setting}:{metric}:{side}", line=dict(color=SIDE_COLOUR[side], width=1.5),
                    marker=dict(size=6),
                    hovertemplate=f"{setting} = %{{x}}<br>{side}s {METRICS.get(metric, metric)}: %{{y:.3f}}<extra></extra>",
                ), row=i, col=j)
            labels = [_label(v) for v in sub[sub["side"] == SIDES[0]]["value"]]
            if reference and setting in reference and _label(reference[setting]) in labels:
                # a category axis places shapes by category position, not by label
                fig.add_vline(x=labels.index(_label(reference[setting])), line=dict(color="#888", width=1, dash="dot"),
                              row=i, col=j)
            fig.update_xaxes(type="category", tickangle=-30, tickfont=dict(size=10), row=i, col=j)
        fig.update_yaxes(title=dict(text=METRICS.get(metric, metric), font=dict(size=11)), row=i, col=1)
    fig.update_layout(**_layout(height or 120 + 230 * len(metrics), "How each setting moves the test-span metrics"))
    return fig


def _label(v) -> str:
    """Setting values as short axis text (``0.03``, ``None`` -> ``off``)."""
    if v is None or v == "None" or (isinstance(v, float) and not np.isfinite(v)):
        return "off"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        a = abs(float(v))
        for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if a >= div and float(v) % div == 0:
                return f"{float(v) / div:g}{suf}"
        return f"{float(v):g}"
    return str(v)
