"""The explorer's inputs: choices and limits, validation of widget values, and data loading.

:class:`InputReader` is the part of :class:`~liqlab.apps.dashboard.Dashboard` that reads its widgets
into validated :class:`Inputs` (a Voila visitor can send anything over the widget channel: every
refusal is an :class:`InputError` with one sentence for the status line), loads the market
(bundled sample, local store or exchange, falling back to the sample) and cuts it to the window.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from liqlab.apps.guarded import sentence
from liqlab.core.market import Market, timeframe_to_timedelta
from liqlab.core.resample import resample_market
from liqlab.viz import plotting

if TYPE_CHECKING:
    from liqlab.core.leverage import LeverageMix

EXCHANGES = ("sample", "binanceusdm", "bybit", "okx", "all exchanges")
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
    store lacks) through :func:`liqlab.sources.loader.load_market`. ``exchange="all exchanges"``
    sums the venues stored for the symbol (:func:`liqlab.apps.multi_view.load_all_exchanges`).
    """
    now = pd.Timestamp.now(tz="UTC")
    if exchange == "all exchanges":
        from liqlab.apps.multi_view import load_all_exchanges

        return load_all_exchanges(symbol, timeframe, since, until)
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


class InputReader:
    """Mixin of :class:`~liqlab.apps.dashboard.Dashboard`: widget values to :class:`Inputs`, and the
    market those inputs select (loaded, cached, resampled and cut to the window)."""

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
        # a preset's load reaches back the preset's length: a longer preset must not reuse a shorter one's
        key = inp.data_key + ((inp.window, inp.start, inp.end) if inp.exchange != "sample" else ())
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
            from liqlab.apps.multi_view import visitor_text  # no server paths in a visitor's status line

            fallback.note = visitor_text(f"{inp.exchange} {inp.symbol}: {sentence(exc)} Showing the bundled sample instead")
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

