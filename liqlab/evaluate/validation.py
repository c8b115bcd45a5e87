"""Is the model any good? Predicted against realized liquidations, next to baselines.

Per candle and per side we compare predicted with realized liquidation notional:

* **Spearman** rank correlation (scale-free: realized figures may cover other venues than OI);
* **out-of-sample R²** of ``log1p(realized)`` on ``log1p(predicted)``: an OLS line is fitted on a
  training span and scored on a later span (``1 - SSE/SST`` around the test mean; negative means
  worse than predicting the test mean);
* **cascade recall**: of the top 2 % realized candles, the share inside the top 5 % predicted.

Baselines, scored the same way:

* ``move_x_oi``: long ``(open - low) / open * OI``, short ``(high - open) / open * OI``;
* ``ladder``: a leverage ladder from the previous close with no history: the share of OI whose
  tier level the candle reaches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from liqlab.core.market import Market, MarketDataError

SIDES = ("long", "short")


class ValidationError(ValueError):
    """Inputs that cannot be scored (no realized liquidations, empty spans, ...)."""


# -- metrics ----------------------------------------------------------------------------------
def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation with average ranks for ties; NaN if either input is constant."""
    x = pd.Series(np.asarray(x, float)).rank().to_numpy()
    y = pd.Series(np.asarray(y, float)).rank().to_numpy()
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def fit_log_line(pred: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """OLS of ``log1p(real)`` on ``log1p(pred)``: returns ``(intercept, slope)``.

    A constant predictor gets slope 0 (the training mean).
    """
    x = np.log1p(np.asarray(pred, float))
    y = np.log1p(np.asarray(real, float))
    vx = x.var()
    if x.size == 0:
        raise ValidationError("no candles to calibrate on")
    if vx <= 0:
        return float(y.mean()), 0.0
    slope = float(((x - x.mean()) * (y - y.mean())).mean() / vx)
    return float(y.mean() - slope * x.mean()), slope


def log_r2(pred: np.ndarray, real: np.ndarray, line: tuple[float, float]) -> float:
    """R² of ``log1p(real)`` predicted by ``line`` applied to ``log1p(pred)``."""
    x = np.log1p(np.asarray(pred, float))
    y = np.log1p(np.asarray(real, float))
    sst = float(((y - y.mean()) ** 2).sum())
    if sst <= 0:
        return float("nan")
    sse = float(((y - (line[0] + line[1] * x)) ** 2).sum())
    return 1.0 - sse / sst


def cascade_recall(pred: np.ndarray, real: np.ndarray, top_real: float = 0.02, top_pred: float = 0.05) -> float:
    """Share of the top ``top_real`` realized candles that fall in the top ``top_pred`` predicted.

    Ties at the cut-offs are broken by position (earlier first), so a constant predictor gets
    no credit for ties.
    """
    real = np.asarray(real, float)
    pred = np.asarray(pred, float)
    n = real.size
    if n == 0:
        return float("nan")
    k_real = max(1, int(round(top_real * n)))
    k_pred = max(1, int(round(top_pred * n)))
    top_r = np.argsort(-real, kind="stable")[:k_real]
    top_p = set(np.argsort(-pred, kind="stable")[:k_pred].tolist())
    if pred.max(initial=0) <= 0:
        return 0.0
    return float(np.mean([i in top_p for i in top_r]))


# -- baselines --------------------------------------------------------------------------------
def move_x_oi(market: Market) -> pd.DataFrame:
    """Baseline: the candle's adverse move times open interest, per side."""
    o, h, l = (market.column(k) for k in ("open", "high", "low"))
    oi = market.column("open_interest")
    return pd.DataFrame(
        {"long_usd": (o - l) / o * oi, "short_usd": (h - o) / o * oi}, index=market.index
    )


def ladder(market: Market, mix=None, position_notional: float = 10_000.0) -> pd.DataFrame:
    """Baseline: a leverage ladder around the previous close with no history.

    Each candle, open interest is spread over the mix's tiers at the previous close; the
    predicted liquidation is the OI share of tiers whose level the candle reaches.
    """
    from liqlab.core.brackets import default_brackets, level_factors
    from liqlab.core.leverage import LeverageMix

    mix = LeverageMix.resolve(mix)
    table = default_brackets(market.exchange, market.symbol)
    _, _, max_lev = table.lookup(np.array([position_notional]))
    lev = np.minimum(np.asarray(mix.leverages, float), max_lev[0])
    kw = dict(brackets=table, notional=position_notional, contract=market.contract)
    f_long = level_factors(lev, "long", **kw)
    f_short = level_factors(lev, "short", **kw)
    c = market.column("close")
    ref = np.concatenate([[market.column("open")[0]], c[:-1]])
    oi_prev = np.concatenate([[market.column("open_interest")[0]], market.column("open_interest")[:-1]])
    hit_long = market.column("low")[:, None] <= ref[:, None] * f_long[None, :]
    hit_short = market.column("high")[:, None] >= ref[:, None] * f_short[None, :]
    return pd.DataFrame(
        {"long_usd": oi_prev * (hit_long @ mix.weights("long")),
         "short_usd": oi_prev * (hit_short @ mix.weights("short"))},
        index=market.index,
    )


BASELINES: dict[str, Callable[[Market], pd.DataFrame]] = {"move_x_oi": move_x_oi, "ladder": ladder}


# -- scoring ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    """Metrics of one predictor on one side, scored on the test span."""

    model: str
    side: str
    spearman: float
    log_r2: float
    cascade_recall: float
    n_train: int
    n_test: int


_FRACTION = re.compile(r"\s*[0-9]*\.[0-9]+\s*")


def parse_split(split) -> float | pd.Timestamp | None:
    """The start of the test span: a fraction of the window in (0, 1), a UTC time, or None.

    Accepts a float, a time, or text: ``"0.6"`` (a fraction) or ``"2026-01-01"`` (a time; naive
    means UTC).

    Raises
    ------
    ValidationError
        A fraction outside (0, 1), or text that is neither a fraction nor a time.
    """
    if split is None:
        return None
    if isinstance(split, str) and _FRACTION.fullmatch(split):
        split = float(split)
    if isinstance(split, float):
        if not 0 < split < 1:
            raise ValidationError(f"split {split!r}: a fraction of the window must lie strictly between 0 and 1")
        return split
    try:
        ts = pd.Timestamp(split)
    except (ValueError, TypeError, OverflowError):
        ts = pd.NaT
    if ts is pd.NaT:
        shown = str(split)[:40]
        raise ValidationError(
            f"split {shown!r} is neither a time (e.g. 2026-01-01 or 2026-01-01T12:00Z) nor a fraction "
            "of the window between 0 and 1 (e.g. 0.6)"
        )
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def split_position(index: pd.DatetimeIndex, split) -> int:
    """Position in ``index`` where the test span starts.

    ``split`` is None (half way), a fraction in (0, 1), or a time (the first index entry at or
    after it), as :func:`parse_split` reads it.
    """
    split = parse_split(split)
    if split is None:
        return len(index) // 2
    if isinstance(split, float):
        return int(len(index) * split)
    return int(index.searchsorted(split, side="left"))


def _require_realized(market: Market) -> None:
    """Refuse a market without realized liquidations, or with nothing but zeros."""
    if market.liquidations is None:
        raise ValidationError(
            f"{market.label} has no realized liquidations to score against; load them with the market"
        )
    if not (market.liquidations.to_numpy() > 0).any():
        raise ValidationError(
            f"{market.label}: realized liquidations are zero on every candle from {market.start} to "
            f"{market.end}; the realized data does not overlap the market's time span or holds only "
            "zeros: give realized liquidations for the same period"
        )


def score_predictions(
    predicted: pd.DataFrame,
    realized: pd.DataFrame,
    *,
    split=None,
    name: str = "model",
    warmup: int = 0,
) -> list[Score]:
    """Score one predictor per side: calibrate before ``split``, score from ``split`` on.

    Parameters
    ----------
    predicted, realized
        Frames with ``long_usd, short_usd`` on the same index.
    split
        Timestamp, fraction of the window, or None (the middle).
    name
        Label of the predictor.
    warmup
        Candles at the start left out of calibration (the model has no positions yet).
    """
    if not predicted.index.equals(realized.index):
        raise ValidationError("predicted and realized liquidations must share one time index")
    cut = split_position(realized.index, split)
    lo = min(warmup, cut)
    if cut - lo < 10 or len(realized) - cut < 10:
        raise ValidationError(
            f"the split leaves {cut - lo} calibration and {len(realized) - cut} test candles; "
            "need at least 10 of each"
        )
    out = []
    for side in SIDES:
        col = f"{side}_usd"
        p = predicted[col].to_numpy(float)
        r = realized[col].to_numpy(float)
        if np.all(r[cut:] == r[cut]):
            raise ValidationError(
                f"realized {side} liquidations are the same ({r[cut]:g}) on every test candle from "
                f"{realized.index[cut]}: nothing to score against; give realized data covering the test span "
                "or move the split"
            )
        line = fit_log_line(p[lo:cut], r[lo:cut])
        out.append(Score(
            model=name, side=side, spearman=spearman(p[cut:], r[cut:]),
            log_r2=log_r2(p[cut:], r[cut:], line), cascade_recall=cascade_recall(p[cut:], r[cut:]),
            n_train=cut - lo, n_test=len(r) - cut,
        ))
    return out


def scorecard(
    market: Market,
    model_predictions: Mapping[str, pd.DataFrame] | None = None,
    *,
    split=None,
    params=None,
    baselines: Iterable[str] = ("move_x_oi", "ladder"),
    warmup: int = 0,
) -> pd.DataFrame:
    """The GUIDE metrics for the model and the baselines, one row per (model, side).

    ``model_predictions`` maps names to predicted frames; None runs the model with ``params``.
    """
    _require_realized(market)
    if model_predictions is None:
        from liqlab.core.engine import predict_liquidations

        model_predictions = {"liqlab": predict_liquidations(market, params)}
    preds = dict(model_predictions)
    for b in baselines:
        if b not in BASELINES:
            raise ValidationError(f"unknown baseline {b!r}; choose from {sorted(BASELINES)}")
        preds[b] = BASELINES[b](market)
    rows = []
    for name, pred in preds.items():
        rows += score_predictions(pred, market.liquidations, split=split, name=name, warmup=warmup)
    return pd.DataFrame([s.__dict__ for s in rows])


def format_scorecard(table: pd.DataFrame) -> str:
    """Plain-text table: one row per model, metrics per side."""
    lines = [f"{'model':<14}{'side':<7}{'spearman':>10}{'log R2':>10}{'recall':>9}{'train':>7}{'test':>7}"]
    for r in table.itertuples():
        lines.append(
            f"{r.model:<14}{r.side:<7}{r.spearman:>10.3f}{r.log_r2:>10.3f}{r.cascade_recall:>9.3f}"
            f"{r.n_train:>7d}{r.n_test:>7d}"
        )
    return "\n".join(lines)


# -- fitting and sensitivity --------------------------------------------------------------------
def _objective(predicted: pd.DataFrame, realized: pd.DataFrame, lo: int, hi: int) -> float:
    """Mean over sides of in-sample log-R², Spearman and cascade recall on candles ``lo:hi``.

    The fit maximises what the scorecard reports, the three metrics weighted alike. log-R² alone
    rewards the level and ignores the ordering of the many small candles (Spearman); both hardly
    separate the leading settings, while recall says whether the largest candles are caught.
    """
    vals = []
    for side in SIDES:
        p = predicted[f"{side}_usd"].to_numpy(float)[lo:hi]
        r = realized[f"{side}_usd"].to_numpy(float)[lo:hi]
        vals.append((log_r2(p, r, fit_log_line(p, r)) + spearman(p, r) + cascade_recall(p, r)) / 3.0)
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("-inf")


DEFAULT_GRID: dict[str, Sequence] = {
    "mix": ("balanced", "conservative", "retail", "degen", "uniform", "long-heavy"),
    "turnover": (0.0, 0.03, 0.1, 0.3),
    "entry": ("range", "typical"),
}


def fit_model(
    market: Market,
    *,
    split=None,
    params=None,
    grid: Mapping[str, Sequence] | None = None,
    warmup: int = 0,
):
    """Choose model settings on the training span only (before ``split``).

    Every combination of ``grid`` (default: leverage preset x turnover x entry mode) is run;
    the one with the best in-sample mean of log-R², Spearman and cascade recall over both sides
    on the training candles wins (ties: the earlier in the grid). The
    model is causal, so running it over the whole window and reading only training candles uses
    no test data.

    Returns
    -------
    best : ModelParams
    table : pandas.DataFrame
        One row per candidate with its training objective, best first.
    """
    from itertools import product

    from liqlab.core.engine import ModelParams, predict_liquidations

    _require_realized(market)
    base = ModelParams() if params is None else params
    grid = dict(DEFAULT_GRID if grid is None else grid)
    cut = split_position(market.index, split)
    lo = min(warmup, cut)
    if cut - lo < 10:
        raise ValidationError(f"the split leaves only {cut - lo} training candles; need at least 10")
    rows = []
    train = market.slice(None, market.index[cut - 1])
    for values in product(*grid.values()):
        changes = dict(zip(grid.keys(), values))
        p = base.replace(**changes)
        pred = predict_liquidations(train, p)
        rows.append({**{k: v for k, v in changes.items()}, "objective": _objective(pred, train.liquidations, lo, cut),
                     "_params": p})
    table = pd.DataFrame(rows).sort_values("objective", ascending=False, kind="stable").reset_index(drop=True)
    best = table["_params"].iloc[0]
    return best, table.drop(columns="_params")


def sensitivity(
    market: Market,
    settings: Mapping[str, Sequence],
    *,
    split=None,
    params=None,
    warmup: int = 0,
) -> pd.DataFrame:
    """Test-span metrics as one setting at a time moves away from ``params``.

    Returns one row per (setting, value, side) with spearman, log_r2 and cascade_recall.
    """
    from liqlab.core.engine import ModelParams, predict_liquidations

    base = ModelParams() if params is None else params
    rows = []
    for name, values in settings.items():
        for value in values:
            pred = predict_liquidations(market, base.replace(**{name: value}))
            for s in score_predictions(pred, market.liquidations, split=split, warmup=warmup):
                rows.append({"setting": name, "value": value if isinstance(value, (int, float, str)) else str(value),
                             "side": s.side, "spearman": s.spearman, "log_r2": s.log_r2,
                             "cascade_recall": s.cascade_recall})
    return pd.DataFrame(rows)
