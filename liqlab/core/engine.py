"""The liquidation heatmap model: positions in from open interest, out by touch, closing and ageing.

Pure compute: :func:`compute_heatmap` takes a :class:`~liqlab.core.market.Market` and
:class:`ModelParams` and returns a frozen :class:`HeatmapResult`; it never fetches, prints or plots.

The model (GUIDE section 3)
---------------------------
*Positions in.* Open interest counts each contract once and every contract has a long and a short
holder, so a rise in OI opens that much notional on **both** sides. By default the change is taken
in contracts (``OI / close``), so that a price move alone, which changes OI in quote currency
without any trade, opens nothing; ``oi_change="quote"`` uses the raw quote change instead. New
notional is split over leverage tiers by the :class:`~liqlab.core.leverage.LeverageMix` and, optionally,
tilted between the sides by the long/short account ratio or taker buy share. Entry prices come from
the candle: ``"range"`` (spread uniformly over ``[low, high]``, the default: trades happen all over
the candle), ``"typical"`` ``(high+low+close)/3``, ``"close"`` or ``"ohlc4"``. Each tier's level is its isolated-margin liquidation price
with the maintenance-margin bracket of ``position_notional`` (see :mod:`liqlab.core.brackets`).
*Turnover* (``turnover``, default 0.1): net OI changes hide the positions that are opened while
others close; that share of each candle's traded notional is closed pro rata and re-opened at the
candle's prices, which keeps the book refreshed near the price without changing OI.

*Positions out.* (1) Touch: a long level is liquidated when a later candle's low reaches it (a short
level, a high); positions opened in a candle are vulnerable from the next candle, except the share
whose level lies beyond the candle's close (``same_candle``, on by default): every entry precedes
the close, so the price crossed those levels after they were opened, and they are liquidated in
their own candle. The notional swept is the model's **predicted liquidation** of that candle.
(2) Closing: a fall in OI closes positions pro rata across all levels, net of what the model
liquidated in that candle. (3) Ageing (optional): a half-life, per tier or for all, for positions
closed for other reasons.

Levels are snapped to a price grid. With ``bin_size`` (or the automatic size) bins sit on a fixed
lattice ``k * bin_size`` chosen from the first candle only, so the map at time *t* depends on data
up to *t* only (no lookahead). ``n_bins`` instead sizes bins from the whole window's range: a
display convenience, not lookahead-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from liqlab.core.brackets import BracketError, BracketTable, default_brackets, level_factors
from liqlab.core.leverage import LeverageMix
from liqlab.core.market import Market, timeframe_to_timedelta

EntryMode = Literal["typical", "close", "ohlc4", "range"]
TiltSource = Literal["none", "long_short_ratio", "taker"]
MAX_BINS = 20_000
_SIDE_COLUMNS = pd.Index(["long_usd", "short_usd"])


class EngineError(ValueError):
    """Model parameters that cannot be used, with what to change."""


@dataclass(frozen=True)
class ModelParams:
    """Every setting of the model; each is a widget in the dashboard.

    Parameters
    ----------
    mix
        Leverage mix, or a preset name (``"balanced"``), resolved by :meth:`LeverageMix.resolve`.
    entry
        Where positions opened in a candle enter: ``"range"`` (uniform over low-high), ``"typical"``,
        ``"close"`` or ``"ohlc4"``.
    position_notional
        Size of a representative position (quote currency); picks the MMR bracket.
    brackets
        Maintenance-margin table; None uses the bundled table for the market's exchange/symbol.
    bin_size
        Price bin width (quote currency). None with ``n_bins`` None: automatic, about
        ``auto_bin_fraction`` of the first close, rounded to 1, 2 or 5 times a power of ten.
    n_bins
        Alternative to ``bin_size``: that many bins over the window's level range.
    auto_bin_fraction
        Automatic bin width as a fraction of the first close.
    half_life_hours
        Ageing: None (off), one half-life for every tier, or one per tier.
    tilt
        Side tilt source: ``"none"``, ``"long_short_ratio"`` or ``"taker"``.
    tilt_strength
        0 = no tilt, 1 = the long share follows the source fully.
    oi_change
        ``"contracts"`` (default: OI/close, price moves open nothing) or ``"quote"``.
    turnover
        Share of each candle's traded notional (``volume * entry``) that replaces existing positions:
        closed pro rata and re-opened at this candle's prices on both sides, leaving OI unchanged.
        Net OI changes miss this churn, which keeps the book refreshed near the price. 0 = off.
    same_candle
        Liquidate in the entry candle the share of new positions whose level lies beyond the
        candle's close (above it for longs, below for shorts): every entry precedes the close, so
        the price crossed those levels after they were opened. False: new positions are only
        vulnerable from the next candle.
    max_columns
        Most display columns in the heatmap (0 = predictions only, fastest).
    """

    mix: LeverageMix | str = "balanced"
    entry: EntryMode = "range"
    position_notional: float = 10_000.0
    brackets: BracketTable | None = None
    bin_size: float | None = None
    n_bins: int | None = None
    auto_bin_fraction: float = 0.001
    half_life_hours: float | Sequence[float] | None = None
    tilt: TiltSource = "none"
    tilt_strength: float = 1.0
    oi_change: Literal["contracts", "quote"] = "contracts"
    turnover: float = 0.1
    same_candle: bool = True
    max_columns: int = 1000

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mix", LeverageMix.resolve(self.mix))
        except ValueError as exc:
            raise EngineError(str(exc)) from exc
        if self.entry not in ("typical", "close", "ohlc4", "range"):
            raise EngineError(f"entry must be 'typical', 'close', 'ohlc4' or 'range', not {self.entry!r}")
        if not _finite_positive(self.position_notional):
            raise EngineError(f"position_notional must be a positive number, got {self.position_notional!r}")
        if self.bin_size is not None and not _finite_positive(self.bin_size):
            raise EngineError(f"bin_size must be a positive price step, got {self.bin_size!r}")
        if self.n_bins is not None and (not isinstance(self.n_bins, (int, np.integer)) or not 10 <= self.n_bins <= MAX_BINS):
            raise EngineError(f"n_bins must be a whole number from 10 to {MAX_BINS}, got {self.n_bins!r}")
        if self.bin_size is not None and self.n_bins is not None:
            raise EngineError("give bin_size or n_bins, not both")
        if not (_finite_positive(self.auto_bin_fraction) and self.auto_bin_fraction <= 0.05):
            raise EngineError(f"auto_bin_fraction must lie in (0, 0.05], got {self.auto_bin_fraction!r}")
        hl = self.half_life_hours
        if hl is not None:
            values = np.atleast_1d(np.asarray(hl, dtype=float))
            if values.size not in (1, self.mix.n_tiers):
                raise EngineError(
                    f"half_life_hours needs one value or one per tier ({self.mix.n_tiers}), got {values.size}"
                )
            if np.any(~np.isfinite(values)) or np.any(values <= 0):
                raise EngineError(f"half_life_hours must be positive, got {hl!r}")
        if self.tilt not in ("none", "long_short_ratio", "taker"):
            raise EngineError(f"tilt must be 'none', 'long_short_ratio' or 'taker', not {self.tilt!r}")
        if not (isinstance(self.tilt_strength, (int, float)) and 0.0 <= self.tilt_strength <= 1.0):
            raise EngineError(f"tilt_strength must lie in [0, 1], got {self.tilt_strength!r}")
        if self.oi_change not in ("contracts", "quote"):
            raise EngineError(f"oi_change must be 'contracts' or 'quote', not {self.oi_change!r}")
        if not (isinstance(self.turnover, (int, float)) and math.isfinite(self.turnover) and 0.0 <= self.turnover <= 1.0):
            raise EngineError(f"turnover must lie in [0, 1], got {self.turnover!r}")
        if not isinstance(self.same_candle, (bool, np.bool_)):
            raise EngineError(f"same_candle must be True or False, got {self.same_candle!r}")
        if not isinstance(self.max_columns, (int, np.integer)) or not 0 <= self.max_columns <= 20_000:
            raise EngineError(f"max_columns must be a whole number from 0 to 20000, got {self.max_columns!r}")

    def replace(self, **changes) -> "ModelParams":
        """A copy with some settings changed (validated again)."""
        return replace(self, **changes)


def _finite_positive(x) -> bool:
    try:
        return math.isfinite(float(x)) and float(x) > 0
    except (TypeError, ValueError):
        return False


def nice_step(x: float) -> float:
    """Round a positive step to 1, 2 or 5 times a power of ten (at or below ``x``)."""
    exp = math.floor(math.log10(x))
    base = 10.0 ** exp
    for m in (5.0, 2.0, 1.0):
        if m * base <= x * (1 + 1e-12):
            return m * base
    return base


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceGrid:
    """Bins ``[p0 + b*step, p0 + (b+1)*step)`` for ``b < n_bins``; levels are snapped to bins."""

    p0: float
    step: float
    n_bins: int

    @property
    def edges(self) -> np.ndarray:
        return self.p0 + self.step * np.arange(self.n_bins + 1)

    @property
    def centres(self) -> np.ndarray:
        return self.p0 + self.step * (np.arange(self.n_bins) + 0.5)

    def bin_of(self, price) -> np.ndarray:
        return np.floor((np.asarray(price, float) - self.p0) / self.step).astype(np.int64)


@dataclass(frozen=True)
class _Prepared:
    """Arrays the kernel consumes, derived from a market and parameters."""

    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    entry_lo: np.ndarray
    entry_hi: np.ndarray
    new_long: np.ndarray
    new_short: np.ndarray
    drop: np.ndarray
    churn: np.ndarray
    oi_prev: np.ndarray
    long_factor: np.ndarray  # [2, k]: factor, weight
    short_factor: np.ndarray
    leverages: np.ndarray
    decay_per_tier: np.ndarray
    grid: PriceGrid
    notes: tuple[str, ...]
    same_candle: bool = False


def _entry_prices(o, h, l, c, mode: str) -> tuple[np.ndarray, np.ndarray]:
    if mode == "typical":
        p = (h + l + c) / 3.0
        return p, p
    if mode == "close":
        return c, c
    if mode == "ohlc4":
        p = (o + h + l + c) / 4.0
        return p, p
    return l, h  # "range"


def _tilt(market: Market, params: ModelParams) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Multipliers for long and short entries from the chosen tilt source (mean 1 across sides)."""
    n = len(market)
    ones = np.ones(n)
    if params.tilt == "none" or params.tilt_strength == 0:
        return ones, ones, None
    if params.tilt == "long_short_ratio":
        if "long_short_ratio" not in market.data:
            return ones, ones, "no long/short ratio in this market: side tilt off"
        r = market.column("long_short_ratio")
        share = np.where(np.isfinite(r) & (r > 0), r / (1.0 + r), 0.5)
    else:
        if "taker_buy_volume" not in market.data:
            return ones, ones, "no taker buy volume in this market: side tilt off"
        v = market.column("volume")
        b = market.column("taker_buy_volume")
        share = np.where(v > 0, np.clip(b / np.where(v > 0, v, 1.0), 0.0, 1.0), 0.5)
    skew = params.tilt_strength * (2.0 * share - 1.0)
    return 1.0 + skew, 1.0 - skew, None


def _tier_levels(market: Market, params: ModelParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Level factors per tier for both sides, capping leverage at what the bracket allows."""
    mix: LeverageMix = params.mix  # type: ignore[assignment]
    table = params.brackets or default_brackets(market.exchange, market.symbol)
    notes: list[str] = []
    try:
        _, _, max_lev = table.lookup(np.array([params.position_notional]))
    except BracketError as exc:
        raise EngineError(str(exc)) from exc
    lev = np.asarray(mix.leverages, float)
    capped = np.minimum(lev, max_lev[0])
    if np.any(capped < lev):
        over = ", ".join(f"{x:g}x" for x in lev[capped < lev])
        notes.append(f"{over} capped at {max_lev[0]:g}x, the most {table.name} allows for "
                     f"{params.position_notional:,.0f} positions")
    kwargs = dict(brackets=table, notional=params.position_notional, contract=market.contract)
    long_f = level_factors(capped, "long", **kwargs)
    short_f = level_factors(capped, "short", **kwargs)
    return capped, long_f, short_f, notes


def _make_grid(market: Market, params: ModelParams, lo_level: float, hi_level: float) -> PriceGrid:
    if params.n_bins is not None:
        step = (hi_level - lo_level) / (params.n_bins - 1)
        if step <= 0:
            step = max(hi_level * 1e-4, 1e-12)
        p0 = lo_level - 0.5 * step
        return PriceGrid(p0=p0, step=step, n_bins=int(params.n_bins))
    step = params.bin_size or nice_step(float(market.data["close"].iloc[0]) * params.auto_bin_fraction)
    p0 = math.floor(lo_level / step) * step
    n_bins = int(math.floor((hi_level - p0) / step)) + 1
    if n_bins > MAX_BINS:
        need = nice_step((hi_level - lo_level) / MAX_BINS * 2)
        raise EngineError(
            f"bin size {step:g} gives {n_bins:,} price bins over {lo_level:,.6g}-{hi_level:,.6g}; "
            f"the limit is {MAX_BINS:,}: use a bin size of at least {need:g}"
        )
    return PriceGrid(p0=p0, step=step, n_bins=max(n_bins, 1))


def prepare(market: Market, params: ModelParams) -> _Prepared:
    """Derive the kernel's arrays (entries, OI flows, tier levels, grid) from a market."""
    o, h, l, c = (market.column(k) for k in ("open", "high", "low", "close"))
    oi = market.column("open_interest")
    n = len(market)
    lev, long_f, short_f, notes = _tier_levels(market, params)
    mix: LeverageMix = params.mix  # type: ignore[assignment]
    w_long, w_short = mix.weights("long"), mix.weights("short")
    # 1x-like long levels at 0 can never be reached: drop their weight
    w_long = np.where(long_f > 0, w_long, 0.0)
    w_short = np.where(np.isfinite(short_f), w_short, 0.0)
    short_f = np.where(np.isfinite(short_f), short_f, 0.0)

    entry_lo, entry_hi = _entry_prices(o, h, l, c, params.entry)
    if params.oi_change == "contracts":
        contracts = oi / c
        delta = np.diff(contracts, prepend=contracts[:1])
        entry_mid = 0.5 * (entry_lo + entry_hi)
        opened = np.where(delta > 0, delta * entry_mid, 0.0)
        drop = np.where(delta < 0, -delta * c, 0.0)
        oi_prev = np.concatenate([[0.0], contracts[:-1]]) * c
    else:
        delta = np.diff(oi, prepend=oi[:1])
        opened = np.maximum(delta, 0.0)
        drop = np.maximum(-delta, 0.0)
        oi_prev = np.concatenate([[0.0], oi[:-1]])
    churn = np.zeros(n)
    if params.turnover > 0:
        traded = market.column("volume") * 0.5 * (entry_lo + entry_hi)
        # replaced notional cannot exceed what is open
        churn = np.minimum(params.turnover * traded, oi_prev)
        opened = opened + churn
    up_long, up_short, note = _tilt(market, params)
    if note:
        notes.append(note)
    new_long = opened * up_long
    new_short = opened * up_short

    # per-candle survival from half-lives
    step_hours = timeframe_to_timedelta(market.timeframe).total_seconds() / 3600.0 if n else 1.0
    if params.half_life_hours is None:
        decay = np.ones(len(lev))
    else:
        hl = np.broadcast_to(np.atleast_1d(np.asarray(params.half_life_hours, float)), lev.shape)
        decay = 0.5 ** (step_hours / hl)

    used_l = long_f[w_long > 0]
    used_s = short_f[w_short > 0]
    lo_candidates = [float(l.min())] if n else [1.0]
    hi_candidates = [float(h.max())] if n else [1.0]
    if used_l.size:
        lo_candidates.append(float(entry_lo.min() * used_l.min()))
        hi_candidates.append(float(entry_hi.max() * used_l.max()))
    if used_s.size:
        lo_candidates.append(float(entry_lo.min() * used_s.min()))
        hi_candidates.append(float(entry_hi.max() * used_s.max()))
    grid = _make_grid(market, params, min(lo_candidates), max(hi_candidates))
    return _Prepared(
        high=h, low=l, close=c, entry_lo=entry_lo, entry_hi=entry_hi,
        new_long=new_long, new_short=new_short, drop=drop, churn=churn, oi_prev=oi_prev,
        long_factor=np.vstack([long_f, w_long]), short_factor=np.vstack([short_f, w_short]),
        leverages=lev, decay_per_tier=decay, grid=grid, notes=tuple(notes),
        same_candle=bool(params.same_candle),
    )


def _run(prep: _Prepared, upto: int, snap_at: np.ndarray, merge_tiers: bool):
    from liqlab.core.kernels import run_engine

    k = prep.leverages.size
    if merge_tiers and np.all(prep.decay_per_tier == prep.decay_per_tier[0]):
        slot_of_tier = np.zeros(k, np.int64)
        decay = prep.decay_per_tier[:1].copy()
    else:
        slot_of_tier = np.arange(k, dtype=np.int64)
        decay = prep.decay_per_tier.copy()
    g = prep.grid
    sl = slice(0, upto)
    return run_engine(
        prep.high[sl], prep.low[sl], prep.close[sl], prep.entry_lo[sl], prep.entry_hi[sl],
        prep.new_long[sl], prep.new_short[sl], prep.drop[sl], prep.churn[sl], prep.oi_prev[sl],
        prep.long_factor, prep.short_factor, slot_of_tier, decay,
        float(g.p0), float(g.step), int(g.n_bins), snap_at.astype(np.int64),
        np.zeros(0, np.float32), prep.same_candle,
    )


def display_columns(n: int, max_columns: int) -> np.ndarray:
    """Candle indices closing each display column: ``min(n, max_columns)`` evenly spaced ends."""
    if n == 0 or max_columns == 0:
        return np.zeros(0, np.int64)
    cols = min(n, max_columns)
    return ((np.arange(1, cols + 1) * n) // cols - 1).astype(np.int64)


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LiquidationMap:
    """The liquidation map at one moment: outstanding notional per price level.

    ``long_usd[b]`` is long notional whose liquidation level lies in bin ``b`` (below the price);
    ``short_usd[b]`` likewise for shorts (above). ``*_by_tier`` split them by leverage tier.
    """

    time: pd.Timestamp
    price: float
    prices: np.ndarray
    bin_size: float
    long_usd: np.ndarray
    short_usd: np.ndarray
    long_by_tier: np.ndarray
    short_by_tier: np.ndarray
    leverages: tuple[float, ...]

    @property
    def cum_long(self) -> np.ndarray:
        """Long notional liquidated if price falls to each level: cumulative from the price downward.

        Zero for levels above the current price.
        """
        below = self.prices <= self.price
        vals = np.where(below, self.long_usd, 0.0)
        return np.where(below, np.cumsum(vals[::-1])[::-1], 0.0)

    @property
    def cum_short(self) -> np.ndarray:
        """Short notional liquidated if price rises to each level: cumulative from the price upward."""
        above = self.prices >= self.price
        vals = np.where(above, self.short_usd, 0.0)
        return np.where(above, np.cumsum(vals), 0.0)

    def leverage_share(self, side: str) -> np.ndarray:
        """Share of each tier in each bin, shape (tiers, bins); NaN where a bin is empty."""
        by = self.long_by_tier if side == "long" else self.short_by_tier
        tot = by.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tot > 0, by / np.where(tot > 0, tot, 1.0), np.nan)

    def nearest_cluster(self, side: str, threshold: float = 0.5) -> tuple[float, float, float] | None:
        """The nearest bin holding at least ``threshold`` x the side's largest bin.

        Longs are searched below the price, shorts above. Returns ``(price, notional,
        distance_pct)`` (distance signed: negative below) or None when that side is empty.
        """
        if not 0 < threshold <= 1:
            raise EngineError(f"threshold must lie in (0, 1], got {threshold}")
        if side == "long":
            mask = self.prices <= self.price
            vals = np.where(mask, self.long_usd, 0.0)
        elif side == "short":
            mask = self.prices >= self.price
            vals = np.where(mask, self.short_usd, 0.0)
        else:
            raise EngineError(f"side must be 'long' or 'short', not {side!r}")
        peak = vals.max(initial=0.0)
        if peak <= 0:
            return None
        # (vals > 0: for a tiny peak, threshold x peak underflows to 0 and would take empty bins)
        big = np.flatnonzero((vals >= threshold * peak) & (vals > 0))
        b = big[-1] if side == "long" else big[0]
        p = float(self.prices[b])
        return p, float(vals[b]), 100.0 * (p / self.price - 1.0)

    def to_frame(self) -> pd.DataFrame:
        """Per-bin table: price, long_usd, short_usd, cum_long, cum_short, distance_pct."""
        return pd.DataFrame({
            "price": self.prices, "long_usd": self.long_usd, "short_usd": self.short_usd,
            "cum_long": self.cum_long, "cum_short": self.cum_short,
            "distance_pct": 100.0 * (self.prices / self.price - 1.0),
        })


@dataclass(frozen=True, eq=False)
class HeatmapResult:
    """What :func:`compute_heatmap` returns.

    Attributes
    ----------
    timestamps
        Candle open times.
    columns, column_index
        Time and candle index of each display column (the book after that candle).
    prices, bin_size
        Bin centres (ascending) and width.
    long, short
        Outstanding notional, shape ``(n_bins, n_columns)``, float32: rows are price bins.
    predicted
        Model-liquidated notional per candle: ``long_usd, short_usd``.
    totals
        ``entered_*, closed_*, liquidated_*, outstanding_*`` for ``long`` and ``short``.
    notes
        Things the user should know (capped leverage, tilt unavailable, ...).
    """

    timestamps: pd.DatetimeIndex
    columns: pd.DatetimeIndex
    column_index: np.ndarray
    prices: np.ndarray
    bin_size: float
    long: np.ndarray
    short: np.ndarray
    predicted: pd.DataFrame
    totals: Mapping[str, float]
    params: ModelParams
    notes: tuple[str, ...]
    grid: PriceGrid
    _prep: _Prepared = field(repr=False)

    @cached_property
    def combined(self) -> np.ndarray:
        """Long plus short outstanding notional per bin and column."""
        return self.long + self.short

    @property
    def leverages(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self._prep.leverages)

    def candle_position(self, when) -> int:
        """Index of the candle at or before ``when`` (a timestamp or an integer position)."""
        n = len(self.timestamps)
        if isinstance(when, (int, np.integer)):
            pos = int(when) + (n if when < 0 else 0)
        else:
            ts = pd.Timestamp(when)
            if ts.tzinfo is None:
                ts = ts.tz_localize("UTC")
            pos = int(self.timestamps.searchsorted(ts, side="right")) - 1
        if not 0 <= pos < n:
            raise EngineError(
                f"time {when!r} is outside the computed window {self.timestamps[0]} - {self.timestamps[-1]}"
                if n else "the result is empty"
            )
        return pos

    def snapshot(self, when=-1) -> LiquidationMap:
        """The exact liquidation map after candle ``when`` (timestamp or position; default last).

        Re-runs the book up to that candle, keeping tiers apart, so it costs O(candles).
        """
        pos = self.candle_position(when)
        _, _, book, _ = _run(self._prep, pos + 1, np.zeros(0, np.int64), merge_tiers=False)
        by_tier_long = book[0]
        by_tier_short = book[1]
        return LiquidationMap(
            time=self.timestamps[pos], price=float(self._prep.close[pos]), prices=self.prices,
            bin_size=self.bin_size, long_usd=by_tier_long.sum(axis=0), short_usd=by_tier_short.sum(axis=0),
            long_by_tier=by_tier_long, short_by_tier=by_tier_short, leverages=self.leverages,
        )

    def column_of(self, when) -> int:
        """Display column showing the book at or just after candle ``when``."""
        pos = self.candle_position(when)
        return int(min(np.searchsorted(self.column_index, pos, side="left"), len(self.column_index) - 1))


def compute_heatmap(market: Market, params: ModelParams | None = None, **overrides) -> HeatmapResult:
    """Run the model on a market.

    Parameters
    ----------
    market
        A validated :class:`~liqlab.core.market.Market`.
    params
        Model settings; keyword ``overrides`` replace single fields (``mix="retail"``).

    Returns
    -------
    HeatmapResult

    Raises
    ------
    EngineError
        Unusable settings (unknown preset, bin size too small for the window, ...).
    """
    params = ModelParams() if params is None else params
    if overrides:
        try:
            params = replace(params, **overrides)
        except TypeError as exc:
            raise EngineError(str(exc)) from exc
    prep = prepare(market, params)
    n = len(market)
    snap_at = display_columns(n, params.max_columns)
    pred, grids, _, totals = _run(prep, n, snap_at, merge_tiers=True)
    index = market.index
    predicted = pd.DataFrame(pred, index=index, columns=_SIDE_COLUMNS, copy=False)
    names = ("entered", "closed", "liquidated", "outstanding")
    tot = {f"{name}_{side}": float(totals[i, j]) for i, name in enumerate(names)
           for j, side in enumerate(("long", "short"))}
    return HeatmapResult(
        timestamps=index, columns=index[snap_at], column_index=snap_at, prices=prep.grid.centres,
        bin_size=prep.grid.step, long=grids[0].T, short=grids[1].T, predicted=predicted, totals=tot,
        params=params, notes=prep.notes, grid=prep.grid, _prep=prep,
    )


def predict_liquidations(market: Market, params: ModelParams | None = None, **overrides) -> pd.DataFrame:
    """Predicted liquidations per candle (``long_usd, short_usd``) without building the heatmap."""
    params = ModelParams() if params is None else params
    return compute_heatmap(market, replace(params, max_columns=0, **overrides)).predicted
