"""Data sub-commands: ``liqlab fetch``, ``liqlab record``, ``liqlab universe``.

Failures are raised as exceptions whose message is one sentence naming the exchange, the symbol
and what to do; :func:`liqlab.cli.main` prints it without a traceback and exits non-zero.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the data sub-commands to the ``liqlab`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="store directory (default: $LIQLAB_DATA_DIR or data/store)")
    common.add_argument("--api-url", help=argparse.SUPPRESS)  # a mirror, proxy or test server
    common.add_argument("--retries", type=int, default=5,
                        help="retries of a failed request, with exponential backoff (default 5)")

    p = subparsers.add_parser("fetch", parents=[common], help="fill the local store from an exchange",
                              description="Fetch candles, open interest, funding and long/short ratio "
                                          "(and liquidations where the exchange publishes them) into the store; "
                                          "only ranges not stored yet are requested.")
    p.add_argument("exchange", help="ccxt id, e.g. binanceusdm, bybit, okx")
    p.add_argument("symbol", help="e.g. BTC/USDT:USDT, BTCUSDT or BTC")
    p.add_argument("--timeframe", "-t", default="5m", help="candle size (default 5m)")
    p.add_argument("--since", help="start time, e.g. 2024-05-01 or 2024-05-01T12:00 (default: 7 days ago)")
    p.add_argument("--until", help="end time (default: now)")
    p.set_defaults(func=cmd_fetch)

    r = subparsers.add_parser("record", parents=[common], help="record live liquidations into the store",
                              description="Subscribe to the exchange's liquidation stream and append events "
                                          "to the store until Ctrl-C or --duration.")
    r.add_argument("exchange", help="binanceusdm (or binance), bybit or okx")
    r.add_argument("symbols", nargs="+", metavar="SYMBOL")
    r.add_argument("--duration", type=float, help="stop after this many seconds")
    r.add_argument("--ws-url", help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_record)

    u = subparsers.add_parser("universe", parents=[common], help="list an exchange's active perpetuals")
    u.add_argument("exchange")
    u.set_defaults(func=cmd_universe)


def _store(args):
    from liqlab.sources.store import Store

    return Store(args.data_dir)


def _retry(args):
    from liqlab.sources.exchange import RetryPolicy

    return RetryPolicy(retries=max(0, args.retries))


def cmd_fetch(args) -> int:
    """``liqlab fetch``: fill the store and print what was fetched and from where."""
    from liqlab.sources.loader import load_market_report

    market, report = load_market_report(
        args.exchange, args.symbol, args.timeframe, args.since, args.until,
        store=_store(args), api_url=args.api_url, retry=_retry(args),
    )
    if report.offline_reason:
        raise RuntimeError(
            f"{args.exchange} {report.symbol}: could not fetch ({report.offline_reason.rstrip('.')}); "
            f"the store still holds {len(market)} candles up to {market.end}"
        )
    print(report.message)
    print(f"window: {market.start} .. {market.end} ({len(market)} {market.timeframe} candles, source: {market.source})")
    return 0


def cmd_record(args) -> int:
    """``liqlab record``: stream liquidations into the store."""
    from liqlab.sources.recorder import LiquidationRecorder

    rec = LiquidationRecorder(args.exchange, args.symbols, store=_store(args), api_url=args.api_url,
                              ws_url=getattr(args, "ws_url", None))
    print(f"recording {args.exchange} liquidations for {', '.join(args.symbols)} into {rec.store.root}"
          + (f" for {args.duration:g} s" if args.duration else " (Ctrl-C stops)"), flush=True)
    try:
        stats = rec.run(args.duration)
    except KeyboardInterrupt:
        stats = rec.stats
    print(f"recorded {stats.events} liquidation events in {stats.batches} batch(es), "
          f"{stats.reconnects} reconnect(s)")
    if args.exchange in ("binance", "binanceusdm", "binancecoinm"):
        print("note: Binance's forceOrder stream sends at most one liquidation per symbol per second, "
              "so these figures are a lower bound")
    return 0


def cmd_universe(args) -> int:
    """``liqlab universe``: print the active perpetuals, one per line."""
    from liqlab.sources.exchange import list_perpetuals

    table = list_perpetuals(args.exchange, api_url=args.api_url, store=_store(args), policy=_retry(args))
    for row in table.itertuples(index=False):
        print(f"{row.symbol}\t{row.id}\t{row.contract}")
    print(f"{len(table)} active perpetuals on {args.exchange}")
    return 0
