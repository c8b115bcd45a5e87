"""The liquidation engine: exact hand-worked cases, invariants on random markets, kernel twins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqlab.core.kernels import run_engine
from liqlab.core.reference import reference_predictions, reference_prepare
from liqlab.core.brackets import BracketTable
from liqlab.core.engine import EngineError, ModelParams, compute_heatmap, nice_step, prepare
from liqlab.core.leverage import LeverageMix
from liqlab.core.market import make_market

FLAT0 = BracketTable.flat(0.0)


def market_from(rows, timeframe="1h", **kw):
    """rows: (open, high, low, close, open_interest) per candle."""
    idx = pd.date_range("2025-01-01", periods=len(rows), freq=pd.Timedelta(timeframe), tz="UTC")
    o, h, l, c, oi = map(np.asarray, zip(*rows))
    df = pd.DataFrame({"open": o, "high": h, "low": l, "close": c, "volume": 1.0, "open_interest": oi},
                      index=idx, dtype=float)
    return make_market(df, symbol="TEST", exchange="test", timeframe=timeframe, **kw)


def one_tier(lev=10.0):
    return LeverageMix(leverages=(lev,), long=(1.0,), short=(1.0,))


LIFECYCLE = dict(mix=one_tier(10), brackets=FLAT0, entry="close", oi_change="quote", turnover=0.0,
                 bin_size=0.5, max_columns=10)


def test_one_cohort_lifecycle_enter_close_and_sweep():
    # OI in quote; prices chosen so the 10x levels (MMR 0) sit exactly at 90 (long) and 110 (short)
    rows = [
        (100, 100, 100, 100, 100_000),
        (100, 101, 85, 100, 101_000),   # +1000 opened each side at close 100; own low 85 does not sweep
        (100, 101, 99, 100, 100_750),   # OI -250 of 101000 -> 0.2475 % closed pro rata
        (100, 100, 89, 95, 100_000),    # low 89 sweeps the long level at 90
        (95, 111, 95, 105, 99_000),     # high 111 sweeps the short level at 110
    ]
    res = compute_heatmap(market_from(rows), ModelParams(**LIFECYCLE))
    kept = 1000.0 * (1 - 250.0 / 101_000)
    assert res.predicted["long_usd"].tolist() == pytest.approx([0, 0, 0, kept, 0])
    assert res.predicted["short_usd"].tolist() == pytest.approx([0, 0, 0, 0, kept])
    t = res.totals
    assert t["entered_long"] == pytest.approx(1000.0)
    assert t["closed_long"] == pytest.approx(1000.0 - kept)
    assert t["outstanding_long"] == pytest.approx(0.0) and t["outstanding_short"] == pytest.approx(0.0)
    # after candle 1 the long level is in the bin [90, 90.5) and the short level in [110, 110.5)
    snap = res.snapshot(1)
    assert snap.long_usd[snap.prices.searchsorted(90.25)] == pytest.approx(1000.0)
    assert snap.short_usd[snap.prices.searchsorted(110.25)] == pytest.approx(1000.0)
    assert snap.long_usd.sum() == pytest.approx(1000.0) and snap.short_usd.sum() == pytest.approx(1000.0)


def test_fall_in_oi_is_net_of_model_liquidations():
    rows = [
        (100, 100, 100, 100, 100_000),
        (100, 100, 100, 100, 102_000),  # +2000 each side
        (100, 100, 89, 92, 100_000),    # OI falls 2000: the model liquidated 2000 longs -> nothing closed
    ]
    res = compute_heatmap(market_from(rows), ModelParams(**LIFECYCLE))
    assert res.predicted["long_usd"].iloc[2] == pytest.approx(2000.0)
    assert res.totals["closed_short"] == pytest.approx(0.0)
    assert res.totals["outstanding_short"] == pytest.approx(2000.0)


def test_contract_oi_change_ignores_pure_price_moves():
    # OI in quote rises 10 % only because price rose 10 %: no contracts opened
    rows = [(100, 100, 100, 100, 100_000), (100, 110, 100, 110, 110_000)]
    res = compute_heatmap(market_from(rows), ModelParams(**{**LIFECYCLE, "oi_change": "contracts"}))
    assert res.totals["entered_long"] == pytest.approx(0.0)
    res_q = compute_heatmap(market_from(rows), ModelParams(**LIFECYCLE))
    assert res_q.totals["entered_long"] == pytest.approx(10_000.0)


def test_range_entry_spreads_levels_over_bins():
    rows = [(100, 100, 100, 100, 100_000), (100, 102, 98, 100, 101_000)]
    res = compute_heatmap(market_from(rows), ModelParams(**{**LIFECYCLE, "entry": "range", "bin_size": 0.1}))
    snap = res.snapshot(-1)
    # 10x long levels uniform over [88.2, 91.8]: 36 bins of 0.1 each holding 1000/36
    nz = snap.long_usd[snap.long_usd > 0]
    assert nz.size == 36
    assert nz == pytest.approx(np.full(36, 1000.0 / 36))
    assert snap.prices[snap.long_usd > 0].min() == pytest.approx(88.25)


def test_same_candle_liquidates_levels_beyond_the_close():
    # 10x, MMR 0, entries uniform over [98, 120]: long levels over [88.2, 108], short over
    # [107.8, 132]. The candle closes at 99: long levels above 99 (entries above 110, 10/22 of
    # them) were crossed after entry; shorts, whose levels all lie above the close, survive.
    rows = [(100, 100, 100, 100, 100_000), (110, 120, 98, 99, 101_000)]
    params = ModelParams(**{**LIFECYCLE, "entry": "range", "bin_size": 0.1})
    res = compute_heatmap(market_from(rows), params)
    gone = 1000.0 * 10 / 22
    assert res.predicted["long_usd"].tolist() == pytest.approx([0, gone])
    assert res.predicted["short_usd"].tolist() == pytest.approx([0, 0])
    snap = res.snapshot(-1)
    assert snap.long_usd.sum() == pytest.approx(1000.0 - gone)
    assert snap.prices[snap.long_usd > 0].max() < 99.0
    t = res.totals
    assert t["entered_long"] == pytest.approx(1000.0) and t["liquidated_long"] == pytest.approx(gone)
    # closing at the top, 125: short levels below it (entries below 125 / 1.1) were crossed
    rows_up = [(100, 100, 100, 100, 100_000), (100, 125, 100, 125, 101_000)]
    up = compute_heatmap(market_from(rows_up), params)
    assert up.predicted["short_usd"].iloc[1] == pytest.approx(1000.0 * (125 / 1.1 - 100) / 25)
    assert up.predicted["long_usd"].iloc[1] == 0.0
    off = compute_heatmap(market_from(rows), params.replace(same_candle=False))
    assert off.predicted.to_numpy().sum() == 0.0


def test_ageing_halves_positions_each_half_life():
    rows = [(100, 100, 100, 100, 100_000), (100, 100, 100, 100, 101_000)] + [(100, 100, 100, 100, 101_000)] * 4
    res = compute_heatmap(market_from(rows), ModelParams(**{**LIFECYCLE, "half_life_hours": 2.0}))
    # entered after candle 1; candles 2..5 age it 4 hours = two half-lives
    assert res.totals["outstanding_long"] == pytest.approx(250.0)
    assert res.totals["closed_long"] == pytest.approx(750.0)


def test_falling_oi_in_contracts_closes_at_the_close_not_at_entry():
    # contracts = OI / close: 1000 -> 1020 (+20 at entry 100, typical price) -> 1010 at close 109.
    # The 10 contracts closed are worth 10 x 109 = 1090 now (not 10 x the candle's entry, 106), out of
    # the 1020 contracts open before, valued at the same close: 111,180.
    rows = [
        (100, 100, 100, 100, 100_000),
        (100, 100, 100, 100, 102_000),
        (100, 109, 100, 109, 1010 * 109),
    ]
    params = ModelParams(**{**LIFECYCLE, "entry": "typical", "oi_change": "contracts"})
    res = compute_heatmap(market_from(rows), params)
    assert res.totals["entered_long"] == pytest.approx(2000.0, rel=1e-12)
    share = 1090.0 / 111_180.0
    assert res.totals["closed_long"] == pytest.approx(2000.0 * share, rel=1e-12)
    assert res.totals["closed_short"] == pytest.approx(2000.0 * share, rel=1e-12)
    assert res.predicted.to_numpy().sum() == 0.0


def test_ageing_follows_the_candle_length():
    # 5-minute candles, half-life 1 h: the twelve candles after entry are one half-life
    rows = [(100, 100, 100, 100, 100_000), (100, 100, 100, 100, 101_000)] + [(100, 100, 100, 100, 101_000)] * 12
    res = compute_heatmap(market_from(rows, timeframe="5m"), ModelParams(**{**LIFECYCLE, "half_life_hours": 1.0}))
    assert res.totals["outstanding_long"] == pytest.approx(500.0, rel=1e-12)
    assert res.totals["closed_short"] == pytest.approx(500.0, rel=1e-12)
    # the same rows as 15-minute candles are three half-lives
    res15 = compute_heatmap(market_from(rows, timeframe="15m"), ModelParams(**{**LIFECYCLE, "half_life_hours": 1.0}))
    assert res15.totals["outstanding_long"] == pytest.approx(1000.0 / 8, rel=1e-12)


def test_a_candle_reaching_a_level_exactly_liquidates_it():
    # the 10x levels sit in the bins [90, 90.5) and [110, 110.5), whose centres are 90.25 and 110.25:
    # a low of exactly 90.25 reaches the long level, a high of exactly 110.25 the short level
    rows = [
        (100, 100, 100, 100, 100_000),
        (100, 100, 100, 100, 101_000),
        (100, 100, 90.25, 100, 101_000),
        (100, 110.25, 100, 100, 101_000),
    ]
    res = compute_heatmap(market_from(rows), ModelParams(**LIFECYCLE))
    assert res.predicted["long_usd"].tolist() == [0.0, 0.0, 1000.0, 0.0]
    assert res.predicted["short_usd"].tolist() == [0.0, 0.0, 0.0, 1000.0]
    # a hair short of the centre reaches neither
    near = [rows[0], rows[1], (100, 100, 90.2500001, 100, 101_000), (100, 110.2499999, 100, 100, 101_000)]
    assert compute_heatmap(market_from(near), ModelParams(**LIFECYCLE)).predicted.to_numpy().sum() == 0.0


def test_turnover_replaces_positions_without_changing_totals_balance():
    rows = [(100, 100, 100, 100, 100_000)] + [(100, 101, 99, 100, 100_000)] * 3
    res = compute_heatmap(market_from(rows), ModelParams(**{**LIFECYCLE, "turnover": 0.5}))
    # volume 1 x entry 100 x 0.5 = 50 churned per candle from candle 1 on, at 10x never reached
    assert res.totals["entered_long"] == pytest.approx(150.0)
    t = res.totals
    assert t["entered_long"] == pytest.approx(t["outstanding_long"] + t["closed_long"] + t["liquidated_long"])


def test_side_tilt_from_long_short_ratio():
    rows = [(100, 100, 100, 100, 100_000), (100, 100, 100, 100, 101_000)]
    m = market_from(rows)
    data = m.data.assign(long_short_ratio=3.0)  # 75 % of accounts long
    m = make_market(data, symbol="TEST", exchange="test", timeframe="1h")
    res = compute_heatmap(m, ModelParams(**{**LIFECYCLE, "tilt": "long_short_ratio", "tilt_strength": 1.0}))
    assert res.totals["entered_long"] == pytest.approx(1500.0)
    assert res.totals["entered_short"] == pytest.approx(500.0)
    res_none = compute_heatmap(market_from(rows), ModelParams(**{**LIFECYCLE, "tilt": "long_short_ratio"}))
    assert any("long/short ratio" in n for n in res_none.notes)


def test_empty_and_flat_inputs_give_empty_results():
    flat = market_from([(100, 100, 100, 100, 100_000)] * 50)
    assert compute_heatmap(flat).predicted.to_numpy().sum() == 0.0  # churned levels are never reached
    res = compute_heatmap(flat, turnover=0.0)
    assert res.predicted.to_numpy().sum() == 0.0
    assert res.long.sum() == 0.0 and res.short.sum() == 0.0
    single = compute_heatmap(market_from([(100, 101, 99, 100, 100_000)]))
    assert single.predicted.shape == (1, 2) and single.long.shape[1] == 1
    snap = res.snapshot(-1)
    assert snap.nearest_cluster("long") is None and snap.cum_long.sum() == 0.0


def test_leverage_cap_is_reported():
    m = market_from([(100, 101, 99, 100, 100_000)] * 3)
    table = BracketTable(caps=(1e9,), mmr=(0.01,), max_leverage=(50,))
    res = compute_heatmap(m, ModelParams(mix="balanced", brackets=table))
    assert any("capped at 50x" in n for n in res.notes)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(mix="nope"), "unknown leverage preset"),
        (dict(bin_size=-1.0), "bin_size"),
        (dict(bin_size=float("nan")), "bin_size"),
        (dict(n_bins=3), "n_bins"),
        (dict(entry="vwap"), "entry"),
        (dict(half_life_hours=0), "half_life"),
        (dict(tilt_strength=2.0), "tilt_strength"),
        (dict(turnover=-0.1), "turnover"),
        (dict(position_notional=0), "position_notional"),
        (dict(max_columns=-5), "max_columns"),
    ],
)
def test_bad_parameters_raise_named_error(bad, match):
    with pytest.raises(EngineError, match=match):
        ModelParams(**bad)


def test_bin_size_too_small_says_what_to_use():
    m = market_from([(100, 101, 99, 100, 100_000)] * 3)
    with pytest.raises(EngineError, match="use a bin size of at least"):
        compute_heatmap(m, ModelParams(bin_size=1e-6))


def test_nice_step():
    assert [nice_step(x) for x in (0.9, 1.0, 47, 90.0, 0.013)] == [0.5, 1.0, 20.0, 50.0, 0.01]


# -- invariants on random markets ---------------------------------------------------------------
def random_market(seed: int, n: int):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    o = np.concatenate([[c[0]], c[:-1]])
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 0.003, n)))
    l = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 0.003, n)))
    oi = 1e6 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    idx = pd.date_range("2025-01-01", periods=n, freq="5min", tz="UTC")
    df = pd.DataFrame({"open": o, "high": h, "low": l, "close": c, "volume": rng.uniform(10, 1000, n),
                       "open_interest": oi, "long_short_ratio": rng.uniform(0.5, 2.0, n),
                       "taker_buy_volume": 0.0}, index=idx)
    df["taker_buy_volume"] = df["volume"] * rng.uniform(0.3, 0.7, n)
    return make_market(df, symbol="RAND", exchange="test", timeframe="5m")


params_strategy = st.builds(
    ModelParams,
    mix=st.sampled_from(["balanced", "conservative", "retail", "degen", "long-heavy"]),
    entry=st.sampled_from(["typical", "close", "ohlc4", "range"]),
    half_life_hours=st.one_of(st.none(), st.floats(0.5, 500)),
    tilt=st.sampled_from(["none", "long_short_ratio", "taker"]),
    tilt_strength=st.floats(0, 1),
    oi_change=st.sampled_from(["contracts", "quote"]),
    turnover=st.floats(0, 1),
    same_candle=st.booleans(),
    max_columns=st.integers(0, 50),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 300), params=params_strategy)
def test_conservation_entered_equals_outstanding_closed_liquidated(seed, n, params):
    res = compute_heatmap(random_market(seed, n), params)
    t = res.totals
    for side in ("long", "short"):
        entered = t[f"entered_{side}"]
        rest = t[f"outstanding_{side}"] + t[f"closed_{side}"] + t[f"liquidated_{side}"]
        assert rest == pytest.approx(entered, rel=1e-9, abs=1e-6)
        assert min(t[f"outstanding_{side}"], t[f"closed_{side}"], t[f"liquidated_{side}"]) >= -1e-6
    assert res.predicted["long_usd"].sum() == pytest.approx(t["liquidated_long"], rel=1e-9, abs=1e-6)
    assert (res.predicted.to_numpy() >= 0).all()
    if res.long.shape[1]:
        # the last display column is the book after the last candle
        assert float(res.long[:, -1].sum()) == pytest.approx(t["outstanding_long"], rel=1e-5, abs=1e-3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(20, 300), cut=st.floats(0.1, 0.9), params=params_strategy)
def test_no_lookahead_cutting_the_future_leaves_the_past_unchanged(seed, n, cut, params):
    m = random_market(seed, n)
    k = max(1, int(n * cut))
    full = compute_heatmap(m, params)
    past = compute_heatmap(m.slice(None, m.index[k - 1]), params)
    assert full.bin_size == past.bin_size
    np.testing.assert_allclose(past.predicted.to_numpy(), full.predicted.to_numpy()[:k], rtol=1e-12, atol=1e-9)
    a, b = full.snapshot(k - 1), past.snapshot(-1)
    # same lattice: align by price
    shift = int(round((b.prices[0] - a.prices[0]) / a.bin_size))
    np.testing.assert_allclose(b.long_usd, a.long_usd[shift:shift + b.prices.size], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(b.short_usd, a.short_usd[shift:shift + b.prices.size], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("seed, half_life, same_candle", [(1, None, True), (2, 24.0, False), (3, 24.0, True)])
def test_kernel_equals_python_twin_and_object_reference(seed, half_life, same_candle):
    m = random_market(seed, 250)
    prep = prepare(m, ModelParams(half_life_hours=half_life, tilt="taker", same_candle=same_candle))
    k = prep.leverages.size
    args = (prep.high, prep.low, prep.close, prep.entry_lo, prep.entry_hi, prep.new_long, prep.new_short, prep.drop,
            prep.churn, prep.oi_prev, prep.long_factor, prep.short_factor, np.arange(k, dtype=np.int64),
            prep.decay_per_tier.copy(), prep.grid.p0, prep.grid.step, prep.grid.n_bins,
            np.array([99, 249], np.int64), np.zeros(0, np.float32), same_candle)
    fast = run_engine(*args)
    slow = run_engine.py_func(*args)
    for x, y in zip(fast, slow):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-6)
    ref_pred, ref_tot = reference_predictions(prep)
    np.testing.assert_allclose(fast[0], ref_pred, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(fast[3][3], ref_tot["outstanding"], rtol=1e-9)
    assert fast[0].sum() > 0  # the case exercises sweeps


@pytest.mark.parametrize("entry, oi_change, turnover, half_life, timeframe", [
    ("typical", "contracts", 0.0, None, "1h"),
    ("range", "contracts", 0.05, 6.0, "5m"),
    ("ohlc4", "quote", 0.0, 2.0, "15m"),
    ("close", "quote", 0.1, None, "1h"),
])
def test_reference_with_its_own_preparation_equals_the_engine(entry, oi_change, turnover, half_life, timeframe):
    m = random_market(11, 300)
    m = make_market(m.data.set_axis(pd.date_range("2025-01-01", periods=len(m), freq=pd.Timedelta(timeframe),
                                                  tz="UTC")), symbol="TEST", exchange="test", timeframe=timeframe)
    params = ModelParams(entry=entry, oi_change=oi_change, turnover=turnover, half_life_hours=half_life,
                         brackets=BracketTable.flat(0.005), tilt="none", same_candle=True)
    engine = compute_heatmap(m, params)
    ref_pred, ref_tot = reference_predictions(reference_prepare(m, params, prepare(m, params).grid))
    np.testing.assert_allclose(engine.predicted.to_numpy(), ref_pred, rtol=1e-9, atol=1e-6)
    for side, i in (("long", 0), ("short", 1)):
        for key in ("entered", "closed", "liquidated", "outstanding"):
            assert engine.totals[f"{key}_{side}"] == pytest.approx(ref_tot[key][i], rel=1e-9, abs=1e-6)
    assert ref_pred.sum() > 0 and ref_tot["closed"].sum() > 0


def test_merged_tiers_equal_separate_tiers():
    m = random_market(7, 500)
    res = compute_heatmap(m, ModelParams(max_columns=20))
    prep = res._prep
    from liqlab.core.engine import _run, display_columns

    sep = _run(prep, len(m), display_columns(len(m), 20), merge_tiers=False)
    np.testing.assert_allclose(sep[0], res.predicted.to_numpy(), rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(sep[1][0].T, res.long, rtol=1e-5, atol=1e-2)


def test_higher_leverage_and_mmr_move_levels_toward_price_in_the_map():
    m = market_from([(100, 100, 100, 100, 100_000), (100, 100, 100, 100, 101_000)])
    lows = []
    for lev in (5, 10, 25, 50):
        snap = compute_heatmap(m, ModelParams(**{**LIFECYCLE, "mix": one_tier(lev), "bin_size": 0.01})).snapshot(-1)
        lows.append(snap.prices[snap.long_usd > 0][0])
    assert lows == sorted(lows)
    mmr_levels = []
    for mmr in (0.0, 0.005, 0.02):
        p = ModelParams(**{**LIFECYCLE, "brackets": BracketTable.flat(mmr), "bin_size": 0.01})
        snap = compute_heatmap(m, p).snapshot(-1)
        mmr_levels.append(snap.prices[snap.long_usd > 0][0])
    assert mmr_levels == sorted(mmr_levels) and mmr_levels[0] < mmr_levels[-1]


def test_snapshot_cumulative_curves_and_cluster():
    rows = [(100, 100, 100, 100, 100_000), (100, 100, 100, 100, 101_000)]
    mix = LeverageMix(leverages=(10, 20), long=(0.25, 0.75), short=(0.5, 0.5))
    res = compute_heatmap(market_from(rows), ModelParams(**{**LIFECYCLE, "mix": mix}))
    snap = res.snapshot(-1)
    # longs: 250 at 90 (10x), 750 at 95 (20x); cumulative from the price (100) downward
    assert snap.cum_long[snap.prices.searchsorted(95.25)] == pytest.approx(750.0)
    assert snap.cum_long[snap.prices.searchsorted(90.25)] == pytest.approx(1000.0)
    assert snap.cum_short[snap.prices.searchsorted(105.25)] == pytest.approx(500.0)
    price, notional, dist = snap.nearest_cluster("long")
    assert (price, notional) == (pytest.approx(95.25), pytest.approx(750.0))
    assert dist == pytest.approx(-4.75)
    share = snap.leverage_share("long")
    assert share[:, snap.prices.searchsorted(95.25)] == pytest.approx([0.0, 1.0])
    frame = snap.to_frame()
    assert list(frame.columns) == ["price", "long_usd", "short_usd", "cum_long", "cum_short", "distance_pct"]
