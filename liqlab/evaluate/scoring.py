"""Helpers for the scorecard notebook: which data to score, calibrated predictions, misses.

The metrics themselves live in :mod:`liqlab.evaluate.validation`; this module only prepares what the
scorecard notebook shows around them:

* :func:`load_scoring_market` picks the data: the user's own files in the generic format, else the
  real hourly BTCUSDT files in a folder the caller names (``real_dir`` or ``$LIQLAB_REAL_DATA``), else the bundled
  synthetic sample aggregated to hours, and says which one it used;
* :func:`calibrate` puts a predictor on the realized scale with the log-line fitted on the
  training span only (the line the out-of-sample R² scores), so both can share an axis;
* :func:`largest_misses` and :func:`top_candles` list the test candles behind the metrics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from liqlab.core.market import Market
from liqlab.evaluate.validation import SIDES, ValidationError, split_position, fit_log_line

REAL_MARKET = "btcusdt_1h_market.csv"
REAL_LIQUIDATIONS = "btcusdt_1h_liquidations.csv"
#: First hour of the test span on the real hourly data.
REAL_SPLIT = "2026-01-01"


@dataclass(frozen=True)
class ScoringData:
    """A market to score and where it came from.

    Attributes
    ----------
    market
        The market with realized liquidations.
    source
        ``"files"`` (the user's), ``"real"`` (the real hourly BTCUSDT files) or ``"sample"``.
    split
        First time (or fraction) of the test span: calibrate before, score from it on.
    note
        One sentence saying what the data is and how to read the scores.
    """

    market: Market
    source: str
    split: object
    note: str


def real_data_dir() -> Path | None:
    """The real-data folder named by ``$LIQLAB_REAL_DATA``, or None when it is not set.

    The package ships no third-party data; a notebook or a test points this at a folder of
    real files (``btcusdt_1h_market.csv``, ``btcusdt_1h_liquidations.csv``) it knows about.
    """
    env = os.environ.get("LIQLAB_REAL_DATA")
    return Path(env) if env else None


def load_scoring_market(
    market_file: str | os.PathLike | None = None,
    liquidations_file: str | os.PathLike | None = None,
    *,
    split=None,
    symbol: str | None = None,
    exchange: str = "file",
    real_dir: str | os.PathLike | None = None,
) -> ScoringData:
    """The market the scorecard scores, with a sentence saying which data it is.

    Parameters
    ----------
    market_file, liquidations_file
        The user's files in the generic format (:mod:`liqlab.sources.csv_files`); realized
        liquidations either in ``market_file`` (``long_usd, short_usd`` columns) or in
        ``liquidations_file``. None: use the real data if present, else the bundled sample.
    split
        Test-span start for the user's files (default: the last third of the window).
    symbol, exchange
        Metadata for the user's files.
    real_dir
        Folder of the real hourly files (default :func:`real_data_dir`).

    Returns
    -------
    ScoringData

    Raises
    ------
    liqlab.core.market.MarketDataError
        When the user's files cannot be read (the message names the file and line).
    liqlab.evaluate.validation.ValidationError
        When the user's files hold no realized liquidations.
    """
    from liqlab.sources.csv_files import load_market_file

    if market_file is not None:
        market = load_market_file(market_file, liquidations=liquidations_file, gaps="keep",
                                  symbol=symbol, exchange=exchange)
        if market.liquidations is None:
            raise ValidationError(
                f"{market_file} has no realized liquidations: add long_usd, short_usd columns or "
                "give a liquidations file"
            )
        cut = 2 / 3 if split is None else split
        return ScoringData(market, "files", cut,
                           f"Your files: {market.label}, {len(market):,} candles, {len(market.gaps)} gap(s).")
    folder = Path(real_dir) if real_dir is not None else real_data_dir()
    if folder is not None and (folder / REAL_MARKET).is_file() and (folder / REAL_LIQUIDATIONS).is_file():
        market = load_market_file(folder / REAL_MARKET, liquidations=folder / REAL_LIQUIDATIONS, gaps="keep",
                                  symbol="BTCUSDT", exchange="binanceusdm")
        return ScoringData(
            market, "real", REAL_SPLIT if split is None else split,
            f"Real hourly BTCUSDT ({len(market):,} hours, {len(market.gaps)} gap(s)): open interest is "
            "Binance only, realized liquidations are summed over Binance, Bybit and OKX, so judge shape "
            "(ranks, log fit), not dollar level.",
        )
    from liqlab.core.resample import resample_market
    from liqlab.sim.datasets import load_sample

    market = resample_market(load_sample("BTCUSDT"), "1h")
    return ScoringData(
        market, "sample", 2 / 3 if split is None else split,
        f"{'No real data folder was given' if folder is None else f'The real data folder ({folder}) is not here'}, so this scores the bundled SYNTHETIC sample "
        f"({market.label}, {len(market):,} hours). Its liquidations come from simulated positions: the "
        "numbers show how the scorecard works, not how good the model is on real markets. Set "
        "MARKET_FILE at the top to score your own files.",
    )


def calibrate(predicted: pd.DataFrame, realized: pd.DataFrame, *, split=None, warmup: int = 0) -> pd.DataFrame:
    """A predictor on the realized scale: ``expm1(a + b * log1p(predicted))`` per side.

    ``(a, b)`` is the OLS line of ``log1p(realized)`` on ``log1p(predicted)`` fitted on the training
    span only (candles ``warmup`` up to ``split``), exactly the line the out-of-sample log-R² scores.

    Returns
    -------
    DataFrame
        ``long_usd, short_usd`` on the predicted index; ``.attrs["lines"]`` holds ``{side: (a, b)}``.
    """
    if not predicted.index.equals(realized.index):
        raise ValidationError("predicted and realized liquidations must share one time index")
    cut = split_position(realized.index, split)
    lo = min(warmup, cut)
    out = {}
    lines = {}
    for side in SIDES:
        col = f"{side}_usd"
        p = predicted[col].to_numpy(float)
        a, b = fit_log_line(p[lo:cut], realized[col].to_numpy(float)[lo:cut])
        lines[side] = (a, b)
        out[col] = np.expm1(a + b * np.log1p(p))
    frame = pd.DataFrame(out, index=predicted.index)
    frame.attrs["lines"] = lines
    return frame


def _test_part(frame: pd.DataFrame, split) -> pd.DataFrame:
    return frame.iloc[split_position(frame.index, split):]


def adverse_move(market: Market) -> pd.DataFrame:
    """Per candle, the move against each side in percent of the open: ``long`` (open-low), ``short`` (high-open)."""
    o, h, lo = (market.column(k) for k in ("open", "high", "low"))
    return pd.DataFrame({"long": 100 * (o - lo) / o, "short": 100 * (h - o) / o}, index=market.index)


def largest_misses(
    predicted: pd.DataFrame,
    realized: pd.DataFrame,
    market: Market,
    *,
    split=None,
    n: int = 10,
    kind: str = "both",
    warmup: int = 0,
) -> pd.DataFrame:
    """The test candles where the calibrated prediction is furthest from the realized, in log terms.

    Parameters
    ----------
    predicted, realized
        ``long_usd, short_usd`` per candle on the market's index.
    market
        For the adverse move of each candle.
    split
        Test-span start (as in :func:`liqlab.evaluate.validation.score_predictions`).
    n
        Rows returned (both sides together).
    kind
        ``"under"`` (the model said too little: realized above the prediction), ``"over"``
        (too much) or ``"both"`` (by absolute log error).
    warmup
        Candles left out of calibration.

    Returns
    -------
    DataFrame
        One row per miss, largest first: ``time, side, realized_usd, predicted_usd`` (calibrated),
        ``log_error`` (``log1p(realized) - log1p(predicted)``: positive = the model said too little),
        ``adverse_move_pct`` and ``realized_rank`` (1 = the largest realized candle of the test span).
    """
    if kind not in ("both", "under", "over"):
        raise ValidationError(f"kind must be 'both', 'under' or 'over', not {kind!r}")
    cal = calibrate(predicted, realized, split=split, warmup=warmup)
    cal_t, real_t = _test_part(cal, split), _test_part(realized, split)
    move = _test_part(adverse_move(market), split)
    rows = []
    for side in SIDES:
        col = f"{side}_usd"
        r = real_t[col].to_numpy(float)
        p = cal_t[col].to_numpy(float)
        err = np.log1p(r) - np.log1p(p)
        rank = pd.Series(-r).rank(method="first").to_numpy().astype(int)
        for i in range(r.size):
            rows.append({"time": real_t.index[i], "side": side, "realized_usd": r[i], "predicted_usd": p[i],
                         "log_error": err[i], "adverse_move_pct": move[side].iloc[i], "realized_rank": rank[i]})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    err = table["log_error"].to_numpy()
    key = {"both": -np.abs(err), "under": -err, "over": err}[kind]
    order = np.argsort(key, kind="stable")
    return table.iloc[order[: int(n)]].reset_index(drop=True)


def top_candles(
    predictions: Mapping[str, pd.DataFrame],
    realized: pd.DataFrame,
    market: Market,
    side: str,
    *,
    split=None,
    top_real: float = 0.02,
    top_pred: float = 0.05,
) -> pd.DataFrame:
    """The test span's top realized candles of ``side`` and whether each predictor caught them.

    This is the population cascade recall is computed on (same cut-offs and tie rule as
    :func:`liqlab.evaluate.validation.cascade_recall`), so the table shows which candles decide it.

    Returns
    -------
    DataFrame
        One row per top realized candle: ``time, realized_usd, adverse_move_pct`` and, per
        predictor, ``<name>_rank`` (its rank among test candles, 1 = largest prediction) and
        ``<name>_caught`` (inside its top ``top_pred``).
    """
    if side not in SIDES:
        raise ValidationError(f"side must be 'long' or 'short', not {side!r}")
    col = f"{side}_usd"
    real_t = _test_part(realized, split)[col].to_numpy(float)
    n = real_t.size
    if n == 0:
        return pd.DataFrame()
    k_real = max(1, int(round(top_real * n)))
    k_pred = max(1, int(round(top_pred * n)))
    top = np.argsort(-real_t, kind="stable")[:k_real]
    idx = _test_part(realized, split).index
    move = _test_part(adverse_move(market), split)[side].to_numpy()
    table = pd.DataFrame({"time": idx[top], "realized_usd": real_t[top], "adverse_move_pct": move[top]})
    for name, pred in predictions.items():
        p = _test_part(pred, split)[col].to_numpy(float)
        order = np.argsort(-p, kind="stable")
        rank = np.empty(n, dtype=int)
        rank[order] = np.arange(1, n + 1)
        table[f"{name}_rank"] = rank[top]
        table[f"{name}_caught"] = (rank[top] <= k_pred) & (p.max(initial=0) > 0)
    return table


def compare(table: pd.DataFrame, model: str, baseline: str = "move_x_oi", *, tie: float = 0.005) -> pd.DataFrame:
    """Model against one baseline per metric and side: the difference and a one-word verdict.

    Parameters
    ----------
    table
        :func:`liqlab.evaluate.validation.scorecard` output holding both names.
    model, baseline
        Rows to compare.
    tie
        Differences within this are called ``"tie"``.

    Returns
    -------
    DataFrame
        Index ``(metric, side)``; columns ``model, baseline, difference, verdict`` (``"wins"``,
        ``"tie"`` or ``"loses"``, from the model's point of view).
    """
    rows = []
    for metric in ("spearman", "log_r2", "cascade_recall"):
        for side in SIDES:
            pick = table[(table["side"] == side)].set_index("model")[metric]
            if model not in pick.index or baseline not in pick.index:
                raise ValidationError(f"the table has no rows for {model!r} and {baseline!r}")
            a, b = float(pick[model]), float(pick[baseline])
            d = a - b
            verdict = "tie" if abs(d) <= tie else ("wins" if d > 0 else "loses")
            rows.append({"metric": metric, "side": side, model: a, baseline: b, "difference": d, "verdict": verdict})
    return pd.DataFrame(rows).set_index(["metric", "side"])
