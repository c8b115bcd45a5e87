"""Short import path kept for the README's first calls: the figures live in :mod:`liqlab.viz`
(all public names gathered in :mod:`liqlab.viz.plotting`)."""

from liqlab.viz.plotting import *  # noqa: F401,F403
from liqlab.viz.plotting import explorer_figure, heatmap_figure, liquidation_map_figure  # noqa: F401
