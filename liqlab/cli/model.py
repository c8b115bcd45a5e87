"""``liqlab predict`` and ``liqlab validate``: the model from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load(path: str, liquidations: str | None = None):
    from liqlab.sources.csv_files import load_market_file

    # Real exports have missing candles; keep them (reported) rather than refuse the file.
    return load_market_file(path, liquidations=liquidations, gaps="keep")


def _params(args: argparse.Namespace):
    """Model settings: the ``--params`` file (if any), then the single-setting flags over it."""
    from liqlab.core.settings import params_from_settings, read_settings

    settings = read_settings(args.params) if getattr(args, "params", None) else {}
    changes = {}
    for name in ("mix", "entry", "turnover", "position_notional", "half_life_hours"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    return params_from_settings({**settings, **changes, "max_columns": 0})


def cmd_predict(args: argparse.Namespace) -> int:
    from liqlab.core.engine import predict_liquidations

    market = _load(args.market)
    pred = predict_liquidations(market, _params(args))
    out = pred.reset_index()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if args.out:
        _write_out(args.out, out.to_csv(index=False))
        print(f"wrote {len(out)} candles of predicted liquidations to {args.out}", file=sys.stderr)
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def _write_out(path: str, text: str) -> None:
    """Write ``text`` to ``--out`` atomically, or say in one sentence why it cannot be written."""
    from liqlab.core.atomic import atomic_write_text
    from liqlab.cli import CommandError

    target = Path(path)
    if target.is_dir():
        raise CommandError(f"--out {path} is a folder; give a file name such as {target / 'predicted.csv'}")
    try:
        atomic_write_text(target, text)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CommandError(
            f"cannot write --out {path} ({reason}); give a file in a folder you can write to"
        ) from None


def _split_arg(text: str):
    """``--split``: a time or a fraction of the window (argparse names the option on error)."""
    from liqlab.evaluate.validation import ValidationError, parse_split

    try:
        return parse_split(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_validate(args: argparse.Namespace) -> int:
    from liqlab.evaluate.validation import fit_model, format_scorecard, scorecard

    market = _load(args.market, args.realized)
    params = _params(args)
    fitted = None
    if args.fit:
        params, table = fit_model(market, split=args.split, params=params)
        fitted = table.iloc[0].to_dict()
    table = scorecard(market, params=params, split=args.split)
    if args.json:
        payload = {"market": market.label, "split": str(args.split), "gaps": len(market.gaps),
                   "fitted": fitted, "scores": table.to_dict(orient="records")}
        print(json.dumps(payload, indent=2, default=str))
        return 0
    print(f"{market.label}: {len(market)} candles, {len(market.gaps)} gap(s); "
          f"calibrated before and scored from {args.split or 'the middle'}")
    if fitted:
        settings = ", ".join(f"{k}={v}" for k, v in fitted.items() if k != "objective")
        print(f"fitted on the training span: {settings}")
    print(format_scorecard(table))
    return 0


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", metavar="FILE.json",
                   help="model settings file: a JSON object of ModelParams fields, as a scan grid entry "
                        "(the flags below override it)")
    p.add_argument("--mix", help="leverage preset name or a JSON file (default: balanced)")
    p.add_argument("--entry", choices=["range", "typical", "close", "ohlc4"], help="entry price model")
    p.add_argument("--turnover", type=float, help="share of traded notional that replaces positions")
    p.add_argument("--position-notional", dest="position_notional", type=float,
                   help="representative position size (picks the MMR bracket)")
    p.add_argument("--half-life-hours", dest="half_life_hours", type=float, help="ageing half-life")


def register(sub) -> None:
    p = sub.add_parser("predict", help="predicted liquidations per candle from a market file",
                       description="Read a generic market file (timestamp,open,high,low,close,volume,"
                                   "open_interest,...) and write timestamp,long_usd,short_usd.")
    p.add_argument("market", help="market CSV or Parquet file")
    p.add_argument("--out", help="output CSV (default: stdout)")
    _model_options(p)
    p.set_defaults(func=cmd_predict)

    v = sub.add_parser("validate", help="score the model and baselines against realized liquidations",
                       description="Spearman, out-of-sample log-R² and cascade recall for the model and "
                                   "the |move|xOI and ladder baselines; calibrated before --split.")
    v.add_argument("market", help="market CSV or Parquet file")
    v.add_argument("realized", help="realized liquidations: timestamp,long_usd,short_usd or events")
    v.add_argument("--split", type=_split_arg,
                   help="start of the test span: a time (2026-01-01) or a fraction of the window (0.6); "
                        "default: the middle")
    v.add_argument("--fit", action="store_true", help="choose the leverage mix and settings on the training span")
    v.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _model_options(v)
    v.set_defaults(func=cmd_validate)
