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
