"""The cascade simulator: hand-worked rounds, invariants, gaps, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqlab.sim.cascade import (
    CascadeError,
    CascadeParams,
    Population,
    make_population,
    phase_diagram,
    population_from_synth,
    simulate_cascade,
)


def three_longs() -> Population:
    """Longs at 99 (500), 98.2 (300) and 96 (1000) below a price of 100."""
    return Population.from_positions(100.0, ["long"] * 3, [98.2, 99.0, 96.0], [300.0, 500.0, 1000.0])


# -- hand-worked cascades -------------------------------------------------------------------------
def test_linear_cascade_worked_by_hand():
    # depth 1000 per 1 % at p0 = 100: each 1000 of forced selling moves the price by 1.0
    # round 1: 100 - 1.5 = 98.5            -> the 99 long (500) goes
    # round 2: 100 - 1.5 - 0.5 = 98.0      -> the 98.2 long (300) goes
    # round 3: 100 - 1.5 - 0.8 = 97.7      -> 96 is out of reach: the cascade stops
    res = simulate_cascade(three_longs(), CascadeParams(depth=1000.0), shock=-0.015)
    r = res.rounds
    assert r.price.tolist() == pytest.approx([100.0, 98.5, 98.0, 97.7], rel=1e-12)
    assert r.long_usd.tolist() == [0.0, 500.0, 300.0, 0.0]
    assert r.n_long.tolist() == [0, 1, 1, 0]
    assert r.long_remaining_usd.tolist() == [1800.0, 1300.0, 1000.0, 1000.0]
    assert (r.short_usd == 0).all()
    assert res.size == 800.0
    assert res.size_share == pytest.approx(800.0 / 1800.0)
    assert res.n_rounds == 2
    assert res.overshoot == pytest.approx(0.008, rel=1e-9)  # 98.5 -> 97.7, in units of p0
    assert r.long_fill_usd.iloc[1] == pytest.approx(500.0 / 99.0 * 98.5, rel=1e-12)


def test_sqrt_law_cascade_worked_by_hand():
    # depth 100 per 1 %: I(N) = 1.0 * sqrt(N / 100) in price
    pop = Population.from_positions(100.0, ["long"] * 3, [99.0, 97.6, 96.0], [100.0, 300.0, 500.0])
    res = simulate_cascade(pop, CascadeParams(depth=100.0, law="sqrt"), shock=-0.015)
    # 98.5 (99 goes, N=100) -> 97.5 (97.6 goes, N=400) -> 96.5 (96 out of reach)
    assert res.rounds.price.tolist() == pytest.approx([100.0, 98.5, 97.5, 96.5], rel=1e-12)
    assert res.rounds.long_usd.tolist() == [0.0, 100.0, 300.0, 0.0]
    assert res.n_rounds == 2


def test_short_squeeze_mirrors_the_long_cascade():
    pop = Population.from_positions(100.0, ["short"] * 3, [101.8, 101.0, 104.0], [300.0, 500.0, 1000.0])
    res = simulate_cascade(pop, CascadeParams(depth=1000.0), shock=0.015)
    assert res.rounds.price.tolist() == pytest.approx([100.0, 101.5, 102.0, 102.3], rel=1e-12)
    assert res.rounds.short_usd.tolist() == [0.0, 500.0, 300.0, 0.0]
    assert res.shocked_side == "short" and res.size == 800.0
    assert res.overshoot == pytest.approx(0.008, rel=1e-9)


def test_recovery_damps_the_cascade():
    # round 2 price: 100 + 0.5 * (-1.5 - 0.5) = 99.0, above 98.2: only the first long goes
    res = simulate_cascade(three_longs(), CascadeParams(depth=1000.0, recovery=0.5), shock=-0.015)
    assert res.rounds.price.tolist() == pytest.approx([100.0, 98.5, 99.0], rel=1e-12)
    assert res.size == 500.0 and res.n_rounds == 1


def test_a_shock_that_reaches_nothing_liquidates_nothing():
    res = simulate_cascade(three_longs(), CascadeParams(depth=1000.0), shock=-0.005)
    assert res.size == 0.0 and res.n_rounds == 0 and res.overshoot == 0.0
    assert len(res.rounds) == 2  # before the shock, and the quiet shock round


# -- gaps -----------------------------------------------------------------------------------------
def test_gap_liquidates_every_skipped_level_at_the_gap_price():
    res = simulate_cascade(three_longs(), CascadeParams(depth=1000.0), shock=-0.025)
    r = res.rounds
    # round 1 jumps from 100 to 97.5: 99 and 98.2 were skipped, both go at 97.5
    assert r.n_long.tolist() == [0, 2, 0]
    assert r.long_usd.iloc[1] == 800.0
    fill = (500.0 / 99.0 + 300.0 / 98.2) * 97.5
    assert r.long_fill_usd.iloc[1] == pytest.approx(fill, rel=1e-12)
    assert r.slippage_usd.iloc[1] == pytest.approx(800.0 - fill, rel=1e-12)
    assert r.price.iloc[2] == pytest.approx(96.7, rel=1e-12)  # 96 stays out of reach


def test_gradual_shock_takes_levels_one_by_one_with_less_slippage():
    gap = simulate_cascade(three_longs(), CascadeParams(depth=1000.0), shock=-0.025)
    slow = simulate_cascade(three_longs(), CascadeParams(depth=1000.0, shock_rounds=4), shock=-0.025)
    # 99.375, 98.75 (99 goes), 100 - 1.875 - 0.5 = 97.625 (98.2 goes), 100 - 2.5 - 0.8 = 96.7
    assert slow.rounds.price.tolist() == pytest.approx([100.0, 99.375, 98.75, 97.625, 96.7], rel=1e-12)
    assert slow.rounds.n_long.tolist() == [0, 0, 1, 1, 0]
    assert slow.size == gap.size == 800.0
    assert slow.rounds.slippage_usd.sum() < gap.rounds.slippage_usd.sum()


def test_impact_that_jumps_over_several_levels_takes_them_in_one_round():
    pop = Population.from_positions(100.0, ["long"] * 4, [99.5, 98.9, 98.8, 98.7], [1000.0, 10.0, 10.0, 10.0])
    res = simulate_cascade(pop, CascadeParams(depth=1000.0), shock=-0.01)
    # round 1 at 99.0 takes 99.5; its 1000 moves the price by 1.0 to 98.0, past all three others
    assert res.rounds.n_long.tolist() == [0, 1, 3, 0]
    assert res.rounds.price.iloc[2] == pytest.approx(98.0, rel=1e-12)


# -- invariants -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pop() -> Population:
    return make_population(20_000, seed=3, total_notional=1e8, long_share=0.55)


@pytest.mark.parametrize("law", ["linear", "sqrt"])
def test_conservation_liquidated_plus_remaining_equals_initial(pop, law):
    res = simulate_cascade(pop, CascadeParams(depth=2e6, law=law), shock=-0.03)
    r = res.rounds
    assert res.size > 0
    assert r.long_usd.sum() + r.long_remaining_usd.iloc[-1] == pytest.approx(pop.total["long"], rel=1e-12)
    assert r.short_usd.sum() + r.short_remaining_usd.iloc[-1] == pytest.approx(pop.total["short"], rel=1e-12)
    assert r.n_long.sum() + (pop.long_level < r.price.min()).sum() == pop.n_long
    edges = np.linspace(pop.long_level.min() * 0.99, pop.short_level.max() * 1.01, 50)
    last = res.map_at(len(r) - 1, edges)
    assert last.long_usd.sum() == pytest.approx(r.long_remaining_usd.iloc[-1], rel=1e-9)
    assert last.short_usd.sum() == pytest.approx(r.short_remaining_usd.iloc[-1], rel=1e-9)


def test_maps_equal_a_plain_histogram_of_what_remains(pop):
    res = simulate_cascade(pop, CascadeParams(depth=2e6), shock=-0.03)
    edges = pop.default_edges(bins=80, span=0.1)
    long_, short_ = res.map_matrix(edges)
    assert long_.shape == (len(res.rounds), 80)
    for r in range(len(res.rounds)):
        alive = pop.long_level < res.rounds.price.iloc[1:r + 1].min() if r else np.ones(pop.n_long, bool)
        expect, _ = np.histogram(pop.long_level[alive], bins=edges, weights=pop.long_notional[alive])
        np.testing.assert_allclose(long_[r], expect, rtol=1e-9, atol=1e-6)
        expect_s, _ = np.histogram(pop.short_level, bins=edges, weights=pop.short_notional)
        np.testing.assert_allclose(short_[r], expect_s, rtol=1e-9, atol=1e-6)
    pd.testing.assert_series_equal(res.map_at(1, edges).long_usd,
                                   pd.Series(long_[1], index=res.map_at(1, edges).index, name="long_usd"))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("params", [
    CascadeParams(depth=3e6),
    CascadeParams(depth=1e6, law="sqrt"),
    CascadeParams(depth=3e6, recovery=0.2),
    CascadeParams(depth=3e6, shock_rounds=5, recovery=0.05),
])
def test_a_bigger_shock_never_gives_a_smaller_cascade(seed, params):
    population = make_population(5_000, seed=seed, total_notional=1e8, clusters=4)
    shocks = np.linspace(0.0, -0.08, 41)
    sizes = [simulate_cascade(population, params, shock=s).size for s in shocks]
    assert np.all(np.diff(sizes) >= 0)
    assert sizes[-1] > 0
    up = [simulate_cascade(population, params, shock=-s).size for s in shocks]
    assert np.all(np.diff(up) >= 0)


def test_a_thinner_book_never_gives_a_smaller_cascade(pop):
    depths = np.geomspace(1e5, 1e9, 30)
    sizes = [simulate_cascade(pop, CascadeParams(depth=d), shock=-0.02).size for d in depths]
    assert np.all(np.diff(sizes) <= 0)
    assert sizes[0] > sizes[-1]


def test_deterministic_for_a_seed():
    a, b = make_population(3_000, seed=9), make_population(3_000, seed=9)
    np.testing.assert_array_equal(a.long_level, b.long_level)
    np.testing.assert_array_equal(a.short_notional, b.short_notional)
    c = make_population(3_000, seed=10)
    assert not np.array_equal(a.long_level[:100], c.long_level[:100])
    ra = simulate_cascade(a, CascadeParams(depth=5e6), shock=-0.03)
    rb = simulate_cascade(b, CascadeParams(depth=5e6), shock=-0.03)
    pd.testing.assert_frame_equal(ra.rounds, rb.rounds, check_exact=True)


def test_kernel_equals_its_python_twin(pop):
    for params, shock in ((CascadeParams(depth=2e6), -0.03), (CascadeParams(depth=1e6, law="sqrt", recovery=0.1,
                                                                             shock_rounds=3), 0.04)):
        fast = simulate_cascade(pop, params, shock)
        slow = simulate_cascade(pop, params, shock, python=True)
        pd.testing.assert_frame_equal(fast.rounds, slow.rounds, check_exact=True)
        assert fast.n_rounds == slow.n_rounds > 0


def test_running_on_after_the_cascade_shows_the_recovery(pop):
    res = simulate_cascade(pop, CascadeParams(depth=2e6, recovery=0.1, max_rounds=200, stop_when_quiet=False),
                           shock=-0.03)
    p = res.rounds.price.to_numpy()
    assert len(p) == 201
    after = p[res.n_rounds + 1:]
    assert np.all(np.diff(after) > 0) and after[-1] == pytest.approx(100.0, rel=1e-6)


def test_same_entries_across_leverage():
    a = make_population(2_000, seed=4, leverage=10)
    b = make_population(2_000, seed=4, leverage=20)
    # same entries: levels at 20x sit closer to the price than at 10x
    assert a.long_level.max() < b.long_level.max()
    assert np.all(np.isin(a.long_leverage, [10.0])) and np.all(np.isin(b.long_leverage, [20.0]))


def test_population_levels_follow_the_mmr_formula():
    p = make_population(1_000, seed=1, mix="uniform", mmr=0.004, spread=0.0, cluster_share=0.0)
    # no spread: every entry is the price, so levels are exactly the formula's
    lev = p.long_leverage
    np.testing.assert_allclose(p.long_level, 100.0 * (1 - 1 / lev) / (1 - 0.004), rtol=1e-12)
    np.testing.assert_allclose(p.short_level, 100.0 * (1 + 1 / p.short_leverage) / (1 + 0.004), rtol=1e-12)


# -- phase diagram --------------------------------------------------------------------------------
def test_phase_diagram_shape_and_orderings():
    lev = [2.0, 10.0, 25.0, 50.0]
    depth = np.geomspace(1e5, 1e9, 6)
    pdg = phase_diagram(lev, depth, shock=-0.02, n=5_000, total_notional=1e8)
    s = pdg.size_share
    assert s.shape == (4, 6)
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(s[0] == 0)  # 2x levels sit ~50 % below: out of reach
    assert np.all(np.diff(s, axis=1) <= 0)  # deeper book, smaller cascade
    assert s[-1, 0] > 0.5
    frame = pdg.to_frame("n_rounds")
    assert list(frame.index) == lev and frame.shape == (4, 6)


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    (dict(depth=0.0), "depth must be a positive"),
    (dict(depth=-5.0), "depth must be a positive"),
    (dict(depth=float("nan")), "depth must be a positive"),
    (dict(law="cubic"), "law"),
    (dict(recovery=1.0), "recovery"),
    (dict(shock_rounds=0), "shock_rounds"),
    (dict(max_rounds=2, shock_rounds=3), "cannot exceed"),
])
def test_invalid_params_raise_clear_errors(kw, match):
    with pytest.raises(CascadeError, match=match):
        CascadeParams(**kw)


def test_invalid_inputs_raise_clear_errors():
    with pytest.raises(CascadeError, match="above -1"):
        simulate_cascade(three_longs(), CascadeParams(), shock=-1.0)
    with pytest.raises(CascadeError, match="already liquidated"):
        Population.from_positions(100.0, ["long"], [101.0], [1.0])
    with pytest.raises(CascadeError, match="sorted"):
        Population(100.0, np.array([98.0, 99.0]), np.ones(2), np.array([]), np.array([]))
    with pytest.raises(CascadeError, match="'long' or 'short'"):
        Population.from_positions(100.0, ["up"], [99.0], [1.0])
    with pytest.raises(CascadeError, match="long_share"):
        make_population(10, long_share=1.5)
    with pytest.raises(CascadeError, match="round must lie"):
        simulate_cascade(three_longs(), CascadeParams(depth=1000.0), shock=-0.015).map_at(99)
    with pytest.raises(CascadeError, match="depth values"):
        phase_diagram([10.0], [0.0])


def test_population_from_the_synthetic_generator():
    from liqlab.sim.synth import SynthParams, simulate

    run = simulate(SynthParams(n_candles=144, burn_in_days=0.5, open_interest=1e9, seed=2))
    pop = population_from_synth(run)
    assert len(pop) > 1_000
    assert pop.price == run.full.close.iloc[-1]
    assert pop.long_level.max() < pop.price < pop.short_level.min()
    res = simulate_cascade(pop, CascadeParams(depth=1e7), shock=-0.05)
    assert res.size > 0
