"""Figures of engine results: the heatmap with realized bars, and the snapshot liquidation map.

Pure functions: a result (and its Market) in, a ``plotly.graph_objects.Figure`` out; nothing is
fetched or computed here beyond cropping, aggregating and formatting.

Each figure is assembled from *parts*: plain dicts of trace properties keyed by a stable trace
name, plus a dict of layout properties. :func:`heatmap_parts` and :func:`map_parts` return them;
the figure builders turn them into traces once, and the dashboard applies new parts to its figure
widget in place (:meth:`liqlab.apps.plotly_view.PlotlyView.apply`; :func:`apply_parts` for a plotly
figure) instead of rebuilding the figure.

Conventions
-----------
* Heatmap colour is the outstanding liquidation notional per price bin (USD), on a perceptual
  scale (Viridis) from 0 to the 99th percentile of non-empty cells; empty and swept cells are
  transparent, so levels that price has swept visibly disappear.
* The full-resolution grid travels as one server-rendered PNG placed with ``layout.images`` in
  data coordinates, under the candles. A coarse, invisible ``go.Heatmap`` (at most
  ``COARSE_COLUMNS`` x ``COARSE_ROWS`` cells) on top of it carries the hover text and the colour
  bar, with the same colour-scale maximum as the image. A browser then handles one image and a
  few thousand cells instead of hundreds of thousands. The dashboard leaves plotly's colour bar
  out and shows :func:`colour_legend_html` above the figure (plotly redraws a colour bar on
  every update).
* Rows are cropped to the price range of the candles plus a margin (the model's grid also holds
  far low-leverage levels that would squash the picture).
* Realized liquidations: longs red above zero, shorts green below zero, per period; the model's
  predicted bars are drawn beside them in the same hue, lighter.

The figures live in :mod:`liqlab.viz.heatmap`, :mod:`liqlab.viz.liqmap`,
:mod:`liqlab.viz.explorer`; their building blocks in :mod:`liqlab.viz.style`, :mod:`liqlab.viz.grid`,
:mod:`liqlab.viz.raster` and :mod:`liqlab.viz.update`. This module gathers their public names.
"""

from __future__ import annotations

from liqlab.viz.explorer import (  # noqa: F401
    explorer_axes,
    explorer_figure,
    explorer_parts,
)
from liqlab.viz.grid import (  # noqa: F401
    COARSE_COLUMNS,
    COARSE_ROWS,
    LINE_POINTS,
    as_float32,
    bar_period,
    coarse_grid,
    colour_max,
    column_close,
    crop_rows,
    epoch_ms,
    format_duration,
    naive_utc,
    per_market,
    period_bars,
    period_candles,
    price_line_points,
    timeframe_ms,
    visible_price_range,
)
from liqlab.viz.heatmap import (  # noqa: F401
    bar_values,
    heatmap_figure,
    heatmap_parts,
)
from liqlab.viz.liqmap import (  # noqa: F401
    LABEL_ROOM,
    liquidation_map_figure,
    map_parts,
)
from liqlab.viz.raster import (  # noqa: F401
    IMAGE_LEVELS,
    IMAGE_MIN_HEIGHT,
    IMAGE_WIDTH,
    colour_legend_html,
    colour_lut,
    heatmap_image,
    heatmap_indices,
    heatmap_palette,
    heatmap_rgba,
    image_columns,
)
from liqlab.viz.style import (  # noqa: F401
    BACKGROUND,
    COLOURSCALE,
    LONG_COLOUR,
    LONG_PREDICTED,
    PRICE_COLOUR,
    SHORT_COLOUR,
    SHORT_PREDICTED,
    Parts,
    allow_tick_label_overflow,
    apply_layout,
    axis_key,
    format_price,
    format_usd,
    heatmap_layout,
    make_traces,
    map_layout,
    quote_currency,
)
from liqlab.viz.update import (  # noqa: F401
    apply_parts,
)
