"""Bundled datasets: the synthetic sample in ``data/sample/`` (see its README.md).

>>> from liqlab.sim.datasets import load_sample, sample_symbols
>>> sample_symbols()
['BTCUSDT', 'ETHUSDT', 'SOLUSDT']
>>> load_sample("ETHUSDT").synthetic
True
"""

from __future__ import annotations

import json
import functools
import hashlib
from pathlib import Path

import pandas as pd

from liqlab.core.market import Market, MarketDataError, make_market

EXCHANGE = "synthetic"
TIMEFRAME = "5m"

#: Where the bundled sample lives: package data of :mod:`liqlab.sim` (``sample_data/``).
SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"


def _folder(folder: str | Path | None) -> Path:
    path = SAMPLE_DIR if folder is None else Path(folder)
    if not (path / "manifest.json").exists():
        raise MarketDataError(
            f"the bundled sample is missing from {path} (no manifest.json); "
            "regenerate it with `python -m liqlab.sim.sample --out liqlab/sim/sample_data` (or `make sample`)"
        )
    return path


def _normalise(symbol: str) -> str:
    """``"btc/usdt:usdt"`` and ``"BTC-USDT"`` both mean ``"BTCUSDT"``."""
    return "".join(ch for ch in str(symbol).split(":")[0].upper() if ch.isalnum())


def market_from_frames(symbol: str, data: pd.DataFrame, events: pd.DataFrame) -> Market:
    """Turn stored sample frames into the :class:`Market` users get (labelled synthetic)."""
    return make_market(
        data, symbol=symbol, exchange=EXCHANGE, timeframe=TIMEFRAME,
        liquidation_events=events, source="sample", synthetic=True,
    )


@functools.lru_cache(maxsize=8)
def sample_digest(symbol: str = "BTCUSDT", *, folder: str | Path | None = None) -> str:
    """A digest of the bundled sample's files for ``symbol`` (its identity for caches of views)."""
    path = _folder(folder)
    h = hashlib.sha256()
    for name in (f"{_normalise(symbol)}.parquet", f"{_normalise(symbol)}_liquidations.parquet"):
        file = path / name
        h.update(name.encode())
        h.update(file.read_bytes() if file.is_file() else b"")
    return h.hexdigest()[:32]


def sample_symbols(folder: str | Path | None = None) -> list[str]:
    """Symbols of the bundled synthetic sample, sorted."""
    manifest = json.loads((_folder(folder) / "manifest.json").read_text())
    return sorted(manifest["symbols"])


def load_sample(symbol: str = "BTCUSDT", *, folder: str | Path | None = None) -> Market:
    """Load one symbol of the bundled synthetic sample (35 days of 5-minute candles).

    Parameters
    ----------
    symbol
        One of :func:`sample_symbols` (``"BTC/USDT:USDT"`` style names are accepted too).
    folder
        Another folder written by ``python -m liqlab.sim.sample --out FOLDER``.

    Returns
    -------
    Market
        With realized liquidation events and bars, ``synthetic=True``, ``source="sample"``,
        exchange ``"synthetic"``.

    Raises
    ------
    MarketDataError
        Unknown symbol (the message lists the available ones) or missing files.
    """
    path = _folder(folder)
    available = sample_symbols(path)
    sym = _normalise(symbol)
    if sym not in available:
        raise MarketDataError(f"no sample for symbol {symbol!r}; available: {available}")
    files = json.loads((path / "manifest.json").read_text())["symbols"][sym]["files"]
    try:
        data = pd.read_parquet(path / files["market"])
        events = pd.read_parquet(path / files["liquidations"])
    except (OSError, ValueError) as exc:
        raise MarketDataError(f"sample files for {sym} in {path} cannot be read ({exc})") from exc
    return market_from_frames(sym, data, events)
