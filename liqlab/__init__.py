"""liqlab: liquidation heatmaps for crypto perpetual futures.

Light at import: heavy modules (numba kernels, plotly, ccxt) load when first used. The most used
names are reachable from the top level::

    import liqlab
    market = liqlab.load_sample("BTCUSDT")
    result = liqlab.compute_heatmap(market, mix="balanced")
    liqlab.heatmap_figure(result, market)

The layers, bottom up: :mod:`liqlab.core` (market contract, brackets, leverage, engine),
:mod:`liqlab.sources` and :mod:`liqlab.sim` (data in), :mod:`liqlab.evaluate` (scorecard),
:mod:`liqlab.viz` (figures), :mod:`liqlab.apps` (widget components), :mod:`liqlab.serve`
(Voila apps) and :mod:`liqlab.cli`. Each imports only the layers below it.
"""

from __future__ import annotations

import importlib
from typing import Any

from liqlab.core.market import Market, MarketDataError, make_market

__version__ = "0.1.0"

# name -> module, imported on first access
_LAZY = {
    "load_sample": "liqlab.sim.datasets",
    "sample_symbols": "liqlab.sim.datasets",
    "ModelParams": "liqlab.core.engine",
    "compute_heatmap": "liqlab.core.engine",
    "predict_liquidations": "liqlab.core.engine",
    "EngineError": "liqlab.core.engine",
    "LeverageMix": "liqlab.core.leverage",
    "BracketTable": "liqlab.core.brackets",
    "liquidation_price": "liqlab.core.brackets",
    "scorecard": "liqlab.evaluate.validation",
    "load_market_file": "liqlab.sources.csv_files",
    "heatmap_figure": "liqlab.viz.heatmap",
    "liquidation_map_figure": "liqlab.viz.liqmap",
    "explorer_figure": "liqlab.viz.explorer",
}

__all__ = ["Market", "MarketDataError", "make_market", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'liqlab' has no attribute {name!r}")
