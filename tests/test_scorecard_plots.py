"""Scorecard figures and helpers on small hand-made inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqlab.viz import scorecard_plots as sp
from liqlab.evaluate.scoring import calibrate, compare, largest_misses, load_scoring_market, top_candles
from liqlab.sources.csv_files import load_market_file

N = 40
INDEX = pd.date_range("2026-01-01", periods=N, freq="1h", tz="UTC")
SPLIT = INDEX[30]


def frame(long, short) -> pd.DataFrame:
    return pd.DataFrame({"long_usd": np.asarray(long, float), "short_usd": np.asarray(short, float)}, index=INDEX)


@pytest.fixture()
def pair():
    rng = np.random.default_rng(3)
    pred = frame(rng.uniform(0, 1e6, N), rng.uniform(0, 1e6, N))
    # realized = 10 * predicted exactly in log1p space: log1p(r) = log(10) + log1p(p)
    real = frame(np.expm1(np.log(10) + np.log1p(pred.long_usd)), np.expm1(np.log(10) + np.log1p(pred.short_usd)))
    return pred, real


def table():
    rows = []
    for model, base in (("liqlab", 0.5), ("move_x_oi", 0.2)):
        for side, add in (("long", 0.0), ("short", 0.1)):
            rows.append(dict(model=model, side=side, spearman=base + add, log_r2=base - 0.1 + add,
                             cascade_recall=0.857, n_train=30, n_test=10))
    return pd.DataFrame(rows)


def test_metrics_figure_bars_hold_the_table():
    fig = sp.metrics_figure(table())
    bar = next(t for t in fig.data if t.meta == "metric:log_r2:liqlab")
    assert list(bar.x) == ["long", "short"] and np.allclose(bar.y, [0.4, 0.5])
    assert {t.meta for t in fig.data} == {f"metric:{m}:{n}" for m in sp.METRICS for n in ("liqlab", "move_x_oi")}
    assert "10 test candles" in fig.layout.title.text


def test_calibrate_recovers_an_exact_log_line(pair):
    pred, real = pair
    cal = calibrate(pred, real, split=SPLIT)
    a, b = cal.attrs["lines"]["long"]
    assert a == pytest.approx(np.log(10)) and b == pytest.approx(1.0)
    assert np.allclose(cal.long_usd, real.long_usd, rtol=1e-9)


def test_timeline_figure_draws_calibrated_model_and_test_span(pair):
    pred, real = pair
    fig = sp.timeline_figure(pred, real, split=SPLIT, baseline=pred * 0 + 5.0)
    traces = {t.meta: t for t in fig.data}
    assert set(traces) == {f"{k}_{s}" for k in ("realized", "model", "baseline") for s in ("long", "short")}
    assert np.allclose(traces["realized_short"].y, real.short_usd)
    assert np.allclose(traces["model_long"].y, real.long_usd, rtol=1e-9)
    # a constant predictor calibrates to the training mean (in log1p space)
    assert np.allclose(traces["baseline_long"].y, np.expm1(np.log1p(real.long_usd[:30]).mean()))
    span = next(s for s in fig.layout.shapes if s.name == "test_span")
    assert span.x0 == SPLIT.value / 1e6
    assert fig.layout.yaxis.type == "log"


def test_scatter_splits_train_and_test(pair):
    pred, real = pair
    fig = sp.scatter_figure(pred, real, split=SPLIT)
    traces = {t.meta: t for t in fig.data}
    assert len(traces["train_long"].x) == 30 and len(traces["test_long"].x) == 10
    assert np.allclose(traces["test_short"].x, 1 + pred.short_usd[30:])
    fit = traces["fit_long"]
    assert np.allclose(np.log(fit.y), np.log(10) + np.log(fit.x))  # the training line, in log1p space


def test_sensitivity_figure_one_trace_per_setting_metric_side():
    rows = []
    for setting, values in (("turnover", [0.0, 0.1]), ("half_life_hours", ["None", 24.0]),
                            ("position_notional", [1e4, 1e6])):
        for i, v in enumerate(values):
            for side in ("long", "short"):
                rows.append(dict(setting=setting, value=v, side=side, spearman=0.1 * i, log_r2=0.2, cascade_recall=0.5))
    fig = sp.sensitivity_figure(pd.DataFrame(rows), reference={"turnover": 0.1, "position_notional": 1e4})
    assert len(fig.data) == 3 * 3 * 2
    t = next(t for t in fig.data if t.meta == "sens:position_notional:spearman:long")
    assert list(t.x) == ["10k", "1M"] and np.allclose(t.y, [0.0, 0.1])
    assert list(next(t for t in fig.data if t.meta == "sens:half_life_hours:log_r2:short").x) == ["off", "24"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted({s.x0 for s in lines}) == [0, 1]  # category positions of 1e4 and 0.1


def test_misses_top_candles_and_verdicts():
    pred = frame(np.r_[np.zeros(30), [0, 1e6, 10, 1e6, 5, 5, 5, 5, 5, 5]], np.ones(N))
    real = frame(np.r_[np.linspace(1, 100, 30), [1e7, 1e6, 1, 1e6, 5, 5, 5, 5, 5, 5]], np.ones(N))
    mkt = type("M", (), {})()
    mkt.column = lambda k: {"open": np.full(N, 100.0), "high": np.full(N, 101.0), "low": np.full(N, 99.0)}[k]
    mkt.index = INDEX
    under = largest_misses(pred, real, mkt, split=SPLIT, n=3, kind="under")
    assert under.time.iloc[0] == INDEX[30] and (under.log_error > 0).all()
    assert under.adverse_move_pct.iloc[0] == pytest.approx(1.0)
    over = largest_misses(pred, real, mkt, split=SPLIT, n=2, kind="over")
    assert (over.log_error <= 0).all()
    with pytest.raises(ValueError):
        largest_misses(pred, real, mkt, split=SPLIT, kind="sideways")
    top = top_candles({"m": pred}, real, mkt, "long", split=SPLIT, top_real=0.1, top_pred=0.2)
    assert list(top.time) == [INDEX[30]] and not top.m_caught.iloc[0]
    v = compare(table(), "liqlab", "move_x_oi")
    assert v.loc[("log_r2", "long"), "verdict"] == "wins" and v.loc[("cascade_recall", "short"), "verdict"] == "tie"


def test_scoring_data_falls_back_to_the_sample_or_reads_user_files(tmp_path):
    sample = load_scoring_market(real_dir=tmp_path)
    assert sample.source == "sample" and "SYNTHETIC" in sample.note and sample.market.timeframe == "1h"
    path = tmp_path / "mine.csv"
    rows = ["timestamp,open,high,low,close,volume,open_interest,long_usd,short_usd"]
    for i, t in enumerate(INDEX):
        rows.append(f"{t:%Y-%m-%dT%H:%M:%SZ},100,101,99,100,10,{1e6 + i},{i},{2 * i}")
    path.write_text("\n".join(rows) + "\n")
    mine = load_scoring_market(path, split=SPLIT)
    assert mine.source == "files" and mine.split == SPLIT and len(mine.market) == N
    assert mine.market.liquidations.short_usd.iloc[3] == 6.0
    assert load_market_file(path, gaps="keep").liquidations is not None
