"""The market-scan app: the universe table ranked by the nearest large cluster, a chart of magnet
zones, and the heatmap and liquidation map of the symbol chosen in the table.

The scan runs once when the app is made (:func:`liqlab.scan.scan`; offline it scans synthetic
symbols ``SYN001`` ... generated on demand). Choosing a row recomputes that symbol's heatmap and
rebuilds the two detail figures; the table and the magnet-zone chart stay as they are. The
figures are :class:`~liqlab.apps.plotly_view.PlotlyView` widgets whose whole contents are replaced
(:meth:`~liqlab.apps.plotly_view.PlotlyView.set_figure`) when the symbol changes.
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import pandas as pd

from liqlab.apps.guarded import GuardedComponent, visitor_text
from liqlab.apps.plotly_view import PlotlyView
from liqlab.core.engine import ModelParams, compute_heatmap
from liqlab.core.market import MarketDataError
from liqlab.scan import magnet_zones, scan
from liqlab.scan.sources import parse_window, resolve_source
from liqlab.viz.style import format_price, format_usd

#: Table header; rows are formatted to the same widths (the table uses a monospace font).
HEADER = f"{'symbol':<9}{'price':>11}{'nearest':>9}{'long cl.':>10}{'short cl.':>10}{'±2 %':>10}"
CSS = """<style>
.liqlab-scan-table select { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.liqlab-scan-header { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; white-space: pre; }
</style>"""


def figure_widget(fig) -> PlotlyView:
    """A figure widget showing ``fig``."""
    return PlotlyView(fig)


def show_figure(widget: PlotlyView, fig) -> None:
    """Replace everything a figure widget shows (traces and layout) with ``fig``'s."""
    widget.set_figure(fig)


def row_label(r: Any) -> str:
    """One table line: symbol, price, nearest cluster distance, both clusters, notional within 2 %."""
    def pct(v: float) -> str:
        return f"{v:+.2f}%" if pd.notna(v) else "-"

    near = f"{r.nearest_cluster_pct:.2f}%" if pd.notna(r.nearest_cluster_pct) else "-"
    within = format_usd(r.long_within_2pct_usd + r.short_within_2pct_usd)
    return (f"{r.symbol:<9}{format_price(r.last_price):>11}{near:>9}{pct(r.long_cluster_pct):>10}"
            f"{pct(r.short_cluster_pct):>10}{within:>10}")


class ScanApp(GuardedComponent):
    """A scanned universe with its magnet zones and a per-symbol heatmap and map.

    Parameters
    ----------
    symbols
        Symbols to scan (default: ``n_symbols`` synthetic ones, ``SYN001`` ...).
    n_symbols
        Size of the default synthetic universe.
    window, timeframe
        Span and candle length of every market.
    source
        ``"sample"`` or an exchange whose store is read (see :func:`liqlab.scan.scan`).
    params
        Model settings of the scan and of the detail figures.
    executor
        Where the scan runs (``"serial"`` by default: an app's kernel is one process).
    """

    EXPECTED = (ValueError, KeyError, MarketDataError)

    def __init__(self, symbols: Sequence[str] | None = None, *, n_symbols: int = 12, window: str = "7d",
                 timeframe: str = "5m", source: Any = "sample", params: ModelParams | None = None,
                 executor: Any = "serial") -> None:
        import ipywidgets

        from liqlab.apps.guarded import widgets as w
        from liqlab.sim.universe import synthetic_symbols
        from liqlab.viz.scan_plots import magnet_zones_figure

        self.params = params or ModelParams()
        self.window, self.timeframe = window, timeframe
        self.source = resolve_source(source)
        self.symbols = list(symbols) if symbols is not None else synthetic_symbols(n_symbols)
        self.executor = executor
        self._scan()
        self.symbol = str(self.zones["symbol"].iloc[0])
        options = [(row_label(r), r.symbol) for r in self.zones.itertuples()]
        self.w_table = w.Select(options=options, value=self.symbol, rows=min(len(options), 14),
                                layout=w.Layout(width="100%"))
        self.w_table.add_class("liqlab-scan-table")
        self.w_rescan = w.Button(description="Rescan", icon="refresh", tooltip="run the scan again (new data)")
        self.w_rescan.add_class("liqlab-scan-rescan")
        self.w_rescan.on_click(lambda _: self._guarded(self.rescan))
        self.status = ipywidgets.HTML()
        self.status.add_class("liqlab-status")
        self.magnets = figure_widget(magnet_zones_figure(self.zones))
        heat, liqmap = self._figures(self.symbol)
        self.heatmap = figure_widget(heat)
        self.map = figure_widget(liqmap)
        self._set_status(self._scanned() + f"; showing {self.symbol}.")
        self.w_table.observe(self._on_row, names="value")
        self._guard_widget_states()
        header = w.HTML(CSS + f"<div class='liqlab-scan-header'>{HEADER}</div>")
        boxes = {}
        for name, widget in (("magnets", self.magnets), ("heatmap", self.heatmap), ("map", self.map)):
            boxes[name] = w.VBox([widget], layout=w.Layout(width="100%"))
            boxes[name].add_class(f"liqlab-scan-{name}")
        boxes["magnets"].layout.width = "58%"
        boxes["heatmap"].layout.width = "60%"
        boxes["map"].layout.width = "40%"
        table = w.VBox([header, self.w_table], layout=w.Layout(width="42%"))
        self.layout = w.VBox([
            w.HBox([self.w_rescan, self.status]),
            w.HBox([table, boxes["magnets"]], layout=w.Layout(width="100%")),
            w.HBox([boxes["heatmap"], boxes["map"]], layout=w.Layout(width="100%")),
        ])
        self.layout.add_class("liqlab-scan-app")

    # -- scanning -------------------------------------------------------------------------------
    def _scan(self) -> None:
        table = scan(self.symbols, self.window, self.params, timeframe=self.timeframe, source=self.source,
                     executor=self.executor)
        zones = magnet_zones(table)
        if zones.empty:
            raise MarketDataError("no symbol of the universe could be scanned: "
                                  + "; ".join(f"{r.symbol}: {r.error}" for r in table.itertuples()))
        self.table, self.zones = table, zones

    def _scanned(self) -> str:
        failed = self.table[self.table["error"] != ""]["symbol"].unique()
        return (f"Scanned {len(self.symbols)} symbols ({len(failed)} failed), {self.window} of "
                f"{self.timeframe} candles")

    def rescan(self) -> None:
        """Run the scan again (stored data may have grown) and redraw the table, chart and detail."""
        from liqlab.viz.scan_plots import magnet_zones_figure

        self._scan()
        keep = self.symbol if self.symbol in set(self.zones["symbol"]) else str(self.zones["symbol"].iloc[0])
        with self._mute():
            self.w_table.options = [(row_label(r), r.symbol) for r in self.zones.itertuples()]
            self.w_table.value = keep
        show_figure(self.magnets, magnet_zones_figure(self.zones))
        self.select(keep)
        self._set_status(self._scanned() + f"; showing {keep}.")

    # -- callbacks ------------------------------------------------------------------------------
    def _set_status(self, message: str, *, error: bool = False) -> None:
        message = visitor_text(message)  # the page is shared: no server paths, one bounded line
        self.message, self.error = message, error
        colour = "#e5484d" if error else "#9aa4b2"
        prefix = "Error: " if error else ""
        self.status.value = f"<span style='color:{colour}'>{prefix}{html.escape(message)}</span>"

    def _figures(self, symbol: str):
        from liqlab.viz.heatmap import heatmap_figure
        from liqlab.viz.liqmap import liquidation_map_figure

        market = self.source.load(symbol, self.timeframe, parse_window(self.window))
        result = compute_heatmap(market, self.params)
        heat = heatmap_figure(result, market, height=520)
        heat.update_layout(title=dict(text=f"{symbol}: liquidation heatmap, last {self.window}"))
        liqmap = liquidation_map_figure(result.snapshot(-1), height=520,
                                        title=f"{symbol}: liquidation map now")
        return heat, liqmap

    def select(self, symbol: str) -> None:
        """Show ``symbol``'s heatmap and map (one of the scanned symbols)."""
        if symbol not in set(self.zones["symbol"]):
            raise KeyError(f"{symbol!r} is not a scanned symbol with results")
        heat, liqmap = self._figures(symbol)
        show_figure(self.heatmap, heat)
        show_figure(self.map, liqmap)
        self.symbol = symbol
        self._set_status(f"Showing {symbol}.")

    def _on_row(self, change) -> None:
        if self._muted or change["new"] is None:
            return
        self._guarded(self.select, str(change["new"]))

    def _repr_mimebundle_(self, **kwargs):
        return self.layout._repr_mimebundle_(**kwargs)
