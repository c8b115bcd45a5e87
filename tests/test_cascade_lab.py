"""CascadeLab driven in-process: stepping, settings, the phase diagram, hostile values."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from liqlab.viz import cascade_plots# noqa: E402
from liqlab.sim.cascade import CascadeParams, make_population, simulate_cascade  # noqa: E402
from liqlab.apps.cascade_lab import CascadeLab  # noqa: E402


@pytest.fixture()
def lab():
    return CascadeLab(n=5_000, phase_grid=(6, 5))


def test_starts_on_the_last_round_of_a_real_cascade(lab):
    assert not lab.error, lab.message
    last = len(lab.result.rounds) - 1
    assert lab.round == last == lab.w_round.value == lab.w_round.max
    path = lab.trace("path")
    assert len(path["y"]) == last + 1 and path["y"][0] == 100.0 and path["y"][1] == pytest.approx(98.0)
    assert "shock liquidated" in lab.status.value


def test_stepping_changes_the_figure_data(lab):
    lab.show_round(0)
    assert list(lab.trace("path")["y"]) == [100.0]
    heat = np.asarray(lab.trace("heat")["z"], dtype=float)
    assert np.isfinite(heat[:, 0]).any() and not np.isfinite(heat[:, 1:]).any()  # later rounds blank
    long0 = np.sum(lab.trace("map_long")["x"])
    lab.step(1)
    assert lab.round == 1 and len(lab.trace("path")["y"]) == 2
    assert np.sum(lab.trace("map_long")["x"]) < long0  # the shock swept long levels
    assert lab.trace("liq_long")["y"][-1] == pytest.approx(lab.result.rounds.long_usd.iloc[1])
    lab.step(-5)  # clamped
    assert lab.round == 0
    lab.w_round.value = 2  # the slider (and the Play widget linked to it)
    assert lab.round == 2 and len(lab.trace("path")["y"]) == 3


def test_settings_rerun_and_mark_the_phase_diagram(lab):
    diagram = lab.diagram
    base = lab.result.size_share
    assert lab.set(depth_m=100)
    assert lab.result.size_share > base
    assert lab.diagram is diagram  # depth is an axis of the diagram: no new sweep
    assert list(lab.trace("current")["y"]) == [100.0] and list(lab.trace("current")["x"]) == [25.0]
    assert lab.set(shock_pct=-4)
    assert lab.diagram is not diagram and lab.diagram.shock == pytest.approx(-0.04)
    z = np.asarray(lab.trace("phase")["z"], dtype=float)
    assert z.shape == (5, 6) and np.allclose(z, 100 * lab.diagram.size_share.T)
    assert lab.set(leverage=5, shock_pct=-2) and lab.result.size == 0.0  # levels out of reach


@pytest.mark.parametrize("setting, value, words", [
    ("depth_m", 0.0, "book depth must be positive"),
    ("depth_m", -5.0, "book depth must be positive"),
    ("depth_m", float("nan"), "finite"),
    ("depth_m", 1e12, "between"),
    ("mmr_pct", 2.5, "liquidated at entry"),  # with leverage 50 below
])
def test_hostile_values_give_a_status_message(lab, setting, value, words):
    good_path = list(lab.trace("path")["y"])
    if setting == "mmr_pct":
        lab.set(leverage=50)
        good_path = list(lab.trace("path")["y"])
    assert lab.set(**{setting: value}) is False
    assert lab.error and words in lab.message, lab.message
    assert "Error:" in lab.status.value
    assert list(lab.trace("path")["y"]) == good_path  # the last good figure stays


def test_hostile_rounds_and_widget_values(lab):
    lab._guarded(lab.show_round, 10_000)
    assert lab.error and "round must be" in lab.message
    lab._guarded(lab.show_round, "3")
    assert lab.error
    lab.w_leverage.value = float("nan")  # bypasses the slider's clamping
    assert lab.error and "leverage" in lab.message
    lab.w_leverage.value = 25.0
    assert not lab.error and math.isclose(lab.inputs.leverage, 25.0)
    with pytest.raises(KeyError):
        lab.set(colour="red")


def test_cascade_parts_reveal_rounds_and_keep_axes():
    pop = make_population(3_000, leverage=25, seed=1)
    res = simulate_cascade(pop, CascadeParams(depth=5e7), -0.03)
    last = len(res.rounds) - 1
    edges = cascade_plots.display_edges(res)
    a = cascade_plots.cascade_parts(res, 1, edges=edges)
    b = cascade_plots.cascade_parts(res, last, edges=edges)
    assert a["layout"]["xaxis.range"] == b["layout"]["xaxis.range"] == [-0.5, last + 0.5]
    assert len(a["traces"]["path"]["y"]) == 2 and len(b["traces"]["path"]["y"]) == last + 1
    lo, hi = b["layout"]["yaxis.range"]
    assert lo < res.rounds.price.min() and hi > 100.0
    remaining = b["traces"]["map_long"]["x"].sum()
    assert remaining == pytest.approx(res.map_at(last, edges).long_usd.sum())
    with pytest.raises(ValueError):
        cascade_plots.cascade_parts(res, last + 1)


def test_values_refused_by_widget_traits_are_reported_not_raised(lab):
    before = lab.w_depth.value
    lab.w_depth.set_state({"value": "deep"})  # what a visitor's update message becomes in the kernel
    assert lab.w_depth.value == before
    assert "refused" in lab.status.value
