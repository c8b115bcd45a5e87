"""Where a scan task loads its market from, by name: the bundled sample (plus the synthetic
universe) or the local Parquet store of an exchange.

A source is a small picklable object with one method, ``load(symbol, timeframe, window) ->
Market``; it travels to the workers instead of market data, and each task loads its own symbol
there. Any object with that method works (a user's own database, a test's fault injector).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from liqlab.core.market import Market, MarketDataError, timeframe_to_timedelta


@runtime_checkable
class Source(Protocol):
    """Anything that loads one symbol's market by name."""

    def load(self, symbol: str, timeframe: str, window: pd.Timedelta) -> Market:  # pragma: no cover
        ...


def parse_window(window) -> pd.Timedelta:
    """``"30d"``, ``"12h"``, ``"1y"`` (365 days) or a Timedelta, as a positive Timedelta.

    Raises
    ------
    MarketDataError
        Anything else, in one sentence.
    """
    if isinstance(window, pd.Timedelta):
        td = window
    else:
        text = str(window).strip().lower()
        try:
            if text.endswith("y") and text[:-1].replace(".", "", 1).isdigit():
                td = pd.Timedelta(days=365 * float(text[:-1]))
            elif text.endswith("w") and text[:-1].isdigit():
                td = pd.Timedelta(weeks=int(text[:-1]))
            else:
                td = timeframe_to_timedelta(text)
        except (MarketDataError, ValueError):
            raise MarketDataError(f"window {window!r} is not a duration such as '30d', '12h' or '1y'") from None
    if td <= pd.Timedelta(0):
        raise MarketDataError(f"window must be positive, got {window!r}")
    return td


def candles_in(window: pd.Timedelta, timeframe: str) -> int:
    """Whole candles of ``timeframe`` in ``window`` (at least one)."""
    step = timeframe_to_timedelta(timeframe)
    if window < step:
        raise MarketDataError(f"the window {window} is shorter than one {timeframe} candle")
    return int(window // step)


@dataclass(frozen=True)
class SampleSource:
    """The bundled sample (``BTCUSDT``, ``ETHUSDT``, ``SOLUSDT``, 5-minute candles) and the synthetic
    universe (``SYN001`` ...), generated for exactly the window asked for and cached on disk.

    Sample symbols give their last ``window`` (at most their 35 days), resampled to longer timeframes.
    """

    cache: bool = True
    exchange: str = "sample"

    def load(self, symbol: str, timeframe: str, window: pd.Timedelta) -> Market:
        from liqlab.sim.universe import is_synthetic_symbol, synthetic_market

        n = candles_in(window, timeframe)
        if is_synthetic_symbol(symbol):
            return synthetic_market(symbol, n, timeframe, cache=self.cache)
        from liqlab.core.resample import resample_market
        from liqlab.sim.datasets import load_sample

        market = load_sample(symbol)
        if timeframe != market.timeframe:
            market = resample_market(market, timeframe)
        return market.tail(n) if n < len(market) else market


@dataclass(frozen=True)
class StoreSource:
    """Markets already in the local store of one exchange (``liqlab fetch`` fills it); never online.

    Parameters
    ----------
    exchange
        ccxt id, e.g. ``"binanceusdm"``.
    root
        Store folder (default: :func:`~liqlab.sources.store.default_data_dir`).
    until
        End of the window (default: now, clipped to the last closed candle).
    """

    exchange: str
    root: str | None = None
    until: str | None = None

    def load(self, symbol: str, timeframe: str, window: pd.Timedelta) -> Market:
        import warnings

        from liqlab.sources.loader import load_market

        until = pd.Timestamp(self.until, tz="UTC") if self.until else pd.Timestamp.now(tz="UTC").floor(timeframe)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_market(self.exchange, symbol, timeframe, since=until - window, until=until,
                               store=self.root, offline=True, gaps="fill")

    def symbols(self, timeframe: str) -> list[str]:
        """Symbols with stored candles of ``timeframe`` and open interest, ranked by rows stored."""
        from liqlab.sources.store import Store, default_data_dir

        store = Store(Path(self.root) if self.root else default_data_dir())
        rows: dict[str, int] = {}
        kinds: dict[str, set] = {}
        for f in store.entries():
            if f.exchange != self.exchange:
                continue
            kinds.setdefault(f.symbol, set()).add(f.kind)
            if f.kind == "ohlcv" and (f.period in (None, timeframe)):
                rows[f.symbol] = max(rows.get(f.symbol, 0), f.rows)
        ok = [s for s in rows if "open_interest" in kinds.get(s, set())]
        return sorted(ok, key=lambda s: (-rows[s], s))


def load_length(source: Source, timeframe: str, window: pd.Timedelta, symbol: str) -> int:
    """Load one symbol and return its candle count: a task that fills a source's caches (the
    synthetic markets on disk) before a timed or repeated scan."""
    return len(source.load(symbol, timeframe, window))


def resolve_source(source) -> Source:
    """``"sample"`` / None, an exchange id (its local store) or a :class:`Source` object."""
    if source is None or source == "sample":
        return SampleSource()
    if isinstance(source, str):
        if not source.strip():
            raise MarketDataError("source must be 'sample' or an exchange id such as 'binanceusdm'")
        return StoreSource(source.strip())
    if isinstance(source, Source):
        return source
    raise MarketDataError(f"source must be 'sample', an exchange id or an object with load(), "
                          f"not {type(source).__name__}")
