"""liqlab: liquidation heatmaps for crypto perpetual futures.

Light at import: heavy modules (numba kernels, plotly, ccxt) load when first used.
"""

from __future__ import annotations

from liqlab.market import Market, MarketDataError, make_market

__version__ = "0.1.0"
__all__ = ["Market", "MarketDataError", "make_market", "__version__"]
