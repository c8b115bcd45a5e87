"""Drive the Dashboard in-process: widget changes update the figure; hostile values never raise."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("anywidget")

from liqlab.viz import plotting# noqa: E402
from liqlab.apps.dashboard import Dashboard, InputError, Loaded, default_loader  # noqa: E402
from liqlab.core.market import MarketDataError  # noqa: E402
from liqlab.core.resample import resample_market  # noqa: E402


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    return Dashboard("BTCUSDT", window="7d", debounce=0, export_dir=tmp_path_factory.mktemp("exports"))


def _hm(d):
    return d.figure.trace("heatmap")


def _z(d):
    return np.asarray(_hm(d)["z"]).copy()


def _image(d):
    """The heatmap image entry of the figure's layout."""
    images = d.figure.plot_layout["images"]
    assert len(images) == 1
    return images[0]


def _reset(d):
    assert d.set(exchange="sample", symbol="BTCUSDT", timeframe="5m", window="7d", preset="balanced", mmr="auto",
                 bin_size=0.0, entry="range", position_notional=10_000.0, half_life_hours=0.0, turnover=0.1,
                 same_candle=True, tilt="none",
                 tilt_strength=1.0, side="combined", price_style="candles"), d.message


def test_initial_render_and_status(dash):
    assert dash.result is not None and not dash.error
    assert len(dash.market) == 7 * 288
    assert "bundled sample" in dash.status.value and "2025-" in dash.status.value
    hm = _hm(dash)
    assert hm["meta"] == "heatmap" and np.isfinite(np.asarray(hm["z"], dtype=float)).any()
    # the full grid is the image; the hover heatmap is coarse
    rows = round(_image(dash)["sizey"] / dash.result.bin_size)
    assert 100 <= rows <= 1500
    assert len(np.unique(hm["y"])) <= plotting.COARSE_ROWS and len(np.unique(hm["x"])) <= plotting.COARSE_COLUMNS
    assert hm["zmax"] == dash._parts["zmax"] and _image(dash)["source"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("change", [
    {"symbol": "ETHUSDT"}, {"preset": "degen"}, {"window": "1d"}, {"side": "long"},
    {"position_notional": 5e6}, {"half_life_hours": 6.0}, {"tilt": "taker"}, {"mmr": "flat 0.5%"},
    {"entry": "typical"}, {"bin_size": 100.0}, {"turnover": 0.0}, {"same_candle": False},
])
def test_changes_update_figure(dash, change):
    _reset(dash)
    before = _z(dash)
    before_x = np.asarray(_hm(dash)["x"]).copy()
    before_image = _image(dash)["source"]
    n_traces = len(dash.figure.traces)
    figure = dash.figure
    assert dash.set(**change), dash.message
    assert dash.figure is figure and len(figure.traces) == n_traces, "updated in place, never rebuilt"
    after = _z(dash)
    changed = after.shape != before.shape or not np.array_equal(after, before, equal_nan=True)
    changed = changed or not np.array_equal(before_x, np.asarray(_hm(dash)["x"]))
    assert changed, f"{change} did not change the hover heatmap"
    assert _image(dash)["source"] != before_image, f"{change} did not change the heatmap image"


def test_tier_slider_makes_custom_mix(dash):
    _reset(dash)
    before = _z(dash)
    dash.w_long[-1].value = 1.0  # the callback switches the preset to custom
    assert dash.w_preset.value == "custom"
    assert dash.refresh(), dash.message
    assert not np.array_equal(before, _z(dash), equal_nan=True)
    assert dash.result.params.mix.name == "custom"


def test_tier_sliders_join_the_page_when_their_panel_first_opens(dash):
    slot = dash.w_tiers.children[0]
    if not slot.children:  # fresh: the panel was never opened
        assert dash.w_tiers.selected_index is None
        dash.w_tiers.selected_index = 0
    (tiers,) = slot.children
    sliders = [w for column in tiers.children for w in column.children[1:]]
    assert sliders == [*dash.w_long, *dash.w_short]
    dash.w_tiers.selected_index = None
    dash.w_tiers.selected_index = 0
    assert slot.children == (tiers,), "filled once"


def test_tier_sliders_follow_a_chosen_preset(dash):
    """Choosing a preset recomputes from its weights, whatever the sliders held, then moves them."""
    from liqlab.core.leverage import LeverageMix

    _reset(dash)
    for w in (*dash.w_long, *dash.w_short):
        w.value = 0.0  # a custom mix with nothing in it: refused
    assert dash.w_preset.value == "custom" and not dash.refresh() and "zero" in dash.message
    dash.w_preset.value = "degen"  # no event loop here: the observer recomputes at once
    assert not dash.error, dash.message
    mix = LeverageMix.preset("degen")  # five tiers: the sixth slider is hidden at zero
    assert dash.result.params.mix.name == "degen" and len(dash.w_long) == 6 == len(mix.long) + 1
    assert [w.value for w in dash.w_long] == [round(float(v), 4) for v in mix.long] + [0.0]
    assert [w.value for w in dash.w_short] == [round(float(v), 4) for v in mix.short] + [0.0]
    assert [w.description for w in dash.w_long[:5]] == ["25x", "50x", "75x", "100x", "125x"]
    assert dash.w_long[5].layout.display == "none" and dash.w_long[4].layout.display is None
    assert dash.w_preset.value == "degen", "moving the sliders to the preset keeps the preset"
    # a slider moved from there makes a custom mix of the preset's five tiers
    dash.w_long[0].value = 0.5
    assert dash.w_preset.value == "custom" and dash.refresh(), dash.message
    assert dash.result.params.mix.leverages == mix.leverages
    assert dash.result.params.mix.long[0] > mix.long[0]
    _reset(dash)


def test_price_style_toggles_traces(dash):
    _reset(dash)
    assert dash.set(price_style="line")
    fig = dash.figure
    assert fig.trace("price_line")["visible"] is True and fig.trace("price_candles")["visible"] is False


def test_timeframe_resamples_the_sample(dash):
    _reset(dash)
    assert dash.set(timeframe="1h"), dash.message
    assert dash.market.timeframe == "1h" and len(dash.market) == 7 * 24
    assert not dash.set(timeframe="1m") and "5m" in dash.message


def test_custom_dates(dash):
    _reset(dash)
    assert dash.set(window="custom", start=dt.date(2025, 1, 10), end=dt.date(2025, 1, 12)), dash.message
    assert dash.market.start == pd.Timestamp("2025-01-10", tz="UTC")
    assert len(dash.market) == 3 * 288
    assert not dash.set(start=dt.date(2025, 1, 20), end=dt.date(2025, 1, 12))
    assert "after it ends" in dash.message
    assert not dash.set(start=dt.date(2030, 1, 1), end=dt.date(2030, 1, 2))
    assert "no candles" in dash.message


def test_time_slider_moves_the_map(dash):
    _reset(dash)
    last = dash.snapshot.time
    map_before = np.asarray(dash.figure.trace("map_long")["x"]).copy()
    dash.w_time.value = 10
    assert dash.snapshot.time < last
    map_after = np.asarray(dash.figure.trace("map_long")["x"])
    assert not np.array_equal(map_before, map_after)
    shapes = dash.figure.plot_layout["shapes"]
    assert any(s["name"] == "snapshot_time" and s["x0"] == dash.snapshot.time.value / 1e6 for s in shapes)


HOSTILE = [
    {"bin_size": -5.0}, {"bin_size": math.nan}, {"bin_size": math.inf}, {"bin_size": 1e-9}, {"bin_size": 1e12},
    {"position_notional": -1.0}, {"position_notional": 1e300}, {"position_notional": math.nan},
    {"half_life_hours": -3.0}, {"half_life_hours": 1e-6}, {"half_life_hours": math.inf},
    {"symbol": "'; import os; os.system('x')"}, {"symbol": "DOGEUSDT"}, {"symbol": ""}, {"symbol": "A" * 5000},
    {"tilt_strength": math.nan}, {"turnover": math.nan},
]


@pytest.mark.parametrize("bad", HOSTILE, ids=[repr(h)[:40] for h in HOSTILE])
def test_hostile_values_give_a_status_message(dash, bad):
    _reset(dash)
    z = _z(dash)
    image = _image(dash)["source"]
    assert dash.set(**bad) is False
    assert dash.error and dash.message
    assert "Error:" in dash.status.value and "Traceback" not in dash.status.value
    np.testing.assert_array_equal(_z(dash), z)  # the last good figure stays
    assert _image(dash)["source"] == image


def test_values_the_widgets_refuse_are_reported_not_raised(dash):
    """A message from the page (``set_state``) with a value a widget's traits refuse: the old value
    stays, the status line says so, nothing raises in the kernel's message handler."""
    _reset(dash)
    index = dash.w_preset.index
    dash.w_preset.set_state({"index": 999})
    assert dash.w_preset.index == index and dash.error
    assert dash.message.startswith("Leverage: the value sent from the page was refused"), dash.message
    dash.w_bin.set_state({"value": "wide"})
    assert dash.w_bin.value == 0.0 and dash.message.startswith("Bin size (0 auto): the value sent"), dash.message
    assert all(w.refused is not None for w in (dash.w_preset, dash.w_bin, dash.w_time, dash.w_tiers, *dash.w_long))
    opened = dash.w_tiers.selected_index
    dash.w_tiers.set_state({"selected_index": "first"})
    assert dash.w_tiers.selected_index == opened and "the value sent from the page was refused" in dash.message
    _reset(dash)
    assert not dash.error


def test_hostile_trait_values_bypassing_dropdowns(dash):
    """A visitor can push raw values; the callback's validation still catches them."""
    _reset(dash)
    for widget, value in ((dash.w_window, "custom"), (dash.w_same, "yes")):
        with dash._mute():
            try:
                widget.value = value
            except Exception:  # a trait refusing the value is fine too
                continue
        assert dash.refresh() is False and dash.error, (widget, value)
        _reset(dash)
    dash.w_long[0].value = 0.0  # all weights zero
    for w in (*dash.w_long, *dash.w_short):
        w.value = 0.0
    assert dash.refresh() is False and "zero" in dash.message
    _reset(dash)


def test_source_failure_falls_back_to_the_sample(tmp_path):
    def loader(exchange, symbol, timeframe, since, until, online):
        if exchange != "sample":
            raise RuntimeError("binanceusdm is unreachable (offline)")
        return default_loader(exchange, symbol, timeframe, since, until, online)

    d = Dashboard("ETHUSDT", window="1d", loader=loader, debounce=0, export_dir=tmp_path)
    assert d.set(exchange="binanceusdm", symbol="ETH/USDT:USDT")
    assert d.loaded.source == "sample" and d.market.symbol.startswith("ETH")
    assert d.error and "unreachable" in d.message and "sample" in d.message


def test_store_data_is_labelled(tmp_path):
    sample = default_loader("sample", "BTCUSDT", "5m", None, None, False).market

    def loader(exchange, symbol, timeframe, since, until, online):
        return Loaded(sample, "store", pd.Timestamp("2025-02-05 10:00", tz="UTC"))

    d = Dashboard("BTCUSDT", exchange="bybit", window="1d", loader=loader, debounce=0, export_dir=tmp_path)
    assert not d.error, d.message
    assert "Source: local store" in d.status.value and "2025-02-05 10:00:00" in d.status.value


def test_exports_write_files_and_name_them_without_server_paths(dash):
    _reset(dash)
    for kind in ("csv", "parquet", "html"):
        dash._last_export = 0.0
        path = dash.export(kind)
        assert path.exists() and path.stat().st_size > 0
        assert f"exported to {path.name}" in dash.status.value  # the file's name; no server path
        assert str(path.parent) not in dash.status.value
    frame = pd.read_csv(dash.export_dir / path.with_suffix(".csv").name, index_col=0)
    assert {"predicted_long_usd", "realized_short_usd", "close"} <= set(frame.columns)
    with pytest.raises(InputError):
        dash.export("csv")  # too soon after the last one
    dash.w_export_csv.click()  # the button reports instead of raising
    assert dash.error and "2 seconds" in dash.message


def test_live_refresh_refuses_sample_and_bad_interval(dash):
    _reset(dash)
    dash.w_live.value = True
    assert dash.w_live.value is False and dash.error
    dash.w_live_s.value = 1
    assert dash._guarded(dash.set_live, True) is None and dash.error


def test_resample_market_sums_liquidations():
    m = default_loader("sample", "SOLUSDT", "5m", None, None, False).market.tail(288)
    h = resample_market(m, "1h")
    assert len(h) == 24
    assert h.liquidations["long_usd"].sum() == pytest.approx(m.liquidations["long_usd"].sum())
    with pytest.raises(MarketDataError):
        resample_market(h, "5m")


@pytest.mark.parametrize("widget_name, state", [
    ("w_timeframe", {"index": 99}), ("w_size", {"value": "lots"}), ("w_turnover", {"value": [1, 2]}),
    ("w_same", {"value": "yes"}),
])
def test_values_refused_by_widget_traits_are_reported_not_raised(dash, widget_name, state):
    _reset(dash)
    widget = getattr(dash, widget_name)
    before = widget.get_state()
    z = _z(dash)
    widget.set_state(state)  # what a visitor's update message becomes in the kernel (ipywidgets' comm handler)
    assert dash.error and "refused" in dash.message, dash.message
    assert "Traceback" not in dash.status.value
    assert {k: widget.get_state()[k] for k in state} == {k: before[k] for k in state}
    np.testing.assert_array_equal(_z(dash), z)
    # a valid message through the same path still works
    _reset(dash)
    assert not dash.error
