"""OKX recent liquidation orders (public REST), with sizes converted from contracts to USD.

``GET /api/v5/public/liquidation-orders?instType=SWAP&instFamily=BTC-USDT&state=filled`` answers
the venue's recent liquidations (newest first, paged with ``after=<ts>``). A raw entry::

    {"instId": "BTC-USDT-SWAP", "instFamily": "BTC-USDT", "details": [
        {"bkPx": "40100.5", "posSide": "long", "side": "sell", "sz": "250", "ts": "1714521660000", ...}]}

``sz`` counts **contracts**: notional = ``sz x ctVal x bkPx`` for linear swaps (``ctVal`` 0.01 BTC
for BTC-USDT-SWAP) and ``sz x ctVal`` USD for inverse ones (100 USD for BTC-USD-SWAP). ``posSide``
is the side liquidated (``side`` sell = a long closed, buy = a short closed, when ``posSide`` is
``net``). The call goes through ccxt's documented generic ``request`` method, since ccxt has no
unified method for this endpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from liqlab.sources.exchange import (
    ExchangeDataError,
    RequestLog,
    RetryPolicy,
    call_with_retry,
    ensure_markets,
    make_exchange,
    market_info,
    resolve_symbol,
)
from liqlab.sources.store import Store

__all__ = ["OkxLiquidationReport", "fetch_okx_liquidations", "parse_okx_liquidations"]

PATH = "public/liquidation-orders"


@dataclass
class OkxLiquidationReport:
    """What an OKX liquidation fetch stored."""

    symbol: str
    events: int = 0
    stored: int = 0
    requests: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None

    @property
    def message(self) -> str:
        span = f" ({self.first} .. {self.last})" if self.first is not None else ""
        return (f"okx {self.symbol}: {self.events} recent liquidation(s){span} from {self.requests} request(s); "
                f"{self.stored} stored in total (sizes converted from contracts with the contract value)")


def parse_okx_liquidations(data: list[dict], market: dict) -> pd.DataFrame:
    """Liquidation events ``timestamp, side, price, notional`` (USD) of ``market`` from an answer's ``data``."""
    size = float(market.get("contractSize") or 1.0)
    inverse = bool(market.get("inverse"))
    rows = []
    for group in data or []:
        if group.get("instId") not in (None, market["id"]):
            continue
        for d in group.get("details") or []:
            side = str(d.get("posSide") or "").lower()
            if side not in ("long", "short"):
                side = {"sell": "long", "buy": "short"}.get(str(d.get("side") or "").lower())
            if side is None:
                continue
            price, contracts = float(d["bkPx"]), float(d["sz"])
            notional = contracts * size if inverse else contracts * size * price
            rows.append((int(d.get("ts") or d.get("time")), side, price, notional))
    frame = pd.DataFrame(rows, columns=["timestamp", "side", "price", "notional"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ms", utc=True)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def fetch_okx_liquidations(
    symbol: str,
    *,
    store: Store | str | os.PathLike | None = None,
    api_url: str | None = None,
    policy: RetryPolicy | None = None,
    max_pages: int = 20,
) -> OkxLiquidationReport:
    """Fetch OKX's recent filled liquidation orders of a swap into the store.

    Raises
    ------
    ExchangeDataError
        For a symbol that is not an OKX swap, or OKX unreachable after retries.
    """
    store = store if isinstance(store, Store) else Store(store)
    policy = policy or RetryPolicy()
    log = RequestLog()
    ex = make_exchange("okx", api_url=api_url)
    ensure_markets(ex, store=store, policy=policy, log=log)
    sym = resolve_symbol(ex, symbol)
    market = market_info(ex, sym)
    if not market.get("swap"):
        raise ExchangeDataError(f"okx {sym} is not a perpetual swap; liquidation orders are fetched for swaps")
    family = (market.get("info") or {}).get("instFamily") or (market.get("info") or {}).get("uly")
    params = {"instType": "SWAP", "instFamily": family, "state": "filled", "limit": "100"}
    frames, after = [], None
    report = OkxLiquidationReport(sym)
    for _ in range(max_pages):
        query = dict(params, **({"after": str(after)} if after is not None else {}))
        answer = call_with_retry(ex, "request", PATH, ["public"], "GET", query, symbol=sym, kind="liquidations",
                                 policy=policy, log=log)
        if str(answer.get("code", "0")) != "0":
            raise ExchangeDataError(f"okx {sym}: liquidation orders refused ({answer.get('msg')})")
        events = parse_okx_liquidations(answer.get("data") or [], market)
        if events.empty:
            break
        frames.append(events)
        oldest = int(events["timestamp"].iloc[0].value // 10**6)
        if after is not None and oldest >= after:
            break
        after = oldest
    report.requests = log.total - log.counts.get("markets", 0)
    if frames:
        events = pd.concat(frames, ignore_index=True).drop_duplicates().sort_values("timestamp", kind="stable")
        report.events = len(events)
        report.first, report.last = events["timestamp"].iloc[0], events["timestamp"].iloc[-1]
        covered = (int(report.first.value // 10**6), int(report.last.value // 10**6))
        report.stored = store.append_liquidations("okx", sym, events, covered=covered)
    return report
