"""History sub-commands: ``liqlab archive``, ``liqlab export``, ``liqlab oi-history``, ``liqlab coinalyze``,
``liqlab okx-liquidations``.

Failures are raised as exceptions whose message is one sentence naming the file or venue and the
reason; :func:`liqlab.cli.main` prints it without a traceback and exits non-zero.
"""

from __future__ import annotations

import argparse


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="store directory (default: $LIQLAB_DATA_DIR or data/store)")


def register(subparsers) -> None:
    """Add the history sub-commands to the ``liqlab`` parser."""
    a = subparsers.add_parser(
        "archive", help="import Binance public-archive history into the store",
        description="Download Binance public-archive zips (monthly where whole months are asked, daily "
                    "otherwise), verify each against its .CHECKSUM and import them into the store. Files the "
                    "store already holds are not downloaded again; days the archive lacks are reported as gaps.")
    a.add_argument("exchange", choices=["binanceusdm", "binancecoinm"])
    a.add_argument("symbol", help="BTCUSDT or BTC/USDT:USDT (COIN-M: BTCUSD_PERP or BTC/USD:BTC)")
    a.add_argument("--kinds", default="klines,metrics,fundingRate",
                   help="comma-separated: klines,metrics,fundingRate,liquidationSnapshot (default: the first three)")
    a.add_argument("--interval", default="5m", help="klines interval (default 5m)")
    a.add_argument("--since", required=True, help="first day, YYYY-MM-DD")
    a.add_argument("--until", required=True, help="last day, YYYY-MM-DD (inclusive)")
    a.add_argument("--archive-url", help="archive root holding data/ (default: $LIQLAB_ARCHIVE_URL or "
                                         "https://data.binance.vision)")
    a.add_argument("--workers", type=int, default=8, help="files downloaded at once (default 8)")
    a.add_argument("--retries", type=int, default=3, help="retries of a failed download (default 3)")
    a.add_argument("--timeout", type=float, default=30.0, help="seconds before a silent request fails (default 30)")
    a.add_argument("--keep-downloads", action="store_true", help="keep the verified zips after importing them")
    a.add_argument("--recheck", action="store_true",
                   help="also compare the checksums of files already imported and import re-published ones again")
    _data_dir(a)
    a.set_defaults(func=cmd_archive)

    e = subparsers.add_parser(
        "export", help="write a stored market as a generic CSV/Parquet file",
        description="Write candles, open interest, funding, ratios and realized liquidations per candle (where "
                    "stored) in the generic format that `liqlab predict` and `liqlab validate` read.")
    e.add_argument("exchange")
    e.add_argument("symbol")
    e.add_argument("--timeframe", "-t", default="5m", help="candle size (default 5m)")
    e.add_argument("--since", required=True)
    e.add_argument("--until", required=True)
    e.add_argument("--out", required=True, help="FILE.csv, FILE.csv.gz or FILE.parquet")
    _data_dir(e)
    e.set_defaults(func=cmd_export)

    o = subparsers.add_parser(
        "oi-history", help="deep open-interest history from Bybit or OKX into the store",
        description="Page an exchange's open-interest history endpoint backwards from --until, inside its page "
                    "limits, into the store; says where the exchange's retention ends.")
    o.add_argument("exchange", choices=["bybit", "okx"])
    o.add_argument("symbol", help="e.g. BTC/USDT:USDT, BTCUSDT (Bybit) or BTC-USDT-SWAP (OKX)")
    o.add_argument("--period", default="5m", help="5m, 15m, 30m, 1h, 4h, 1d (Bybit); 5m, 1h, 1d (OKX)")
    o.add_argument("--since", required=True)
    o.add_argument("--until", help="default: now")
    o.add_argument("--api-url", help=argparse.SUPPRESS)
    o.add_argument("--retries", type=int, default=5)
    _data_dir(o)
    o.set_defaults(func=cmd_oi_history)

    c = subparsers.add_parser(
        "coinalyze", help="liquidation, open-interest and funding history per exchange from Coinalyze",
        description="Fetch Coinalyze history (needs COINALYZE_API_KEY) for one coin on several exchanges into "
                    "the store; says where Coinalyze's intraday retention leaves a gap.")
    c.add_argument("coin", help="e.g. BTC")
    c.add_argument("--exchanges", default="binanceusdm,bybit,okx", help="comma-separated venues")
    c.add_argument("--interval", default="daily", help="1min, 5min, 15min, 30min, 1hour, 2hour, 4hour, 6hour, "
                                                      "12hour or daily (default daily)")
    c.add_argument("--since", required=True)
    c.add_argument("--until", help="default: now")
    c.add_argument("--api-url", help=argparse.SUPPRESS)
    _data_dir(c)
    c.set_defaults(func=cmd_coinalyze)

    k = subparsers.add_parser(
        "okx-liquidations", help="OKX's recent liquidation orders into the store",
        description="Fetch OKX's public recent liquidation orders for a swap (sizes are contracts: multiplied "
                    "by the contract value) into the store.")
    k.add_argument("symbol", help="e.g. BTC/USDT:USDT or BTC-USDT-SWAP")
    k.add_argument("--api-url", help=argparse.SUPPRESS)
    _data_dir(k)
    k.set_defaults(func=cmd_okx_liquidations)


def _store(args):
    from liqlab.sources.store import Store

    return Store(args.data_dir)


def cmd_archive(args) -> int:
    """``liqlab archive``: download, verify and import archive files."""
    from liqlab.sources.archive_download import download_archive
    from liqlab.sources.exchange import RetryPolicy

    report = download_archive(
        args.exchange, args.symbol, since=args.since, until=args.until,
        kinds=[k for k in args.kinds.split(",") if k.strip()], interval=args.interval,
        archive_url=args.archive_url, store=_store(args), workers=args.workers,
        policy=RetryPolicy(retries=max(0, args.retries), base_delay=0.5, max_delay=10.0),
        timeout=args.timeout, keep_downloads=args.keep_downloads, recheck=args.recheck,
    )
    print(report.message)
    return 0


def cmd_export(args) -> int:
    """``liqlab export``: write a stored market as a generic file."""
    from liqlab.sources.export import export_market

    report = export_market(args.exchange, args.symbol, args.timeframe, args.since, args.until, args.out,
                           store=_store(args))
    print(report.message)
    return 0


def cmd_oi_history(args) -> int:
    """``liqlab oi-history``: deep OI history from Bybit or OKX."""
    from liqlab.sources.exchange import RetryPolicy
    from liqlab.sources.oi_history import fetch_oi_history

    report = fetch_oi_history(args.exchange, args.symbol, args.period, args.since, args.until,
                              store=_store(args), api_url=args.api_url,
                              policy=RetryPolicy(retries=max(0, args.retries)))
    print(report.message)
    return 0


def cmd_coinalyze(args) -> int:
    """``liqlab coinalyze``: per-exchange history from Coinalyze."""
    from liqlab.sources.coinalyze import CoinalyzeClient, fetch_coinalyze_history

    client = CoinalyzeClient(base_url=args.api_url)
    report = fetch_coinalyze_history(client, args.coin, [v for v in args.exchanges.split(",") if v.strip()],
                                     args.interval, args.since, args.until, store=_store(args))
    print(report.message)
    return 0


def cmd_okx_liquidations(args) -> int:
    """``liqlab okx-liquidations``: OKX recent liquidation orders."""
    from liqlab.sources.okx_liquidations import fetch_okx_liquidations

    report = fetch_okx_liquidations(args.symbol, store=_store(args), api_url=args.api_url)
    print(report.message)
    return 0
