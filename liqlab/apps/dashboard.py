"""The interactive explorer: ipywidgets wired to the engine and the figures.

:class:`Dashboard` holds the widgets, one ``plotly`` ``FigureWidget`` built once, and a status
line. Every widget change goes through :meth:`Dashboard.read_inputs`, which validates all values
(a Voila visitor can send anything over the widget channel) and raises :class:`InputError` with
one sentence for the status line; the figure then keeps its last good state. Recomputes are
debounced on the kernel's event loop and applied in place as one plotly update. The colour
legend is an HTML element above the figure rather than plotly's colour bar, which plotly would
redraw on every update.

Data comes from the bundled sample (always available, offline) or from an exchange through the
local store (:func:`liqlab.sources.loader.load_market`); when the exchange or the store cannot
serve the request the dashboard falls back to the sample and says so.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from liqlab.apps.guarded import GuardedComponent, sentence
from liqlab.viz import plotting
from liqlab.core.market import Market, MarketDataError, make_market, timeframe_to_timedelta
from liqlab.core.resample import resample_market

if TYPE_CHECKING:
    from liqlab.core.leverage import LeverageMix

EXCHANGES = ("sample", "binanceusdm", "bybit", "okx")
TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h")
WINDOWS = {"12h": "12h", "1d": "1D", "3d": "3D", "7d": "7D", "30d": "30D", "90d": "90D", "1y": "365D"}
CUSTOM = "custom"
ENTRY_MODES = ("typical", "close", "ohlc4", "range")
TILTS = ("none", "long_short_ratio", "taker")
SIDES = ("combined", "long", "short")
PRICE_STYLES = ("candles", "line")
MAX_CANDLES = 120_000  # about 1 year of 5-minute candles
MAX_VISIBLE_ROWS = 1_500  # displayed price rows; more would only slow the browser
TARGET_ROWS = 400
MAX_COLUMNS = 250  # display columns: each column is ~400 cells the browser re-bins on every update
EXPORT_MIN_INTERVAL = 2.0  # seconds between exports, so a button cannot be used to fill a disk
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}(/[A-Z0-9]{2,10}(:[A-Z0-9]{2,10})?)?$")


class InputError(ValueError):
    """A widget value that cannot be used; the message is shown in the status line."""


@dataclass(frozen=True)
class Inputs:
    """Validated widget values."""

    exchange: str
    symbol: str
    timeframe: str
    window: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    preset: str
    mix: LeverageMix  # the preset's, or the custom one from the tier sliders
    mmr: str
    bin_size: float
    entry: str
    position_notional: float
    half_life_hours: float
    turnover: float
    same_candle: bool
    tilt: str
    tilt_strength: float
    side: str
    price_style: str
    online: bool

    @property
    def data_key(self) -> tuple:
        return (self.exchange, self.symbol, self.timeframe, self.online)


@dataclass
class Loaded:
    """A loaded market and where it came from."""

    market: Market
    source: str  # "sample", "store" or "live"
    loaded_at: pd.Timestamp
    note: str = ""


# ----------------------------------------------------------------------------- data
def _sample_symbols() -> list[str]:
    from liqlab.sim.datasets import sample_symbols

    return list(sample_symbols())


def default_loader(exchange: str, symbol: str, timeframe: str, since: pd.Timestamp | None,
                   until: pd.Timestamp | None, online: bool) -> Loaded:
    """Load a market for the dashboard.

    ``exchange="sample"`` reads the bundled sample (the whole series: the window is cut later).
    Otherwise the local store is read (and, with ``online``, the exchange asked for what the
    store lacks) through :func:`liqlab.sources.loader.load_market`.
    """
    now = pd.Timestamp.now(tz="UTC")
    if exchange == "sample":
        from liqlab.sim.datasets import load_sample

        market = load_sample(symbol)
        return Loaded(market, "sample", now)
    try:
        from liqlab.sources.loader import load_market
    except ImportError:  # older layout
        from liqlab.sources.exchange import load_market  # type: ignore[attr-defined,no-redef]
    market = load_market(exchange, symbol, timeframe, since, until, offline=not online)
    source = getattr(market, "source", "store")
    return Loaded(market, source if source in ("store", "live") else "store", now)


# ----------------------------------------------------------------------------- helpers
def _finite(x: Any, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{what} must be a finite number, got {x!r}")
    return v


def _choice(value: Any, options, what: str) -> str:
    if not isinstance(value, str) or value not in options:
        shown = repr(value)[:40]
        raise InputError(f"{what} {shown} is not one of {', '.join(map(str, options))}")
    return value


def auto_bin_size(lo: float, hi: float, target_rows: int = TARGET_ROWS) -> float:
    """A round bin size (1, 2, 2.5 or 5 x 10^k) giving about ``target_rows`` rows over [lo, hi]."""
    raw = max(hi - lo, hi * 1e-3) / target_rows
    exp = math.floor(math.log10(raw))
    cands = [m * 10.0 ** e for e in (exp - 1, exp, exp + 1) for m in (1.0, 2.0, 2.5, 5.0)]
    return min(cands, key=lambda c: abs(math.log(c / raw)))


def _ts(d) -> pd.Timestamp | None:
    if d is None:
        return None
    if isinstance(d, (dt.date, dt.datetime, pd.Timestamp)):
        t = pd.Timestamp(d)
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    raise InputError(f"dates must be calendar dates, got {d!r}"[:120])


# ----------------------------------------------------------------------------- the component
class Dashboard(GuardedComponent):
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
        import ipywidgets as W

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
        self.market: Market | None = None
        self.result = None
        self.snapshot = None
        self.inputs: Inputs | None = None
        self.message = ""
        self.error = False
        self.compute_ms = 0.0
        self.updates = 0

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
        self.w_export_csv.on_click(lambda _b: self._guarded(self.export, "csv"))
        self.w_export_parquet.on_click(lambda _b: self._guarded(self.export, "parquet"))
        self.w_export_html.on_click(lambda _b: self._guarded(self.export, "html"))

        # The figure is created from the first result: a FigureWidget's initial data is what a
        # page opened later (Voila) receives; updates sent before any view exists are not replayed.
        self.figure = None
        # plotly's widget imports take seconds, once per kernel: not part of "computed in"
        _figure_widget_class()
        self.refresh()
        if self.figure is None:
            self.figure = self._new_figure(None)
        self._wire()
        self.layout = self._build_layout()

    # -------------------------------------------------------------------------- building
    def _new_figure(self, parts: dict | None):
        """The FigureWidget, with ``parts`` as its initial data (empty traces when None)."""
        import plotly.graph_objects as go

        names = ["time_anchor", "heatmap", "price_candles", "price_line", "realized_long", "predicted_long", "realized_short",
                 "predicted_short", "map_long", "map_short", "cum_long", "cum_short", "map_labels"]
        traces = plotting.make_traces(parts["traces"] if parts else {n: {} for n in names})
        for t in traces:
            if t.meta.startswith("map_"):
                t.update(xaxis="x2", yaxis="y")
            elif t.meta.startswith("cum_"):
                t.update(xaxis="x3", yaxis="y", mode="lines")
            elif t.meta.startswith(("realized_", "predicted_")):
                t.update(xaxis="x", yaxis="y2")
        split = 0.74 if self.view == "explorer" else 0.42
        fig = go.Figure(data=traces, layout=plotting.heatmap_layout(self.height))
        fig.update_layout(
            xaxis=dict(domain=[0, split], anchor="y2", type="date", rangeslider=dict(visible=False), showgrid=False),
            yaxis=dict(domain=[0.3, 1.0], showgrid=False, tickformat=",.6~r"),
            yaxis2=dict(domain=[0.0, 0.25], anchor="x", tickformat="$.2s", zeroline=True, zerolinecolor="#666"),
            xaxis2=dict(domain=[split + 0.03, 1.0], anchor="y", tickformat="$.2s", showgrid=False,
                        title=dict(text="liquidation map: per level (USD)", font=dict(size=11))),
            xaxis3=dict(overlaying="x2", side="top", anchor="y", tickformat="$.2s", showgrid=False,
                        tickfont=dict(size=9)),
        )
        if parts:
            plotting.apply_layout(fig, parts["layout"])
        # built as a Figure first: a FigureWidget ships the data and layout it was created with,
        # and a page opened later (Voila) would miss changes made before it was displayed
        widget = _figure_widget_class()(fig)
        _no_echo(widget)
        return widget

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
            body = [*controls, time_row, self.status, self.w_legend, self.figure, export_row]
        else:
            body = [data_row, range_row, model_row, tiers_box, self.status, self.w_legend, self.figure, time_row,
                    export_row]
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
        self._guard_widget_states()

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

    # -------------------------------------------------------------------------- validation
    def read_inputs(self) -> Inputs:
        """All widget values, validated.

        Raises
        ------
        InputError
            The first value that cannot be used, in one sentence.
        """
        exchange = _choice(self.w_exchange.value, EXCHANGES, "data source")
        raw_symbol = self.w_symbol.value
        if not isinstance(raw_symbol, str):
            raise InputError(f"symbol must be text, got {type(raw_symbol).__name__}")
        symbol = raw_symbol.strip().upper()
        if not _SYMBOL_RE.match(symbol):
            raise InputError(f"symbol {raw_symbol[:30]!r} is not a market symbol such as BTCUSDT or BTC/USDT:USDT")
        if exchange == "sample":
            symbols = self.w_symbol.options or ()
            if symbol not in symbols:
                raise InputError(f"the sample has no {symbol}; choose one of {', '.join(symbols)}")
        timeframe = _choice(self.w_timeframe.value, TIMEFRAMES, "timeframe")
        window = _choice(self.w_window.value, [*WINDOWS, CUSTOM], "window")
        start, end = _ts(self.w_start.value), _ts(self.w_end.value)
        if window == CUSTOM:
            if start is None or end is None:
                raise InputError("pick both dates of the custom window (or a window preset)")
            end = end + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)  # the end date is inclusive
            if start >= end:
                raise InputError(f"the window starts ({start:%Y-%m-%d}) after it ends ({end:%Y-%m-%d})")
            if end - start > pd.Timedelta(days=3 * 366):
                raise InputError("the custom window is longer than 3 years; shorten it")
        preset = _choice(self.w_preset.value, [*self._presets, CUSTOM], "leverage preset")
        if preset == CUSTOM:
            tiers = len(self._tier_leverages)  # sliders past the tiers are hidden
            longs = tuple(_finite(w.value, f"long weight {w.description}") for w in self.w_long[:tiers])
            shorts = tuple(_finite(w.value, f"short weight {w.description}") for w in self.w_short[:tiers])
            for side, ws in (("long", longs), ("short", shorts)):
                if any(v < 0 or v > 1 for v in ws):
                    raise InputError(f"{side} weights must lie between 0 and 1")
            if sum(longs) <= 0 and sum(shorts) <= 0:
                raise InputError("all leverage weights are zero: give at least one tier some weight")
            mix = self._mix_cls(leverages=self._tier_leverages, long=longs, short=shorts, name="custom")
        else:  # the preset's own weights: the tier sliders are moved to them after the figure
            mix = self._mix_cls.preset(preset)
        mmr = _choice(self.w_mmr.value, self._tables, "MMR table")
        bin_size = _finite(self.w_bin.value, "bin size")
        if bin_size < 0:
            raise InputError(f"bin size must be positive (or 0 for automatic), got {bin_size:g}")
        entry = _choice(self.w_entry.value, ENTRY_MODES, "entry mode")
        size = _finite(self.w_size.value, "position size")
        if not 1.0 <= size <= 1e9:
            raise InputError(f"position size must lie between $1 and $1,000,000,000, got {size:,.6g}")
        half = _finite(self.w_half.value, "half-life")
        if half < 0 or half > 100_000:
            raise InputError(f"half-life must lie between 0 (off) and 100,000 hours, got {half:g}")
        if 0 < half < 0.1:
            raise InputError(f"half-life of {half:g} h is shorter than a candle; use at least 0.1 h or 0 (off)")
        turnover = _finite(self.w_turnover.value, "turnover")
        if not 0 <= turnover <= 1:
            raise InputError(f"turnover must lie between 0 (off) and 1, got {turnover:g}")
        same_candle = self.w_same.value
        if not isinstance(same_candle, bool):
            raise InputError("the same-candle switch must be on or off")
        tilt = _choice(self.w_tilt.value, TILTS, "tilt source")
        tilt_k = _finite(self.w_tilt_k.value, "tilt strength")
        if not 0 <= tilt_k <= 1:
            raise InputError(f"tilt strength must lie between 0 and 1, got {tilt_k:g}")
        side = _choice(self.w_side.value, SIDES, "side")
        price_style = _choice(self.w_price.value, PRICE_STYLES, "price style")
        online = self.w_online.value
        if not isinstance(online, bool):
            raise InputError("the online switch must be on or off")
        return Inputs(exchange, symbol, timeframe, window, start, end, preset, mix, mmr, bin_size,
                      entry, size, half, turnover, same_candle, tilt, tilt_k, side, price_style, online)

    # -------------------------------------------------------------------------- compute
    def _load(self, inp: Inputs) -> Loaded:
        key = inp.data_key + ((inp.start, inp.end) if inp.exchange != "sample" else ())
        if key in self._cache:
            return self._cache[key]
        since = inp.start
        if since is None and inp.exchange != "sample":
            since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(WINDOWS[inp.window])
        try:
            loaded = self.loader(inp.exchange, inp.symbol, "5m" if inp.exchange == "sample" else inp.timeframe,
                                 since, inp.end, inp.online)
        except Exception as exc:  # noqa: BLE001 - any source failure falls back to the sample
            if inp.exchange == "sample":
                raise InputError(f"the bundled sample could not be read: {sentence(exc)}") from exc
            fallback = self._sample_fallback(inp.symbol)
            fallback.note = f"{inp.exchange} {inp.symbol}: {sentence(exc)} Showing the bundled sample instead"
            loaded = fallback
        if len(self._cache) > 8:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = loaded
        return loaded

    def _sample_fallback(self, symbol: str) -> Loaded:
        base = symbol.split("/")[0].split(":")[0]
        options = list(self.w_symbol.options or ())
        pick = next((s for s in options if s.startswith(base)), options[0] if options else "BTCUSDT")
        loaded = self.loader("sample", pick, "5m", None, None, False)
        return Loaded(loaded.market, "sample", loaded.loaded_at, loaded.note)

    def _windowed_market(self, loaded: Loaded, inp: Inputs) -> Market:
        """The loaded market resampled (sample data) and cut to the window; the same object while
        neither changes, so figure parts drawn from the market alone are reused."""
        key = (inp.timeframe, inp.window, inp.start, inp.end)
        if self._windowed is not None and self._windowed[0] is loaded.market and self._windowed[1] == key:
            return self._windowed[2]
        market = loaded.market
        if inp.exchange == "sample" or loaded.source == "sample":
            market = resample_market(market, inp.timeframe) if inp.timeframe != market.timeframe else market
        market = self._window(market, inp)
        self._windowed = (loaded.market, key, market)
        return market

    def _window(self, market: Market, inp: Inputs) -> Market:
        if inp.window == CUSTOM:
            start, end = inp.start, inp.end
        else:
            end = market.end
            start = end - pd.Timedelta(WINDOWS[inp.window]) + timeframe_to_timedelta(market.timeframe)
        cut = market.slice(start, end)
        if len(cut) < 2:
            raise InputError(
                f"no candles between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}; "
                f"{market.label} covers {market.start:%Y-%m-%d} to {market.end:%Y-%m-%d}"
            )
        return cut

    def _params(self, inp: Inputs, market: Market):
        from liqlab.core.brackets import BracketTable, bundled_table
        from liqlab.core.engine import ModelParams

        if inp.mmr == "auto":
            brackets = None
        elif inp.mmr.startswith("flat"):
            brackets = BracketTable.flat(0.005)
        else:
            brackets = bundled_table(inp.mmr)
        lo, hi = plotting.visible_price_range(market)
        bin_size = inp.bin_size or auto_bin_size(lo, hi)
        rows = (hi - lo) / bin_size
        if rows > MAX_VISIBLE_ROWS:
            need = auto_bin_size(lo, hi, MAX_VISIBLE_ROWS)
            raise InputError(f"bin size {bin_size:g} gives {rows:,.0f} price rows over this window; "
                             f"use at least {need:g} (or 0 for automatic)")
        if bin_size > (hi - lo) / 3:
            raise InputError(f"bin size {bin_size:g} is wider than a third of the price range "
                             f"({lo:,.6g}-{hi:,.6g}); use a smaller one (or 0 for automatic)")
        return ModelParams(
            mix=inp.mix, entry=inp.entry, position_notional=inp.position_notional, brackets=brackets,
            bin_size=bin_size, half_life_hours=inp.half_life_hours or None, turnover=inp.turnover,
            same_candle=inp.same_candle, tilt=inp.tilt,
            tilt_strength=inp.tilt_strength, max_columns=MAX_COLUMNS,
        )

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
        loaded = self._load(inp)
        market = self._windowed_market(loaded, inp)
        if len(market) > MAX_CANDLES:
            raise InputError(f"{len(market):,} candles is more than {MAX_CANDLES:,}; "
                             "choose a shorter window or longer candles")
        params = self._params(inp, market)
        result = compute_heatmap(market, params)
        pos = self._snapshot_position(result, market)
        snapshot = result.snapshot(pos)
        parts = self._explorer_parts(result, market, snapshot, inp)
        if self.figure is None:
            self.figure = self._new_figure(parts)
        else:
            plotting.apply_parts(self.figure, parts, self._parts)
        self.w_legend.value = plotting.colour_legend_html(parts["legend"])
        self._parts = parts
        self.loaded, self.market, self.result, self.snapshot, self.inputs = loaded, market, result, snapshot, inp
        self._sync_time_slider(len(market), pos)
        self.compute_ms = 1000 * (time.perf_counter() - t0)
        self.updates += 1
        notes = [loaded.note] if loaded.note else []
        notes += list(result.notes)
        self._set_status("; ".join(n for n in notes if n), error=bool(loaded.note and loaded.source == "sample"
                                                                       and inp.exchange != "sample"))
        return True

    def _explorer_parts(self, result, market, snapshot, inp: Inputs) -> dict:
        return plotting.explorer_parts(result, market, snapshot, side=inp.side, price_style=inp.price_style,
                                       colorbar=False)

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
        plotting.apply_parts(self.figure, only_map, self._parts)
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

    def export(self, kind: str) -> Path:
        """Write the shown data (``"csv"``, ``"parquet"``) or figure (``"html"``) to the export folder.

        Returns the path written; the status line reports it.
        """
        if kind not in ("csv", "parquet", "html"):
            raise InputError(f"export kind must be csv, parquet or html, not {kind!r}")
        if self.result is None or self.market is None or self.snapshot is None:
            raise InputError("nothing to export yet")
        now = time.monotonic()
        if now - self._last_export < EXPORT_MIN_INTERVAL:
            raise InputError("exports are limited to one every 2 seconds")
        self._last_export = now
        self.export_dir.mkdir(parents=True, exist_ok=True)
        m = self.market
        stem = f"{m.exchange}_{_safe(m.symbol)}_{m.timeframe}_{m.start:%Y%m%dT%H%M}_{m.end:%Y%m%dT%H%M}"
        if kind == "html":
            inp = self.inputs
            fig = plotting.explorer_figure(self.result, m, self.snapshot, side=inp.side, price_style=inp.price_style)
            path = self.export_dir / f"{stem}.html"
            fig.write_html(path, include_plotlyjs=True, full_html=True)
        else:
            frame = self.data_frame()
            path = self.export_dir / f"{stem}.{kind}"
            if kind == "csv":
                frame.to_csv(path)
            else:
                frame.to_parquet(path)
        self._set_status(f"exported to {path}")
        return path

    def data_frame(self) -> pd.DataFrame:
        """The shown window per candle: market columns, realized and predicted liquidations."""
        m, r = self.market, self.result
        frame = m.data.copy()
        if m.liquidations is not None:
            frame["realized_long_usd"] = m.liquidations["long_usd"]
            frame["realized_short_usd"] = m.liquidations["short_usd"]
        frame["predicted_long_usd"] = r.predicted["long_usd"]
        frame["predicted_short_usd"] = r.predicted["short_usd"]
        return frame


_DATA_ARRAYS = ("x", "y", "z", "customdata", "open", "high", "low", "close", "hovertext")


def _figure_widget_class():
    """The dashboard's figure widget class (see :func:`_light_widget_class`)."""
    from liqlab.apps.figure_widget import figure_widget_class

    return _light_widget_class(figure_widget_class())


@functools.lru_cache(maxsize=4)
def _light_widget_class(base):
    """``base`` (a ``go.FigureWidget`` class, see :mod:`liqlab.apps.figure_widget`), made not to fold the
    browser's computed defaults back into Python.

    After every update the browser sends the difference between plotly.js's full trace state
    and the model's (``_js2py_traceDeltas``). Stock ``FigureWidget`` stores it as defaults and
    then deletes the overlapping properties (``x``, ``y``, ``customdata`` ...) from its own data
    *and from the browser's model*, so the next difference again holds those whole arrays, as
    JSON: about 0.9 MB each way per update for the dashboard's heatmap. This subclass only
    marks the edit as finished (the figure's data stay what Python set), and, where views report
    that difference at all (``base.reports_state``), sends all of a trace's arrays whenever one
    of them changes, so that the difference stays small.
    """
    from plotly.basedatatypes import Undefined
    from traitlets import observe

    class LightFigureWidget(base):
        def _send_update_msg(self, restyle_data, relayout_data, trace_indexes=None, source_view_id=None):
            # The browser's model keeps the data it was created with: whatever an update does not
            # carry, its view then reports back as a difference (whole arrays as JSON). So when
            # a trace's arrays change, send all of its arrays (binary, cheap).
            indexes = self._normalize_trace_indexes(trace_indexes)
            restyle = dict(restyle_data or {})
            per_trace = [k for k, v in restyle.items() if isinstance(v, list) and len(v) == len(indexes)]
            touched = [any(k in _DATA_ARRAYS and restyle[k][j] is not Undefined for k in per_trace)
                       for j in range(len(indexes))]
            # (only where views report their state back: the served front end does not)
            if self.reports_state and any(touched) and len(per_trace) == len(restyle):
                for key in _DATA_ARRAYS:
                    values = list(restyle.get(key, [Undefined] * len(indexes)))
                    for j, idx in enumerate(indexes):
                        current = self.data[idx]._props.get(key) if touched[j] else None
                        if values[j] is Undefined and current is not None:
                            values[j] = current
                    if any(v is not Undefined for v in values):
                        restyle[key] = values
            super()._send_update_msg(restyle, relayout_data, trace_indexes, source_view_id)

        @observe("_js2py_traceDeltas")
        def _handler_js2py_traceDeltas(self, change):
            if change["new"]:
                self._trace_edit_in_process = False
                if not self._layout_edit_in_process:
                    while self._waiting_edit_callbacks:
                        self._waiting_edit_callbacks.pop()()
            self._js2py_traceDeltas = None

    return LightFigureWidget


def _no_echo(widget) -> None:
    """Stop the kernel echoing a FigureWidget's browser-to-Python messages back to the browser.

    After every update the browser reports the figure's full computed state (``_js2py_*``:
    hundreds of kB when arrays change); ipywidgets 8 echoes each such value back to every view,
    which then parses it again for nothing. Per-instance trait metadata turns the echo off for
    these messages only (``traitlets`` reads ``_<trait>_metadata`` before the class's).
    """
    for name in widget.trait_names():
        if name.startswith("_js2py_"):
            setattr(widget, f"_{name}_metadata", {"echo_update": False})


def _safe(symbol: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", symbol)
