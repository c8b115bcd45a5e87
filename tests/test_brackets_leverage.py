"""Liquidation prices (hand-worked), bracket tables, leverage mixes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liqlab.core.brackets import (
    BracketError, BracketTable, available_tables, default_brackets, level_factors, liquidation_price,
)
from liqlab.core.leverage import LeverageMix, LeverageMixError, preset_names


def binance_linear(ep, lev, side, notional, mmr, cum):
    """Binance's isolated formula written from the exchange's documentation, in quantities.

    LP = (WB + cum - side * Q * EP) / (Q * MMR - side * Q), with WB = Q * EP / L the margin.
    """
    q = notional / ep
    s = 1 if side == "long" else -1
    wb = q * ep / lev
    return (wb + cum - s * q * ep) / (q * mmr - s * q)


@pytest.mark.parametrize(
    "lev, side, expected",
    [
        (10, "long", 100 * 0.9 / 0.996),      # 90.3614...
        (10, "short", 100 * 1.1 / 1.004),     # 109.5617...
        (25, "long", 100 * 0.96 / 0.996),     # 96.3855...
        (25, "short", 100 * 1.04 / 1.004),    # 103.5856...
        (100, "long", 100 * 0.99 / 0.996),    # 99.3976: 0.60 % below, not 1 %
        (100, "short", 100 * 1.01 / 1.004),   # 100.5976
    ],
)
def test_linear_first_bracket(lev, side, expected):
    got = float(liquidation_price(100.0, lev, side, mmr=0.004))
    assert got == pytest.approx(expected, rel=1e-14)
    assert got == pytest.approx(binance_linear(100.0, lev, side, 10_000, 0.004, 0.0), rel=1e-12)


def test_hundred_x_distance_is_sixty_basis_points():
    lp = float(liquidation_price(50_000.0, 100, "long", mmr=0.004))
    assert 1 - lp / 50_000 == pytest.approx(0.006024096, rel=1e-6)


@pytest.mark.parametrize(
    "lev, side, expected",
    [
        (10, "long", 100 * 1.004 / 1.1),      # 91.2727...
        (10, "short", 100 * 0.996 / 0.9),     # 110.6667
        (25, "long", 100 * 1.004 / 1.04),
        (100, "short", 100 * 0.996 / 0.99),
    ],
)
def test_inverse(lev, side, expected):
    assert float(liquidation_price(100.0, lev, side, mmr=0.004, contract="inverse")) == pytest.approx(expected, rel=1e-14)


def test_second_bracket_uses_maintenance_amount():
    table = default_brackets("binance", "BTCUSDT")
    mmr, cum, max_lev = table.lookup([100_000.0])
    assert (mmr[0], cum[0], max_lev[0]) == (0.005, 50.0, 100.0)
    mmr, cum = float(mmr[0]), float(cum[0])
    lp = float(liquidation_price(40_000.0, 10, "long", mmr=mmr, cum=cum, notional=100_000.0))
    # EP (1 - 1/L - cum/N) / (1 - MMR) = 40000 * (0.9 - 0.0005) / 0.995
    assert lp == pytest.approx(40_000 * 0.8995 / 0.995, rel=1e-14)
    assert lp == pytest.approx(binance_linear(40_000.0, 10, "long", 100_000.0, 0.005, 50.0), rel=1e-12)
    sp = float(liquidation_price(40_000.0, 10, "short", mmr=mmr, cum=cum, notional=100_000.0))
    assert sp == pytest.approx(binance_linear(40_000.0, 10, "short", 100_000.0, 0.005, 50.0), rel=1e-12)


def test_cum_amounts_follow_the_recursion():
    t = default_brackets()
    assert t.cum[:4].tolist() == pytest.approx([0.0, 50.0, 1300.0, 16300.0], rel=1e-12)
    assert t.name == "binance:BTCUSDT:2021"


def test_level_factors_reject_leverage_above_bracket():
    t = default_brackets()
    with pytest.raises(BracketError, match="above the 100x"):
        level_factors([125], "long", brackets=t, notional=100_000)
    f = level_factors([10, 100], "long", brackets=t, notional=10_000)
    assert f.tolist() == pytest.approx([0.9 / 0.996, 0.99 / 0.996])


def test_levels_move_the_right_way():
    lev = np.array([2, 5, 10, 25, 50, 100])
    longs = liquidation_price(100.0, lev, "long", mmr=0.004)
    shorts = liquidation_price(100.0, lev, "short", mmr=0.004)
    assert np.all(np.diff(longs) > 0) and np.all(np.diff(shorts) < 0)  # toward price with leverage
    assert float(liquidation_price(100, 10, "long", mmr=0.01)) > float(liquidation_price(100, 10, "long", mmr=0.004))
    assert float(liquidation_price(100, 10, "short", mmr=0.01)) < float(liquidation_price(100, 10, "short", mmr=0.004))


def test_bad_inputs():
    with pytest.raises(BracketError, match="leverage"):
        liquidation_price(100, 0.5, "long")
    with pytest.raises(BracketError, match="side"):
        liquidation_price(100, 10, "up")
    with pytest.raises(BracketError, match="mmr"):
        liquidation_price(100, 10, "long", mmr=1.5)
    with pytest.raises(BracketError, match="increasing"):
        BracketTable(caps=(10, 5), mmr=(0.01, 0.02), max_leverage=(10, 5))
    with pytest.raises(BracketError, match="exceeds the last bracket"):
        BracketTable(caps=(10,), mmr=(0.01,), max_leverage=(10,)).lookup([20])


def test_tables_round_trip_json(tmp_path):
    t = default_brackets("binanceusdm", "ETH/USDT:USDT")
    assert t.name.startswith("binance:ETHUSDT")
    p = tmp_path / "t.json"
    p.write_text(json.dumps(t.to_dict()))
    assert BracketTable.from_json(p) == t
    assert {"binance_btcusdt", "binance_ethusdt", "binance_default"} <= set(available_tables())


def test_leverage_mix_presets_and_validation(tmp_path):
    for name in preset_names():
        mix = LeverageMix.preset(name)
        assert mix.weights("long").sum() == pytest.approx(1.0)
        assert mix.weights("short").sum() == pytest.approx(1.0)
    mix = LeverageMix(leverages=(5, 10), long=(1, 3), short=(0, 0))
    assert mix.long == (0.25, 0.75) and mix.short == (0.0, 0.0)
    with pytest.raises(LeverageMixError, match="unknown leverage preset 'x'"):
        LeverageMix.preset("x")
    with pytest.raises(LeverageMixError, match="one value per tier"):
        LeverageMix(leverages=(5, 10), long=(1,), short=(1, 1))
    with pytest.raises(LeverageMixError, match="non-negative"):
        LeverageMix(leverages=(5,), long=(-1,), short=(1,))
    with pytest.raises(LeverageMixError, match=r"\(1, 1000\]"):
        LeverageMix(leverages=(1,), long=(1,), short=(1,))
    p = tmp_path / "mix.json"
    p.write_text(json.dumps({"leverages": [3, 20], "long": [1, 1]}))
    assert LeverageMix.resolve(str(p)).short == (0.5, 0.5)
    p.write_text("{not json")
    with pytest.raises(LeverageMixError, match="cannot read"):
        LeverageMix.resolve(str(p))
