"""A synthetic universe on demand: ``SYN001``, ``SYN002``, ... generated, not shipped.

Each synthetic symbol is a deterministic function of its name: its generator settings (start price,
volatility, open interest, trader size, seed) come from a SHA-256 digest of the name, never from
Python's per-process randomised ``hash``, so every process and every machine makes the same market
for the same ``(symbol, timeframe, candles)``. Generating a year of 5-minute candles takes seconds,
so markets are cached on disk (``platformdirs`` user cache folder, or ``$LIQLAB_CACHE_DIR``) with
atomic writes: concurrent workers may generate the same file, and readers only ever see a whole one.

>>> from liqlab.sim.universe import synthetic_symbols, is_synthetic_symbol
>>> synthetic_symbols(3)
['SYN001', 'SYN002', 'SYN003']
>>> is_synthetic_symbol("syn042"), is_synthetic_symbol("BTCUSDT")
(True, False)
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from liqlab.core.market import Market, MarketDataError, make_market, timeframe_to_timedelta
from liqlab.sim.synth import SynthParams, simulate

#: Version of the universe generator; part of the cache path, bumped when markets change.
UNIVERSE_VERSION = 1
#: Environment variable overriding the cache folder.
CACHE_ENV = "LIQLAB_CACHE_DIR"
PREFIX = "SYN"
START = "2025-01-01"
_NAME = re.compile(r"^SYN\d{3,6}$")
_COLUMNS = ("open", "high", "low", "close", "volume", "open_interest", "funding_rate",
            "long_short_ratio", "taker_buy_volume")


def synthetic_symbols(n: int) -> list[str]:
    """The first ``n`` synthetic symbol names, ``SYN001`` ... (at least three digits)."""
    if not isinstance(n, (int, np.integer)) or not 0 <= n <= 999_999:
        raise MarketDataError(f"the synthetic universe holds 0 to 999999 symbols, not {n!r}")
    width = max(3, len(str(int(n))))
    return [f"{PREFIX}{i:0{width}d}" for i in range(1, int(n) + 1)]


def is_synthetic_symbol(symbol: str) -> bool:
    """Whether ``symbol`` names a generated symbol (``SYN`` and 3 to 6 digits, any case)."""
    return isinstance(symbol, str) and bool(_NAME.match(symbol.upper()))


def _uniforms(symbol: str, k: int) -> tuple[np.ndarray, int]:
    """``k`` numbers in [0, 1) and a 32-bit seed, all from the SHA-256 digest of the name."""
    digest = hashlib.sha256(f"liqlab-universe-v{UNIVERSE_VERSION}:{symbol}".encode()).digest()
    words = np.frombuffer(digest, dtype=">u4").astype(np.float64)
    return words[:k] / 2.0 ** 32, int.from_bytes(digest[-4:], "big")


def synthetic_params(symbol: str, n_candles: int, timeframe: str = "5m") -> SynthParams:
    """Generator settings of one synthetic symbol: a pure function of its name.

    Parameters
    ----------
    symbol
        ``SYNnnn`` (see :func:`is_synthetic_symbol`).
    n_candles
        Candles to generate.
    timeframe
        Candle length.

    Raises
    ------
    MarketDataError
        A name that is not a synthetic symbol.
    """
    if not is_synthetic_symbol(symbol):
        raise MarketDataError(f"{symbol!r} is not a synthetic symbol; they are named SYN001, SYN002, ...")
    u, seed = _uniforms(symbol.upper(), 5)
    return SynthParams(
        symbol=symbol.upper(), n_candles=int(n_candles), timeframe=timeframe, start=START, seed=seed,
        price=float(10.0 ** (-1.0 + 5.0 * u[0])),            # 0.1 to 10,000
        daily_vol=float(0.018 + 0.03 * u[1]),                 # 1.8 % to 4.8 % a day
        open_interest=float(10.0 ** (7.5 + 2.0 * u[2])),      # 30M to 3B
        trader_size=float(2_000.0 + 18_000.0 * u[3]),
        depth_1pct=float(0.15 + 0.2 * u[4]),
        entries_per_tier=1,
    )


def cache_dir() -> Path:
    """Folder of generated markets: ``$LIQLAB_CACHE_DIR`` or the platform's user cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env)
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("liqlab"))
    return root / "synthetic" / f"v{UNIVERSE_VERSION}"


def _frame(symbol: str, n_candles: int, timeframe: str) -> pd.DataFrame:
    market = simulate(synthetic_params(symbol, n_candles, timeframe)).market
    frame = market.data.loc[:, list(_COLUMNS)].astype(np.float64)
    frame["liq_long_usd"] = market.liquidations["long_usd"].to_numpy(np.float64)
    frame["liq_short_usd"] = market.liquidations["short_usd"].to_numpy(np.float64)
    return frame


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        frame.to_parquet(tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def synthetic_market(symbol: str, n_candles: int, timeframe: str = "5m", *, cache: bool = True) -> Market:
    """One synthetic symbol's market (with realized liquidation bars), generated or read from the cache.

    Parameters
    ----------
    symbol
        ``SYNnnn``.
    n_candles
        Candles, starting at 2025-01-01 UTC.
    timeframe
        Candle length.
    cache
        Read and write the on-disk cache (values are identical either way: float64 round-trips).

    Returns
    -------
    Market
        ``synthetic=True``, exchange ``"synthetic"``, source ``"universe"``.
    """
    if not isinstance(n_candles, (int, np.integer)) or n_candles < 2:
        raise MarketDataError(f"a synthetic market needs at least 2 candles, not {n_candles!r}")
    timeframe_to_timedelta(timeframe)
    sym = str(symbol).upper()
    synthetic_params(sym, n_candles, timeframe)  # name check before touching the cache
    path = cache_dir() / f"{sym}_{timeframe}_{int(n_candles)}.parquet"
    frame = None
    if cache and path.exists():
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError):
            frame = None  # a damaged file is regenerated
    if frame is None:
        frame = _frame(sym, int(n_candles), timeframe)
        if cache:
            _write_atomic(frame, path)
            frame = pd.read_parquet(path)
    bars = frame[["liq_long_usd", "liq_short_usd"]].set_axis(["long_usd", "short_usd"], axis=1)
    return make_market(frame.loc[:, list(_COLUMNS)], symbol=sym, exchange="synthetic", timeframe=timeframe,
                       liquidations=bars, source="universe", synthetic=True)
