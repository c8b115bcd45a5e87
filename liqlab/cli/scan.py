"""``liqlab scan``: the model over a universe of symbols (x a settings grid), in parallel."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT_SUFFIXES = (".parquet", ".csv")


def _universe_file(path: str) -> list[str]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"cannot read the universe file {path} ({exc.strerror or exc})") from None
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        names += [s.strip() for s in line.split(",") if s.strip()]
    if not names:
        raise ValueError(f"the universe file {path} names no symbols (one per line or comma-separated)")
    return names


def _symbols(args: argparse.Namespace) -> list[str]:
    from liqlab.scan import universe

    if args.symbols:
        return [s.strip() for s in args.symbols.split(",") if s.strip()]
    if args.universe:
        return _universe_file(args.universe)
    return universe(_source(args), args.top, args.timeframe)


def _settings(args: argparse.Namespace):
    """The scan's settings: grid entries on top of the ``--params`` file, or that file alone."""
    from liqlab.core.settings import read_grid, read_settings

    base = read_settings(args.params) if args.params else {}
    if args.grid:
        return [{**base, **entry} for entry in read_grid(args.grid)]
    return [base] if base else None


def _write(table, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    if out.suffix == ".csv":
        table.to_csv(tmp, index=False)
    else:
        table.to_parquet(tmp, index=False)
    tmp.replace(out)


def _source(args: argparse.Namespace):
    from liqlab.scan import StoreSource

    if args.exchange == "sample":
        return "sample"
    return StoreSource(args.exchange, root=args.store, until=args.until)


def cmd_scan(args: argparse.Namespace) -> int:
    from liqlab.scan import calibrate, magnet_zones, make_executor, scan

    out = Path(args.out)
    if out.suffix not in OUT_SUFFIXES:
        raise ValueError(f"--out must end in .parquet or .csv, not {out.name!r}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.top is not None and args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    from liqlab.scan import parse_window

    parse_window(args.window)  # a bad window fails before any worker starts
    symbols = _symbols(args)
    settings = _settings(args)
    source = _source(args)
    executor = make_executor(args.executor, workers=args.workers, scheduler=args.scheduler)
    try:
        where = f"{executor.name}, {executor.workers} worker(s)"
        link = getattr(executor, "dashboard_link", None)
        print(f"scanning {len(symbols)} symbol(s) x {len(settings or [None])} setting(s) on {where}", file=sys.stderr)
        if link:
            import importlib.util

            note = "" if importlib.util.find_spec("bokeh") else " (install bokeh to see it)"
            print(f"Dask dashboard: {link}{note}", file=sys.stderr)
        if args.fit:
            from liqlab.core.settings import params_from_settings, read_settings

            grid = json.loads(Path(args.grid).read_text()) if args.grid else None
            if grid is not None and not isinstance(grid, dict):
                raise ValueError("--fit needs a grid file that is a JSON object of lists")
            base = params_from_settings(read_settings(args.params)) if args.params else None
            cal = calibrate(symbols, args.window, grid, params=base, timeframe=args.timeframe, source=source,
                            executor=executor, split=args.split, progress=True)
            _write(cal.table, out)
            print(cal.per_symbol.to_string(index=False), file=sys.stderr)
            print(f"overall best on the training spans: {json.dumps(cal.best)}", file=sys.stderr)
            if args.best_out:
                Path(args.best_out).write_text(json.dumps(cal.best, indent=2) + "\n")
                print(f"wrote the winning settings to {args.best_out} (use with --params)", file=sys.stderr)
            print(f"wrote {len(cal.table)} rows to {out}", file=sys.stderr)
            return 0
        table = scan(symbols, args.window, settings, timeframe=args.timeframe, source=source, executor=executor,
                     split=args.split, progress=True)
    finally:
        executor.close()
    _write(table, out)
    failed = table[table["error"] != ""]
    print(f"wrote {len(table)} rows to {out}; {failed['symbol'].nunique()} symbol(s) failed", file=sys.stderr)
    for r in failed.drop_duplicates("symbol").itertuples():
        print(f"  {r.symbol}: {r.error}", file=sys.stderr)
    top = magnet_zones(table, 5)
    if len(top):
        print("nearest large clusters:", file=sys.stderr)
        for r in top.itertuples():
            print(f"  {r.symbol:<12} {r.nearest_cluster_pct:6.2f} %  params {r.params_id}", file=sys.stderr)
    return 1 if len(failed) == len(table) else 0


def register(sub) -> None:
    p = sub.add_parser(
        "scan", help="scan many symbols (x a settings grid) in parallel: clusters, predictions, scores",
        description="Run the model on every symbol of a universe (and every setting of a grid) on a serial "
                    "loop, a local process pool or a Dask cluster, and write one row per symbol x setting: "
                    "nearest long/short clusters, notional within 1/2/5 %, predicted liquidations and, where "
                    "realized liquidations are stored, the scorecard metrics.")
    p.add_argument("--exchange", default="sample",
                   help="'sample' (bundled sample and synthetic SYN001...) or an exchange id whose local store is read")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--symbols", help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT,SYN001")
    which.add_argument("--universe", metavar="FILE", help="file of symbols, one per line")
    which.add_argument("--top", type=int, metavar="N",
                       help="the first N symbols of the source (sample: its three, then synthetic ones)")
    p.add_argument("--timeframe", default="5m", help="candle length (default 5m)")
    p.add_argument("--window", default="30d", help="span ending at the last candle, e.g. 30d, 12h, 1y (default 30d)")
    p.add_argument("--params", metavar="FILE.json", help="base model settings (JSON object of ModelParams fields)")
    p.add_argument("--grid", metavar="GRID.json",
                   help="settings grid: a JSON object of lists (every combination) or a list of settings objects")
    p.add_argument("--executor", choices=["serial", "processes", "dask"], default=None,
                   help="where tasks run (default: processes, or dask with --scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--workers", type=int, help="worker processes (default: the usable CPUs)")
    p.add_argument("--split", help="start of the scoring span (time; default: the middle of the window)")
    p.add_argument("--store", help="store folder (default: liqlab's data folder)")
    p.add_argument("--until", help="end of the window for stored exchange data (default: now)")
    p.add_argument("--fit", action="store_true",
                   help="calibrate instead: fit the grid on each symbol's training span, report winners")
    p.add_argument("--best-out", metavar="FILE.json", help="with --fit: write the overall winning settings here")
    p.add_argument("--out", required=True, help="output table, .parquet or .csv")
    p.set_defaults(func=cmd_scan)
