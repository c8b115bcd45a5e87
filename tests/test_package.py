"""Package-level promises: light import, top-level names, the CLI entry point."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light():
    code = ("import sys, liqlab; heavy = [m for m in ('plotly', 'ccxt', 'numba', 'ipywidgets') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_top_level_names_resolve():
    import liqlab

    assert liqlab.compute_heatmap.__module__ == "liqlab.core.engine"
    assert callable(liqlab.load_sample)
    try:
        liqlab.not_a_name  # noqa: B018
    except AttributeError as exc:
        assert "not_a_name" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("unknown names must raise AttributeError")


def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "liqlab.cli", "--help"], capture_output=True, text=True).stdout
    for cmd in ("predict", "validate", "fetch", "record", "universe", "app"):
        assert cmd in out, cmd


def test_readme_first_calls_run_as_written():
    """The README's first calls, with the import paths it shows, in a fresh interpreter."""
    code = """
from liqlab.datasets import load_sample
from liqlab.engine import compute_heatmap
from liqlab.plotting import heatmap_figure, liquidation_map_figure
import liqlab
market = load_sample("BTCUSDT")
result = compute_heatmap(market, mix="balanced")
fig = heatmap_figure(result, market)
snap = result.snapshot("2025-02-01 12:00")
fig2 = liquidation_map_figure(snap)
assert liqlab.heatmap_figure is heatmap_figure and liqlab.compute_heatmap is compute_heatmap
print(len(fig.data) > 3, len(fig2.data) > 1, float(snap.long_usd.sum()) > 0)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True", "True"]
