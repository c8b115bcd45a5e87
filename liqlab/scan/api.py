"""Market scans: the engine over many symbols and settings, in parallel, with one table out.

>>> from liqlab.scan import scan
>>> table = scan(["BTCUSDT", "SYN001"], "7d", executor="serial")   # doctest: +SKIP

One task per symbol (all settings of the grid, or a batch of them, share the symbol's load); each
task loads its market by name in its worker, so no market data travels from the client. The same
tasks run on any executor (:mod:`liqlab.scan.executors`) and give the same table bit for bit: rows
are sorted by ``(symbol, params_id)`` and every number comes from the same function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from liqlab.core.engine import ModelParams
from liqlab.core.market import MarketDataError
from liqlab.core.settings import SettingsError, expand_grid, params_from_settings, settings_of
from liqlab.scan.executors import Executor, make_executor
from liqlab.scan.sources import SampleSource, StoreSource, parse_window, resolve_source
from liqlab.scan.tasks import SCAN_COLUMNS, ScanTask, error_rows, one_sentence, run_fit_task, run_scan_task

ParamsSpec = ModelParams | Mapping[str, Sequence] | Sequence[ModelParams | Mapping[str, Any]] | None


class ScanError(ValueError):
    """A scan that cannot start (no symbols, a bad window, grid or executor)."""


def _json(settings: Mapping[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def param_sets(params: ParamsSpec) -> list[tuple[int, dict[str, Any], ModelParams]]:
    """``(params_id, settings, ModelParams)`` for each setting a scan runs.

    ``params`` is None (the default model), one :class:`ModelParams`, a grid mapping of lists
    (every combination), or a list of :class:`ModelParams` / settings mappings.
    """
    if params is None:
        return [(0, {}, ModelParams())]
    if isinstance(params, ModelParams):
        return [(0, settings_of(params), params)]
    if isinstance(params, Mapping):
        entries: list = expand_grid(params)
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        entries = list(params)
        if not entries:
            raise ScanError("params is an empty list; give at least one setting")
    else:
        raise ScanError(f"params must be None, ModelParams, a grid mapping or a list, not {type(params).__name__}")
    out = []
    for i, e in enumerate(entries):
        if isinstance(e, ModelParams):
            out.append((i, settings_of(e), e))
        else:
            try:
                out.append((i, dict(e), params_from_settings(e)))
            except SettingsError as exc:
                raise ScanError(f"setting {i}: {exc}") from None
    return out


def _symbols(symbols: Sequence[str]) -> list[str]:
    if isinstance(symbols, str):
        symbols = [s for s in symbols.split(",")]
    out: list[str] = []
    for s in symbols:
        if not isinstance(s, str) or not s.strip():
            raise ScanError(f"symbols must be non-empty names, got {s!r}")
        if s.strip() not in out:
            out.append(s.strip())
    if not out:
        raise ScanError("no symbols to scan")
    return out


def universe(source: Any = "sample", top: int | None = None, timeframe: str = "5m") -> list[str]:
    """The symbols a source offers: the sample's three plus synthetic ones up to ``top``, or the
    store's symbols of an exchange ranked by stored candles (``top`` first)."""
    from liqlab.sim.datasets import sample_symbols
    from liqlab.sim.universe import synthetic_symbols

    if top is not None and (not isinstance(top, int) or top < 1):
        raise ScanError(f"top must be a positive whole number, got {top!r}")
    src = resolve_source(source)
    if isinstance(src, SampleSource):
        names = sample_symbols()
        if top is None:
            return names
        return (names + synthetic_symbols(max(0, top - len(names))))[:top]
    if isinstance(src, StoreSource):
        names = src.symbols(timeframe)
        if not names:
            raise ScanError(f"the store holds no {timeframe} candles with open interest for {src.exchange}; "
                            f"fetch some first with `liqlab fetch {src.exchange} SYMBOL`")
        return names[:top] if top else names
    raise ScanError("this source cannot list its symbols; pass them explicitly")


def _progress_fn(progress, total: int, what: str):
    if progress is None or progress is False:
        return None, None
    if callable(progress):
        return progress, None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: a plain counter on stderr
        import sys

        def plain(done: int, _total: int) -> None:
            print(f"\r{what}: {done}/{_total} tasks", end="\n" if done == _total else "", file=sys.stderr, flush=True)

        return plain, None
    bar = tqdm(total=total, desc=what, unit="task")

    def update(done: int, _total: int) -> None:
        bar.n = done
        bar.refresh()

    return update, bar


def _run(fn: Callable, tasks: list[ScanTask], executor, workers, scheduler, progress, what: str) -> list:
    try:
        ex = make_executor(executor, workers=workers, scheduler=scheduler)
    except ValueError as exc:
        raise ScanError(str(exc)) from None
    owned = ex is not executor
    update, bar = _progress_fn(progress, len(tasks), what)
    try:
        return ex.run(fn, tasks, update)
    finally:
        if bar is not None:
            bar.close()
        if owned:
            ex.close()


def _tasks(symbols, window, timeframe, source, sets, batch_size, threshold, split) -> list[ScanTask]:
    try:
        td = parse_window(window)
        src = resolve_source(source)
    except MarketDataError as exc:
        raise ScanError(str(exc)) from None
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ScanError(f"batch_size must be a positive whole number, got {batch_size!r}")
    size = batch_size or len(sets)
    packed = tuple((pid, _json(st), p) for pid, st, p in sets)
    return [ScanTask(symbol=s, timeframe=timeframe, window=td, source=src, params=packed[k:k + size],
                     threshold=threshold, split=split)
            for s in _symbols(symbols) for k in range(0, len(packed), size)]


def scan(
    symbols: Sequence[str],
    window: str | pd.Timedelta = "30d",
    params: ParamsSpec = None,
    *,
    timeframe: str = "5m",
    source: Any = "sample",
    executor: str | Executor | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    batch_size: int | None = None,
    threshold: float = 0.5,
    split=None,
    progress: bool | Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Run the engine on every symbol (x setting) and summarise each run in one row.

    Parameters
    ----------
    symbols
        Names the source knows (``"BTCUSDT"``, ``"SYN007"``, ...), or one comma-separated string.
    window
        Span ending at the last candle: ``"30d"``, ``"12h"``, ``"1y"``.
    params
        None (default model), a :class:`ModelParams`, a grid ``{field: [values]}`` or a list of
        settings (see :mod:`liqlab.core.settings`).
    timeframe
        Candle length.
    source
        ``"sample"`` (bundled sample and synthetic ``SYNnnn``), an exchange id (its local store,
        offline) or an object with ``load(symbol, timeframe, window)``.
    executor
        ``"serial"``, ``"processes"`` (default), ``"dask"``, or an executor object (kept open).
    workers, scheduler
        Worker count; a Dask scheduler address (implies ``"dask"``).
    batch_size
        Settings per task (default: all settings of a symbol in one task).
    threshold
        A cluster is a bin of at least this share of the side's largest bin.
    split
        Start of the scoring span (fraction, time; None = the middle of the window).
    progress
        True for a progress bar, or a callable ``(done, total)``.

    Returns
    -------
    pandas.DataFrame
        One row per symbol and setting, sorted by ``symbol, params_id``; columns
        :data:`~liqlab.scan.tasks.SCAN_COLUMNS` plus ``param_<field>`` per grid field. ``error``
        is empty for good rows and one sentence for a symbol that failed (its figures NaN).

    Raises
    ------
    ScanError
        No symbols, a bad window, grid, source or executor.
    """
    sets = param_sets(params)
    tasks = _tasks(symbols, window, timeframe, source, sets, batch_size, threshold, split)
    outcomes = _run(run_scan_task, tasks, executor, workers, scheduler, progress, "scan")
    rows: list[dict] = []
    for task, out in zip(tasks, outcomes):
        rows += error_rows(task, one_sentence(out)) if isinstance(out, BaseException) else out
    return scan_table(rows, sets)


def scan_table(rows: list[dict], sets: list[tuple[int, dict, ModelParams]]) -> pd.DataFrame:
    """Rows of tasks as the tidy, deterministically sorted scan table."""
    table = pd.DataFrame(rows, columns=list(SCAN_COLUMNS))
    keys: list[str] = []
    for _, st, _ in sets:
        keys += [k for k in st if k not in keys]
    by_id = {pid: st for pid, st, _ in sets}
    for k in keys:
        vals = [by_id[pid].get(k) for pid in table["params_id"]]
        kinds = {type(v) for v in vals if v is not None}
        if len(kinds) > 1 or not kinds <= {str, int, float, bool}:  # one column type (Parquet needs it)
            vals = [None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in vals]
        table.insert(table.columns.get_loc("settings"), f"param_{k}", vals)
    table["error"] = table["error"].fillna("").astype(str)
    table["candles"] = table["candles"].astype("Int64")
    table["time"] = pd.to_datetime(table["time"], utc=True)
    num = [c for c in SCAN_COLUMNS if c not in ("symbol", "params_id", "settings", "error", "time", "candles")]
    table[num] = table[num].astype(np.float64)
    return table.sort_values(["symbol", "params_id"], kind="mergesort").reset_index(drop=True)


def magnet_zones(table: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Good rows ranked by the nearest large cluster (closest first; ties by larger notional, symbol)."""
    ok = table[table["error"] == ""].copy()
    near_usd = np.where(ok["long_cluster_pct"].abs() <= ok["short_cluster_pct"].abs(),
                        ok["long_cluster_usd"], ok["short_cluster_usd"])
    ok["nearest_cluster_usd"] = np.nan_to_num(near_usd)
    ok = ok.sort_values(["nearest_cluster_pct", "nearest_cluster_usd", "symbol", "params_id"],
                        ascending=[True, False, True, True], kind="mergesort", na_position="last")
    ok = ok.reset_index(drop=True)
    return ok.head(n) if n else ok


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` returns.

    Attributes
    ----------
    table
        Every (symbol, candidate) with its training objective (``error`` set for failed symbols).
    per_symbol
        The winning candidate of each symbol.
    overall
        Candidates ranked by their mean training objective over the symbols, with ``wins``.
    best
        The overall winner as model settings (a settings mapping for ``--params``).
    """

    table: pd.DataFrame
    per_symbol: pd.DataFrame
    overall: pd.DataFrame
    best: dict[str, Any]


def calibrate(
    symbols: Sequence[str],
    window: str | pd.Timedelta = "30d",
    grid: Mapping[str, Sequence] | None = None,
    *,
    params: ModelParams | None = None,
    timeframe: str = "5m",
    source: Any = "sample",
    executor: str | Executor | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    split=None,
    warmup: int = 0,
    progress: bool | Callable[[int, int], None] | None = None,
) -> Calibration:
    """:func:`~liqlab.evaluate.validation.fit_model` over a universe, one task per symbol.

    Each symbol is fitted on its training span only (before ``split``); the overall winner is the
    candidate with the best mean objective over the symbols that could be fitted.

    Parameters
    ----------
    grid
        ``{field: [values]}`` (default: ``fit_model``'s leverage preset x turnover x entry grid).
    params
        Settings the grid changes.
    Other parameters as in :func:`scan`.
    """
    from liqlab.evaluate.validation import DEFAULT_GRID

    grid = dict(DEFAULT_GRID if grid is None else grid)
    try:
        expand_grid(grid)
    except SettingsError as exc:
        raise ScanError(str(exc)) from None
    base = params or ModelParams()
    tasks = _tasks(symbols, window, timeframe, source, [(0, {}, base)], None, 0.5, split)
    fn = partial(run_fit_task, grid=grid, warmup=warmup)
    outcomes = _run(fn, tasks, executor, workers, scheduler, progress, "calibrate")
    rows: list[dict] = []
    for task, out in zip(tasks, outcomes):
        rows += [{"symbol": task.symbol, "error": one_sentence(out)}] if isinstance(out, BaseException) else out
    keys = list(grid)
    table = pd.DataFrame(rows, columns=["symbol", "error", *keys, "objective"])
    table["error"] = table["error"].fillna("").astype(str)
    table = table.sort_values("symbol", kind="mergesort").reset_index(drop=True)
    good = table[table["error"] == ""]
    per_symbol = good.groupby("symbol", sort=True).head(1).reset_index(drop=True)
    if good.empty:
        raise ScanError("no symbol could be fitted: " + "; ".join(f"{r.symbol}: {r.error}" for r in table.itertuples()))
    candidates = good[keys].astype(str).agg("|".join, axis=1)
    first = dict(zip(candidates, good[keys].to_dict(orient="records")))
    wins = per_symbol[keys].astype(str).agg("|".join, axis=1).value_counts()
    overall = (good.assign(candidate=candidates).groupby("candidate", sort=False)["objective"]
               .agg(["mean", "count"]).rename(columns={"mean": "mean_objective", "count": "symbols"}))
    overall["wins"] = [int(wins.get(c, 0)) for c in overall.index]
    overall = overall.sort_values("mean_objective", ascending=False, kind="mergesort")
    overall = pd.concat([pd.DataFrame([first[c] for c in overall.index]), overall.reset_index(drop=True)], axis=1)
    winner = {k: (v.item() if hasattr(v, "item") else v) for k, v in overall[keys].iloc[0].to_dict().items()}
    best = {**(settings_of(base) if params is not None else {}), **winner}
    return Calibration(table=table, per_symbol=per_symbol, overall=overall, best=best)
