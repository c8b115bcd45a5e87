"""The synthetic market generator and the bundled sample."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from liqlab.core.jit import NUMBA_DISABLED
from liqlab.core.brackets import BracketTable
from liqlab.sim.datasets import SAMPLE_DIR, load_sample, sample_symbols
from liqlab.core.leverage import LeverageMix
from liqlab.core.market import MarketDataError
from liqlab.sim.synth import HIDDEN_MIX, SynthError, SynthParams, draw_noise, simulate


def small(**kw) -> SynthParams:
    """One day of 5-minute candles after a half-day burn-in."""
    base = dict(n_candles=288, burn_in_days=0.5, open_interest=1e9, seed=7)
    base.update(kw)
    return SynthParams(**base)


# -- hand-made scenario --------------------------------------------------------------------------
def crash_scenario(crash: float = -0.12, at: int = 10):
    """Flat price at 100, one 10x tier, flat MMR 0.5 %; a single jump of ``crash`` at candle ``at``."""
    mix = LeverageMix(leverages=(10,), long=(1.0,), short=(1.0,), name="one-tier")
    params = SynthParams(
        price=100.0, n_candles=20, burn_in_days=0.0, open_interest=1e10, mix=mix, hold_days=(1000.0,),
        entries_per_tier=1, brackets=BracketTable.flat(0.005), jumps_per_day=0.0, crowding_tilt=0.0,
    )
    noise = draw_noise(params)
    noise.z[:] = 0.0
    noise.jumps[:] = 0.0
    noise.jumps[at, 0] = crash
    noise.wick_lo[:] = 0.0
    noise.wick_hi[:] = 0.0
    noise.u[:] = 0.5
    noise.hold[:] = 1000
    return params, noise


def test_crash_liquidates_exactly_the_longs_whose_level_the_low_reached():
    params, noise = crash_scenario()
    res = simulate(params, noise)
    full = res.full
    # flat until the crash: every candle is 100/100/100/100
    assert (full[["open", "high", "low", "close"]].iloc[:10].to_numpy() == 100.0).all()
    level = 100.0 * 0.9 / 0.995  # 10x long, MMR 0.5 %: 90.452...
    pos = res.positions
    longs = pos[pos.side == "long"]
    assert np.allclose(longs.level.iloc[:10], level, rtol=1e-14)
    # the crash candle: low 88 before impact, deeper after; the ten long cohorts from before it go
    liq = pos[pos.status == "liquidated"]
    assert len(liq) == 10
    assert (liq.side == "long").all()
    assert liq.open_candle.tolist() == list(range(10))
    assert (liq.exit_candle == 10).all()
    assert full.low.iloc[10] < 88.0 + 1e-9
    expected = float((noise.notional[:10, 0] / 100.0 * level).sum())
    assert full.liq_long_usd.iloc[10] == pytest.approx(expected, rel=1e-12)
    assert full.liq_long_usd.drop(full.index[10]).sum() == 0.0
    assert full.liq_short_usd.sum() == 0.0
    # the observable market carries the same events
    ev = res.market.liquidation_events
    assert len(ev) == 10 and (ev.side == "long").all()
    assert (ev.timestamp == full.index[10]).all()
    assert res.market.liquidations.long_usd.sum() == pytest.approx(expected, rel=1e-12)


def test_crash_that_stops_short_of_the_level_liquidates_nothing():
    params, noise = crash_scenario(crash=-0.09)  # low 91 > 90.45
    res = simulate(params, noise)
    assert res.full.low.iloc[10] == pytest.approx(91.0, rel=1e-12)
    assert res.full.liq_long_usd.sum() == 0.0
    assert (res.positions.status != "liquidated").all()


def test_positions_opened_in_the_crash_candle_are_not_liquidated_by_it():
    params, noise = crash_scenario(at=0)  # the very first candle crashes: nothing was open yet
    res = simulate(params, noise)
    assert res.full.liq_long_usd.sum() == 0.0
    assert len(res.market.liquidation_events) == 0


# -- determinism and twins -----------------------------------------------------------------------
def test_same_seed_gives_identical_output():
    a, b = simulate(small()), simulate(small())
    pd.testing.assert_frame_equal(a.full, b.full, check_exact=True)
    pd.testing.assert_frame_equal(a.positions, b.positions, check_exact=True)
    pd.testing.assert_frame_equal(a.market.liquidation_events, b.market.liquidation_events, check_exact=True)


def test_different_seeds_differ():
    a, b = simulate(small(seed=1)), simulate(small(seed=2))
    assert not np.array_equal(a.full.close.to_numpy(), b.full.close.to_numpy())


def test_numba_kernel_equals_its_python_twin():
    params = small(n_candles=200)
    fast, slow = simulate(params), simulate(params, python=True)
    pd.testing.assert_frame_equal(fast.full, slow.full, check_exact=True)
    pd.testing.assert_frame_equal(fast.positions, slow.positions, check_exact=True)
    assert fast.full.liq_long_usd.sum() > 0  # the comparison covered liquidations


# -- invariants on random runs -------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conservation_opened_equals_open_plus_closed_plus_liquidated(seed):
    res = simulate(small(seed=seed))
    tot = res.totals
    assert tot["liquidated"] > 0 and tot["closed"] > 0 and tot["open"] > 0
    assert tot["opened"] == pytest.approx(tot["open"] + tot["closed"] + tot["liquidated"], rel=1e-12)
    # open interest is what is still open
    pos = res.positions
    still = pos[pos.status == "open"]
    oi = res.full.close.iloc[-1] * still.qty.sum() / 2.0
    assert res.full.open_interest.iloc[-1] == pytest.approx(oi, rel=1e-9)
    # every cohort ends in exactly one state, with an exit exactly when it is no longer open
    assert ((pos.exit_candle >= 0) == (pos.status != "open")).all()
    gone = pos[pos.status != "open"]
    assert (gone.exit_candle > gone.open_candle).all()


@pytest.mark.parametrize("seed", [3, 4])
def test_liquidations_happen_exactly_where_the_range_reached_a_level(seed):
    res = simulate(small(seed=seed, depth_1pct=0.05))
    full, pos = res.full, res.positions
    low, high = full.low.to_numpy(), full.high.to_numpy()
    n = len(full)
    liq = pos[pos.status == "liquidated"]
    assert len(liq) > 0
    t = liq.exit_candle.to_numpy()
    is_long = (liq.side == "long").to_numpy()
    assert (liq.open_candle.to_numpy() < t).all()  # vulnerable only from the next candle
    assert (liq.level.to_numpy()[is_long] >= low[t[is_long]]).all()
    assert (liq.level.to_numpy()[~is_long] <= high[t[~is_long]]).all()
    # nobody survives a candle whose range reached their level
    for row in pos[pos.notional > 0].itertuples():
        end = row.exit_candle if row.exit_candle >= 0 else n
        last = end if row.status == "liquidated" else end - 1  # planned closes happen at the open
        window = slice(row.open_candle + 1, last)  # candles survived
        if row.side == "long":
            assert not (low[window] <= row.level).any()
        else:
            assert not (high[window] >= row.level).any()


def test_cascades_emerge_from_the_feedback():
    deep = simulate(small(seed=5, depth_1pct=1e6))  # no impact: liquidations cannot feed back
    thin = simulate(small(seed=5, depth_1pct=0.02))
    assert thin.totals["liquidated"] > 1.5 * deep.totals["liquidated"]


def test_market_is_labelled_and_complete():
    m = simulate(small()).market
    assert m.synthetic and m.exchange == "synthetic" and m.timeframe == "5m"
    assert len(m) == 288
    for col in ("funding_rate", "long_short_ratio", "taker_buy_volume"):
        assert col in m.data and np.isfinite(m.data[col]).all()
    assert (m.data.taker_buy_volume <= m.data.volume + 1e-9).all()
    assert m.liquidations is not None and m.liquidation_events is not None


def test_hidden_mix_is_not_the_default_preset():
    balanced = LeverageMix.preset("balanced")
    assert HIDDEN_MIX.leverages != balanced.leverages
    assert SynthParams().mix == HIDDEN_MIX


@pytest.mark.parametrize("bad, match", [
    (dict(price=0.0), "price"),
    (dict(garch_alpha=0.5, garch_beta=0.6), "below 1"),
    (dict(hold_days=(1.0,)), "hold_days"),
    (dict(student_df=2.0), "student_df"),
    (dict(mix=LeverageMix(leverages=(200,), long=(1,), short=(1,)), hold_days=(1.0,)), "allows"),
])
def test_bad_parameters_raise_clearly(bad, match):
    with pytest.raises(SynthError, match=match):
        SynthParams(**bad)


# -- the bundled sample --------------------------------------------------------------------------
def test_sample_symbols():
    assert sample_symbols() == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.mark.skipif(NUMBA_DISABLED, reason="regenerating 3 x 35 days in plain Python takes minutes")
@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
def test_committed_sample_equals_a_fresh_regeneration(symbol):
    from liqlab.sim.sample import sample_market

    stored, fresh = load_sample(symbol), sample_market(symbol)
    pd.testing.assert_frame_equal(stored.data, fresh.data, check_exact=True)
    pd.testing.assert_frame_equal(stored.liquidations, fresh.liquidations, check_exact=True)
    pd.testing.assert_frame_equal(stored.liquidation_events, fresh.liquidation_events, check_exact=True)


@pytest.mark.parametrize("symbol, lo, hi", [("BTCUSDT", 45_000, 180_000), ("ETHUSDT", 1_500, 6_000),
                                            ("SOLUSDT", 75, 300)])
def test_sample_shape_and_labels(symbol, lo, hi):
    m = load_sample(symbol)
    assert m.synthetic and m.source == "sample" and m.exchange == "synthetic"
    assert "(synthetic)" in m.label
    assert len(m) == 10_080 and m.timeframe == "5m"
    assert lo < m.data.close.median() < hi
    assert (m.liquidations.long_usd > 0).any() and (m.liquidations.short_usd > 0).any()
    ev = m.liquidation_events
    low = m.data.low.reindex(ev.timestamp.dt.floor("5min")).to_numpy()
    high = m.data.high.reindex(ev.timestamp.dt.floor("5min")).to_numpy()
    longs = (ev.side == "long").to_numpy()
    assert (ev.price.to_numpy()[longs] >= low[longs]).all()
    assert (ev.price.to_numpy()[~longs] <= high[~longs]).all()


def test_sample_files_are_labelled_and_small():
    from liqlab.sim.sample import read_metadata

    files = [p for p in SAMPLE_DIR.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 5 * 2**20
    assert json.loads((SAMPLE_DIR / "manifest.json").read_text())["synthetic"] is True
    parquet = [p for p in files if p.suffix == ".parquet"]
    assert len(parquet) == 6
    assert all(read_metadata(p)["synthetic"] is True for p in parquet)
    assert "synthetic" in (SAMPLE_DIR / "README.md").read_text().lower()


def test_unknown_symbol_lists_the_available_ones():
    with pytest.raises(MarketDataError, match=r"DOGEUSDT.*BTCUSDT.*ETHUSDT.*SOLUSDT"):
        load_sample("DOGEUSDT")


def test_symbol_spelling_is_forgiving():
    assert load_sample("btc/usdt:usdt").symbol == "BTCUSDT"


def test_missing_sample_folder_says_how_to_regenerate(tmp_path):
    with pytest.raises(MarketDataError, match="liqlab.sim.sample"):
        load_sample("BTCUSDT", folder=tmp_path)
