"""The magnet-zone figure on a hand-made table, and the scan app driven in the kernel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("plotly")


def zones() -> pd.DataFrame:
    nan = float("nan")
    return pd.DataFrame({
        "symbol": ["AAA", "BBB", "CCC"], "params_id": [0, 0, 0],
        "long_cluster_price": [99.0, 95.0, nan], "long_cluster_pct": [-1.0, -5.0, nan],
        "long_cluster_usd": [2e6, 5e5, 0.0], "long_cluster_oi_share": [0.02, 0.01, 0.0],
        "short_cluster_price": [103.0, 102.0, 108.0], "short_cluster_pct": [3.0, 2.0, 8.0],
        "short_cluster_usd": [1e6, 4e6, 3e5], "short_cluster_oi_share": [0.01, 0.04, 0.002],
    })


def test_magnet_zones_figure_of_a_hand_made_table():
    from liqlab.viz.scan_plots import magnet_zones_figure

    fig = magnet_zones_figure(zones())
    longs, shorts = fig.data
    assert (longs.meta, shorts.meta) == ("long_zone", "short_zone")
    assert list(longs.y) == ["AAA", "BBB", "CCC"] and list(shorts.y) == ["AAA", "BBB", "CCC"]
    assert list(longs.x) == [-1.0, -5.0, 0.0] and list(shorts.x) == [3.0, 2.0, 8.0]
    assert list(longs.text) == ["$2.00M", "$500.00k", ""]
    assert list(shorts.marker.opacity) == pytest.approx([0.35 + 0.65 * 0.25, 1.0, 0.35 + 0.65 * 0.05])
    assert "CCC: no long cluster" == longs.hovertext[2]
    assert fig.layout.yaxis.autorange == "reversed"


def test_scan_app_selects_rows_and_reports_bad_values():
    from liqlab.apps.scan_app import ScanApp
    from liqlab.scan import SampleSource

    app = ScanApp(["SYN001", "SYN002", "NOPE"], window="1d")
    assert list(app.zones["symbol"]) == sorted(app.zones["symbol"], key=lambda s: float(
        app.zones.set_index("symbol").loc[s, "nearest_cluster_pct"]))
    assert "Scanned 3 symbols (1 failed)" in app.status.value
    other = [s for s in ("SYN001", "SYN002") if s != app.symbol][0]
    app.w_table.value = other
    assert app.symbol == other and app.heatmap.layout_value("title.text", "").startswith(f"{other}:")
    market = SampleSource().load(other, "5m", pd.Timedelta(days=1))
    candles = app.heatmap.trace("price_candles")
    assert np.asarray(candles["close"])[-1] == np.float32(market.column("close")[-1])  # figures carry float32
    with pytest.raises(KeyError):
        app.select("NOPE")
    app._guarded(app.select, "NOPE")
    assert "not a scanned symbol" in app.status.value and "Error" in app.status.value
    before = app.table
    app.w_rescan.click()
    pd.testing.assert_frame_equal(app.table, before, check_exact=True)  # generated markets do not change
    assert app.symbol == other and "Scanned 3 symbols (1 failed)" in app.status.value
