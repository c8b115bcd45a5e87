"""Liquidation cascades, round by round: a population of leveraged positions, a book, a shock.

Model
-----
A :class:`Population` holds isolated-margin positions around a reference price ``p0``: longs
sorted by liquidation level from the highest down, shorts from the lowest up, so liquidations
always take a prefix of each list and one pointer per side sweeps them (a round costs
O(newly liquidated)).

The book turns forced flow into a price displacement. With ``N_L``/``N_S`` the cumulative
long/short notional liquidated so far (valued at their levels) and ``depth`` the notional that
moves the price by 1 %::

    linear:  I(N) = p0 * 1% * N / depth
    sqrt:    I(N) = p0 * 1% * sqrt(N / depth)        (square-root law: concave)

Round ``r >= 1`` (round 0 is the state before the shock) sets the price

    p_r = p0 + w_r * (ramp_r * shock * p0 - I(N_L) + I(N_S))

where ``ramp_r = min(r / shock_rounds, 1)`` spreads the shock over ``shock_rounds`` rounds
(1 = an instant gap) and ``w_r = (1 - recovery) ** (r - 1)`` is the book's recovery: the whole
displacement fades toward the pre-shock price while new liquidations keep adding to it. Then
every long with level ``>= p_r`` and every short with level ``<= p_r`` is liquidated; they fill
at ``p_r`` (a price that skipped their level - a gap - fills worse than the level; the difference
is reported as slippage). Their notional enters ``N`` and moves the next round's price, which may
reach further levels. The run stops at the first round after the shock that liquidates nothing
(``stop_when_quiet``), or after ``max_rounds``.

Because the price is a function of the cumulative liquidated notional (not of how it was split
over rounds), a bigger shock, a thinner book or slower recovery never gives a smaller cascade on
the same population.

Measures: ``size`` (notional liquidated, at the levels), ``size_share`` (of the shocked side),
``overshoot`` (how far the price went beyond the shock, as a fraction of ``p0``) and
``n_rounds`` (the last round that liquidated anything).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from liqlab.core.jit import njit
from liqlab.core.brackets import liquidation_price
from liqlab.core.leverage import LeverageMix


class CascadeError(ValueError):
    """Invalid cascade parameters, population or shock; the message says which and why."""


# -- population -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Population:
    """Leveraged positions around ``price``, sorted in liquidation order per side.

    Attributes
    ----------
    price
        Reference (pre-shock) price.
    long_level, long_notional, long_leverage
        Longs, levels descending (the first to go first); notional valued at the level.
    short_level, short_notional, short_leverage
        Shorts, levels ascending.
    """

    price: float
    long_level: np.ndarray
    long_notional: np.ndarray
    short_level: np.ndarray
    short_notional: np.ndarray
    long_leverage: np.ndarray = field(default=None)  # type: ignore[assignment]
    short_leverage: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        p = float(self.price)
        if not np.isfinite(p) or p <= 0:
            raise CascadeError(f"population price must be positive and finite, got {self.price!r}")
        for side, desc in (("long", True), ("short", False)):
            lvl = np.ascontiguousarray(getattr(self, f"{side}_level"), dtype=np.float64)
            w = np.ascontiguousarray(getattr(self, f"{side}_notional"), dtype=np.float64)
            if lvl.ndim != 1 or lvl.shape != w.shape:
                raise CascadeError(f"{side} levels and notionals must be 1-D arrays of one length")
            if not (np.all(np.isfinite(lvl)) and np.all(np.isfinite(w))):
                raise CascadeError(f"{side} levels and notionals must be finite")
            if np.any(w < 0) or np.any(lvl <= 0):
                raise CascadeError(f"{side} notionals must be >= 0 and levels > 0")
            step = np.diff(lvl)
            if np.any(step > 0 if desc else step < 0):
                raise CascadeError(
                    f"{side} levels must be sorted {'descending' if desc else 'ascending'}; "
                    "build populations with make_population or Population.from_positions"
                )
            if side == "long" and lvl.size and lvl[0] >= p:
                raise CascadeError(f"a long level ({lvl[0]:g}) is at or above the price {p:g}: already liquidated")
            if side == "short" and lvl.size and lvl[0] <= p:
                raise CascadeError(f"a short level ({lvl[0]:g}) is at or below the price {p:g}: already liquidated")
            lev = getattr(self, f"{side}_leverage")
            lev = np.full(lvl.shape, np.nan) if lev is None else np.asarray(lev, dtype=np.float64)
            if lev.shape != lvl.shape:
                raise CascadeError(f"{side} leverages must match the levels")
            object.__setattr__(self, f"{side}_level", lvl)
            object.__setattr__(self, f"{side}_notional", w)
            object.__setattr__(self, f"{side}_leverage", lev)
        object.__setattr__(self, "price", p)

    @classmethod
    def from_positions(cls, price: float, sides: Sequence[str], levels, notionals, leverages=None) -> "Population":
        """Build from unsorted positions: ``sides`` ``"long"``/``"short"``, levels, notionals at level."""
        sides = np.asarray(sides)
        levels = np.asarray(levels, dtype=np.float64)
        notionals = np.asarray(notionals, dtype=np.float64)
        lev = np.full(levels.shape, np.nan) if leverages is None else np.asarray(leverages, dtype=np.float64)
        bad = ~np.isin(sides, ["long", "short"])
        if bad.any():
            raise CascadeError(f"sides must be 'long' or 'short', got {sorted(set(sides[bad].tolist()))[:3]}")
        return cls._from_mask(price, sides == "long", levels, notionals, lev)

    @classmethod
    def _from_mask(cls, price: float, is_long: np.ndarray, levels: np.ndarray, notionals: np.ndarray,
                   leverages: np.ndarray) -> "Population":
        lo = np.argsort(-levels[is_long])
        so = np.argsort(levels[~is_long])
        return cls(price=price,
                   long_level=levels[is_long][lo], long_notional=notionals[is_long][lo],
                   short_level=levels[~is_long][so], short_notional=notionals[~is_long][so],
                   long_leverage=leverages[is_long][lo], short_leverage=leverages[~is_long][so])

    @property
    def n_long(self) -> int:
        return int(self.long_level.size)

    @property
    def n_short(self) -> int:
        return int(self.short_level.size)

    def __len__(self) -> int:
        return self.n_long + self.n_short

    @cached_property
    def long_cum(self) -> np.ndarray:
        """Prefix sums of long notional in liquidation order (``n_long + 1`` values, from 0)."""
        return np.concatenate([[0.0], np.cumsum(self.long_notional)])

    @cached_property
    def short_cum(self) -> np.ndarray:
        """Prefix sums of short notional in liquidation order (``n_short + 1`` values, from 0)."""
        return np.concatenate([[0.0], np.cumsum(self.short_notional)])

    @cached_property
    def total(self) -> dict[str, float]:
        """Notional per side (at the levels)."""
        return {"long": float(self.long_cum[-1]), "short": float(self.short_cum[-1])}

    def default_edges(self, bins: int = 200, span: float = 0.25) -> np.ndarray:
        """Price-bin edges for maps: ``bins`` bins over ``price * (1 -/+ span)``."""
        return np.linspace(self.price * (1.0 - span), self.price * (1.0 + span), int(bins) + 1)


def make_population(
    n: int = 100_000,
    *,
    price: float = 100.0,
    mix: LeverageMix | str | None = None,
    leverage: float | None = None,
    long_share: float = 0.5,
    spread: float = 0.02,
    clusters: int = 3,
    cluster_share: float = 0.5,
    cluster_width: float = 0.002,
    total_notional: float = 1e9,
    size_sigma: float = 1.0,
    mmr: float = 0.005,
    seed: int = 0,
) -> Population:
    """Draw a population of leveraged positions around ``price``.

    Parameters
    ----------
    n
        Positions drawn. Those already at or beyond their level at ``price`` (possible when the
        entry lies far from the price) are dropped, so the population may hold slightly fewer.
    price
        Reference price.
    mix
        Leverage mix (object, preset name or None for the default preset) giving each side's tiers.
    leverage
        Give every position this leverage instead of drawing from ``mix`` (phase diagrams).
    long_share
        Share of positions (and of notional) that are long: the side skew.
    spread
        Lognormal dispersion of entry prices around ``price``.
    clusters, cluster_share, cluster_width
        ``cluster_share`` of the entries crowd around ``clusters`` prices drawn within
        ``price * (1 -/+ spread)``, each with dispersion ``cluster_width``: clustering of entries.
    total_notional
        Expected total notional (quote), spread over positions with lognormal sizes.
    size_sigma
        Dispersion of position sizes (lognormal sigma).
    mmr
        Maintenance-margin rate (flat; levels from :func:`liqlab.core.brackets.liquidation_price`).
    seed
        Seed of the :class:`numpy.random.Generator`; the entries, sides and sizes depend only on
        it (and ``n``, ``spread``, clustering), not on the leverage, so sweeps compare like with like.

    Returns
    -------
    Population
    """
    n = int(n)
    if n < 0:
        raise CascadeError(f"n must be >= 0, got {n}")
    for name, v in (("price", price), ("total_notional", total_notional)):
        if not np.isfinite(v) or v <= 0:
            raise CascadeError(f"{name} must be positive and finite, got {v!r}")
    for name, v in (("long_share", long_share), ("cluster_share", cluster_share)):
        if not 0 <= v <= 1:
            raise CascadeError(f"{name} must lie in [0, 1], got {v!r}")
    for name, v in (("spread", spread), ("cluster_width", cluster_width), ("size_sigma", size_sigma)):
        if not np.isfinite(v) or v < 0:
            raise CascadeError(f"{name} must be >= 0 and finite, got {v!r}")
    if not 0 <= mmr < 1:
        raise CascadeError(f"mmr must lie in [0, 1), got {mmr!r}")
    if leverage is not None and not (np.isfinite(leverage) and leverage > 1):
        raise CascadeError(f"leverage must be above 1, got {leverage!r}")
    if int(clusters) < 0:
        raise CascadeError(f"clusters must be >= 0, got {clusters}")

    rng = np.random.default_rng(seed)
    is_long = rng.random(n) < long_share
    log_entry = spread * rng.standard_normal(n)
    k = int(clusters)
    if k > 0 and cluster_share > 0:
        centers = rng.uniform(-spread, spread, size=k)
        in_cluster = rng.random(n) < cluster_share
        which = rng.integers(0, k, size=n)
        log_entry = np.where(in_cluster, centers[which] + cluster_width * rng.standard_normal(n), log_entry)
    entry = price * np.exp(log_entry)
    size = np.exp(size_sigma * rng.standard_normal(n))
    size *= total_notional / max(size.sum(), 1e-300)
    tier_u = rng.random(n)  # drawn whatever the leverage source, so the stream stays aligned

    if leverage is not None:
        lev = np.full(n, float(leverage))
    else:
        m = LeverageMix.resolve(mix)
        tiers = np.asarray(m.leverages, float)
        lev = np.empty(n)
        for side, mask in (("long", is_long), ("short", ~is_long)):
            w = m.weights(side)
            if w.sum() == 0:
                lev[mask] = np.nan  # this side opens nothing leveraged
                continue
            cdf = np.cumsum(w) / w.sum()
            lev[mask] = tiers[np.minimum(np.searchsorted(cdf, tier_u[mask], side="right"), tiers.size - 1)]
    level = np.empty(n)
    ok = np.isfinite(lev)
    for side, mask in (("long", is_long & ok), ("short", ~is_long & ok)):
        level[mask] = liquidation_price(entry[mask], lev[mask], side, mmr=mmr)
    # a position already beyond its level at the reference price would have been liquidated
    keep = ok & np.where(is_long, (level < price) & (level > 0), level > price) & np.isfinite(level)
    notional = size * level / entry  # valued at the level, like the liquidation
    return Population._from_mask(float(price), is_long[keep], level[keep], notional[keep], lev[keep])


def population_from_synth(result, candle: int | None = None) -> Population:
    """The hidden positions of a synthetic run (:func:`liqlab.sim.synth.simulate`) open at ``candle``.

    ``candle`` counts rows of ``result.full`` (burn-in included); default: after the last one.
    The reference price is that candle's close.
    """
    pos = result.positions
    n = len(result.full)
    t = n - 1 if candle is None else int(candle)
    if not 0 <= t < n:
        raise CascadeError(f"candle must lie in [0, {n - 1}], got {candle}")
    alive = (pos.open_candle <= t) & ((pos.exit_candle > t) | (pos.exit_candle < 0)) & (pos.qty > 0)
    price = float(result.full.close.iloc[t])
    sub = pos[alive]
    level = sub.level.to_numpy()
    side = sub.side.astype(str).to_numpy()
    keep = np.where(side == "long", level < price, level > price)
    sub, level, side = sub[keep], level[keep], side[keep]
    return Population.from_positions(price, side, level, sub.qty.to_numpy() * level, sub.leverage.to_numpy())


# -- parameters -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CascadeParams:
    """The book and the run.

    Parameters
    ----------
    depth
        Notional (quote) that moves the price by 1 % (> 0).
    law
        ``"linear"`` or ``"sqrt"`` (square-root law) price impact of cumulative forced flow.
    recovery
        Share of the displacement from the pre-shock price that fades each round, in [0, 1).
    shock_rounds
        Rounds over which the shock is applied (1: an instant gap; more: a gradual move).
    max_rounds
        Most rounds simulated after the shock.
    stop_when_quiet
        Stop at the first round (once the shock is fully applied) that liquidates nothing;
        otherwise run ``max_rounds`` rounds (the price keeps recovering).
    """

    depth: float = 5e7
    law: Literal["linear", "sqrt"] = "linear"
    recovery: float = 0.0
    shock_rounds: int = 1
    max_rounds: int = 1_000
    stop_when_quiet: bool = True

    def __post_init__(self) -> None:
        d = self.depth
        if not isinstance(d, (int, float, np.floating, np.integer)) or not np.isfinite(d) or d <= 0:
            raise CascadeError(
                f"depth must be a positive, finite notional (quote moving the price 1 %), got {d!r}; "
                "a book with no depth has no price for forced orders"
            )
        if self.law not in ("linear", "sqrt"):
            raise CascadeError(f"law must be 'linear' or 'sqrt', not {self.law!r}")
        if not (0 <= self.recovery < 1):
            raise CascadeError(f"recovery must lie in [0, 1), got {self.recovery!r}")
        for name in ("shock_rounds", "max_rounds"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise CascadeError(f"{name} must be a positive integer, got {v!r}")
        if self.shock_rounds > self.max_rounds:
            raise CascadeError(
                f"shock_rounds ({self.shock_rounds}) cannot exceed max_rounds ({self.max_rounds})"
            )


def _check_shock(shock: float) -> float:
    s = float(shock)
    if not np.isfinite(s) or s <= -1.0:
        raise CascadeError(f"shock is a relative price move and must be finite and above -1, got {shock!r}")
    return s


# -- kernel ---------------------------------------------------------------------------------------
@njit
def _cascade_kernel(long_level, long_w, long_cum, short_level, short_w, short_cum, p0, shock, depth,
                    sqrt_law, recovery, shock_rounds, max_rounds, stop_quiet):
    """Rounds of a cascade; see the module docstring for the rule.

    Longs are sorted by level descending, shorts ascending; ``*_w`` are notionals at the level
    and ``*_cum`` their prefix sums. The cumulative liquidated notional is read from the prefix
    sums at the pointers, so the price depends only on *which* positions are gone (not on how
    rounds grouped them): that keeps bigger shocks from ever giving smaller cascades, exactly.
    Equals, round by round, ``p = p0 + w * (ramp * shock * p0 - I(NL) + I(NS))`` followed by
    liquidating ``long_level >= p`` and ``short_level <= p`` (a prefix of each array).

    Returns
    -------
    tuple
        Per round ``0..R-1``: price, long/short notional at level, long/short value filled at
        the round price, long/short counts, pointers (positions liquidated so far per side);
        then the last round that liquidated anything.
    """
    R = max_rounds + 1
    price = np.empty(R)
    liq_l = np.zeros(R)
    liq_s = np.zeros(R)
    fill_l = np.zeros(R)
    fill_s = np.zeros(R)
    cnt_l = np.zeros(R, np.int64)
    cnt_s = np.zeros(R, np.int64)
    ptr_l = np.zeros(R, np.int64)
    ptr_s = np.zeros(R, np.int64)
    n_l = long_level.shape[0]
    n_s = short_level.shape[0]
    price[0] = p0
    scale = p0 * 0.01
    floor = p0 * 1e-9
    cum_l = 0.0
    cum_s = 0.0
    il = 0
    js = 0
    w = 1.0
    last = 0
    used = R
    for r in range(1, R):
        if r > 1:
            w = w * (1.0 - recovery)
        ramp = r / shock_rounds
        if ramp > 1.0:
            ramp = 1.0
        if sqrt_law:
            imp = scale * (np.sqrt(cum_s / depth) - np.sqrt(cum_l / depth))
        else:
            imp = scale * (cum_s - cum_l) / depth
        p = p0 + w * (ramp * shock * p0 + imp)
        if p < floor:
            p = floor
        price[r] = p
        fa = 0.0
        i0 = il
        while il < n_l and long_level[il] >= p:
            fa += long_w[il] / long_level[il] * p
            il += 1
        fb = 0.0
        j0 = js
        while js < n_s and short_level[js] <= p:
            fb += short_w[js] / short_level[js] * p
            js += 1
        liq_l[r] = long_cum[il] - long_cum[i0]
        liq_s[r] = short_cum[js] - short_cum[j0]
        fill_l[r] = fa
        fill_s[r] = fb
        cnt_l[r] = il - i0
        cnt_s[r] = js - j0
        ptr_l[r] = il
        ptr_s[r] = js
        cum_l = long_cum[il]
        cum_s = short_cum[js]
        if il > i0 or js > j0:
            last = r
        elif stop_quiet and r >= shock_rounds:
            used = r + 1
            break
    return (price[:used], liq_l[:used], liq_s[:used], fill_l[:used], fill_s[:used],
            cnt_l[:used], cnt_s[:used], ptr_l[:used], ptr_s[:used], last)


def _run(population: Population, params: CascadeParams, shock: float, python: bool = False):
    kernel = _cascade_kernel.py_func if python else _cascade_kernel
    return kernel(population.long_level, population.long_notional, population.long_cum,
                  population.short_level, population.short_notional, population.short_cum, population.price, shock, float(params.depth),
                  params.law == "sqrt", float(params.recovery), int(params.shock_rounds),
                  int(params.max_rounds), bool(params.stop_when_quiet))


# -- result ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CascadeResult:
    """One cascade, round by round.

    Attributes
    ----------
    rounds
        Indexed by ``round`` (0 = before the shock): ``price`` (where the round's liquidations
        fill), ``long_usd``/``short_usd`` (notional liquidated, at the levels), ``long_fill_usd``/
        ``short_fill_usd`` (value filled at the round price), ``slippage_usd`` (level minus fill,
        both sides, >= 0: what gaps cost), ``n_long``/``n_short`` (positions), and
        ``long_remaining_usd``/``short_remaining_usd`` after the round.
    """

    population: Population
    params: CascadeParams
    shock: float
    rounds: pd.DataFrame
    last_round: int
    _ptr_long: np.ndarray = field(repr=False)
    _ptr_short: np.ndarray = field(repr=False)

    @property
    def n_rounds(self) -> int:
        """The last round that liquidated anything (0: the shock liquidated nothing)."""
        return int(self.last_round)

    @cached_property
    def size(self) -> float:
        """Notional liquidated, both sides, valued at the levels (quote)."""
        pop = self.population
        return float(pop.long_cum[self._ptr_long[-1]] + pop.short_cum[self._ptr_short[-1]])

    @property
    def shocked_side(self) -> str:
        """The side a shock moves against: ``"long"`` for a down shock, ``"short"`` for an up one."""
        return "long" if self.shock <= 0 else "short"

    @cached_property
    def size_share(self) -> float:
        """``size`` as a share of the notional on the shocked side (the only side a shock can hit)."""
        total = self.population.total[self.shocked_side]
        return self.size / total if total > 0 else 0.0

    @property
    def shock_price(self) -> float:
        return self.population.price * (1.0 + self.shock)

    @cached_property
    def extreme_price(self) -> float:
        """Lowest price for a down shock, highest for an up shock."""
        p = self.rounds.price.to_numpy()
        return float(p.min() if self.shock <= 0 else p.max())

    @cached_property
    def overshoot(self) -> float:
        """How far the price went beyond the shock price, as a share of the pre-shock price (>= 0)."""
        beyond = (self.shock_price - self.extreme_price) if self.shock <= 0 else (self.extreme_price - self.shock_price)
        return max(0.0, beyond / self.population.price)

    def _check_round(self, r: int) -> int:
        r = int(r)
        last = len(self.rounds) - 1
        if not 0 <= r <= last:
            raise CascadeError(f"round must lie in [0, {last}], got {r}")
        return r

    def map_at(self, r: int, edges: np.ndarray | None = None) -> pd.DataFrame:
        """Remaining notional per price bin after round ``r`` (0: before the shock).

        Parameters
        ----------
        r
            Round number.
        edges
            Price-bin edges, increasing (default :meth:`Population.default_edges`).

        Returns
        -------
        DataFrame
            Indexed by bin centre ``price``: ``long_usd``, ``short_usd``.
        """
        r = self._check_round(r)
        e = self.population.default_edges() if edges is None else np.asarray(edges, dtype=np.float64)
        long_, short_ = self.map_matrix(e, rounds=[r])
        centres = 0.5 * (e[1:] + e[:-1])
        return pd.DataFrame({"long_usd": long_[0], "short_usd": short_[0]},
                            index=pd.Index(centres, name="price"))

    def map_matrix(self, edges: np.ndarray | None = None, rounds: Sequence[int] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Remaining long and short notional per (round, bin): two ``(rounds, bins)`` arrays.

        Computed from prefix sums (positions are sorted by level and go in prefixes), so it costs
        O(rounds x bins + bins log n) whatever the population size.
        """
        pop = self.population
        e = pop.default_edges() if edges is None else np.asarray(edges, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
            raise CascadeError("edges must be an increasing 1-D array of at least two prices")
        rr = np.arange(len(self.rounds)) if rounds is None else np.asarray([self._check_round(r) for r in rounds])
        out = []
        for levels, w, ptr, desc in ((pop.long_level, pop.long_notional, self._ptr_long, True),
                                     (pop.short_level, pop.short_notional, self._ptr_short, False)):
            cum = np.concatenate([[0.0], np.cumsum(w)])
            if desc:  # index range of levels in [e_k, e_k+1): levels descending
                hi_idx = np.searchsorted(-levels, -e[1:], side="right")  # count of level >= e_k+1
                lo_idx = np.searchsorted(-levels, -e[:-1], side="right")  # count of level >= e_k
                start, stop = hi_idx, lo_idx
            else:
                start = np.searchsorted(levels, e[:-1], side="left")  # count of level < e_k
                stop = np.searchsorted(levels, e[1:], side="left")
            gone = ptr[rr][:, None]
            a = np.maximum(start[None, :], gone)
            b = np.maximum(stop[None, :], gone)
            out.append(cum[b] - cum[a])
        return out[0], out[1]


def simulate_cascade(population: Population, params: CascadeParams | None = None, shock: float = -0.02,
                     *, python: bool = False) -> CascadeResult:
    """Run a cascade on ``population`` after a relative price ``shock`` (e.g. ``-0.02``).

    Parameters
    ----------
    population
        From :func:`make_population`, :meth:`Population.from_positions` or
        :func:`population_from_synth`.
    params
        Book and run settings (default :class:`CascadeParams`).
    shock
        Relative move applied at round 1 (over ``params.shock_rounds`` rounds), > -1.
    python
        Use the plain-Python twin of the kernel (for tests).

    Returns
    -------
    CascadeResult
    """
    params = CascadeParams() if params is None else params
    if not isinstance(population, Population):
        raise CascadeError(f"population must be a Population, got {type(population).__name__}")
    shock = _check_shock(shock)
    (price, liq_l, liq_s, fill_l, fill_s, cnt_l, cnt_s, ptr_l, ptr_s, last) = _run(population, params, shock, python)
    cum_l, cum_s = population.long_cum, population.short_cum
    rounds = pd.DataFrame({
        "price": price,
        "long_usd": liq_l,
        "short_usd": liq_s,
        "long_fill_usd": fill_l,
        "short_fill_usd": fill_s,
        "slippage_usd": (liq_l - fill_l) + (fill_s - liq_s),
        "n_long": cnt_l,
        "n_short": cnt_s,
        "long_remaining_usd": cum_l[-1] - cum_l[ptr_l],
        "short_remaining_usd": cum_s[-1] - cum_s[ptr_s],
    }, index=pd.RangeIndex(len(price), name="round"))
    return CascadeResult(population=population, params=params, shock=shock, rounds=rounds,
                         last_round=int(last), _ptr_long=ptr_l, _ptr_short=ptr_s)


# -- phase diagram --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PhaseDiagram:
    """Cascade size over leverage x depth.

    Attributes
    ----------
    size_share
        ``(len(leverage), len(depth))`` share of the shocked side's notional liquidated.
    overshoot, n_rounds
        Same shape: overshoot (share of the price) and cascade length.
    """

    leverage: np.ndarray
    depth: np.ndarray
    size_share: np.ndarray
    overshoot: np.ndarray
    n_rounds: np.ndarray
    shock: float

    def to_frame(self, what: str = "size_share") -> pd.DataFrame:
        """One measure as a DataFrame: index ``leverage``, columns ``depth``."""
        if what not in ("size_share", "overshoot", "n_rounds"):
            raise CascadeError(f"what must be 'size_share', 'overshoot' or 'n_rounds', not {what!r}")
        return pd.DataFrame(getattr(self, what), index=pd.Index(self.leverage, name="leverage"),
                            columns=pd.Index(self.depth, name="depth"))


def phase_diagram(
    leverage_values: Sequence[float],
    depth_values: Sequence[float],
    *,
    shock: float = -0.02,
    n: int = 50_000,
    params: CascadeParams | None = None,
    **population_kw,
) -> PhaseDiagram:
    """Sweep cascade size over leverage (all positions at one leverage) and book depth.

    The same entries, sides and sizes are used at every leverage (one seed), so a cell differs
    from its neighbours only by leverage or depth.

    Parameters
    ----------
    leverage_values, depth_values
        Grid axes (leverage > 1, depth > 0 quote per 1 %).
    shock
        Relative price shock.
    n
        Positions per population.
    params
        Other book settings; its ``depth`` is replaced by each grid value.
    **population_kw
        Passed to :func:`make_population` (``price``, ``spread``, ``clusters``, ``mmr``, ...).
    """
    lev = np.asarray(leverage_values, dtype=np.float64)
    dep = np.asarray(depth_values, dtype=np.float64)
    if lev.ndim != 1 or dep.ndim != 1 or lev.size == 0 or dep.size == 0:
        raise CascadeError("leverage_values and depth_values must be non-empty 1-D sequences")
    if np.any(~np.isfinite(dep)) or np.any(dep <= 0):
        raise CascadeError(f"depth values must be positive and finite, got {dep.tolist()[:5]}")
    shock = _check_shock(shock)
    base = CascadeParams() if params is None else params
    size = np.zeros((lev.size, dep.size))
    over = np.zeros_like(size)
    nr = np.zeros(size.shape, dtype=np.int64)
    for i, L in enumerate(lev):
        pop = make_population(n, leverage=float(L), **population_kw)
        total = pop.total["long" if shock <= 0 else "short"]
        p0 = pop.price
        shock_price = p0 * (1.0 + shock)
        for j, d in enumerate(dep):
            p = CascadeParams(depth=float(d), law=base.law, recovery=base.recovery,
                              shock_rounds=base.shock_rounds, max_rounds=base.max_rounds,
                              stop_when_quiet=base.stop_when_quiet)
            price, _, _, _, _, _, _, ptr_l, ptr_s, last = _run(pop, p, shock)
            gone = pop.long_cum[ptr_l[-1]] + pop.short_cum[ptr_s[-1]]
            size[i, j] = gone / total if total > 0 else 0.0
            ext = price.min() if shock <= 0 else price.max()
            beyond = (shock_price - ext) if shock <= 0 else (ext - shock_price)
            over[i, j] = max(0.0, beyond / p0)
            nr[i, j] = last
    return PhaseDiagram(leverage=lev, depth=dep, size_share=size, overshoot=over, n_rounds=nr, shock=shock)
