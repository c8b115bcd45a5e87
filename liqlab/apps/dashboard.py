"""The interactive explorer: ipywidgets wired to the engine and the figures.

:class:`Dashboard` holds the widgets, one figure widget built once
(:class:`~liqlab.apps.plotly_view.PlotlyView`) and a status line. Every widget change goes through
:meth:`Dashboard.read_inputs` (:mod:`liqlab.apps.dashboard_inputs`), which validates all values (a
Voila visitor can send anything over the widget channel) and raises :class:`InputError` with one
sentence for the status line; the figure then keeps its last good state. Recomputes are debounced
on the kernel's event loop and applied in place as one message holding only what changed. The
colour legend is an HTML element above the figure rather than plotly's colour bar, which plotly
would redraw on every update. Exports live in :mod:`liqlab.apps.dashboard_export`.

Data comes from the bundled sample (always available, offline) or from an exchange through the
local store (:func:`liqlab.sources.loader.load_market`); when the exchange or the store cannot
serve the request the dashboard falls back to the sample and says so.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from liqlab.apps.dashboard_export import EXPORT_MIN_INTERVAL, Exporter  # noqa: F401 - re-exported
from liqlab.apps.dashboard_inputs import (  # noqa: F401 - re-exported: the dashboard's public names
    CUSTOM,
    ENTRY_MODES,
    EXCHANGES,
    MAX_CANDLES,
    MAX_COLUMNS,
    MAX_VISIBLE_ROWS,
    PRICE_STYLES,
    SIDES,
    TARGET_ROWS,
    TILTS,
    TIMEFRAMES,
    WINDOWS,
    InputError,
    InputReader,
    Inputs,
    Loaded,
    _finite,
    _sample_symbols,
    auto_bin_size,
    default_loader,
)
from liqlab.apps.guarded import GuardedComponent, visitor_text
from liqlab.apps.multi_view import (
    breakdown_table_html, coverage_notes, venue_trace_names, window_notes, with_venue_bars,
)
from liqlab.apps.view_cache import shared_view, view_key
from liqlab.core.market import Market, MarketDataError
from liqlab.viz import plotting


#: Candles the engine runs on once when a kernel's first view came from another kernel (see ``_refresh``).
WARM_UP_CANDLES = 288


class Dashboard(GuardedComponent, InputReader, Exporter):
    """Widgets, one figure and a status line for exploring liquidation heatmaps.

    Parameters
    ----------
    symbol, exchange, timeframe, window
        Initial data selection (``exchange="sample"`` is the bundled offline sample).
    view
        ``"explorer"`` (heatmap large, snapshot map at the side, every control) or ``"map"``
        (the liquidation map large, with a play button over time, fewer controls).
    loader
        ``loader(exchange, symbol, timeframe, since, until, online) -> Loaded``; the default reads
        the sample or the store/exchange.
    debounce
        Seconds to wait for further changes before recomputing; 0 recomputes at once. A few
        milliseconds are enough for messages already queued together (a burst from one action)
        to become one recompute, and add little to each change.
    export_dir
        Folder for exports (not a widget: visitors cannot choose where files go).
    online
        Initial state of the "online" switch (ask exchanges for missing data).
    height
        Figure height in pixels.
    """

    EXPECTED = (InputError, MarketDataError, ValueError, KeyError, OSError)

    def __init__(
        self,
        symbol: str = "BTCUSDT",
        *,
        exchange: str = "sample",
        timeframe: str = "5m",
        window: str = "30d",
        view: str = "explorer",
        loader: Callable[..., Loaded] | None = None,
        debounce: float = 0.005,
        export_dir: str | os.PathLike | None = None,
        online: bool = False,
        height: int | None = None,
    ) -> None:
        from liqlab.apps.guarded import widgets as W

        if view not in ("explorer", "map"):
            raise ValueError(f"view must be 'explorer' or 'map', not {view!r}")
        from liqlab.core.brackets import available_tables
        from liqlab.core.leverage import LeverageMix, preset_names

        self.view = view
        self.loader = loader or default_loader
        self.debounce = float(debounce)
        self.export_dir = Path(export_dir or os.environ.get("LIQLAB_EXPORT_DIR", "exports")).resolve()
        self.height = height or (760 if view == "explorer" else 700)
        self._W = W
        self._mix_cls = LeverageMix
        self._presets = preset_names()
        self._tables = ["auto", *available_tables(), "flat 0.5%"]
        self._cache: dict[tuple, Loaded] = {}
        # (loaded market, settings, cut): the last window cut, reused while neither changes
        self._windowed: tuple | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._live_task: asyncio.Task | None = None
        self._muted = False
        self._last_export = 0.0
        self._parts: dict | None = None
        self.loaded: Loaded | None = None
        self._current_load: Loaded | None = None  # the load being drawn (set before self.loaded)
        self.market: Market | None = None
        self.result = None
        self.snapshot = None
        self.inputs: Inputs | None = None
        self.message = ""
        self.error = False
        self.compute_ms = 0.0
        self.updates = 0
        self.shared_view = False  # whether the first view came from another kernel's computation

        try:
            symbols = _sample_symbols()
        except Exception:  # the sample is optional for a store-only setup
            symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
        wide = {"description_width": "initial"}

        def cls(widget, name):
            widget.add_class(f"liqlab-{name}")
            return widget

        # data
        self.w_exchange = cls(W.Dropdown(options=EXCHANGES, value=exchange if exchange in EXCHANGES else "sample",
                                         description="Data", layout=W.Layout(width="200px"), style=wide), "exchange")
        self.w_symbol = cls(W.Combobox(value=symbol, options=symbols, description="Symbol", ensure_option=False,
                                       layout=W.Layout(width="190px"), style=wide, continuous_update=False), "symbol")
        self.w_timeframe = cls(W.Dropdown(options=TIMEFRAMES, value=timeframe if timeframe in TIMEFRAMES else "5m",
                                          description="Candles", layout=W.Layout(width="140px"), style=wide),
                               "timeframe")
        self.w_window = cls(W.ToggleButtons(options=[*WINDOWS, CUSTOM], value=window if window in WINDOWS else "30d",
                                            style={"button_width": "52px"}), "window")
        self.w_start = cls(W.DatePicker(description="From", layout=W.Layout(width="200px"), style=wide), "start")
        self.w_end = cls(W.DatePicker(description="to", layout=W.Layout(width="180px"), style=wide), "end")
        self.w_online = cls(W.Checkbox(value=bool(online), description="online", indent=False,
                                       layout=W.Layout(width="80px")), "online")
        self.w_live = cls(W.Checkbox(value=False, description="live refresh every", indent=False,
                                     layout=W.Layout(width="150px")), "live")
        self.w_live_s = cls(W.IntText(value=60, layout=W.Layout(width="70px")), "live-seconds")
        # model
        self.w_preset = cls(W.Dropdown(options=[*self._presets, CUSTOM], value="balanced", description="Leverage",
                                       layout=W.Layout(width="210px"), style=wide), "preset")
        self.w_mmr = cls(W.Dropdown(options=self._tables, value="auto", description="MMR table",
                                    layout=W.Layout(width="250px"), style=wide), "mmr")
        self.w_bin = cls(W.FloatText(value=0.0, description="Bin size (0 auto)", layout=W.Layout(width="200px"),
                                     style=wide), "bin")
        self.w_entry = cls(W.Dropdown(options=ENTRY_MODES, value="range", description="Entry",
                                      layout=W.Layout(width="160px"), style=wide), "entry")
        self.w_size = cls(W.FloatText(value=10_000.0, description="Position USD", layout=W.Layout(width="190px"),
                                      style=wide), "size")
        self.w_half = cls(W.FloatText(value=0.0, description="Half-life h (0 off)", layout=W.Layout(width="190px"),
                                      style=wide), "half-life")
        self.w_turnover = cls(W.BoundedFloatText(value=0.1, min=0.0, max=1.0, step=0.01, description="Turnover",
                                                 layout=W.Layout(width="150px"), style=wide), "turnover")
        self.w_same = cls(W.Checkbox(value=True, description="same-candle liquidations", indent=False,
                                     layout=W.Layout(width="190px")), "same-candle")
        self.w_tilt = cls(W.Dropdown(options=TILTS, value="none", description="Tilt", layout=W.Layout(width="200px"),
                                     style=wide), "tilt")
        self.w_tilt_k = cls(W.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="strength",
                                          continuous_update=False, layout=W.Layout(width="220px"), style=wide),
                            "tilt-strength")
        self.w_side = cls(W.Dropdown(options=SIDES, value="combined", description="Show",
                                     layout=W.Layout(width="170px"), style=wide), "side")
        self.w_price = cls(W.Dropdown(options=PRICE_STYLES, value="candles", description="Price",
                                      layout=W.Layout(width="160px"), style=wide), "price")
        mix = LeverageMix.preset("balanced")
        self.w_long = [cls(W.FloatSlider(value=w, min=0.0, max=1.0, step=0.01, description=f"{lev:g}x",
                                         continuous_update=False, readout_format=".2f",
                                         layout=W.Layout(width="340px")), f"long-{i}")
                       for i, (lev, w) in enumerate(zip(mix.leverages, mix.long))]
        self.w_short = [cls(W.FloatSlider(value=w, min=0.0, max=1.0, step=0.01, description=f"{lev:g}x",
                                          continuous_update=False, readout_format=".2f",
                                          layout=W.Layout(width="340px")), f"short-{i}")
                        for i, (lev, w) in enumerate(zip(mix.leverages, mix.short))]
        self._tier_leverages = tuple(mix.leverages)
        self._sliders_preset = "balanced"  # the preset the tier sliders show (see refresh)
        # time and output
        self.w_time = cls(W.IntSlider(value=0, min=0, max=1, description="Map at", readout=False,
                                      continuous_update=False, layout=W.Layout(width="60%"), style=wide), "time")
        self.w_time_label = cls(W.HTML(""), "time-label")
        self.w_play = cls(W.Play(value=0, min=0, max=1, step=1, interval=400, description="play"), "play")
        W.jslink((self.w_play, "value"), (self.w_time, "value"))
        self.w_export_csv = cls(W.Button(description="Data → CSV", icon="download"), "export-csv")
        self.w_export_parquet = cls(W.Button(description="Data → Parquet", icon="download"), "export-parquet")
        self.w_export_html = cls(W.Button(description="Figure → HTML", icon="download"), "export-html")
        self.status = cls(W.HTML(""), "status")
        self.w_legend = cls(W.HTML(""), "legend")
        self.w_breakdown = cls(W.HTML(""), "breakdown")  # per-exchange table ("all exchanges" only)
        self.w_export_csv.on_click(lambda _b: self._guarded(self.export, "csv"))
        self.w_export_parquet.on_click(lambda _b: self._guarded(self.export, "parquet"))
        self.w_export_html.on_click(lambda _b: self._guarded(self.export, "html"))

        # The figure is created from the first result (a page opened later gets the current one anyway)
        self.figure = None
        self.refresh()
        if self.figure is None:
            self.figure = self._new_figure(None)
        self._wire()
        self.layout = self._build_layout()
        self._guard_widget_states()  # after the layout, which makes the tier panel

    # -------------------------------------------------------------------------- building
    def _new_figure(self, parts: dict | None):
        """The figure widget, with ``parts`` as its initial data (empty traces when None)."""
        import plotly.graph_objects as go

        from liqlab.apps.plotly_view import PlotlyView

        names = ["time_anchor", "heatmap", "price_candles", "price_line", "realized_long", "predicted_long", "realized_short",
                 "predicted_short", "map_long", "map_short", "cum_long", "cum_short", "map_labels",
                 *venue_trace_names()]
        traces = plotting.make_traces(parts["traces"] if parts else {n: {} for n in names})
        for t in traces:
            if t.meta.startswith("map_"):
                t.update(xaxis="x2", yaxis="y")
            elif t.meta.startswith("cum_"):
                t.update(xaxis="x3", yaxis="y", mode="lines")
            elif t.meta.startswith(("realized_", "predicted_", "venue_")):
                t.update(xaxis="x", yaxis="y2")
        split = 0.74 if self.view == "explorer" else 0.42
        fig = go.Figure(data=traces, layout=plotting.heatmap_layout(self.height))
        fig.update_layout(plotting.explorer_axes(split, map_title="liquidation map: per level (USD)"))
        if parts:
            plotting.apply_layout(fig, parts["layout"])
        return PlotlyView(fig)

    def _build_layout(self):
        W = self._W
        data_row = W.HBox([self.w_exchange, self.w_symbol, self.w_timeframe, self.w_window],
                          layout=W.Layout(flex_flow="row wrap", align_items="center"))
        range_row = W.HBox([self.w_start, self.w_end, self.w_online, self.w_live, self.w_live_s,
                            W.HTML("s")], layout=W.Layout(flex_flow="row wrap", align_items="center"))
        model_row = W.HBox([self.w_preset, self.w_mmr, self.w_bin, self.w_entry, self.w_size, self.w_half,
                            self.w_turnover, self.w_same, self.w_tilt, self.w_tilt_k, self.w_side, self.w_price],
                           layout=W.Layout(flex_flow="row wrap", align_items="center"))
        tiers = W.HBox([
            W.VBox([W.HTML("<b>Long weights</b> by leverage"), *self.w_long]),
            W.VBox([W.HTML("<b>Short weights</b> by leverage"), *self.w_short]),
        ])
        # an Accordion keeps the tier sliders out of the way; the figure itself sits in a plain VBox.
        # The sliders go in when it is first opened: rendering 14 slider views (each measures its
        # readout, forcing a page layout) is work a first page view need not wait for.
        tiers_slot = W.VBox()
        tiers_box = W.Accordion(children=[tiers_slot], titles=("Leverage tiers (per side)",), selected_index=None)
        tiers_box.add_class("liqlab-tiers")

        def fill_on_open(change) -> None:
            if change["new"] is not None and not tiers_slot.children:
                tiers_slot.children = (tiers,)

        tiers_box.observe(fill_on_open, names="selected_index")
        self.w_tiers = tiers_box
        time_row = W.HBox([self.w_play, self.w_time, self.w_time_label], layout=W.Layout(align_items="center"))
        export_row = W.HBox([self.w_export_csv, self.w_export_parquet, self.w_export_html])
        if self.view == "map":
            controls = [data_row, W.HBox([self.w_preset, self.w_mmr, self.w_bin, self.w_side, self.w_price],
                                         layout=W.Layout(flex_flow="row wrap"))]
            body = [*controls, time_row, self.status, self.w_legend, self.figure, self.w_breakdown, export_row]
        else:
            body = [data_row, range_row, model_row, tiers_box, self.status, self.w_legend, self.figure,
                    self.w_breakdown, time_row, export_row]
        box = W.VBox(body, layout=W.Layout(width="100%"))
        box.add_class("liqlab-dashboard")
        return box

    def _wire(self) -> None:
        recompute = [self.w_exchange, self.w_symbol, self.w_timeframe, self.w_online, self.w_mmr, self.w_bin,
                     self.w_entry, self.w_size, self.w_half, self.w_turnover, self.w_same, self.w_tilt,
                     self.w_tilt_k, self.w_side, self.w_price,
                     *self.w_long, *self.w_short]
        for w in recompute:
            w.observe(self._on_change, names="value")
        self.w_window.observe(self._on_window, names="value")
        self.w_start.observe(self._on_dates, names="value")
        self.w_end.observe(self._on_dates, names="value")
        self.w_preset.observe(self._on_preset, names="value")
        for w in (*self.w_long, *self.w_short):
            w.observe(self._on_weight, names="value")
        self.w_time.observe(self._on_time, names="value")
        self.w_live.observe(self._on_live, names="value")

    def _repr_mimebundle_(self, **kwargs):
        return self.layout._repr_mimebundle_(**kwargs)

    # -------------------------------------------------------------------------- callbacks
    def _on_change(self, _change=None) -> None:
        if not self._muted:
            self.schedule()

    def _on_window(self, change) -> None:
        if self._muted or change["new"] == CUSTOM:
            return
        with self._mute():  # the dates follow the preset
            self.w_start.value = None
            self.w_end.value = None
        self.schedule()

    def _on_dates(self, _change) -> None:
        if self._muted:
            return
        with self._mute():
            self.w_window.value = CUSTOM
        self.schedule()

    def _on_preset(self, change) -> None:
        if self._muted or change["new"] == CUSTOM:
            return
        self.schedule()  # the tier sliders follow after the figure (see refresh)

    def _apply_preset(self, name: str) -> None:
        """Move the tier sliders to a known preset's weights (without recomputing)."""
        mix = self._mix_cls.preset(name)
        with self._mute():
            self._sliders_preset = name
            self._tier_leverages = tuple(mix.leverages)
            for ws, weights in ((self.w_long, mix.long), (self.w_short, mix.short)):
                for w, lev, val in zip(ws, mix.leverages, weights):
                    w.description = f"{lev:g}x"
                    w.value = round(float(val), 4)
                    w.layout.display = None
                for w in ws[len(mix.leverages):]:  # presets with fewer tiers than sliders
                    w.value = 0.0
                    w.layout.display = "none"

    def _on_weight(self, _change) -> None:
        if self._muted:
            return
        self._sliders_preset = CUSTOM
        with self._mute():
            self.w_preset.value = CUSTOM

    def _on_time(self, _change) -> None:
        if self._muted:
            return
        self._guarded(self._update_snapshot)

    def _on_live(self, change) -> None:
        if self._muted:
            return
        self._guarded(self.set_live, bool(change["new"]))

    def schedule(self) -> None:
        """Recompute after ``debounce`` seconds of quiet (at once without a running event loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self.debounce <= 0 or loop is None:
            self.refresh()
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = loop.call_later(self.debounce, self.refresh)

    def refresh(self) -> bool:
        """Validate the widgets, load, compute and update the figure in place.

        Returns True when the figure was updated; otherwise the status line says why.
        """
        self._handle = None
        ok = bool(self._guarded(self._refresh))
        # after the figure: 14 slider messages sent first would hold the figure's update back
        preset = self.w_preset.value
        if preset in self._presets and preset != self._sliders_preset:
            self._apply_preset(preset)
        return ok

    def _refresh(self) -> bool:
        from liqlab.core.engine import compute_heatmap

        t0 = time.perf_counter()
        inp = self.read_inputs()
        loaded = self._current_load = self._load(inp)
        market = self._windowed_market(loaded, inp)
        if len(market) > MAX_CANDLES:
            raise InputError(f"{len(market):,} candles is more than {MAX_CANDLES:,}; "
                             "choose a shorter window or longer candles")
        params = self._params(inp, market)

        def compute() -> tuple:
            res = compute_heatmap(market, params)
            snap = res.snapshot(self._snapshot_position(res, market))
            return res, snap, self._explorer_parts(res, market, snap, inp)

        if self.figure is None and loaded.source == "sample":
            # every visitor's kernel starts with the same view of the bundled sample: share it
            from liqlab.sim.datasets import sample_digest

            key = view_key("dashboard", self.view, inp, market.symbol, market.start, market.end, len(market),
                           sample_digest(market.symbol))
            (result, snapshot, parts), self.shared_view = shared_view(key, compute)
            if self.shared_view:
                # this kernel has not run the engine yet: do it now on a few candles, while it is
                # preheated, so that the visitor's first change does not pay for loading numba
                # and its compiled kernels (~1 s of CPU per visitor otherwise)
                warm = market.tail(min(len(market), WARM_UP_CANDLES))
                warm_res = compute_heatmap(warm, params)
                self._explorer_parts(warm_res, warm, warm_res.snapshot(len(warm) - 1), inp)
        else:
            result, snapshot, parts = compute()
        pos = int(result.candle_position(snapshot.time))
        if self.figure is None:
            self.figure = self._new_figure(parts)
        else:
            self.figure.apply(parts, self._parts)
        self.w_legend.value = plotting.colour_legend_html(parts["legend"])
        self.w_breakdown.value = breakdown_table_html(loaded, market)
        self._parts = parts
        self.loaded, self.market, self.result, self.snapshot, self.inputs = loaded, market, result, snapshot, inp
        self._sync_time_slider(len(market), pos)
        self.compute_ms = 1000 * (time.perf_counter() - t0)
        self.updates += 1
        notes = [loaded.note] if loaded.note else []
        notes += list(result.notes)
        notes += coverage_notes(loaded, market) + window_notes(inp, loaded, market)
        self._set_status("; ".join(n for n in notes if n), error=bool(loaded.note and loaded.source == "sample"
                                                                       and inp.exchange != "sample"))
        return True

    def _explorer_parts(self, result, market, snapshot, inp: Inputs) -> dict:
        parts = plotting.explorer_parts(result, market, snapshot, side=inp.side, price_style=inp.price_style,
                                        colorbar=False)
        return with_venue_bars(parts, self._loaded_for(market), market)

    def _loaded_for(self, market: Market) -> Loaded | None:
        """The load ``market`` was cut from, when it carries a per-exchange breakdown."""
        for ld in (self._current_load, self.loaded):
            if ld is not None and ld.market.breakdown is not None and ld.market.breakdown is market.breakdown:
                return ld
        return None

    def _snapshot_position(self, result, market: Market) -> int:
        """Keep the map time where the user put it when still inside the window, else the last candle."""
        n = len(market)
        if self.snapshot is not None and self.market is not None and self.w_time.value < self.w_time.max:
            when = self.snapshot.time
            if market.start <= when <= market.end:
                return int(result.candle_position(when))
        return n - 1

    def _sync_time_slider(self, n: int, pos: int) -> None:
        # one state message per widget instead of one per property
        with self._mute(), self.w_time.hold_sync(), self.w_play.hold_sync():
            self.w_time.max = max(n - 1, 1)
            self.w_time.value = pos
            self.w_play.max = max(n - 1, 1)
            self.w_play.step = max(1, n // 80)
            self.w_play.value = pos
        self._time_label()

    def _time_label(self) -> None:
        s = self.snapshot
        if s is not None:
            self.w_time_label.value = f"{s.time:%Y-%m-%d %H:%M} UTC · price {s.price:,.6g}"

    def _update_snapshot(self) -> None:
        if self.result is None or self.market is None or self.inputs is None:
            return
        raw = self.w_time.value
        n = len(self.market)
        if not isinstance(raw, (int, np.integer)) or not 0 <= raw < n:
            with self._mute():
                self.w_time.value = n - 1
            raise InputError(f"map time must be a candle position from 0 to {n - 1}, got {raw!r}"[:160])
        self.snapshot = self.result.snapshot(int(raw))
        parts = self._explorer_parts(self.result, self.market, self.snapshot, self.inputs)
        only_map = {"traces": {k: v for k, v in parts["traces"].items() if k.startswith(("map_", "cum_"))},
                    "layout": {k: v for k, v in parts["layout"].items() if k == "shapes"}}
        self.figure.apply(only_map, self._parts)
        self._parts = {**parts, "traces": {**self._parts["traces"], **only_map["traces"]}} if self._parts else parts
        self._time_label()
        self._set_status("")

    # -------------------------------------------------------------------------- status
    def source_text(self) -> str:
        """Where the data shown came from, with timestamps."""
        ld, m = self.loaded, self.market
        if ld is None or m is None:
            return "no data loaded"
        kind = {"sample": "bundled sample (offline, synthetic)", "store": "local store", "live": "live exchange"}
        return (f"Source: {kind.get(ld.source, ld.source)} · {m.label} · {m.start:%Y-%m-%d %H:%M} → "
                f"{m.end:%Y-%m-%d %H:%M} UTC · {len(m):,} candles · loaded {ld.loaded_at:%Y-%m-%d %H:%M:%S} UTC")

    def _set_status(self, message: str, *, error: bool = False) -> None:
        import html

        message = visitor_text(message)  # the page is shared: no server paths, one bounded line
        self.message = message
        self.error = error
        src = html.escape(self.source_text())
        timing = f" · computed in {self.compute_ms:.0f} ms" if self.result is not None else ""
        msg = ""
        if message:
            colour = "#ff6b6b" if error else "#c9a227"
            label = "Error" if error else "Note"
            msg = (f"<div class='liqlab-message' data-error='{int(error)}' style='color:{colour}'>"
                   f"{label}: {html.escape(message)}</div>")
        self.status.value = f"<div class='liqlab-source' style='font-size:12px;opacity:.85'>{src}{timing}</div>{msg}"

    # -------------------------------------------------------------------------- public API
    def set(self, **values) -> bool:
        """Set widgets by name and recompute once (for scripts and tests).

        Names: exchange, symbol, timeframe, window, start, end, preset, mmr, bin_size, entry,
        position_notional, half_life_hours, turnover, same_candle, tilt, tilt_strength, side,
        price_style, online, time.
        """
        names = {"exchange": self.w_exchange, "symbol": self.w_symbol, "timeframe": self.w_timeframe,
                 "window": self.w_window, "start": self.w_start, "end": self.w_end, "preset": self.w_preset,
                 "mmr": self.w_mmr, "bin_size": self.w_bin, "entry": self.w_entry,
                 "position_notional": self.w_size, "half_life_hours": self.w_half, "turnover": self.w_turnover,
                 "same_candle": self.w_same, "tilt": self.w_tilt,
                 "tilt_strength": self.w_tilt_k, "side": self.w_side, "price_style": self.w_price,
                 "online": self.w_online}
        time_value = values.pop("time", None)
        with self._mute():
            for key, value in values.items():
                if key not in names:
                    raise KeyError(f"unknown dashboard setting {key!r}; use one of {sorted(names)}")
                names[key].value = value
        ok = self.refresh()
        if time_value is not None:
            self.w_time.value = time_value
        return ok

    def set_live(self, on: bool, seconds: int | None = None) -> None:
        """Start or stop reloading the data every ``seconds`` (only for exchange data, online)."""
        if self._live_task is not None:
            self._live_task.cancel()
            self._live_task = None
        if not on:
            self._set_status("live refresh off")
            return
        secs = _finite(self.w_live_s.value if seconds is None else seconds, "refresh interval")
        if not 10 <= secs <= 3600:
            with self._mute():
                self.w_live.value = False
            raise InputError(f"refresh interval must lie between 10 and 3600 seconds, got {secs:g}")
        if self.w_exchange.value == "sample" or not self.w_online.value:
            with self._mute():
                self.w_live.value = False
            raise InputError("live refresh needs exchange data with 'online' on; the sample does not change")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            with self._mute():
                self.w_live.value = False
            raise InputError("live refresh needs a running kernel event loop") from None
        self._live_task = loop.create_task(self._live_loop(secs))
        self._set_status(f"live refresh every {secs:g} s")

    async def _live_loop(self, secs: float) -> None:
        while True:
            await asyncio.sleep(secs)
            self._cache.clear()  # ask the store/exchange again
            self.refresh()

