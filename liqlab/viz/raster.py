"""The heatmap as a server-rendered palette image, and its colour legend."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from liqlab.viz.grid import epoch_ms, timeframe_ms
from liqlab.viz.style import COLOURSCALE, format_usd

if TYPE_CHECKING:  # plotly and the engine are imported lazily: ``import liqlab`` stays light
    import plotly.graph_objects as go  # noqa: F401

    from liqlab.core.engine import HeatmapResult, LiquidationMap  # noqa: F401
    from liqlab.core.market import Market  # noqa: F401


IMAGE_WIDTH = 1200  # heatmap image width in pixels (columns are repeated up to it, never blurred)


IMAGE_MIN_HEIGHT = 400  # rows are repeated a whole number of times to at least this height


IMAGE_LEVELS = 255  # colours in the image's palette; one more palette entry is transparent


def colour_lut(colorscale: str = COLOURSCALE, n: int = 256) -> np.ndarray:
    """An ``(n, 4)`` ``uint8`` RGBA table sampled from a plotly colour scale (opaque).

    Entry ``i`` is the colour plotly draws at ``i / (n - 1)`` of the scale (linear RGB
    interpolation between the scale's stops, as plotly.js does). Cached per scale name.

    Parameters
    ----------
    colorscale
        A named plotly colour scale (``"Viridis"``, ``"Inferno"``, ...).
    n
        Number of entries.
    """
    return _colour_lut(str(colorscale), int(n))


@functools.lru_cache(maxsize=16)
def _colour_lut(colorscale: str, n: int) -> np.ndarray:
    import plotly.colors as pc

    samples = pc.sample_colorscale(colorscale, [i / (n - 1) for i in range(n)], colortype="rgb")
    lut = np.full((n, 4), 255, dtype=np.uint8)
    lut[:, :3] = np.rint([pc.unlabel_rgb(c) for c in samples]).clip(0, 255)
    lut.flags.writeable = False  # shared between calls
    return lut


def image_columns(column_index: np.ndarray, width: int) -> np.ndarray:
    """The display column drawn at each of ``width`` pixels spread evenly over the candles.

    Column ``j`` holds the book after candle ``column_index[j]`` and stands for the candles since
    the previous column, ``column_index[j - 1] + 1 .. column_index[j]``; a pixel shows the column
    covering the candle under its centre, so uneven columns still sit at their true times.
    """
    ends = np.asarray(column_index, dtype=np.float64) + 1.0
    if ends.size == 0:
        return np.zeros(0, np.int64)
    centres = (np.arange(width) + 0.5) * (ends[-1] / width)
    return np.minimum(np.searchsorted(ends, centres, side="right"), ends.size - 1)


def heatmap_palette(colorscale: str = COLOURSCALE) -> np.ndarray:
    """The heatmap image's palette: ``IMAGE_LEVELS`` colours of the scale, then transparent.

    Returns
    -------
    numpy.ndarray
        ``(IMAGE_LEVELS + 1, 4)`` ``uint8`` RGBA; entry ``IMAGE_LEVELS`` is ``(0, 0, 0, 0)``.
    """
    table = np.zeros((IMAGE_LEVELS + 1, 4), dtype=np.uint8)
    table[:IMAGE_LEVELS] = colour_lut(colorscale, IMAGE_LEVELS)
    return table


def heatmap_indices(
    z: np.ndarray,
    zmax: float,
    *,
    columns: np.ndarray | None = None,
    row_repeat: int = 1,
) -> np.ndarray:
    """The heatmap grid as palette indices (:func:`heatmap_palette`): highest price at the top.

    Parameters
    ----------
    z
        Notional per bin, shape ``(rows, columns)`` with rows in ascending price.
    zmax
        Value drawn with the top colour (the colour legend's maximum); 0 draws the bottom colour.
    columns
        Grid column shown at each pixel (:func:`image_columns`); default one pixel per column.
    row_repeat
        Pixels per price row (a whole number, so rows keep equal heights).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(rows * row_repeat, pixels)``: ``round(z / zmax * (IMAGE_LEVELS
        - 1))`` clipped to the scale, and ``IMAGE_LEVELS`` (transparent) for cells at or below
        zero (nothing outstanding, or swept) and NaN.
    """
    top = IMAGE_LEVELS - 1
    g = np.asarray(z, dtype=np.float32)[::-1]  # PNG row 0 is the top: highest price first
    scale = np.float32(top / zmax) if zmax > 0 else np.float32(0.0)
    with np.errstate(invalid="ignore"):
        idx = np.clip(np.rint(g * scale), 0, top).astype(np.uint8)
        idx[~(g > 0)] = IMAGE_LEVELS  # empty, swept or NaN: transparent
    if columns is not None:  # index each cell once, then spread the cells over pixels
        idx = idx[:, columns]
    if row_repeat > 1:
        idx = np.repeat(idx, int(row_repeat), axis=0)
    return np.ascontiguousarray(idx)


def heatmap_rgba(
    z: np.ndarray,
    zmax: float,
    colorscale: str = COLOURSCALE,
    *,
    columns: np.ndarray | None = None,
    row_repeat: int = 1,
) -> np.ndarray:
    """The heatmap grid as an RGBA image (:func:`heatmap_indices` through :func:`heatmap_palette`).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(rows * row_repeat, pixels, 4)``. Cells at or below zero
        (nothing outstanding, or swept) are fully transparent.
    """
    return heatmap_palette(colorscale)[heatmap_indices(z, zmax, columns=columns, row_repeat=row_repeat)]


def colour_legend_html(legend: Mapping[str, Any], ticks: int = 5, width_px: int = 420, indent_px: int = 60) -> str:
    """The colour scale as HTML: title, gradient bar and tick labels from 0 to ``zmax``.

    Parameters
    ----------
    legend
        ``heatmap_parts(...)["legend"]``: ``title``, ``zmax`` and ``colorscale``.
    ticks
        Number of tick labels (evenly spaced, the first at 0).
    width_px
        Width of the gradient bar.
    indent_px
        Left indent, to line the bar up with the plot area (the figure's left margin).
    """
    import html

    lut = colour_lut(legend["colorscale"], 11)
    stops = ", ".join(f"rgb({r},{g},{b}) {i * 10}%" for i, (r, g, b, _a) in enumerate(lut.tolist()))
    zmax = float(legend["zmax"])
    labels = "".join(
        f"<span style='position:absolute;left:{100 * i / (ticks - 1):.4g}%;transform:translateX(-50%)'>"
        f"{html.escape(format_usd(zmax * i / (ticks - 1)))}</span>" for i in range(ticks)
    )
    return (
        f"<div class='liqlab-legend' style='font-size:11px;line-height:1.3;margin-left:{indent_px}px'>"
        f"<div class='liqlab-legend-title'>{html.escape(str(legend['title']))}</div>"
        f"<div style='width:{width_px}px;height:10px;background:linear-gradient(to right, {stops})'></div>"
        f"<div style='position:relative;width:{width_px}px;height:14px'>{labels}</div></div>"
    )


def heatmap_image(
    result: "HeatmapResult",
    market: "Market",
    z: np.ndarray,
    prices: np.ndarray,
    zmax: float,
    colorscale: str = COLOURSCALE,
    axes: Mapping[str, str] | None = None,
) -> tuple[dict | None, np.ndarray, np.ndarray]:
    """The displayed grid as a ``layout.images`` entry, and each column's time span.

    Parameters
    ----------
    result, market
        The engine result and its market (for the column positions and candle times).
    z, prices
        The displayed rows of the grid (ascending price) and their bin centres.
    zmax
        Colour-scale maximum (the colour bar's).
    colorscale
        Plotly colour scale name.
    axes
        ``{"x": ..., "y": ...}`` axis ids the image is placed on.

    Returns
    -------
    (image, col_start_ms, col_end_ms)
        ``image`` is a dict for ``layout.images`` (None when the grid is empty): a PNG data URI
        stretched over ``[first candle open, last column's candle close]`` and
        ``[lowest bin's lower edge, highest bin's upper edge]`` in data coordinates, under the
        traces. Column ``j`` stands for the candles after column ``j - 1`` up to its own.
    """
    from liqlab.viz.png import png_data_uri

    ax = {"x": "x", "y": "y", **(axes or {})}
    cidx = np.asarray(result.column_index, dtype=np.int64)
    times = epoch_ms(market.index)
    step_ms = timeframe_ms(market)
    if cidx.size == 0 or times.size == 0:
        return None, np.zeros(0), np.zeros(0)
    cidx = np.clip(cidx, 0, times.size - 1)
    col_end = times[cidx] + step_ms
    col_start = np.concatenate([[times[0]], times[np.minimum(cidx[:-1] + 1, times.size - 1)]])
    if z.size == 0:
        return None, col_start, col_end
    n_rows = z.shape[0]
    pixels = heatmap_indices(z, zmax, columns=image_columns(cidx, IMAGE_WIDTH),
                             row_repeat=max(1, -(-IMAGE_MIN_HEIGHT // n_rows)))
    bin_size = float(result.bin_size)
    top = float(prices[-1]) + bin_size / 2.0
    image = dict(
        source=png_data_uri(pixels, palette=heatmap_palette(colorscale), level=1),
        xref=ax["x"], yref=ax["y"], x=float(times[0]), sizex=float(col_end[-1] - times[0]), y=top,
        sizey=n_rows * bin_size, xanchor="left", yanchor="top",
        sizing="stretch", layer="below", opacity=1.0, name="heatmap_image",
    )
    return image, col_start, col_end
