"""Synthetic markets with hidden leveraged positions and therefore *true* realized liquidations.

The generator is agent-style but vectorised: positions are cohorts (one per candle, side,
leverage tier and entry slot) held in flat arrays, and one compiled loop walks the candles.

Each candle
    1. the price follows ``substeps`` small steps: GARCH(1,1) volatility, Student-t shocks,
       rare Laplace jumps, a weak pull back toward the starting price, and a drift carried over
       from the previous candle's liquidation imbalance; wicks extend the range;
    2. open long cohorts whose liquidation level is at or above the candle low, and short cohorts
       whose level is at or below the high, are liquidated; their forced orders push the low down
       (the high up) by ``1% * notional / depth`` (linear impact, depth thinning when volatility is
       high), which may reach further levels; rounds repeat until nothing new is reached, so
       cascades emerge from the positions themselves;
    3. part of that impact (``permanent_impact``) stays in the close, the rest recovers;
    4. cohorts whose holding period ends were closed at the candle's open, before the sweep;
    5. new cohorts open on both sides with equal notional (every contract has a long and a short
       holder), leverage drawn from the hidden mix tilted by a slow "crowding" factor, maintenance
       margin from the bracket table at the trader's size, entry prices spread over the candle's
       final range. They become vulnerable from the next candle.

Open interest (quote) is ``close * (long quantity + short quantity) / 2`` of the open cohorts, so
it rises with new positions and falls with closes and liquidations. Funding, the long/short
account ratio and taker buy volume are derived from the crowding factor, returns and
liquidations, so they carry some (noisy) information about the hidden positions.

The hidden leverage mix (:data:`HIDDEN_MIX`) deliberately differs from liqlab's default model
preset ``"balanced"``: tiers 3/5/10/20/50/75x instead of 5/10/25/50/100x, more low-leverage
mass, and longs more leveraged than shorts. A model that scores well on the sample has therefore
not been handed the answer.

All randomness is drawn up front with a seeded :class:`numpy.random.Generator`; the compiled
loop (:func:`_simulate_kernel`, plain-Python twin ``_simulate_kernel.py_func``) only does basic
arithmetic, so a seed fixes every value bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from liqlab.core.jit import njit
from liqlab.core.brackets import BracketTable, default_brackets, liquidation_price
from liqlab.core.leverage import LeverageMix
from liqlab.core.market import Market, make_market, timeframe_to_timedelta

#: The generator's hidden leverage mix. Not a liqlab model preset, on purpose.
HIDDEN_MIX = LeverageMix(
    leverages=(3, 5, 10, 20, 50, 75),
    long=(0.28, 0.27, 0.24, 0.13, 0.05, 0.03),
    short=(0.30, 0.28, 0.23, 0.12, 0.045, 0.025),
    name="synthetic-hidden",
)
#: Mean holding period in days per tier of :data:`HIDDEN_MIX` (high leverage is held briefly).
HIDDEN_HOLD_DAYS = (4.0, 3.0, 2.0, 1.0, 0.5, 0.3)

_STATUS_OPEN, _STATUS_CLOSED, _STATUS_LIQUIDATED = 0, 1, 2
STATUS_NAMES = {_STATUS_OPEN: "open", _STATUS_CLOSED: "closed", _STATUS_LIQUIDATED: "liquidated"}


class SynthError(ValueError):
    """Invalid parameters for the synthetic market generator."""


@dataclass(frozen=True)
class SynthParams:
    """Parameters of one synthetic market.

    Parameters
    ----------
    symbol
        Instrument name (also picks the default bracket table, e.g. ``"ETHUSDT"``).
    price
        Starting price (quote currency).
    n_candles
        Candles in the output (after the burn-in).
    timeframe
        Candle length, e.g. ``"5m"``.
    start
        Open time of the first output candle (UTC).
    seed
        Seed of the :class:`numpy.random.Generator`.
    daily_vol
        Long-run daily volatility of returns (decimal).
    open_interest
        Target steady-state open interest (quote currency); sets the flow of new positions.
    depth_1pct
        Order-book depth that absorbs a forced order moving the price 1 %, as a fraction of
        ``open_interest`` (at normal volatility; thinner when volatility is high).
    permanent_impact
        Share of the liquidation impact that stays in the candle's close (the rest recovers).
    impact_carry
        Share of the liquidation impact that carries into the next candle's drift.
    jumps_per_day
        Expected number of price jumps per day.
    jump_size
        Mean absolute jump size (decimal; Laplace distributed, either sign).
    garch_alpha, garch_beta
        GARCH(1,1) reaction and persistence of the variance of candle returns.
    student_df
        Degrees of freedom of the Student-t return shocks (> 2).
    reversion_days
        Half-life (days) of the weak pull of the price back toward ``price``.
    mix
        Hidden leverage mix of new positions; tiers above what the bracket table allows at the
        trader's size are refused.
    hold_days
        Mean holding period (days) per tier of ``mix`` (exponential, at least one candle).
    entries_per_tier
        Cohorts per side and tier each candle, each with its own entry price in the range.
    trader_size
        Median notional of one trader's position (quote), which sets the MMR bracket.
    crowding_days
        Half-life (days) of the crowding factor that tilts leverage between the sides.
    crowding_tilt
        Strength of that tilt: long weights scale with ``(L / 10) ** (tilt * c)``, shorts with
        ``(L / 10) ** (-tilt * c)``, ``c`` the crowding factor (unit variance).
    burn_in_days
        Days simulated before the first output candle so open interest starts at steady state.
    substeps
        Price steps per candle.
    brackets
        Maintenance-margin table; ``None`` uses :func:`liqlab.core.brackets.default_brackets`.
    """

    symbol: str = "BTCUSDT"
    price: float = 90_000.0
    n_candles: int = 10_080
    timeframe: str = "5m"
    start: str = "2025-01-01"
    seed: int = 0
    daily_vol: float = 0.022
    open_interest: float = 8e9
    depth_1pct: float = 0.25
    permanent_impact: float = 0.5
    impact_carry: float = 0.1
    jumps_per_day: float = 0.3
    jump_size: float = 0.008
    garch_alpha: float = 0.08
    garch_beta: float = 0.90
    student_df: float = 4.0
    reversion_days: float = 7.0
    mix: LeverageMix = HIDDEN_MIX
    hold_days: tuple[float, ...] = HIDDEN_HOLD_DAYS
    entries_per_tier: int = 2
    trader_size: float = 20_000.0
    crowding_days: float = 2.0
    crowding_tilt: float = 0.4
    burn_in_days: float = 5.0
    substeps: int = 5
    brackets: BracketTable | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise SynthError(msg)

        need(isinstance(self.symbol, str) and self.symbol != "", "symbol must be a non-empty string")
        for name in ("price", "daily_vol", "open_interest", "depth_1pct", "trader_size",
                     "student_df", "reversion_days", "crowding_days"):
            v = getattr(self, name)
            need(np.isfinite(v) and v > 0, f"{name} must be positive and finite, got {v!r}")
        for name in ("permanent_impact", "impact_carry", "garch_alpha", "garch_beta"):
            v = getattr(self, name)
            need(np.isfinite(v) and 0 <= v <= 1, f"{name} must lie in [0, 1], got {v!r}")
        need(self.garch_alpha + self.garch_beta < 1, "garch_alpha + garch_beta must be below 1")
        need(self.student_df > 2, f"student_df must exceed 2 (finite variance), got {self.student_df}")
        need(self.jumps_per_day >= 0 and self.jump_size >= 0, "jumps_per_day and jump_size must be >= 0")
        need(self.jump_size < 0.2, f"jump_size must be below 0.2, got {self.jump_size}")
        need(self.crowding_tilt >= 0, "crowding_tilt must be >= 0")
        need(self.burn_in_days >= 0, "burn_in_days must be >= 0")
        need(int(self.n_candles) == self.n_candles and self.n_candles >= 1, "n_candles must be a positive integer")
        need(int(self.substeps) == self.substeps and 1 <= self.substeps <= 60, "substeps must be in 1..60")
        need(int(self.entries_per_tier) == self.entries_per_tier and 1 <= self.entries_per_tier <= 8,
             "entries_per_tier must be in 1..8")
        need(len(self.hold_days) == self.mix.n_tiers,
             f"hold_days needs one value per leverage tier ({self.mix.n_tiers}), got {len(self.hold_days)}")
        need(all(h > 0 for h in self.hold_days), "hold_days must be positive")
        timeframe_to_timedelta(self.timeframe)  # raises MarketDataError on nonsense
        table = self.bracket_table
        top = float(np.max(np.asarray(table.max_leverage, float)))
        too_high = [lev for lev in self.mix.leverages if lev > top]
        need(not too_high, f"leverage {too_high} above the {top:g}x that {table.name!r} allows")

    @property
    def bracket_table(self) -> BracketTable:
        return self.brackets if self.brackets is not None else default_brackets("binance", self.symbol)

    @property
    def candle_days(self) -> float:
        return timeframe_to_timedelta(self.timeframe).total_seconds() / 86_400.0

    @property
    def n_burn(self) -> int:
        return int(round(self.burn_in_days / self.candle_days))


# ---------------------------------------------------------------------------------------------
@njit
def _simulate_kernel(
    z, jumps, wick_lo, wick_hi, notional, slot_long, u, factor, hold,
    p0, sigma_bar2, omega, alpha, beta, kappa, depth, perm, carry,
):
    """Walk the candles; see the module docstring for the rules.

    Parameters are NumPy arrays/scalars only: ``z``/``jumps`` ``(n, K)`` shocks and jumps per
    substep, ``wick_lo``/``wick_hi`` ``(n,)`` wick sizes in substep sigmas, and per cohort slot
    ``(n, S)``: ``notional`` (quote), ``u`` (entry position in the range), ``factor`` (level /
    entry), ``hold`` (candles until a planned close); ``slot_long`` ``(S,)`` is 1 for long slots.

    Returns
    -------
    tuple
        Candles ``o, h, l, c``, ``oi`` (quote), per-candle ``liq_long, liq_short`` (quote, at
        the level), ``k_low, k_high`` (substep of the low/high), ``sigma``; per cohort ``entry,
        level, qty, status, exit_candle``; events ``ev_pos`` (cohort index, in order) and the
        event count.
    """
    n, K = z.shape
    S = slot_long.shape[0]
    P = n * S
    o = np.empty(n)
    h = np.empty(n)
    lo_out = np.empty(n)
    c = np.empty(n)
    oi = np.empty(n)
    sig_out = np.empty(n)
    liq_long = np.zeros(n)
    liq_short = np.zeros(n)
    k_low = np.zeros(n, np.int64)
    k_high = np.zeros(n, np.int64)
    entry = np.zeros(P)
    level = np.zeros(P)
    qty = np.zeros(P)
    status = np.zeros(P, np.int8)
    exit_candle = np.full(P, -1, np.int64)
    ev_pos = np.empty(P, np.int64)
    n_ev = 0
    # the open cohorts, compacted each pass; level/exit/side copied alongside for sequential reads
    active = np.empty(P, np.int64)
    act_level = np.empty(P)
    act_exit = np.empty(P, np.int64)
    act_long = np.empty(P, np.bool_)
    n_act = 0
    sum_long = 0.0
    sum_short = 0.0
    price = p0
    sig2 = sigma_bar2
    drift_carry = 0.0
    inv_k = 1.0 / K
    sub_scale = np.sqrt(inv_k)
    for t in range(n):
        sig = np.sqrt(sig2)
        sig_out[t] = sig
        sub = sig * sub_scale
        o[t] = price
        p = price
        drift = (-kappa * (price / p0 - 1.0) + drift_carry) * inv_k
        path_hi = p
        path_lo = p
        klo = 0
        khi = 0
        for k in range(K):
            r = drift + sub * z[t, k] + jumps[t, k]
            if r < -0.5:
                r = -0.5
            p = p * (1.0 + r)
            if p > path_hi:
                path_hi = p
                khi = k
            if p < path_lo:
                path_lo = p
                klo = k
        lo = path_lo * (1.0 - sub * wick_lo[t])
        hi = path_hi * (1.0 + sub * wick_hi[t])
        # thinner book when volatility is high
        d = depth
        if sig2 > sigma_bar2:
            d = depth * np.sqrt(sigma_bar2 / sig2)
        # Each pass closes what was planned (at the open: first pass only), liquidates what the
        # current low/high reaches, and compacts the active list; a pass that liquidated
        # something moves the low/high and triggers another (a cascade round).
        q_long = 0.0
        q_short = 0.0
        imp_long = 0.0
        imp_short = 0.0
        lo0 = lo
        hi0 = hi
        first = True
        while True:
            new_long = 0.0
            new_short = 0.0
            keep = 0
            for a in range(n_act):
                i = active[a]
                is_long = act_long[a]
                if first and act_exit[a] <= t:
                    status[i] = 1
                    exit_candle[i] = t
                    if is_long:
                        sum_long -= qty[i]
                    else:
                        sum_short -= qty[i]
                    continue
                lev_a = act_level[a]
                if (lev_a >= lo) if is_long else (lev_a <= hi):
                    status[i] = 2
                    exit_candle[i] = t
                    if is_long:
                        new_long += qty[i] * lev_a
                        sum_long -= qty[i]
                    else:
                        new_short += qty[i] * lev_a
                        sum_short -= qty[i]
                    ev_pos[n_ev] = i
                    n_ev += 1
                    continue
                active[keep] = i
                act_level[keep] = lev_a
                act_exit[keep] = act_exit[a]
                act_long[keep] = is_long
                keep += 1
            n_act = keep
            first = False
            if new_long == 0.0 and new_short == 0.0:
                break
            q_long += new_long
            q_short += new_short
            # square-root law on the candle's cumulative forced flow: concave, so bounded
            imp_long = 0.01 * np.sqrt(q_long / d)
            imp_short = 0.01 * np.sqrt(q_short / d)
            if imp_long > 0.5:
                imp_long = 0.5
            lo = lo0 * (1.0 - imp_long)
            hi = hi0 * (1.0 + imp_short)
        liq_long[t] = q_long
        liq_short[t] = q_short
        close = p * (1.0 - perm * imp_long + perm * imp_short)
        if close < lo:
            close = lo
        if close > hi:
            close = hi
        drift_carry = carry * (imp_short - imp_long)
        # new cohorts, vulnerable from the next candle
        for j in range(S):
            i = t * S + j
            amt = notional[t, j]
            if amt <= 0.0:
                status[i] = 1
                exit_candle[i] = t
                continue
            e = lo + u[t, j] * (hi - lo)
            entry[i] = e
            level[i] = e * factor[t, j]
            qty[i] = amt / e
            active[n_act] = i
            act_level[n_act] = level[i]
            act_exit[n_act] = t + hold[t, j]  # planned close
            act_long[n_act] = slot_long[j] == 1
            n_act += 1
            if slot_long[j] == 1:
                sum_long += qty[i]
            else:
                sum_short += qty[i]
        h[t] = hi
        lo_out[t] = lo
        c[t] = close
        k_low[t] = klo
        k_high[t] = khi
        oi[t] = close * 0.5 * (sum_long + sum_short)
        ret = close / price - 1.0
        sig2 = omega + alpha * ret * ret + beta * sig2
        if sig2 > 25.0 * sigma_bar2:
            sig2 = 25.0 * sigma_bar2
        price = close
    return (o, h, lo_out, c, oi, liq_long, liq_short, k_low, k_high, sig_out,
            entry, level, qty, status, exit_candle, ev_pos, n_ev)


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Noise:
    """Every random draw of one run (arrays the kernel consumes), plus the hidden crowding path."""

    z: np.ndarray
    jumps: np.ndarray
    wick_lo: np.ndarray
    wick_hi: np.ndarray
    notional: np.ndarray
    u: np.ndarray
    factor: np.ndarray
    hold: np.ndarray
    slot_long: np.ndarray
    slot_tier: np.ndarray
    crowding: np.ndarray
    activity: np.ndarray
    ratio_noise: np.ndarray
    funding_noise: np.ndarray
    taker_noise: np.ndarray


def _crowding_path(rng: np.random.Generator, n: int, half_life: float) -> np.ndarray:
    """Unit-variance AR(1) path with the given half-life (in candles)."""
    phi = 0.5 ** (1.0 / max(half_life, 1.0))
    eps = rng.standard_normal(n)
    out = np.empty(n)
    x = eps[0]
    scale = np.sqrt(1.0 - phi * phi)
    for t in range(n):
        x = phi * x + scale * eps[t] if t else x
        out[t] = x
    return out


def draw_noise(params: SynthParams, rng: np.random.Generator | None = None) -> Noise:
    """Draw every random input of a run, in a fixed order, from ``rng`` (default: from the seed)."""
    rng = np.random.default_rng(params.seed) if rng is None else rng
    n = params.n_burn + int(params.n_candles)
    K = int(params.substeps)
    mix = params.mix
    n_tiers = mix.n_tiers
    E = int(params.entries_per_tier)
    slot_long = np.repeat(np.array([1, 0], np.int64), n_tiers * E)
    slot_tier = np.tile(np.repeat(np.arange(n_tiers), E), 2)
    S = slot_long.size
    cd = params.candle_days

    df = params.student_df
    z = rng.standard_t(df, size=(n, K)) / np.sqrt(df / (df - 2.0))
    has_jump = rng.random(n) < params.jumps_per_day * cd
    jump_at = rng.integers(0, K, size=n)
    jump_val = rng.laplace(0.0, params.jump_size, size=n)
    jumps = np.zeros((n, K))
    jumps[np.arange(n), jump_at] = np.where(has_jump, np.clip(jump_val, -0.3, 0.3), 0.0)
    wick_lo = 0.5 * np.abs(rng.standard_normal(n))
    wick_hi = 0.5 * np.abs(rng.standard_normal(n))

    crowd = _crowding_path(rng, n, params.crowding_days / cd)
    activity = np.exp(0.3 * _crowding_path(rng, n, 0.25 / cd) - 0.045)  # mean ~1
    lev = np.asarray(mix.leverages, float)
    tilt = params.crowding_tilt * crowd[:, None]
    w_long = mix.weights("long")[None, :] * (lev[None, :] / 10.0) ** tilt
    w_short = mix.weights("short")[None, :] * (lev[None, :] / 10.0) ** (-tilt)
    w_long /= w_long.sum(axis=1, keepdims=True)
    w_short /= w_short.sum(axis=1, keepdims=True)
    hold_days = np.asarray(params.hold_days, float)
    # flow per side and candle so that OI settles near the target
    w_mean = 0.5 * (mix.weights("long") + mix.weights("short"))
    mean_hold = float(np.sum(w_mean * hold_days)) / cd
    flow = params.open_interest / mean_hold * activity
    split = rng.dirichlet(np.ones(E), size=(n, 2, n_tiers))  # (n, side, tier, E)
    w = np.concatenate([w_long, w_short], axis=1)  # (n, 2*tiers)
    notional = (flow[:, None] * w)[:, :, None] * split.reshape(n, 2 * n_tiers, E)
    notional = notional.reshape(n, S)

    u = rng.beta(2.0, 2.0, size=(n, S))
    hold = np.maximum(1, np.ceil(rng.exponential(1.0, size=(n, S)) * hold_days[slot_tier] / cd)).astype(np.int64)

    # maintenance margin at each cohort's typical trader size, capped to what the leverage allows
    table = params.bracket_table
    sizes = params.trader_size * np.exp(0.8 * rng.standard_normal((n, S)))
    caps = np.asarray(table.caps, float)
    max_lev = np.asarray(table.max_leverage, float)
    lev_slot = lev[slot_tier]
    allowed = np.array([min(caps[max_lev >= L].max(), 1e18) for L in lev_slot])
    sizes = np.minimum(sizes, allowed[None, :])
    mmr, cum, _ = table.lookup(sizes.ravel())
    factor = np.empty((n, S))
    flat = factor.reshape(-1)
    is_long = np.broadcast_to(slot_long[None, :] == 1, (n, S)).ravel()
    levs = np.broadcast_to(lev_slot[None, :], (n, S)).ravel()
    for side, mask in (("long", is_long), ("short", ~is_long)):
        flat[mask] = liquidation_price(1.0, levs[mask], side, mmr=mmr[mask], cum=cum[mask],
                                       notional=sizes.ravel()[mask])

    ratio_noise = rng.standard_normal(n)
    funding_noise = rng.standard_normal(n)
    taker_noise = rng.standard_normal(n)
    return Noise(z=z, jumps=jumps, wick_lo=wick_lo, wick_hi=wick_hi, notional=notional, u=u,
                 factor=factor, hold=hold, slot_long=slot_long, slot_tier=slot_tier, crowding=crowd,
                 activity=activity, ratio_noise=ratio_noise, funding_noise=funding_noise,
                 taker_noise=taker_noise)


def _kernel_args(params: SynthParams, noise: Noise) -> tuple:
    cd = params.candle_days
    sigma_bar2 = params.daily_vol ** 2 * cd
    a, b = params.garch_alpha, params.garch_beta
    kappa = 1.0 - 0.5 ** (cd / params.reversion_days)
    depth = params.depth_1pct * params.open_interest
    return (noise.z, noise.jumps, noise.wick_lo, noise.wick_hi, noise.notional, noise.slot_long,
            noise.u, noise.factor, noise.hold, float(params.price), sigma_bar2,
            (1.0 - a - b) * sigma_bar2, a, b, kappa, depth, float(params.permanent_impact),
            float(params.impact_carry))


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SynthResult:
    """A synthetic run: the observable :class:`Market` and the hidden positions behind it.

    Attributes
    ----------
    market
        What a user sees (output candles only, burn-in dropped), ``synthetic=True``.
    positions
        Every hidden cohort: ``open_candle, exit_candle`` (row numbers in the full run, burn-in
        included; ``exit_candle`` -1 while open), ``side``, ``leverage``, ``entry``, ``level``,
        ``qty`` (base units), ``notional`` (quote at entry), ``status``
        (``open``/``closed``/``liquidated``).
    n_burn
        Candles simulated before ``market`` starts.
    sigma
        Per-candle volatility of the full run (decimal per candle).
    crowding
        The hidden crowding factor of the full run.
    """

    market: Market
    positions: pd.DataFrame
    params: SynthParams
    n_burn: int
    sigma: np.ndarray
    crowding: np.ndarray
    full: pd.DataFrame

    @cached_property
    def totals(self) -> dict[str, float]:
        """Entry notional opened, still open, closed and liquidated (quote, whole run)."""
        pos = self.positions
        by = pos.groupby("status", observed=False)["notional"].sum()
        return {"opened": float(pos["notional"].sum()),
                "open": float(by.get("open", 0.0)),
                "closed": float(by.get("closed", 0.0)),
                "liquidated": float(by.get("liquidated", 0.0))}


def simulate(params: SynthParams | None = None, noise: Noise | None = None, *, python: bool = False) -> SynthResult:
    """Run the generator.

    Parameters
    ----------
    params
        Generator settings (default :class:`SynthParams`).
    noise
        Pre-drawn inputs (from :func:`draw_noise`, possibly edited for a hand-made scenario);
        drawn from ``params.seed`` when None.
    python
        Run the plain-Python twin of the kernel (slow; for tests).

    Returns
    -------
    SynthResult
    """
    params = SynthParams() if params is None else params
    noise = draw_noise(params) if noise is None else noise
    kernel = _simulate_kernel.py_func if python else _simulate_kernel
    (o, h, l, c, oi, liq_long, liq_short, k_low, k_high, sigma,
     entry, level, qty, status, exit_candle, ev_pos, n_ev) = kernel(*_kernel_args(params, noise))
    n = o.size
    S = noise.slot_long.size
    step = timeframe_to_timedelta(params.timeframe)
    n_burn = params.n_burn
    start = pd.Timestamp(params.start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    index = pd.date_range(start - n_burn * step, periods=n, freq=step, name="timestamp")

    # observable side series, derived from the hidden state with noise
    ret = c / o - 1.0
    lev_tiers = np.asarray(params.mix.leverages, float)
    crowd = noise.crowding
    long_ratio = np.exp(0.25 * crowd + 0.05 * noise.ratio_noise)
    period = max(1, int(round(pd.Timedelta(hours=8) / step)))
    f_raw = 1e-4 + 1.5e-4 * crowd + 2e-5 * noise.funding_noise
    funding = f_raw[(np.arange(n) // period) * period]  # set each 8 h, held in between
    liq_qty_long = liq_long / np.maximum(l, 1e-12)
    liq_qty_short = liq_short / np.maximum(h, 1e-12)
    sig_safe = np.maximum(sigma, 1e-12)
    turnover = 0.02 * params.open_interest * params.candle_days / np.maximum(c, 1e-12)
    base_vol = turnover * noise.activity * (0.6 + 0.8 * np.abs(ret) / sig_safe + 0.4 * (h - l) / (c * sig_safe))
    volume = base_vol + liq_qty_long + liq_qty_short
    share = np.clip(0.5 + 0.25 * np.tanh(ret / sig_safe) + 0.05 * noise.taker_noise, 0.05, 0.95)
    taker_buy = share * base_vol + liq_qty_short  # liquidated shorts buy, liquidated longs sell

    full = pd.DataFrame(
        {"open": o, "high": h, "low": l, "close": c, "volume": volume, "open_interest": oi,
         "funding_rate": funding, "long_short_ratio": long_ratio, "taker_buy_volume": taker_buy,
         "liq_long_usd": liq_long, "liq_short_usd": liq_short},
        index=index,
    )

    pos_idx = np.arange(n * S)
    slot = pos_idx % S
    side = np.where(noise.slot_long[slot] == 1, "long", "short")
    positions = pd.DataFrame({
        "open_candle": pos_idx // S,
        "exit_candle": exit_candle,
        "side": pd.Categorical(side, categories=["long", "short"]),
        "leverage": lev_tiers[noise.slot_tier[slot]],
        "entry": entry,
        "level": level,
        "qty": qty,
        "notional": qty * entry,
        "status": pd.Categorical.from_codes(status.astype(np.int64), categories=list(STATUS_NAMES.values())),
    })

    ev = ev_pos[:n_ev]
    ev_candle = exit_candle[ev]
    ev_long = noise.slot_long[ev % S] == 1
    # stamp each event at the substep where its extreme happened, ordered within the candle
    sub_len = step / int(params.substeps)
    k = np.where(ev_long, k_low[ev_candle], k_high[ev_candle])
    ev_time = index[ev_candle] + k * sub_len
    keep = ev_candle >= n_burn
    events = pd.DataFrame({
        "timestamp": ev_time[keep],
        "side": np.where(ev_long, "long", "short")[keep],
        "price": level[ev][keep],
        "notional": (qty[ev] * level[ev])[keep],
    })
    data = full.iloc[n_burn:, :9]
    bars = full.iloc[n_burn:][["liq_long_usd", "liq_short_usd"]].set_axis(["long_usd", "short_usd"], axis=1)
    market = make_market(
        data, symbol=params.symbol, exchange="synthetic", timeframe=params.timeframe,
        liquidations=bars, liquidation_events=events, source="synthetic", synthetic=True,
    )
    return SynthResult(market=market, positions=positions, params=params, n_burn=n_burn,
                       sigma=sigma, crowding=crowd, full=full)


def synthetic_market(params: SynthParams | None = None) -> Market:
    """Just the observable market of :func:`simulate`."""
    return simulate(params).market
