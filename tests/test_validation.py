"""Scoring: metric values on hand-made inputs, baselines, fitting without lookahead, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from liqlab.cli import main
from liqlab.core.market import make_market
from liqlab.evaluate.validation import (
    ValidationError, cascade_recall, fit_log_line, fit_model, ladder, log_r2, move_x_oi, scorecard,
    score_predictions, sensitivity, spearman,
)


def test_spearman_exact():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties get average ranks: x ranks 1.5,1.5,3,4 vs 1..4 -> r = 0.9486832980505138
    assert spearman([0, 0, 1, 2], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)
    assert np.isnan(spearman([0, 0, 0], [1, 2, 3]))


def test_log_line_and_r2_exact():
    pred = np.expm1([0.0, 1.0, 2.0, 3.0])
    real = np.expm1([1.0, 3.0, 5.0, 7.0])  # log1p(real) = 1 + 2 log1p(pred)
    a, b = fit_log_line(pred, real)
    assert (a, b) == (pytest.approx(1.0), pytest.approx(2.0))
    assert log_r2(pred, real, (a, b)) == pytest.approx(1.0)
    # predicting the mean of y gives R2 = 0; a worse line is negative
    assert log_r2(pred, real, (4.0, 0.0)) == pytest.approx(0.0)
    assert log_r2(pred, real, (0.0, 0.0)) < 0
    assert fit_log_line([5, 5, 5], [np.e - 1] * 3) == (pytest.approx(1.0), 0.0)


def test_cascade_recall_exact():
    real = np.zeros(100)
    real[[3, 50]] = [100, 90]      # top 2 % = two candles
    pred = np.zeros(100)
    pred[[3, 10, 11, 12, 13]] = 5  # top 5 % = five candles, only one of the two cascades
    assert cascade_recall(pred, real) == 0.5
    pred[13] = 0
    pred[50] = 1
    assert cascade_recall(pred, real) == 1.0
    assert cascade_recall(np.zeros(100), real) == 0.0


def _market(n=200, seed=0):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.concatenate([[100.0], c[:-1]])
    h = np.maximum(o, c) * 1.002
    l = np.minimum(o, c) * 0.998
    idx = pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC")
    df = pd.DataFrame({"open": o, "high": h, "low": l, "close": c, "volume": 50.0,
                       "open_interest": 1e6 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))}, index=idx)
    liq = pd.DataFrame({"long_usd": (o - l) / o * 1e6 * rng.uniform(0.5, 1.5, n),
                        "short_usd": (h - o) / o * 1e6 * rng.uniform(0.5, 1.5, n)}, index=idx)
    return make_market(df, symbol="BTCUSDT", exchange="binance", liquidations=liq)


def test_move_x_oi_baseline_exact():
    m = _market(5)
    b = move_x_oi(m)
    d = m.data
    assert b["long_usd"].iloc[2] == pytest.approx((d.open.iloc[2] - d.low.iloc[2]) / d.open.iloc[2] * d.open_interest.iloc[2])
    assert b["short_usd"].iloc[4] == pytest.approx((d.high.iloc[4] - d.open.iloc[4]) / d.open.iloc[4] * d.open_interest.iloc[4])


def test_ladder_baseline_hits_tiers_reached():
    idx = pd.date_range("2025-01-01", periods=2, freq="1h", tz="UTC")
    df = pd.DataFrame({"open": [100, 100], "high": [100, 100.5], "low": [100, 98.5], "close": [100, 99],
                       "volume": 1.0, "open_interest": [1e6, 1e6]}, index=idx, dtype=float)
    m = make_market(df, symbol="BTCUSDT", exchange="binance")
    from liqlab.core.leverage import LeverageMix

    mix = LeverageMix(leverages=(10, 50, 100), long=(0.5, 0.3, 0.2), short=(0.5, 0.3, 0.2))
    b = ladder(m, mix)
    # from 100: 100x long level 99.40 and 50x level 98.39... low 98.5 reaches only 100x
    assert b["long_usd"].tolist() == pytest.approx([0.0, 0.2e6])
    # 100x short level 100.60 is above the high 100.5
    assert b["short_usd"].tolist() == [0.0, 0.0]


def test_scorecard_rows_and_errors():
    m = _market()
    table = scorecard(m, split=0.6)
    assert set(table["model"]) == {"liqlab", "move_x_oi", "ladder"}
    assert len(table) == 6 and table["n_test"].eq(80).all()
    # the realized series here is move x OI with noise: the baseline must rank well
    base = table[(table.model == "move_x_oi") & (table.side == "long")].iloc[0]
    assert base.spearman > 0.8
    with pytest.raises(ValidationError, match="no realized liquidations"):
        scorecard(m.with_liquidations(None))
    with pytest.raises(ValidationError, match="need at least 10"):
        score_predictions(move_x_oi(m), m.liquidations, split=m.index[3])


def test_fit_uses_training_span_only():
    m = _market(300)
    cut = m.index[200]
    best, table = fit_model(m, split=cut, grid={"turnover": [0.0, 0.1], "mix": ["balanced", "degen"]})
    assert len(table) == 4 and table["objective"].is_monotonic_decreasing
    # changing realized liquidations after the split changes nothing in the fit
    liq = m.liquidations.copy()
    liq.loc[cut:, :] = liq.loc[cut:, :].to_numpy()[::-1]
    best2, table2 = fit_model(m.with_liquidations(liq), split=cut,
                              grid={"turnover": [0.0, 0.1], "mix": ["balanced", "degen"]})
    assert best2 == best
    pd.testing.assert_frame_equal(table, table2)


def test_sensitivity_table():
    m = _market()
    t = sensitivity(m, {"turnover": [0.0, 0.2]}, split=0.5)
    assert list(t.columns) == ["setting", "value", "side", "spearman", "log_r2", "cascade_recall"]
    assert len(t) == 4


def test_cli_predict_and_validate(tmp_path, capsys):
    m = _market()
    mk = tmp_path / "m.csv"
    lq = tmp_path / "l.csv"
    m.data.reset_index().to_csv(mk, index=False)
    m.liquidations.reset_index().to_csv(lq, index=False)
    out = tmp_path / "p.csv"
    assert main(["predict", str(mk), "--out", str(out), "--mix", "retail"]) == 0
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["timestamp", "long_usd", "short_usd"] and len(pred) == 200
    assert pred["timestamp"].iloc[0] == "2025-01-01T00:00:00Z"
    capsys.readouterr()
    assert main(["validate", str(mk), str(lq), "--split", str(m.index[120]), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in payload["scores"]} == {"liqlab", "move_x_oi", "ladder"}
    assert main(["validate", str(mk), str(lq), "--fit"]) == 0
    text = capsys.readouterr().out
    assert "fitted on the training span: mix=" in text and "move_x_oi" in text


def test_cli_errors_are_one_sentence(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("liqlab predict: ") and "Traceback" not in err and err.count("\n") == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open\n2025-01-01,1\n")
    assert main(["predict", str(bad)]) == 1
    assert "open_interest" in capsys.readouterr().err


def test_real_hourly_scorecard(real_data):
    """The GUIDE's skill check on real data: calibrate before 2026-01-01, score after."""
    from liqlab.sources.csv_files import load_market_file

    m = load_market_file(real_data / "btcusdt_1h_market.csv",
                         liquidations=real_data / "btcusdt_1h_liquidations.csv", gaps="keep")
    best, _ = fit_model(m, split="2026-01-01")
    table = scorecard(m, params=best, split="2026-01-01").set_index(["model", "side"])
    for side in ("long", "short"):
        model, base = table.loc[("liqlab", side)], table.loc[("move_x_oi", side)]
        assert model.log_r2 > base.log_r2
        assert model.cascade_recall >= base.cascade_recall
        assert model.spearman > base.spearman


# -- the command line under hostile input: one sentence, a non-zero status, never a nan table
def _files(tmp_path, liquidations: pd.DataFrame | None = None):
    m = _market()
    mk, lq = tmp_path / "m.csv", tmp_path / "l.csv"
    m.data.reset_index().to_csv(mk, index=False)
    (m.liquidations if liquidations is None else liquidations).reset_index().to_csv(lq, index=False)
    return m, mk, lq


def _one_sentence(capsys, status: int, argv: list[str], *needles: str) -> str:
    assert main(argv) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "usage:" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_validate_refuses_realized_data_outside_the_market(tmp_path, capsys):
    m = _market()
    later = m.liquidations.copy()
    later.index = later.index + pd.Timedelta(days=365)
    _, mk, lq = _files(tmp_path, later)
    _one_sentence(capsys, 1, ["validate", str(mk), str(lq)], "liqlab validate: ", "zero on every candle")


def test_validate_refuses_all_zero_realized_data(tmp_path, capsys):
    m = _market()
    _, mk, lq = _files(tmp_path, m.liquidations * 0.0)
    _one_sentence(capsys, 1, ["validate", str(mk), str(lq), "--json"], "zero on every candle")


def test_a_side_with_constant_realized_test_span_is_refused():
    m = _market()
    liq = m.liquidations.copy()
    liq.loc[m.index[100]:, "short_usd"] = 0.0
    with pytest.raises(ValidationError, match="realized short liquidations are the same"):
        scorecard(m.with_liquidations(liq), split=0.5)


def test_usage_errors_are_one_sentence(tmp_path, capsys):
    _one_sentence(capsys, 2, ["validate"], "liqlab validate: ", "see liqlab validate --help")
    _one_sentence(capsys, 2, ["predict", "x.csv", "--turnover", "lots"], "--turnover")
    _one_sentence(capsys, 2, ["no-such-command"], "liqlab: ")


@pytest.mark.parametrize("split, ok", [("0.5", True), ("not-a-date", False), ("1.5", False)])
def test_split_is_a_time_or_a_fraction_and_errors_name_it(tmp_path, capsys, split, ok):
    _, mk, lq = _files(tmp_path)
    if ok:
        assert main(["validate", str(mk), str(lq), "--split", split, "--json"]) == 0
        assert {r["n_test"] for r in json.loads(capsys.readouterr().out)["scores"]} == {100}
    else:
        _one_sentence(capsys, 2, ["validate", str(mk), str(lq), "--split", split], "argument --split: ")


def test_a_folder_as_input_is_one_sentence(tmp_path, capsys):
    _one_sentence(capsys, 1, ["predict", str(tmp_path)], "is a folder")
    _, mk, _ = _files(tmp_path)
    _one_sentence(capsys, 1, ["validate", str(mk), str(tmp_path)], "is a folder")


def test_an_impossible_out_is_one_sentence(tmp_path, capsys):
    _, mk, _ = _files(tmp_path)
    (tmp_path / "f").write_text("a file, not a folder")
    _one_sentence(capsys, 1, ["predict", str(mk), "--out", str(tmp_path / "f" / "p.csv")], "cannot write --out")
    _one_sentence(capsys, 1, ["predict", str(mk), "--out", str(tmp_path)], "--out", "is a folder")


@pytest.mark.parametrize("content, needle", [
    (b"[1, 2, 3]", "JSON object"),
    (b'{"leverages": 5, "long": [1]}', "list of numbers"),
    (b'{"leverages": ["a", "b"], "long": [1, 1]}', "list of numbers"),
    ('{"leverages": [10]}'.encode("utf-16"), "UTF-8"),
    (b"{not json", "not valid JSON"),
])
def test_a_malformed_mix_file_is_one_sentence(tmp_path, capsys, content, needle):
    _, mk, _ = _files(tmp_path)
    mix = tmp_path / "mix.json"
    mix.write_bytes(content)
    _one_sentence(capsys, 1, ["predict", str(mk), "--mix", str(mix)], "liqlab predict: ", "mix.json", needle)
