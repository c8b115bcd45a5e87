"""Short import path kept for the README's first calls: the names live in :mod:`liqlab.core.engine`."""

from liqlab.core.engine import ModelParams, HeatmapResult, LiquidationMap, EngineError, compute_heatmap, predict_liquidations, prepare  # noqa: F401

__all__ = ['ModelParams', 'HeatmapResult', 'LiquidationMap', 'EngineError', 'compute_heatmap', 'predict_liquidations', 'prepare']
