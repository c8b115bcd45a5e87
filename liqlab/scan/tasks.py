"""The work of one scan task: load one symbol by name, run the engine for a batch of settings,
and summarise each run as one row of plain numbers.

Tasks run in worker processes (a process pool or Dask workers), so everything here is a
module-level function of picklable arguments. A task never raises for a bad symbol or bad
data: the failure becomes the ``error`` of that symbol's rows, and the other symbols go on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from liqlab.core.engine import LiquidationMap, ModelParams, compute_heatmap

#: Distances (percent of the price) at which notional is summed per side.
BANDS_PCT = (1, 2, 5)
#: Columns of a scan table, in order (``param_*`` columns of the grid follow ``params_id``).
SCAN_COLUMNS: tuple[str, ...] = (
    "symbol", "params_id", "settings", "error", "time", "candles", "last_price", "open_interest",
    "long_cluster_price", "long_cluster_pct", "long_cluster_usd", "long_cluster_oi_share",
    "short_cluster_price", "short_cluster_pct", "short_cluster_usd", "short_cluster_oi_share",
    "nearest_cluster_pct",
    *[f"{side}_within_{b}pct_usd" for b in BANDS_PCT for side in ("long", "short")],
    "predicted_long_usd", "predicted_short_usd", "realized_long_usd", "realized_short_usd",
    "spearman_long", "spearman_short", "log_r2_long", "log_r2_short", "recall_long", "recall_short",
)
NAN = float("nan")


@dataclass(frozen=True)
class ScanTask:
    """One unit of scan work: a symbol and a batch of settings (names and numbers only).

    Attributes
    ----------
    symbol
        Name the source loads.
    timeframe, window
        Candle length and span (``pandas.Timedelta``) to load.
    source
        An object with ``load(symbol, timeframe, window) -> Market``.
    params
        ``(params_id, settings JSON, ModelParams)`` per setting of the batch.
    threshold
        Cluster threshold: share of the side's largest bin (``LiquidationMap.nearest_cluster``).
    split
        Start of the scoring span (fraction, time or None for the middle).
    """

    symbol: str
    timeframe: str
    window: pd.Timedelta
    source: Any
    params: tuple[tuple[int, str, ModelParams], ...]
    threshold: float = 0.5
    split: Any = None


def one_sentence(exc: BaseException) -> str:
    """``"TypeName: first line of the message"`` for an error cell."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_rows(task: ScanTask, message: str) -> list[dict]:
    """One row per setting of ``task`` carrying ``message`` and no figures."""
    return [{"symbol": task.symbol, "params_id": pid, "settings": settings, "error": message}
            for pid, settings, _ in task.params]


def band_sums(snap: LiquidationMap, bands: Sequence[float] = BANDS_PCT) -> dict[str, float]:
    """Long notional within ``b`` % below the price and short notional within ``b`` % above it."""
    p = snap.prices
    out = {}
    for b in bands:
        lo, hi = snap.price * (1 - b / 100.0), snap.price * (1 + b / 100.0)
        out[f"long_within_{b}pct_usd"] = float(snap.long_usd[(p <= snap.price) & (p >= lo)].sum())
        out[f"short_within_{b}pct_usd"] = float(snap.short_usd[(p >= snap.price) & (p <= hi)].sum())
    return out


def cluster_fields(snap: LiquidationMap, side: str, threshold: float, oi: float) -> dict[str, float]:
    """Nearest large cluster of one side: price, signed distance %, notional, share of OI."""
    found = snap.nearest_cluster(side, threshold)
    if found is None:
        return {f"{side}_cluster_price": NAN, f"{side}_cluster_pct": NAN, f"{side}_cluster_usd": 0.0,
                f"{side}_cluster_oi_share": 0.0}
    price, usd, pct = found
    return {f"{side}_cluster_price": price, f"{side}_cluster_pct": pct, f"{side}_cluster_usd": usd,
            f"{side}_cluster_oi_share": usd / oi if oi > 0 else NAN}


def score_fields(market, predicted: pd.DataFrame, split) -> dict[str, float]:
    """Scorecard metrics of the model per side (NaN where nothing realized is stored or too few candles)."""
    out = {k: NAN for k in ("realized_long_usd", "realized_short_usd", "spearman_long", "spearman_short",
                            "log_r2_long", "log_r2_short", "recall_long", "recall_short")}
    if market.liquidations is None:
        return out
    from liqlab.evaluate.validation import ValidationError, scorecard

    out["realized_long_usd"] = float(market.liquidations["long_usd"].sum())
    out["realized_short_usd"] = float(market.liquidations["short_usd"].sum())
    try:
        table = scorecard(market, {"liqlab": predicted}, split=split, baselines=())
    except ValidationError:
        return out
    for r in table.itertuples():
        out[f"spearman_{r.side}"] = float(r.spearman)
        out[f"log_r2_{r.side}"] = float(r.log_r2)
        out[f"recall_{r.side}"] = float(r.cascade_recall)
    return out


def summarise(market, params: ModelParams, *, threshold: float = 0.5, split=None) -> dict[str, Any]:
    """The scan figures of one market under one setting (one row without its labels)."""
    result = compute_heatmap(market, params.replace(max_columns=0))
    snap = result.snapshot(-1)
    oi = float(market.column("open_interest")[-1])
    longs = cluster_fields(snap, "long", threshold, oi)
    shorts = cluster_fields(snap, "short", threshold, oi)
    near = [abs(v) for v in (longs["long_cluster_pct"], shorts["short_cluster_pct"]) if math.isfinite(v)]
    row: dict[str, Any] = {
        "time": market.index[-1], "candles": len(market), "last_price": float(snap.price), "open_interest": oi,
        **longs, **shorts,
        "nearest_cluster_pct": min(near) if near else NAN,
        **band_sums(snap),
        "predicted_long_usd": float(result.predicted["long_usd"].sum()),
        "predicted_short_usd": float(result.predicted["short_usd"].sum()),
        **score_fields(market, result.predicted, split),
    }
    return row


def run_scan_task(task: ScanTask) -> list[dict]:
    """Load the task's symbol and summarise it under each setting; failures become error rows."""
    try:
        market = task.source.load(task.symbol, task.timeframe, task.window)
    except Exception as exc:  # noqa: BLE001 - reported in the symbol's rows
        return error_rows(task, one_sentence(exc))
    rows = []
    for pid, settings, params in task.params:
        label = {"symbol": task.symbol, "params_id": pid, "settings": settings, "error": ""}
        try:
            rows.append({**label, **summarise(market, params, threshold=task.threshold, split=task.split)})
        except Exception as exc:  # noqa: BLE001
            rows.append({**label, "error": one_sentence(exc)})
    return rows


def run_fit_task(task: ScanTask, grid: Mapping[str, Sequence] | None, warmup: int = 0) -> list[dict]:
    """``fit_model`` on one symbol's training span: one row per candidate with its objective."""
    from liqlab.evaluate.validation import fit_model

    base = task.params[0][2]
    try:
        market = task.source.load(task.symbol, task.timeframe, task.window)
        _, table = fit_model(market, split=task.split, params=base, grid=grid, warmup=warmup)
    except Exception as exc:  # noqa: BLE001
        return [{"symbol": task.symbol, "error": one_sentence(exc)}]
    return [{"symbol": task.symbol, "error": "", **rec, "objective": float(rec["objective"])}
            for rec in table.to_dict(orient="records")]
